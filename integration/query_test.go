package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// queryTopology counts records per key into "cnt" (to <topic>-out) and per
// key and one-minute window into "wcnt".
func queryTopology(t *testing.T, topic string) *topology.Topology {
	str, dec := serde.String{}, serde.DecimalString{}
	b := topology.NewBuilder()
	g := b.Stream([]string{topic}, topology.Consumed{Key: str, Value: dec}).GroupByKey(topology.Grouped{Key: str, Value: dec})
	g.Count(topology.Materialized{Name: "cnt", Key: str, Value: serde.Int64{}}).
		ToStream().To(topic+"-out", topology.Produced{Key: str, Value: dec})
	g.WindowedBy(topology.TimeWindows{Size: time.Minute}).
		Count(topology.Materialized{Name: "wcnt", Key: str, Value: serde.Int64{}}).
		ToStream().To(topic+"-wout", topology.Produced{Key: serde.TimeWindowed{Inner: str, Size: time.Minute}, Value: dec})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// runQueryable runs a topology in this process, returning the runner (for
// its Go query API) and its stop.
func runQueryable(t *testing.T, cfg processor.Config, topo *topology.Topology) (*processor.Runner, func() error) {
	t.Helper()
	return runLogged(t, cfg, topo, slog.New(slog.NewJSONHandler(logFile(t, "inproc-"+cfg.InstanceID), nil)))
}

// getJSON GETs a URL and decodes its JSON body.
func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET %s: %s: not JSON: %q", u, resp.Status, b)
	}
	return resp.StatusCode, m
}

// countOf reads a count out of a query answer's value: a number, or a
// timestamped {"value": n}.
func countOf(v any) int64 {
	if m, ok := v.(map[string]any); ok {
		v = m["value"]
	}
	f, _ := v.(float64)
	return int64(f)
}

