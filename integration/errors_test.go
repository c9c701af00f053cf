package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// poisonCounter counts records per key into its store and forwards the count
// to "out-sink". The first time it sees the poison value it also forwards a
// record too large for the "big" topic, which the broker rejects: the
// transaction's commit then fails with an abortable error.
type poisonCounter struct {
	poison   int64
	poisoned *atomic.Bool
	ctx      topology.ProcessorContext
	store    topology.KeyValueStore
}

func (p *poisonCounter) Init(ctx topology.ProcessorContext) error {
	p.ctx, p.store = ctx, ctx.Store("cnt")
	return nil
}

func (p *poisonCounter) Process(r topology.Record) error {
	if r.Value.(int64) == p.poison && p.poisoned.CompareAndSwap(false, true) {
		if err := p.ctx.ForwardTo("big-sink", r.WithValue(make([]byte, 8192))); err != nil {
			return err
		}
	}
	old, err := p.store.Get(r.Key)
	if err != nil {
		return err
	}
	n, _ := old.(int64)
	if err := p.store.Put(r.Key, n+1); err != nil {
		return err
	}
	return p.ctx.ForwardTo("out-sink", r.WithValue(n+1))
}

func (p *poisonCounter) Close() error { return nil }

func poisonTopology(t *testing.T, topic string, poison int64, poisoned *atomic.Bool) *topology.Topology {
	b := topology.NewBuilder()
	b.AddStore(topology.StoreSpec{Name: "cnt", KeySerde: serde.String{}, ValueSerde: serde.Int64{}})
	s := b.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.DecimalString{}}).
		Process(func() topology.Processor { return &poisonCounter{poison: poison, poisoned: poisoned} },
			topology.Named("counter"), topology.WithStores("cnt"))
	s.To(topic+"-out", topology.Produced{Key: serde.String{}, Value: serde.DecimalString{}}, topology.Named("out-sink"))
	s.To(topic+"-big", topology.Produced{Key: serde.String{}, Value: serde.Bytes{}}, topology.Named("big-sink"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// runInProcess runs a topology in this process against the broker until
// stop is called; it returns the runner for its metrics.
func runInProcess(t *testing.T, cfg processor.Config, topo *topology.Topology) (*processor.Runner, func() error) {
	t.Helper()
	return runLogged(t, cfg, topo, slog.New(slog.NewJSONHandler(logFile(t, "inproc"), nil)))
}

// runLogged runs a topology in this process with the given logger until its
// stop is called (also at the test's end); stop returns Run's error, the
// same on every call.
func runLogged(t *testing.T, cfg processor.Config, topo *topology.Topology, log *slog.Logger) (*processor.Runner, func() error) {
	t.Helper()
	r, err := processor.New(cfg, topo, processor.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return r, stop
}

func counter(t *testing.T, r *processor.Runner, name string) float64 {
	mfs, err := r.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// produceInput writes values[i] with key k<i%keys>, in order, to topic.
func produceInput(t *testing.T, k *kafka, topic string, partitions int32, keys int, values []string) {
	t.Helper()
	ctx := context.Background()
	if _, err := k.adm.CreateTopics(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		k.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i%keys)), Value: []byte(v)}, nil)
	}
	if err := k.cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func baseConfig(brokers, app string, t *testing.T) processor.Config {
	return processor.Config{ApplicationID: app, BootstrapServers: brokers, StateDir: t.TempDir(), InstanceID: "a",
		SessionTimeoutMs: 6000, TransactionTimeoutMs: 5000, CreateTopics: true,
		Kafka: map[string]string{"consumer.heartbeat.interval.ms": "500"}}
}

// TestAbortableErrorLeavesNoTrace: a transaction whose commit fails with an
// abortable error (the broker rejects one of its records) is aborted and its
// records processed again: read_committed readers see none of the aborted
// outputs, and the store counts nothing twice.
func TestAbortableErrorLeavesNoTrace(t *testing.T) {
	const records, keys = 20000, 50
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("abort")
	values := seqValues(records)
	produceInput(t, k, topic, 4, keys, values)
	// The broker refuses records above 1 KiB on the "big" topic.
	createBigTopic(t, k, topic+"-big", 4)

	var poisoned atomic.Bool
	cfg := baseConfig(b.addr, topic+"-app", t)
	r, stop := runInProcess(t, cfg, poisonTopology(t, topic, records/2, &poisoned))
	waitFor(t, 3*time.Minute, "all input committed", func() bool { return k.committed(ctx, cfg.ApplicationID, topic) == records })
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}
	if !poisoned.Load() {
		t.Fatal("the poison record was never processed")
	}
	aborts := counter(t, r, "eos_aborts_total")
	if aborts < 1 {
		t.Fatalf("eos_aborts_total = %v, want >= 1: the injected failure did not abort a transaction", aborts)
	}
	if big := k.readCommitted(t, ctx, topic+"-big"); len(big) != 0 {
		t.Errorf("%d records of the aborted transaction visible on %s-big", len(big), topic)
	}
	out := k.readCommitted(t, ctx, topic+"-out")
	if len(out) != records {
		t.Errorf("%d output records, want exactly %d (one per input)", len(out), records)
	}
	// Per key the counts must run 1, 2, 3, ... with no repeat and no gap: a
	// store write of the aborted transaction surviving would skip a number.
	next := map[string]int{}
	for _, rec := range out {
		key := string(rec.Key)
		next[key]++
		if got := string(rec.Value); got != strconv.Itoa(next[key]) {
			t.Fatalf("key %s: count %s at position %d, want %d", key, got, next[key], next[key])
		}
	}
	for i := range keys {
		if got := next["k"+strconv.Itoa(i)]; got != records/keys {
			t.Errorf("key k%d: final count %d, want %d", i, got, records/keys)
		}
	}
	t.Logf("%d records, %v aborted transaction(s), %d outputs, 0 visible from the aborted transaction", records, aborts, len(out))
}

