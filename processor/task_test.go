package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// echoProcessor writes what it sees into a shared log: each record with the
// stream time it was processed at and a per-instance counter (an in-memory
// field), each stream-time punctuation (every second of event time) and
// each Init; and forwards every record.
type echoProcessor struct {
	ctx   topology.ProcessorContext
	log   *[]string
	count int
}

func (p *echoProcessor) Init(ctx topology.ProcessorContext) error {
	p.ctx = ctx
	*p.log = append(*p.log, "init")
	ctx.Schedule(time.Second, topology.StreamTime, func(ts time.Time) error {
		*p.log = append(*p.log, fmt.Sprintf("punctuate@%d", ts.UnixMilli()))
		return nil
	})
	return nil
}

func (p *echoProcessor) Process(r topology.Record) error {
	p.count++
	*p.log = append(*p.log, fmt.Sprintf("%s@%d st=%d n=%d", r.Value, r.Timestamp.UnixMilli(), p.ctx.StreamTime().UnixMilli(), p.count))
	return p.ctx.Forward(r)
}

func (p *echoProcessor) Close() error { return nil }

// echoTopology is `in` -> echo -> `out`, with an optional timestamp extractor.
func echoTopology(log *[]string, ts topology.TimestampExtractor) *topology.Builder {
	bld := topology.NewBuilder()
	bld.Stream([]string{"in"}, topology.Consumed{Key: serde.String{}, Value: serde.String{}, Timestamp: ts}).
		Process(func() topology.Processor { return &echoProcessor{log: log} }, topology.Named("echo")).
		To("out", topology.Produced{Key: serde.String{}, Value: serde.String{}})
	return bld
}