// TestInteractiveQueries: two instances with application.server; once the
// input is committed, every key's count answered over HTTP and through
// Runner.Query agrees with the last count on the committed output topic.
// A key of the other instance's partition is answered 421 naming that
// instance's application.server, and with ?proxy=true by that instance;
// a range with ?proxy=true covers every key; a key's windows sum to its
// count.
func TestInteractiveQueries(t *testing.T) {
	const partitions, keys, records = 4, 40, 4000
	br := startBroker(t)
	k := newKafka(t, br.addr)
	ctx := context.Background()
	topic := uniqueTopic("iq")
	app := topic + "-app"
	produceInput(t, k, topic, partitions, keys, seqValues(records))
	topo := queryTopology(t, topic)

	addr := map[string]string{"a": freeAddr(t), "b": freeAddr(t)}
	runners := map[string]*processor.Runner{}
	for _, id := range []string{"a", "b"} {
		cfg := baseConfig(br.addr, app, t)
		cfg.InstanceID, cfg.ApplicationServer = id, addr[id]
		runners[id], _ = runQueryable(t, cfg, topo)
	}
	waitFor(t, 3*time.Minute, "all input committed", func() bool { return k.committed(ctx, app, topic) == records })

	// The committed output: each key's last count.
	want := map[string]int64{}
	for _, rec := range k.readCommitted(t, ctx, topic+"-out") {
		n, _ := strconv.ParseInt(string(rec.Value), 10, 64)
		want[string(rec.Key)] = n
	}
	if len(want) != keys {
		t.Fatalf("%d keys on the output, want %d", len(want), keys)
	}

	// Both instances run tasks, and each knows where the others run
	// (the group's description is polled every 2s).
	waitFor(t, time.Minute, "every key answered by its owner or routed to the other instance", func() bool {
		for key := range want {
			for _, id := range []string{"a", "b"} {
				status, body := getJSON(t, "http://"+addr[id]+"/stores/cnt/keys/"+key)
				if status != http.StatusOK && !(status == http.StatusMisdirectedRequest && body["server"] != "") {
					return false
				}
			}
		}
		return true
	})
	local := map[string]int{}
	for key, n := range want {
		owners := 0
		for _, id := range []string{"a", "b"} {
			other := map[string]string{"a": "b", "b": "a"}[id]
			status, body := getJSON(t, "http://"+addr[id]+"/stores/cnt/keys/"+key)
			switch status {
			case http.StatusOK:
				owners++
				local[id]++
				if got := countOf(body["value"]); got != n {
					t.Errorf("instance %s: key %s: count %d, the output says %d", id, key, got, n)
				}
			case http.StatusMisdirectedRequest:
				if body["server"] != addr[other] || body["instance"] != other {
					t.Errorf("instance %s: key %s: routed to %v (%v), want %s (%s)", id, key, body["instance"], body["server"], other, addr[other])
				}
			default:
				t.Errorf("instance %s: key %s: status %d %v", id, key, status, body)
			}
			// Proxied: always the count.
			status, body = getJSON(t, "http://"+addr[id]+"/stores/cnt/keys/"+key+"?proxy=true")
			if status != http.StatusOK || countOf(body["value"]) != n {
				t.Errorf("instance %s: key %s with proxy=true: status %d, %v; want count %d", id, key, status, body, n)
			}
			// The Go API agrees.
			res, err := runners[id].Query(ctx, "cnt", key)
			var nl *processor.NotLocalError
			switch {
			case err == nil:
				if v, _ := res.Value.(int64); !res.Found || v != n {
					if vt, ok := res.Value.(serde.ValueAndTimestamp); !ok || vt.Value != n {
						t.Errorf("instance %s: Query(%s) = %+v, want %d", id, key, res, n)
					}
				}
			case errors.As(err, &nl):
				if nl.Instance != other || nl.Server != addr[other] {
					t.Errorf("instance %s: Query(%s): %v, want instance %s", id, key, nl, other)
				}
			default:
				t.Errorf("instance %s: Query(%s): %v", id, key, err)
			}
		}
		if owners != 1 {
			t.Errorf("key %s answered locally by %d instances, want exactly 1", key, owners)
		}
		// Windows: the key's one-minute counts add up to its count.
		status, body := getJSON(t, "http://"+addr["a"]+"/stores/wcnt/keys/"+key+"/windows?proxy=true&from=0&to="+
			strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
		var sum int64
		ws, _ := body["windows"].([]any)
		for _, w := range ws {
			sum += countOf(w.(map[string]any)["value"])
		}
		if status != http.StatusOK || sum != n {
			t.Errorf("key %s: windows (status %d) sum to %d over %d windows, want %d", key, status, sum, len(ws), n)
		}
	}
	if local["a"] == 0 || local["b"] == 0 {
		t.Errorf("keys answered locally per instance: %v; both must own some (the other-instance case untested)", local)
	}

	// Ranges: without proxy, a's own partitions and the rest named; with
	// it, every key.
	for _, proxy := range []bool{false, true} {
		u := "http://" + addr["a"] + "/stores/cnt/keys?" + url.Values{"proxy": {strconv.FormatBool(proxy)}}.Encode()
		status, body := getJSON(t, u)
		if status != http.StatusOK {
			t.Fatalf("range (proxy=%v): status %d %v", proxy, status, body)
		}
		entries, _ := body["entries"].([]any)
		elsewhere, _ := body["elsewhere"].([]any)
		for _, e := range entries {
			m := e.(map[string]any)
			key := fmt.Sprint(m["key"])
			if got := countOf(m["value"]); got != want[key] {
				t.Errorf("range (proxy=%v): key %s: count %d, output %d", proxy, key, got, want[key])
			}
		}
		switch {
		case proxy && (len(entries) != keys || len(elsewhere) != 0):
			t.Errorf("range with proxy: %d entries, %d partitions elsewhere; want %d and 0", len(entries), len(elsewhere), keys)
		case !proxy && (len(entries) != local["a"] || len(elsewhere) == 0):
			t.Errorf("range without proxy: %d entries (a owns %d keys), %d partitions elsewhere", len(entries), local["a"], len(elsewhere))
		}
		for _, e := range elsewhere {
			if m := e.(map[string]any); m["server"] != addr["b"] {
				t.Errorf("range: partition %v elsewhere at %v, want %s", m["partition"], m["server"], addr["b"])
			}
		}
	}
	// A range from and to a key.
	status, body := getJSON(t, "http://"+addr["b"]+"/stores/cnt/keys?proxy=true&from=k1&to=k2")
	if entries, _ := body["entries"].([]any); status != http.StatusOK || len(entries) != 11 { // k1, k10..k19
		t.Errorf("range [k1, k2): status %d, %d entries, want 11", status, len(entries))
	}
	t.Logf("%d keys: %d answered by a, %d by b, each agreeing with the output topic", keys, local["a"], local["b"])
}