func ptr[T any](v T) *T { return &v }

// seqValues is "0", "1", ..., n-1 as decimal strings.
func seqValues(n int) []string {
	values := make([]string, n)
	for i := range values {
		values[i] = strconv.Itoa(i)
	}
	return values
}

// createBigTopic creates the poison counter's "big" topic, whose broker
// limit (1 KiB) rejects the poison record and so fails its transaction.
func createBigTopic(t *testing.T, k *kafka, topic string, partitions int32) {
	t.Helper()
	if _, err := k.adm.CreateTopics(context.Background(), partitions, 1, map[string]*string{"max.message.bytes": ptr("1024")}, topic); err != nil {
		t.Fatal(err)
	}
}

// TestMalformedRecordsToDLQ: records that do not deserialize go to the
// dead-letter topic exactly once, with their original key, value and the
// documented headers, even when their transaction is aborted once and
// processed again.
func TestMalformedRecordsToDLQ(t *testing.T) {
	const records, keys = 5000, 10
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("dlq")
	values := seqValues(records)
	bad := map[int]string{1000: "abc", 1001: "", 2500: "1.5", 2501: "99999999999999999999"}
	for i, v := range bad {
		values[i] = v
	}
	produceInput(t, k, topic, 2, keys, values)
	createBigTopic(t, k, topic+"-big", 2)
	var poisoned atomic.Bool
	cfg := baseConfig(b.addr, topic+"-app", t)
	// The poison record sits right after the malformed ones: their
	// transaction aborts once, so their DLQ records are written twice and
	// must be visible once.
	r, stop := runInProcess(t, cfg, poisonTopology(t, topic, 1002, &poisoned))
	waitFor(t, 3*time.Minute, "all input committed", func() bool { return k.committed(ctx, cfg.ApplicationID, topic) == records })
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}
	dlq := k.readCommitted(t, ctx, cfg.ApplicationID+"-dlq")
	if len(dlq) != len(bad) {
		t.Fatalf("%d DLQ records, want exactly %d", len(dlq), len(bad))
	}
	// Input coordinates of the bad values.
	in := k.readCommitted(t, ctx, topic)
	where := map[string]*kgo.Record{}
	for _, rec := range in {
		where[fmt.Sprintf("%d/%d", rec.Partition, rec.Offset)] = rec
	}
	seen := map[string]bool{}
	for _, d := range dlq {
		h := map[string]string{}
		for _, hd := range d.Headers {
			h[hd.Key] = string(hd.Value)
		}
		coord := h[processor.HeaderSourcePart] + "/" + h[processor.HeaderSourceOffset]
		orig, ok := where[coord]
		switch {
		case !ok:
			t.Errorf("DLQ record points at %s, not an input record", coord)
			continue
		case seen[coord]:
			t.Errorf("input %s dead-lettered twice", coord)
		}
		seen[coord] = true
		if string(d.Key) != string(orig.Key) || string(d.Value) != string(orig.Value) {
			t.Errorf("DLQ %s: key/value %q/%q, want the original %q/%q", coord, d.Key, d.Value, orig.Key, orig.Value)
		}
		if h[processor.HeaderErrorClass] != "deserialization" || !strings.Contains(h[processor.HeaderErrorMessage], "decimal") ||
			h[processor.HeaderSourceTopic] != topic || h[processor.HeaderApplicationID] != cfg.ApplicationID ||
			h[processor.HeaderSourceTime] != strconv.FormatInt(orig.Timestamp.UnixMilli(), 10) {
			t.Errorf("DLQ %s: headers %v", coord, h)
		}
	}
	if got := counter(t, r, "eos_records_dead_lettered_total"); got < float64(len(bad)) {
		t.Errorf("eos_records_dead_lettered_total = %v, want >= %d", got, len(bad))
	}
	if out := k.readCommitted(t, ctx, topic+"-out"); len(out) != records-len(bad) {
		t.Errorf("%d outputs, want %d (every good record once)", len(out), records-len(bad))
	}
	t.Logf("%d malformed of %d records: %d in the DLQ, each once, with headers; aborts %v", len(bad), records, len(dlq), counter(t, r, "eos_aborts_total"))
}

