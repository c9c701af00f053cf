package integration

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eos-runner/eos-runner/internal/verify"
)

// standbyLags scrapes eos_standby_lag_records from a runner's /metrics:
// one value per standby store partition.
func standbyLags(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "eos_standby_lag_records{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, err
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// inputPartitions is which partitions of topic a runner owns, by its log.
func inputPartitions(r *runnerProc, topic string) map[int32]bool {
	out := map[int32]bool{}
	for tp := range r.owned() {
		if strings.HasPrefix(tp, topic+"[") {
			out[partitionOf(tp)] = true
		}
	}
	return out
}

// restoredSince sums a runner's "restored store partition" lines from the
// n-th on.
func restoredSince(r *runnerProc, n int) (lines int, records int64, full int) {
	all := r.find("restored store partition")
	for _, l := range all[min(n, len(all)):] {
		lines++
		if v, ok := l["records"].(float64); ok {
			records += int64(v)
		}
		if f, _ := l["full"].(bool); f {
			full++
		}
	}
	return lines, records, full
}

// changelogRecords sums the end offsets of an application's changelog
// partitions in parts: what restoring them from nothing would replay (give
// or take transaction markers).
func changelogRecords(t *testing.T, k *kafka, app string, parts map[int32]bool) int64 {
	t.Helper()
	ctx := context.Background()
	topics, err := k.adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, app+"-") && strings.HasSuffix(name, "-changelog") {
			names = append(names, name)
		}
	}
	ends, err := k.adm.ListEndOffsets(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) {
		if parts[o.Partition] {
			sum += o.Offset
		}
	})
	return sum
}

// awaitStandbysCurrent waits until a runner keeps standbys of want store
// partitions or more, each with lag 0.
func awaitStandbysCurrent(t *testing.T, addr string, atLeast int, what string) {
	t.Helper()
	waitFor(t, 2*time.Minute, what, func() bool {
		lags, err := standbyLags(addr)
		if err != nil || len(lags) < atLeast {
			return false
		}
		for _, v := range lags {
			if v != 0 {
				return false
			}
		}
		return true
	})
}

// TestStandbyFailoverRestoresOnlyTheGap: two instances of the verification
// topology (six stores per task) with num.standby.replicas=1, so each keeps
// standbys of the other's tasks. SIGKILL one once everything is processed
// and its peer's standbys have caught up (lag 0 on /metrics): the peer
// takes its tasks over restoring nothing. Then restart it and SIGKILL the
// other in the middle of a stream of input: the survivor restores only the
// gap, a small part of the moved partitions' changelogs (all of which a
// restore without standby replays). The outputs are checked exactly-once
// at the end.
func TestStandbyFailoverRestoresOnlyTheGap(t *testing.T) {
	const partitions, keys = 4, 500
	first, second := 20_000, 40_000
	br := startBroker(t)
	k := newKafka(t, br.addr)
	ctx := context.Background()
	topic := uniqueTopic("standby")
	app := topic + "-verify"
	generate(t, br.addr, topic, first, keys, partitions)

	f := newFleet(t, br.addr, topic, 100*time.Millisecond)
	f.args = []string{"--set", "num.standby.replicas=1"}
	metrics := map[string]string{"a": freeAddr(t), "b": freeAddr(t)}
	start := func(id string) *runnerProc {
		return f.startWith(id, br.addr, "--set", "metrics.addr="+metrics[id])
	}
	a := start("a")
	b := start("b")
	waitFor(t, 2*time.Minute, "a and b both running tasks, all input committed", func() bool {
		return len(inputPartitions(a, topic)) > 0 && len(inputPartitions(b, topic)) > 0 &&
			k.committed(ctx, app, topic) == int64(first)
	})
	aParts := inputPartitions(a, topic)
	awaitStandbysCurrent(t, metrics["b"], len(aParts), "b's standbys of a's tasks at lag 0")
	lags, _ := standbyLags(metrics["b"])
	t.Logf("a runs %v; b keeps %d standby store partitions, all at lag 0", aParts, len(lags))

	// 1. SIGKILL a, idle: b restores nothing.
	before := len(b.find("restored store partition"))
	killedAt := time.Now()
	f.kill("a")
	waitFor(t, 2*time.Minute, "b to run all partitions", func() bool {
		v := restoreTrackOf(b)
		return len(inputPartitions(b, topic)) == partitions && len(v.restoring) == 0
	})
	lines, restored, full := restoredSince(b, before)
	full1 := changelogRecords(t, k, app, aParts)
	t.Logf("idle SIGKILL: b took over %d partitions in %v, restoring %d records in %d store partitions (full: %d); without standby: %d",
		len(aParts), time.Since(killedAt).Round(time.Millisecond), restored, lines, full, full1)
	if lines == 0 {
		t.Errorf("b logged no restore of a's store partitions after the kill")
	}
	if restored != 0 || full != 0 {
		t.Errorf("b restored %d records (%d in full) of a's tasks after an idle kill; its standbys were current: want 0", restored, full)
	}

	// 2. a back (standbys of b's tasks now), input flowing, SIGKILL b mid-stream.
	a = start("a")
	waitFor(t, 2*time.Minute, "a to run tasks again", func() bool {
		v := restoreTrackOf(a)
		return len(inputPartitions(a, topic)) > 0 && len(v.restoring) == 0
	})
	bParts := inputPartitions(b, topic)
	awaitStandbysCurrent(t, metrics["a"], len(bParts), "a's standbys of b's tasks at lag 0")
	genDone := make(chan error, 1)
	go func() {
		_, err := verify.Generate(ctx, verify.GenerateConfig{Brokers: []string{br.addr}, Topic: topic,
			Records: second, Keys: keys, Partitions: partitions, Seed: 11, Rate: 5000})
		genDone <- err
	}()
	waitFor(t, 2*time.Minute, "half of the second input committed", func() bool {
		return k.committed(ctx, app, topic) >= int64(first+second/2)
	})
	bParts = inputPartitions(b, topic)
	before = len(a.find("restored store partition"))
	f.kill("b")
	waitFor(t, 2*time.Minute, "a to run all partitions", func() bool {
		v := restoreTrackOf(a)
		return len(inputPartitions(a, topic)) == partitions && len(v.restoring) == 0
	})
	lines, restored, full = restoredSince(a, before)
	full2 := changelogRecords(t, k, app, bParts)
	t.Logf("SIGKILL mid-stream: a restored %d records in %d store partitions (full: %d) of b's partitions %v, whose changelogs hold %d",
		restored, lines, full, bParts, full2)
	if full != 0 || restored*4 > full2 {
		t.Errorf("a restored %d records (%d store partitions in full) of changelogs holding %d: more than a quarter; the standbys did not keep up",
			restored, full, full2)
	}
	if err := <-genDone; err != nil {
		t.Fatal(err)
	}

	// 3. b back; everything processed exactly once.
	start("b")
	waitFor(t, 3*time.Minute, "all input committed", func() bool {
		return k.committed(ctx, app, topic) == int64(first+second)
	})
	f.stopAll()
	if rep := check(t, br.addr, topic); !rep.OK {
		t.Fatalf("exactly-once check failed: %s", rep.Verdict())
	}
}
