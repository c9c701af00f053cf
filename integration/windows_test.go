package integration

import (
	"context"
	bin "encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestWindowedCountEmitFinalAcrossAMove: a tumbling-window count with
// final results only, run by the runner against the broker: each closed
// window's count is emitted once, when stream time passes its end plus
// grace, also when the task moves to an instance with no local state in the
// middle (the pending results, and the stream time that decides closing,
// travel through the changelogs and the committed offsets); a late record is
// dropped and counted, not an error.
func TestWindowedCountEmitFinalAcrossAMove(t *testing.T) {
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("windows")
	if _, err := k.adm.CreateTopics(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produce := func(key string, tsMillis int64) {
		t.Helper()
		r := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte("v"), Timestamp: time.UnixMilli(tsMillis)}
		if err := k.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	const size = 10 * time.Second
	bld := topology.NewBuilder()
	bld.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		GroupByKey(topology.Grouped{Key: serde.String{}, Value: serde.String{}}).
		WindowedBy(topology.TimeWindows{Size: size}).
		Emit(topology.EmitOnWindowClose).
		Count(topology.Materialized{Name: "per-10s"}).
		ToStream().
		To(topic+"-out", topology.Produced{Key: serde.TimeWindowed{Inner: serde.String{}, Size: size}, Value: serde.Int64{}})
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(b.addr, topic+"-app", t)

	// First instance: window [0, 10s) fills, then 11s closes it.
	for _, r := range []struct {
		key string
		ts  int64
	}{{"a", 1000}, {"a", 2000}, {"b", 3000}, {"a", 11000}} {
		produce(r.key, r.ts)
	}
	_, stop := runInProcess(t, cfg, topo)
	waitFor(t, 2*time.Minute, "four records committed", func() bool { return k.committed(ctx, cfg.ApplicationID, topic) == 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The task moves: another instance, no local state. A late record for
	// the closed window, then 21s closes [10s, 20s).
	produce("a", 5000)
	produce("a", 15000)
	produce("b", 21000)
	cfg.InstanceID, cfg.StateDir = "b", t.TempDir()
	r, stop := runInProcess(t, cfg, topo)
	waitFor(t, 2*time.Minute, "seven records committed", func() bool { return k.committed(ctx, cfg.ApplicationID, topic) == 7 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	var got []string
	for _, rec := range k.readCommitted(t, ctx, topic+"-out") {
		if len(rec.Key) < 8 || len(rec.Value) != 8 {
			t.Fatalf("output key %x value %x: not a time-windowed key and an int64", rec.Key, rec.Value)
		}
		start := int64(bin.BigEndian.Uint64(rec.Key[len(rec.Key)-8:]))
		got = append(got, fmt.Sprintf("%s@[%d,%d)=%d", rec.Key[:len(rec.Key)-8], start, start+size.Milliseconds(),
			int64(bin.BigEndian.Uint64(rec.Value))))
	}
	want := []string{"a@[0,10000)=2", "b@[0,10000)=1", "a@[10000,20000)=2"}
	if !slices.Equal(got, want) {
		t.Fatalf("final results %q, want %q (each closed window once)", got, want)
	}
	if n := counter(t, r, "eos_dropped_records_total"); n != 1 {
		t.Fatalf("eos_dropped_records_total = %v, want 1 (the late record)", n)
	}
}

// TestWindowChangelogConfigValidatedAtStartup: a window store's changelog
// that already exists with a retention shorter than the store's (records
// would leave the changelog while their windows are still in the store, and
// be missing from a restore) stops startup with an error naming the topic,
// the setting and what is needed, before anything is processed.
func TestWindowChangelogConfigValidatedAtStartup(t *testing.T) {
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("wincfg")
	cfg := baseConfig(b.addr, topic+"-app", t)
	changelog := topology.ChangelogTopic(cfg.ApplicationID, "per-10s")
	short := "1000"
	if _, err := k.adm.CreateTopics(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	if _, err := k.adm.CreateTopics(ctx, 1, 1, map[string]*string{"cleanup.policy": ptr("compact,delete"), "retention.ms": &short}, changelog); err != nil {
		t.Fatal(err)
	}
	const size = 10 * time.Second
	bld := topology.NewBuilder()
	bld.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		GroupByKey(topology.Grouped{Key: serde.String{}, Value: serde.String{}}).
		WindowedBy(topology.TimeWindows{Size: size}).
		Count(topology.Materialized{Name: "per-10s"}).
		ToStream().
		To(topic+"-out", topology.Produced{Key: serde.TimeWindowed{Inner: serde.String{}, Size: size}, Value: serde.Int64{}})
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	r, err := processor.New(cfg, topo)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// Run returns by itself: startup fails.
	err = r.Run(rctx)
	// The default margin is one day.
	want := fmt.Sprintf("changelog topic %q of a window or session store has retention.ms=1000: it must be at least %d", changelog, (size + 24*time.Hour).Milliseconds())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("startup error = %v, want it to contain %q", err, want)
	}
}