// TestErrorPolicySkipAndFail: on.error=skip drops a malformed record and
// counts it; on.error=fail stops the runner at the record, with its
// coordinates, before committing past it, and a restart stops at it again.
func TestErrorPolicySkipAndFail(t *testing.T) {
	const records, bad = 2000, 1200
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("policy")
	values := seqValues(records)
	values[bad] = "not-a-number"
	produceInput(t, k, topic, 1, 10, values) // one partition: offsets are input positions
	topo := func(out string) *topology.Topology {
		bld := topology.NewBuilder()
		bld.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.DecimalString{}}).
			To(out, topology.Produced{Key: serde.String{}, Value: serde.DecimalString{}})
		tp, err := bld.Build()
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}

	t.Run("skip", func(t *testing.T) {
		cfg := baseConfig(b.addr, topic+"-skip", t)
		cfg.OnError = processor.OnErrorSkip
		cfg.DLQTopic = topic + "-skip-dlq"
		r, stop := runInProcess(t, cfg, topo(topic+"-skip-out"))
		waitFor(t, 2*time.Minute, "all input committed", func() bool { return k.committed(ctx, cfg.ApplicationID, topic) == records })
		if err := stop(); err != nil {
			t.Fatalf("runner: %v", err)
		}
		if got := counter(t, r, "eos_records_skipped_total"); got != 1 {
			t.Errorf("eos_records_skipped_total = %v, want 1", got)
		}
		if n := k.endOffsets(ctx, cfg.DLQTopic); n > 0 {
			t.Errorf("the DLQ has %d offsets under on.error=skip", n)
		}
		if out := k.readCommitted(t, ctx, topic+"-skip-out"); len(out) != records-1 {
			t.Errorf("%d outputs, want %d (all but the skipped record)", len(out), records-1)
		}
	})

	t.Run("fail", func(t *testing.T) {
		cfg := baseConfig(b.addr, topic+"-fail", t)
		cfg.OnError = processor.OnErrorFail
		for run := range 2 {
			r, err := processor.New(cfg, topo(topic+"-fail-out"), processor.WithLogger(slog.New(slog.NewJSONHandler(logFile(t, "fail"), nil))))
			if err != nil {
				t.Fatal(err)
			}
			// Run returns by itself when it meets the record; the timeout
			// only bounds a broken runner.
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			err = r.Run(rctx)
			cancel()
			var pe *processor.ProcessingError
			if !errors.As(err, &pe) {
				t.Fatalf("run %d: runner returned %v, want a *ProcessingError", run, err)
			}
			if pe.Topic != topic || pe.Partition != 0 || pe.Offset != bad || pe.Class != "deserialization" {
				t.Fatalf("run %d: error at %s[%d]@%d (%s), want %s[0]@%d (deserialization)", run, pe.Topic, pe.Partition, pe.Offset, pe.Class, topic, bad)
			}
			if c := k.committed(ctx, cfg.ApplicationID, topic); c > bad {
				t.Fatalf("run %d: committed offset %d is past the failing record %d", run, c, bad)
			}
		}
		out := k.readCommitted(t, ctx, topic+"-fail-out")
		for _, r := range out {
			if v, _ := strconv.Atoi(string(r.Value)); v >= bad {
				t.Fatalf("output %s from at or past the failing record", r.Value)
			}
		}
		t.Logf("on.error=fail stopped twice at offset %d; %d outputs, all before it", bad, len(out))
	})
}
