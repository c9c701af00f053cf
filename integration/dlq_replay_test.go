package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/internal/dlqreplay"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// rejectNegative fails on negative values: a processing error.
type rejectNegative struct{ ctx topology.ProcessorContext }

func (p *rejectNegative) Init(ctx topology.ProcessorContext) error { p.ctx = ctx; return nil }
func (p *rejectNegative) Process(r topology.Record) error {
	if r.Value.(int64) < 0 {
		return fmt.Errorf("negative value %d", r.Value)
	}
	return p.ctx.Forward(r)
}
func (p *rejectNegative) Close() error { return nil }

// produceWithHeaders writes each value with key k<i> and a header naming it.
func produceWithHeaders(t *testing.T, k *kafka, topic string, first int, values []string) {
	t.Helper()
	ctx := context.Background()
	for i, v := range values {
		n := strconv.Itoa(first + i)
		k.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte("k" + n), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t" + n)}, {Key: "origin", Value: []byte("test")}}}, nil)
	}
	if err := k.cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDLQReplay: records that failed deserialization and processing land in
// the DLQ; a replay of the deserialization class only writes exactly those
// originals (key, value, headers, timestamp; no eos.* header) to "fixed",
// once each; a second replay writes only what was dead-lettered since, and a
// third writes nothing.
func TestDLQReplay(t *testing.T) {
	const good = 400
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("replay")
	if _, err := k.adm.CreateTopics(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	values := make([]string, good)
	for i := range values {
		values[i] = strconv.Itoa(i)
	}
	badDeser := map[int]string{50: "abc", 120: "1.5", 300: "x"}
	badProc := map[int]string{51: "-5", 200: "-7"}
	for i, v := range badDeser {
		values[i] = v
	}
	for i, v := range badProc {
		values[i] = v
	}
	produceWithHeaders(t, k, topic, 0, values)

	bld := topology.NewBuilder()
	bld.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.DecimalString{}}).
		Process(func() topology.Processor { return &rejectNegative{} }, topology.Named("reject-negative")).
		To(topic+"-out", topology.Produced{Key: serde.String{}, Value: serde.DecimalString{}})
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	app := baseConfig(b.addr, topic+"-app", t)
	runApp := func(total int64) {
		t.Helper()
		_, stop := runInProcess(t, app, topo)
		waitFor(t, 2*time.Minute, "all input committed", func() bool { return k.committed(ctx, app.ApplicationID, topic) == total })
		if err := stop(); err != nil {
			t.Fatalf("runner: %v", err)
		}
	}
	runApp(good)
	dlqTopic := app.ApplicationID + "-dlq"
	if dlq := k.readCommitted(t, ctx, dlqTopic); len(dlq) != len(badDeser)+len(badProc) {
		t.Fatalf("%d DLQ records, want %d", len(dlq), len(badDeser)+len(badProc))
	}

	fixed := topic + "-fixed"
	cfg := dlqreplay.Config{DLQ: dlqTopic, To: fixed, Classes: []string{"deserialization"},
		FromOffset: dlqreplay.Open, ToOffset: dlqreplay.Open}
	replay := func() dlqreplay.Result {
		t.Helper()
		rc := baseConfig(b.addr, dlqreplay.DefaultApplicationID(dlqTopic), t) // a new state dir each run
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		res, err := dlqreplay.Run(rctx, cfg, rc, processor.WithLogger(slog.New(slog.NewJSONHandler(logFile(t, "replay"), nil))))
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		return res
	}
	// checkFixed asserts fixed holds exactly the originals of want, once each.
	checkFixed := func(want map[int]string) {
		t.Helper()
		in := map[string]*kgo.Record{}
		for _, r := range k.readCommitted(t, ctx, topic) {
			in[string(r.Key)] = r
		}
		out := k.readCommitted(t, ctx, fixed)
		if len(out) != len(want) {
			t.Fatalf("%d records in %s, want %d", len(out), fixed, len(want))
		}
		seen := map[string]bool{}
		for _, r := range out {
			key := string(r.Key)
			i, err := strconv.Atoi(strings.TrimPrefix(key, "k"))
			if _, ok := want[i]; err != nil || !ok {
				t.Errorf("%s holds key %q, not a replayed record", fixed, key)
				continue
			}
			if seen[key] {
				t.Errorf("key %s replayed twice", key)
			}
			seen[key] = true
			orig := in[key]
			if string(r.Value) != string(orig.Value) || !r.Timestamp.Equal(orig.Timestamp) {
				t.Errorf("key %s: value %q at %v, want the original %q at %v", key, r.Value, r.Timestamp, orig.Value, orig.Timestamp)
			}
			if !reflect.DeepEqual(r.Headers, orig.Headers) {
				t.Errorf("key %s: headers %v, want the original %v", key, r.Headers, orig.Headers)
			}
			for _, h := range r.Headers {
				if strings.HasPrefix(h.Key, "eos.") {
					t.Errorf("key %s: runner header %s kept", key, h.Key)
				}
			}
		}
	}

	res := replay()
	if res.Replayed != len(badDeser) || res.Skipped != len(badProc) {
		t.Errorf("first replay: replayed %d skipped %d, want %d and %d", res.Replayed, res.Skipped, len(badDeser), len(badProc))
	}
	checkFixed(badDeser)
	firstEnd := k.endOffsets(ctx, fixed)

	// Nothing new in the DLQ: a second replay writes nothing.
	if res := replay(); res.Replayed != 0 || res.Skipped != 0 {
		t.Errorf("second replay: replayed %d skipped %d, want 0 and 0", res.Replayed, res.Skipped)
	}
	checkFixed(badDeser)
	if end := k.endOffsets(ctx, fixed); end != firstEnd {
		t.Errorf("%s end offsets moved from %d to %d on a replay with nothing to do", fixed, firstEnd, end)
	}

	// Two more failures, then a third replay: only the new deserialization
	// record goes out; the group remembers the rest.
	produceWithHeaders(t, k, topic, good, []string{"zzz", "-9"})
	runApp(good + 2)
	res = replay()
	if res.Replayed != 1 || res.Skipped != 1 {
		t.Errorf("third replay: replayed %d skipped %d, want 1 and 1", res.Replayed, res.Skipped)
	}
	want := map[int]string{good: "zzz"}
	for i, v := range badDeser {
		want[i] = v
	}
	checkFixed(want)

	// The CLI's list reads the same records.
	var classes []string
	if _, err := dlqreplay.Scan(ctx, b.addr, dlqTopic, nil, func(e dlqreplay.Entry) error {
		if e.SourceTopic != topic || e.SourceOffset < 0 || e.Message == "" {
			return errors.New("entry without its coordinates: " + fmt.Sprint(e))
		}
		classes = append(classes, e.Class)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(classes) != len(badDeser)+len(badProc)+2 {
		t.Errorf("Scan read %d DLQ records, want %d", len(classes), len(badDeser)+len(badProc)+2)
	}
	t.Logf("DLQ %d records (%v); replays wrote %d, 0, 1; %s holds %d originals once each", len(classes), classes,
		len(badDeser), fixed, len(want))
}