// openTestDB opens a changelog.DB in a temporary directory, closed at cleanup.
func openTestDB(t *testing.T) *changelog.DB {
	t.Helper()
	db, err := changelog.Open(t.TempDir(), changelog.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// startTask builds b's first sub-topology as the task of partition 0 over db
// (on.error=fail), its outputs captured by p, and initializes it.
func startTask(t *testing.T, b *topology.Builder, db *changelog.DB, p *fakeProducer) *task {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	coll := &collector{p: p, tracker: newDeliveryTracker(nil)}
	tk, err := newTask(topo, topo.SubTopologies[0], 0, "app", db, coll, OnErrorFail, "dlq", slog.New(slog.DiscardHandler), newMetrics("app"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.init(); err != nil {
		t.Fatal(err)
	}
	return tk
}

func newEchoTask(t *testing.T, log *[]string) *task {
	t.Helper()
	return startTask(t, echoTopology(log, nil), openTestDB(t), &fakeProducer{})
}

func inRecord(offset int64, value string, tsMillis int64) *kafka.Message {
	topic := "in"
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0, Offset: kafka.Offset(offset)},
		Key: []byte("k"), Value: []byte(value), Timestamp: time.UnixMilli(tsMillis)}
}

// TestTaskRollbackReplaysTheSame: records processed again after an abort see
// exactly what the first attempt saw: the same stream time at each record,
// the same punctuations (one that fired in the aborted transaction fires
// again), and fresh processor instances (their in-memory fields as at the
// committed point, here a new instance: Kafka Streams revives the task).
func TestTaskRollbackReplaysTheSame(t *testing.T) {
	var log []string
	tk := newEchoTask(t, &log)
	ctx := context.Background()
	process := func(off int64, v string, ts int64) {
		t.Helper()
		if err := tk.process(ctx, inRecord(off, v, ts)); err != nil {
			t.Fatal(err)
		}
	}
	// Committed point: stream time 1000, the punctuator anchored at 2000.
	process(0, "a", 1000)
	tk.markCommitted()
	log = nil

	// The transaction that aborts: stream time jumps to 5000 and the
	// punctuation fires; then an out-of-order record.
	process(1, "b", 5000)
	process(2, "c", 3000)
	first := slices.Clone(log)
	if got, want := tk.processed[partitionKey{"in", 0}], int64(3); got != want {
		t.Fatalf("processed next = %d, want %d", got, want)
	}

	if err := tk.rollback(); err != nil {
		t.Fatal(err)
	}
	if len(tk.processed) != 0 || tk.streamTime.UnixMilli() != 1000 {
		t.Fatalf("after rollback: processed %v, stream time %d; want none and 1000", tk.processed, tk.streamTime.UnixMilli())
	}
	log = nil
	process(1, "b", 5000)
	process(2, "c", 3000)
	// The replay re-initializes the processor first (a new instance, so its
	// counter starts again), then must see what the first attempt saw.
	want := append([]string{}, first...)
	for i, l := range want {
		want[i] = strings.Replace(l, "n=2", "n=1", 1)
		want[i] = strings.Replace(want[i], "n=3", "n=2", 1)
	}
	got := slices.DeleteFunc(slices.Clone(log), func(s string) bool { return s == "init" })
	if !slices.Equal(got, want) {
		t.Fatalf("replay after abort saw\n%s\nfirst attempt saw\n%s", strings.Join(got, "\n"), strings.Join(first, "\n"))
	}
	if !slices.Contains(first, "punctuate@5000") {
		t.Fatalf("the first attempt did not punctuate: %q", first)
	}
}

// TestTaskRollbackOfAnIdleTaskKeepsItsProcessors: a task that did nothing in
// the aborted transaction is not rebuilt.
func TestTaskRollbackOfAnIdleTaskKeepsItsProcessors(t *testing.T) {
	var log []string
	tk := newEchoTask(t, &log)
	if err := tk.process(context.Background(), inRecord(0, "a", 1000)); err != nil {
		t.Fatal(err)
	}
	tk.markCommitted()
	log = nil
	if err := tk.rollback(); err != nil {
		t.Fatal(err)
	}
	if len(log) != 0 {
		t.Fatalf("idle task rolled back with %q", log)
	}
}

func TestStreamTimeMetadata(t *testing.T) {
	// Kafka Streams' encoding of partition time 1000: version 1, int64 1000.
	const ks = "AQAAAAAAAAPo"
	if got := encodeStreamTime(time.UnixMilli(1000)); got != ks {
		t.Fatalf("encode 1000 = %q, want %q", got, ks)
	}
	for _, c := range []struct {
		md   string
		want int64 // unix ms; -1: zero time
		err  bool
	}{
		{ks, 1000, false},
		{"", -1, false},
		{"Af//////////", -1, false}, // Kafka Streams' UNKNOWN (-1)
		{"not base64!", 0, true},
		{"BQAAAAAAAAPo", 0, true}, // unknown version
	} {
		got, err := decodeStreamTime(c.md)
		switch {
		case c.err != (err != nil):
			t.Errorf("decode %q: err %v, want error %v", c.md, err, c.err)
		case !c.err && c.want < 0 && !got.IsZero():
			t.Errorf("decode %q = %v, want the zero time", c.md, got)
		case !c.err && c.want >= 0 && got.UnixMilli() != c.want:
			t.Errorf("decode %q = %d, want %d", c.md, got.UnixMilli(), c.want)
		}
	}
	if encodeStreamTime(time.Time{}) != "" {
		t.Error("zero stream time must encode as no metadata")
	}
}

// TestTaskEventTimeFromExtractor: a source's timestamp extractor sets the
// record's event time (and so stream time); a record whose extractor fails,
// or whose event time is negative, goes to the error policy with class
// "timestamp" and moves nothing.
func TestTaskEventTimeFromExtractor(t *testing.T) {
	var log []string
	tk := startTask(t, echoTopology(&log, func(r topology.Record) (time.Time, error) {
		ms, err := strconv.ParseInt(r.Value.(string), 10, 64)
		return time.UnixMilli(ms), err
	}), openTestDB(t), &fakeProducer{})
	ctx := context.Background()
	// The record's own timestamp (1) is ignored: the value says 7000.
	if err := tk.process(ctx, inRecord(0, "7000", 1)); err != nil {
		t.Fatal(err)
	}
	if got := tk.streamTime.UnixMilli(); got != 7000 {
		t.Fatalf("stream time %d, want 7000 from the extractor", got)
	}
	for _, v := range []string{"not-a-number", "-5"} {
		err := tk.process(ctx, inRecord(1, v, 9000))
		var pe *ProcessingError
		if !errors.As(err, &pe) || pe.Class != "timestamp" {
			t.Fatalf("value %q: process = %v, want a timestamp ProcessingError", v, err)
		}
		if got := tk.streamTime.UnixMilli(); got != 7000 {
			t.Fatalf("value %q moved stream time to %d", v, got)
		}
	}
}
