package integration

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Exactly-once on the failure paths the fault harness does not reach by
// killing processes: a punctuator's fatal error, and stream time carried by
// the committed offsets.

// streamTimeEcho forwards each record's value with the stream time it was
// processed at.
type streamTimeEcho struct{ ctx topology.ProcessorContext }

func (p *streamTimeEcho) Init(ctx topology.ProcessorContext) error { p.ctx = ctx; return nil }
func (p *streamTimeEcho) Process(r topology.Record) error {
	return p.ctx.Forward(r.WithValue(r.Value.(string) + " st=" + strconv.FormatInt(p.ctx.StreamTime().UnixMilli(), 10)))
}
func (p *streamTimeEcho) Close() error { return nil }

// TestStreamTimeMovesWithTheTask: stream time is committed with the offsets,
// so a task that moves to an instance with no local state (or restarts)
// starts at the committed stream time, not at the next record's timestamp.
// Windows will close on it.
func TestStreamTimeMovesWithTheTask(t *testing.T) {
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("streamtime")
	if _, err := k.adm.CreateTopics(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produce := func(v string, ts int64) {
		t.Helper()
		if err := k.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(v), Timestamp: time.UnixMilli(ts)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	bld := topology.NewBuilder()
	bld.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		Process(func() topology.Processor { return &streamTimeEcho{} }, topology.Named("echo")).
		To(topic+"-out", topology.Produced{Key: serde.String{}, Value: serde.String{}})
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	produce("a", 5000)
	produce("b", 9000)
	produce("c", 7000)
	cfg := baseConfig(b.addr, topic+"-app", t)
	_, stop := runInProcess(t, cfg, topo)
	waitFor(t, 2*time.Minute, "the first three records committed", func() bool { return k.committed(ctx, cfg.ApplicationID, topic) == 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Another instance, with no local state: the task moved.
	produce("d", 1000)
	cfg.InstanceID, cfg.StateDir = "b", t.TempDir()
	_, stop = runInProcess(t, cfg, topo)
	waitFor(t, 2*time.Minute, "the fourth record committed", func() bool { return k.committed(ctx, cfg.ApplicationID, topic) == 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range k.readCommitted(t, ctx, topic+"-out") {
		got = append(got, string(r.Value))
	}
	want := []string{"a st=5000", "b st=9000", "c st=9000", "d st=9000"}
	if len(got) != len(want) {
		t.Fatalf("outputs %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("outputs %q, want %q (stream time must survive the move)", got, want)
		}
	}
}

// failingPunctuator forwards every record; once it has seen half the input,
// its wall-clock punctuator forwards a marker and fails.
type failingPunctuator struct {
	ctx   topology.ProcessorContext
	seen  int
	after int
	fired *atomic.Bool
}

func (p *failingPunctuator) Init(ctx topology.ProcessorContext) error {
	p.ctx = ctx
	ctx.Schedule(20*time.Millisecond, topology.WallClockTime, func(ts time.Time) error {
		if p.seen < p.after {
			return nil
		}
		p.fired.Store(true)
		if err := ctx.Forward(topology.Record{Key: "marker", Value: "from the failing punctuation", Timestamp: ts}); err != nil {
			return err
		}
		return errors.New("punctuator failed on purpose")
	})
	return nil
}

func (p *failingPunctuator) Process(r topology.Record) error {
	p.seen++
	return p.ctx.Forward(r)
}

func (p *failingPunctuator) Close() error { return nil }

// TestFatalPunctuatorCommitsNothing: a punctuator's error is fatal; the open
// transaction (the punctuation's output and the records processed with it)
// is aborted, not committed by the revoke callback that librdkafka runs when
// the consumer closes, and Run returns an error. What read_committed readers
// see matches the committed offset exactly, and holds nothing of the failed
// punctuation.
func TestFatalPunctuatorCommitsNothing(t *testing.T) {
	const records = 4000
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("punctfail")
	produceInput(t, k, topic, 1, 10, seqValues(records))
	var fired atomic.Bool
	bld := topology.NewBuilder()
	bld.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		Process(func() topology.Processor { return &failingPunctuator{after: records / 2, fired: &fired} }, topology.Named("p")).
		To(topic+"-out", topology.Produced{Key: serde.String{}, Value: serde.String{}})
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(b.addr, topic+"-app", t)
	// Long transactions, so that the punctuation lands in one that holds
	// many processed records.
	cfg.CommitIntervalMs = 3000
	r, err := processor.New(cfg, topo, processor.WithLogger(slog.New(slog.NewJSONHandler(logFile(t, "punctfail"), nil))))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = r.Run(rctx)
	if !errors.Is(err, processor.ErrFatal) || !fired.Load() {
		t.Fatalf("Run = %v (punctuator fired: %v), want a fatal error from the punctuator", err, fired.Load())
	}
	committed := k.committed(ctx, cfg.ApplicationID, topic)
	out := k.readCommitted(t, ctx, topic+"-out")
	for _, rec := range out {
		if string(rec.Key) == "marker" {
			t.Fatalf("the failed punctuation's output was committed (committed offset %d)", committed)
		}
	}
	if int64(len(out)) != max(committed, 0) {
		t.Fatalf("%d outputs visible, committed offset %d: the open transaction leaked", len(out), committed)
	}
	if committed >= records {
		t.Fatalf("committed offset %d: everything committed, the punctuation's transaction was not aborted", committed)
	}
	t.Logf("fatal punctuator: committed offset %d, %d outputs, no marker", committed, len(out))
}

// TestRepartitionTopicsArePurged: a repartition topic keeps its records
// forever (retention.ms=-1, so none expires unprocessed), and the runner
// deletes what its commits consumed (Kafka Streams' repartition purge).
func TestRepartitionTopicsArePurged(t *testing.T) {
	const records = 2000
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("purge")
	produceInput(t, k, topic, 2, 10, seqValues(records))
	bld := topology.NewBuilder()
	bld.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		SelectKey(func(key, value any) any { return value }).
		Repartition("rekey", topology.Produced{Key: serde.String{}, Value: serde.String{}}).
		To(topic+"-out", topology.Produced{Key: serde.String{}, Value: serde.String{}})
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(b.addr, topic+"-app", t)
	cfg.RepartitionPurgeIntervalMs = 100
	_, stop := runInProcess(t, cfg, topo)
	rekey := topology.TopicName(cfg.ApplicationID, "rekey-repartition", true)
	waitFor(t, 2*time.Minute, "every repartitioned record committed", func() bool {
		return k.committed(ctx, cfg.ApplicationID, rekey) == records
	})
	waitFor(t, 2*time.Minute, "the repartition topic purged up to the committed offsets", func() bool {
		starts, err := k.adm.ListStartOffsets(ctx, rekey)
		if err != nil {
			return false
		}
		var sum int64
		starts.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		return sum > 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cfgs, err := k.adm.DescribeTopicConfigs(ctx, rekey)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(rekey, nil)
	if err != nil {
		t.Fatal(err)
	}
	var retention string
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			retention = c.MaybeValue()
		}
	}
	if retention != "-1" {
		t.Fatalf("repartition topic retention.ms = %q, want -1", retention)
	}
	if out := k.readCommitted(t, ctx, topic+"-out"); len(out) != records {
		t.Fatalf("%d outputs, want %d", len(out), records)
	}
}
