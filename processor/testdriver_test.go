package processor

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

var (
	strSerde = serde.String{}
	strIn    = topology.Consumed{Key: strSerde, Value: strSerde}
	strOut   = topology.Produced{Key: strSerde, Value: strSerde}
)

func newDriver(t *testing.T, b *topology.Builder, cfg TestDriverConfig) *TestDriver {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewTestDriver(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func pipe(t *testing.T, d *TestDriver, topic string, key, value any, ms int64) {
	t.Helper()
	if err := d.PipeInput(topic, key, value, time.UnixMilli(ms)); err != nil {
		t.Fatalf("pipe %v=%v to %s: %v", key, value, topic, err)
	}
}

func readKVs(t *testing.T, d *TestDriver, topic string, k, v serde.Serde) []string {
	t.Helper()
	recs, err := d.ReadRecords(topic, k, v)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%v=%v", r.Key, r.Value))
	}
	return out
}

// TestDriverRoutesByKey: with four partitions, each key's records go to the
// partition murmur2 gives it, are processed by that partition's task (the
// task id and partition a processor sees), and the output goes to the
// partition its own key hashes to.
func TestDriverRoutesByKey(t *testing.T) {
	b := topology.NewBuilder()
	b.Stream([]string{"in"}, strIn).
		Process(func() topology.Processor {
			return &funcProc{fn: func(ctx topology.ProcessorContext, r topology.Record) error {
				md, _ := ctx.RecordMetadata()
				return ctx.Forward(r.WithValue(fmt.Sprintf("%s task=%s p=%d off=%d", r.Value, ctx.TaskID(), md.Partition, md.Offset)))
			}}
		}).
		To("out", strOut)
	d := newDriver(t, b, TestDriverConfig{Partitions: map[string]int{"in": 4}})
	offsets := map[int32]int{}
	var want []string
	for i := range 40 {
		key := "k" + strconv.Itoa(i%13)
		p := murmur2Partition([]byte(key), 4)
		want = append(want, fmt.Sprintf("%s=v%d task=0_%d p=%d off=%d", key, i, p, p, offsets[p]))
		offsets[p]++
		pipe(t, d, "in", key, "v"+strconv.Itoa(i), int64(i))
	}
	if len(offsets) < 2 {
		t.Fatalf("all keys in one partition: %v", offsets)
	}
	out := d.ReadOutput("out")
	var got []string
	for _, r := range out {
		rec, err := r.Decode(strSerde, strSerde)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%v=%v", rec.Key, rec.Value))
		if want := murmur2Partition(r.Key, 4); r.Partition != want {
			t.Errorf("output %s in partition %d, want %d", r.Key, r.Partition, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("outputs\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(d.ReadOutput("out")) != 0 {
		t.Error("ReadOutput returned records a second time")
	}
	// An explicit partition is kept, whatever the key.
	if err := d.PipeRecord(TestRecord{Topic: "in", Partition: 3, Key: []byte("k0"), Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if got := readKVs(t, d, "out", strSerde, strSerde); len(got) != 1 || !strings.Contains(got[0], "task=0_3") {
		t.Errorf("explicit partition 3: %q", got)
	}
	if err := d.PipeRecord(TestRecord{Topic: "in", Partition: 4}); err == nil {
		t.Error("partition 4 of a 4-partition topic accepted")
	}
	if err := d.PipeInput("nope", "k", "v", time.UnixMilli(0)); err == nil {
		t.Error("a topic no source reads accepted")
	}
}

// TestDriverRepartitionCount: GroupBy (a new key, so a repartition topic)
// then Count, over three input partitions; the counts out equal a
// brute-force count, each key's updates in order, and the store holds the
// final counts. The repartition topic's records are processed within the
// PipeInput that wrote them.
func TestDriverRepartitionCount(t *testing.T) {
	b := topology.NewBuilder()
	b.Stream([]string{"orders"}, strIn).
		GroupBy(func(_, v any) any { return v }, topology.Grouped{Key: strSerde, Value: strSerde}).
		Count(topology.Materialized{Name: "per-customer"}).
		ToStream().
		To("counts", topology.Produced{Key: strSerde, Value: serde.Int64{}})
	d := newDriver(t, b, TestDriverConfig{Partitions: map[string]int{"orders": 3}})
	r := rand.New(rand.NewPCG(7, 7))
	want := map[string]int64{}
	seen := map[string][]int64{}
	for i := range 300 {
		cust := "c" + strconv.Itoa(r.IntN(17))
		want[cust]++
		pipe(t, d, "orders", "o"+strconv.Itoa(i), cust, int64(i))
		// Processed within the call: the count is out already.
		recs, err := d.ReadRecords("counts", strSerde, serde.Int64{})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].Key != cust || recs[0].Value != want[cust] {
			t.Fatalf("record %d (%s): counts out %v, want %s=%d", i, cust, recs, cust, want[cust])
		}
		seen[cust] = append(seen[cust], recs[0].Value.(int64))
	}
	for cust, counts := range seen {
		for i, c := range counts {
			if c != int64(i+1) {
				t.Fatalf("%s: updates %v, want 1..%d", cust, counts, len(counts))
			}
		}
	}
	rep := d.ReadOutput("per-customer-repartition")
	if len(rep) != 300 {
		t.Errorf("repartition topic holds %d records, want 300", len(rep))
	}
	for _, rr := range rep {
		if rr.Topic != "test-driver-per-customer-repartition" {
			t.Fatalf("repartition topic named %q", rr.Topic)
		}
		if p := murmur2Partition(rr.Key, 3); rr.Partition != p {
			t.Errorf("repartition record %s in partition %d, want %d", rr.Key, rr.Partition, p)
		}
	}
	kv, err := d.KeyValueStore("per-customer")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	var order []string
	if err := kv.Range(nil, nil, func(k, v any) error {
		got[k.(string)] = v.(int64)
		order = append(order, k.(string))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("store %v, want %v", got, want)
	}
	if !slices.IsSorted(order) {
		t.Errorf("Range order %q, want key-byte order", order)
	}
	if v, err := kv.Get("c3"); err != nil || v != want["c3"] {
		t.Errorf("Get(c3) = %v, %v; want %d", v, err, want["c3"])
	}
	// Changelog records of the store, one per update.
	if n := len(d.ReadOutput("test-driver-per-customer-changelog")); n != 300 {
		t.Errorf("%d changelog records, want 300", n)
	}
}

// TestDriverStoreWrites: a write through the driver's view is committed (a
// changelog record, visible to the next record's processing) and goes to the
// partition its key hashes to.
func TestDriverStoreWrites(t *testing.T) {
	b := topology.NewBuilder()
	b.Stream([]string{"in"}, strIn).
		GroupByKey(topology.Grouped{Key: strSerde, Value: strSerde}).
		Count(topology.Materialized{Name: "counts"}).
		ToStream().To("out", topology.Produced{Key: strSerde, Value: serde.Int64{}})
	d := newDriver(t, b, TestDriverConfig{Partitions: map[string]int{"in": 2}})
	kv, err := d.KeyValueStore("counts")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Put("a", int64(41)); err != nil {
		t.Fatal(err)
	}
	cl := d.ReadOutput("test-driver-counts-changelog")
	if len(cl) != 1 || cl[0].Partition != murmur2Partition([]byte("a"), 2) {
		t.Fatalf("changelog after Put: %+v", cl)
	}
	pipe(t, d, "in", "a", "x", 1)
	if got := readKVs(t, d, "out", strSerde, serde.Int64{}); !slices.Equal(got, []string{"a=42"}) {
		t.Errorf("output %q, want a=42 (resumed from the store)", got)
	}
	if err := kv.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if v, err := kv.Get("a"); err != nil || v != nil {
		t.Errorf("Get after Delete = %v, %v", v, err)
	}
	if _, err := d.WindowStore("counts"); err == nil {
		t.Error("WindowStore of a key-value store: no error")
	}
	if _, err := d.KeyValueStore("nope"); err == nil {
		t.Error("unknown store: no error")
	}
}

// punctProc logs its punctuations and the records it sees, and forwards a
// record per punctuation.
type punctProc struct {
	ctx  topology.ProcessorContext
	log  *[]string
	typ  topology.PunctuationType
	ivl  time.Duration
	name string
}

func (p *punctProc) Init(ctx topology.ProcessorContext) error {
	p.ctx = ctx
	ctx.Schedule(p.ivl, p.typ, func(ts time.Time) error {
		*p.log = append(*p.log, fmt.Sprintf("%s %s@%d", ctx.TaskID(), p.name, ts.UnixMilli()))
		return ctx.Forward(topology.Record{Key: p.name, Value: strconv.FormatInt(ts.UnixMilli(), 10), Timestamp: ts})
	})
	return nil
}

func (p *punctProc) Process(r topology.Record) error {
	*p.log = append(*p.log, fmt.Sprintf("%s rec %v@%d", p.ctx.TaskID(), r.Value, r.Timestamp.UnixMilli()))
	return nil
}

func (p *punctProc) Close() error { return nil }

// TestDriverStreamTimePunctuation: a stream-time punctuator fires as its
// task's stream time passes each interval (once per advance, however far),
// never on an out-of-order record.
func TestDriverStreamTimePunctuation(t *testing.T) {
	var log []string
	b := topology.NewBuilder()
	b.Stream([]string{"in"}, strIn).
		Process(func() topology.Processor {
			return &punctProc{log: &log, typ: topology.StreamTime, ivl: 10 * time.Millisecond, name: "st"}
		}).To("out", strOut)
	d := newDriver(t, b, TestDriverConfig{})
	for _, ms := range []int64{5, 12, 14, 3, 20, 55} {
		pipe(t, d, "in", "k", strconv.FormatInt(ms, 10), ms)
	}
	// The schedule starts at the first stream time (5), so the first
	// punctuation is due at 15; stream time jumping from 20 to 55 fires once.
	want := []string{
		"0_0 rec 5@5",
		"0_0 rec 12@12",
		"0_0 rec 14@14",
		"0_0 rec 3@3",
		"0_0 rec 20@20",
		"0_0 st@20",
		"0_0 rec 55@55",
		"0_0 st@55",
	}
	if !slices.Equal(log, want) {
		t.Errorf("log\n%s\nwant\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
	if got := readKVs(t, d, "out", strSerde, strSerde); !slices.Equal(got, []string{"st=20", "st=55"}) {
		t.Errorf("punctuation output %q", got)
	}
}

// TestDriverWallClockPunctuation: wall-clock punctuators fire only when the
// driver's clock is advanced, in every task, with the driver's time, and
// their output is committed like a record's.
func TestDriverWallClockPunctuation(t *testing.T) {
	var log []string
	b := topology.NewBuilder()
	b.Stream([]string{"in"}, strIn).
		Process(func() topology.Processor {
			return &punctProc{log: &log, typ: topology.WallClockTime, ivl: time.Second, name: "wall"}
		}).To("out", strOut)
	start := time.UnixMilli(1_000_000)
	d := newDriver(t, b, TestDriverConfig{Partitions: map[string]int{"in": 2}, WallClock: start})
	pipe(t, d, "in", "k", "x", 5)
	if err := d.AdvanceWallClockTime(999 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(log, func(s string) bool { return strings.Contains(s, "wall") }) {
		t.Fatalf("punctuated before the interval: %q", log)
	}
	if err := d.AdvanceWallClockTime(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := d.AdvanceWallClockTime(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	p := murmur2Partition([]byte("k"), 2)
	want := []string{
		fmt.Sprintf("0_%d rec x@5", p),
		"0_0 wall@1001000", "0_1 wall@1001000",
		"0_0 wall@1006000", "0_1 wall@1006000",
	}
	if !slices.Equal(log, want) {
		t.Errorf("log\n%s\nwant\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
	if got := d.WallClockTime(); !got.Equal(start.Add(6 * time.Second)) {
		t.Errorf("wall clock %v", got)
	}
	if n := len(d.ReadOutput("out")); n != 4 {
		t.Errorf("%d punctuation outputs, want 4", n)
	}
}

var errBoom = errors.New("boom")

// failOn fails records whose value is "bad" and forwards the rest.
func failOn() topology.Processor {
	return &funcProc{fn: func(ctx topology.ProcessorContext, r topology.Record) error {
		if r.Value == "bad" {
			return errBoom
		}
		return ctx.Forward(r)
	}}
}

// TestDriverErrorPolicy: on.error=dlq writes the failed record, with its
// error headers, to the dead-letter topic; fail returns the
// *ProcessingError and leaves nothing of the record behind; skip drops it.
func TestDriverErrorPolicy(t *testing.T) {
	build := func() *topology.Builder {
		b := topology.NewBuilder()
		b.Stream([]string{"in"}, strIn).Process(failOn, topology.Named("check")).To("out", strOut)
		return b
	}
	t.Run("dlq", func(t *testing.T) {
		d := newDriver(t, build(), TestDriverConfig{ApplicationID: "app"})
		pipe(t, d, "in", "a", "ok", 1)
		pipe(t, d, "in", "b", "bad", 2)
		pipe(t, d, "in", "c", "ok", 3)
		if got := readKVs(t, d, "out", strSerde, strSerde); !slices.Equal(got, []string{"a=ok", "c=ok"}) {
			t.Errorf("out %q", got)
		}
		dlq := d.ReadOutput("app-dlq")
		if len(dlq) != 1 {
			t.Fatalf("%d DLQ records, want 1", len(dlq))
		}
		r := dlq[0]
		rec, err := r.Decode(strSerde, strSerde)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Key != "b" || rec.Value != "bad" || rec.Timestamp.UnixMilli() != 2 {
			t.Errorf("DLQ record %+v", rec)
		}
		for h, want := range map[string]string{HeaderErrorClass: "processing", HeaderErrorNode: "check",
			HeaderSourceTopic: "in", HeaderSourcePart: "0", HeaderSourceOffset: "1", HeaderApplicationID: "app"} {
			if got := string(rec.Header(h)); got != want {
				t.Errorf("header %s = %q, want %q", h, got, want)
			}
		}
		if !strings.Contains(string(rec.Header(HeaderErrorMessage)), "boom") {
			t.Errorf("error message header %q", rec.Header(HeaderErrorMessage))
		}
	})
	t.Run("fail", func(t *testing.T) {
		d := newDriver(t, build(), TestDriverConfig{OnError: OnErrorFail})
		pipe(t, d, "in", "a", "ok", 1)
		err := d.PipeInput("in", "b", "bad", time.UnixMilli(2))
		var pe *ProcessingError
		if !errors.As(err, &pe) || !errors.Is(err, errBoom) || pe.Offset != 1 || pe.Node != "check" {
			t.Fatalf("PipeInput error = %v, want the *ProcessingError of offset 1 at node check", err)
		}
		if got := readKVs(t, d, "out", strSerde, strSerde); !slices.Equal(got, []string{"a=ok"}) {
			t.Errorf("out %q", got)
		}
		if n := len(d.ReadOutput("test-driver-dlq")); n != 0 {
			t.Errorf("%d DLQ records under on.error=fail", n)
		}
		// The driver stays usable.
		pipe(t, d, "in", "c", "ok", 3)
		if got := readKVs(t, d, "out", strSerde, strSerde); !slices.Equal(got, []string{"c=ok"}) {
			t.Errorf("out after the failure %q", got)
		}
	})
	t.Run("skip", func(t *testing.T) {
		d := newDriver(t, build(), TestDriverConfig{OnError: OnErrorSkip})
		pipe(t, d, "in", "b", "bad", 2)
		pipe(t, d, "in", "c", "ok", 3)
		if got := readKVs(t, d, "out", strSerde, strSerde); !slices.Equal(got, []string{"c=ok"}) {
			t.Errorf("out %q", got)
		}
		if n := len(d.ReadOutput("test-driver-dlq")); n != 0 {
			t.Errorf("%d DLQ records under on.error=skip", n)
		}
	})
}

// TestDriverWindowedEmitFinal: a tumbling-window count with emit-final
// forwards each window once, when stream time passes its end plus grace,
// with its final count; a late record is dropped and counted (or
// dead-lettered under late.records=dlq); the window store holds the counts.
func TestDriverWindowedEmitFinal(t *testing.T) {
	build := func() *topology.Builder {
		b := topology.NewBuilder()
		b.Stream([]string{"clicks"}, strIn).
			GroupByKey(topology.Grouped{Key: strSerde, Value: strSerde}).
			WindowedBy(topology.TimeWindows{Size: 10 * time.Millisecond, Grace: 5 * time.Millisecond}).
			Emit(topology.EmitOnWindowClose).
			Count(topology.Materialized{Name: "clicks-per-window"}).
			ToStream().
			To("final", topology.Produced{Key: serde.TimeWindowed{Inner: strSerde, Size: 10 * time.Millisecond}, Value: serde.Int64{}})
		return b
	}
	in := []struct {
		key string
		ts  int64
	}{{"a", 1}, {"a", 3}, {"d", 8}, {"a", 12}, {"a", 9}, {"d", 14}, {"a", 16}, {"a", 2}, {"d", 22}, {"d", 30}}
	for _, late := range []string{LateRecordsDrop, LateRecordsDLQ} {
		t.Run(late, func(t *testing.T) {
			d := newDriver(t, build(), TestDriverConfig{LateRecords: late, Partitions: map[string]int{"clicks": 2}})
			var got []string
			for _, r := range in {
				pipe(t, d, "clicks", r.key, "x", r.ts)
				recs, err := d.ReadRecords("final", serde.TimeWindowed{Inner: strSerde, Size: 10 * time.Millisecond}, serde.Int64{})
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range recs {
					got = append(got, fmt.Sprintf("after %s@%d: %v=%v", r.key, r.ts, rec.Key, rec.Value))
				}
			}
			// Stream time is per task: a and d are in different partitions
			// here, so each key's windows close on its own records.
			if murmur2Partition([]byte("a"), 2) == murmur2Partition([]byte("d"), 2) {
				t.Fatal("a and d share a partition; pick other keys")
			}
			want := []string{
				"after a@16: a@0/10=3", // a's stream time 16 >= 10+5; a@9 counted, a@2 comes later and is late
				"after d@22: d@0/10=1",
				"after d@30: d@10/20=1",
			}
			if !slices.Equal(got, want) {
				t.Errorf("final results\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			dlq := d.ReadOutput("test-driver-dlq")
			if late == LateRecordsDLQ {
				if len(dlq) != 1 || string(dlq[0].Key) != "a" || dlq[0].Timestamp.UnixMilli() != 2 ||
					string(headerOf(dlq[0], HeaderErrorClass)) != "late" {
					t.Errorf("DLQ %+v, want a@2 with class late", dlq)
				}
			} else if len(dlq) != 0 || d.Dropped("late") != 1 {
				t.Errorf("late.records=drop: %d DLQ records, %d dropped; want 0 and 1", len(dlq), d.Dropped("late"))
			}
			ws, err := d.WindowStore("clicks-per-window")
			if err != nil {
				t.Fatal(err)
			}
			var wins []string
			if err := ws.FetchAll(time.UnixMilli(0), time.UnixMilli(100), func(k any, start time.Time, v any) error {
				wins = append(wins, fmt.Sprintf("%v@%d=%v", k, start.UnixMilli(), valueOf(v)))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// Windows whose start stream time has expired (start <= stream
			// time - retention, here size + grace = 15) are invisible:
			// a@0 (a's stream time 16) and d@0, d@10 (d's 30).
			if want := []string{"a@10=2", "d@20=1", "d@30=1"}; !slices.Equal(wins, want) {
				t.Errorf("window store %q, want %q", wins, want)
			}
		})
	}
}

// TestDriverEmitFinalAfterStreamTimeJump: a window is emitted once when it
// closes, however far stream time jumps in one record. (The emit-final
// buffer once had the aggregation's retention, size + grace, so a jump past
// end + size + grace hid the pending entry before it was emitted; it now
// retains entries until they are emitted and deleted.)
func TestDriverEmitFinalAfterStreamTimeJump(t *testing.T) {
	b := topology.NewBuilder()
	b.Stream([]string{"clicks"}, strIn).
		GroupByKey(topology.Grouped{Key: strSerde, Value: strSerde}).
		WindowedBy(topology.TimeWindows{Size: 10 * time.Millisecond, Grace: 5 * time.Millisecond}).
		Emit(topology.EmitOnWindowClose).
		Count(topology.Materialized{Name: "c"}).
		ToStream().
		To("final", topology.Produced{Key: serde.TimeWindowed{Inner: strSerde, Size: 10 * time.Millisecond}, Value: serde.Int64{}})
	d := newDriver(t, b, TestDriverConfig{})
	pipe(t, d, "clicks", "a", "x", 1)
	pipe(t, d, "clicks", "a", "x", 40) // closes [0,10) at stream time 40 > 10 + 15
	got := readKVs(t, d, "final", serde.TimeWindowed{Inner: strSerde, Size: 10 * time.Millisecond}, serde.Int64{})
	if !slices.Equal(got, []string{"a@0/10=1"}) {
		t.Fatalf("final results %q, want [a@0/10=1]", got)
	}
}

func headerOf(r TestRecord, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// valueOf unwraps a ValueAndTimestamp.
func valueOf(v any) any {
	if vt, ok := v.(topology.ValueAndTimestamp); ok {
		return vt.Value
	}
	return v
}

// TestDriverStateDirKeepsCommittedState: a driver opened on a caller-given
// directory starts from the stores' committed contents.
func TestDriverStateDirKeepsCommittedState(t *testing.T) {
	dir := t.TempDir()
	build := func() *topology.Builder {
		b := topology.NewBuilder()
		b.Stream([]string{"in"}, strIn).GroupByKey(topology.Grouped{Key: strSerde, Value: strSerde}).
			Count(topology.Materialized{Name: "c"}).ToStream().To("out", topology.Produced{Key: strSerde, Value: serde.Int64{}})
		return b
	}
	topo, err := build().Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewTestDriver(topo, TestDriverConfig{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pipe(t, d, "in", "a", "x", 1)
	pipe(t, d, "in", "a", "x", 2)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := newDriver(t, build(), TestDriverConfig{StateDir: dir})
	pipe(t, d2, "in", "a", "x", 3)
	if got := readKVs(t, d2, "out", strSerde, serde.Int64{}); !slices.Equal(got, []string{"a=3"}) {
		t.Errorf("out %q, want a=3", got)
	}
}

// funcProc is a processor made of a function.
type funcProc struct {
	ctx topology.ProcessorContext
	fn  func(ctx topology.ProcessorContext, r topology.Record) error
}

func (p *funcProc) Init(ctx topology.ProcessorContext) error { p.ctx = ctx; return nil }
func (p *funcProc) Process(r topology.Record) error          { return p.fn(p.ctx, r) }
func (p *funcProc) Close() error                             { return nil }

// TestDriverManualCommit: under ManualCommit, records stay in the open
// transaction until Commit (outputs unreadable, repartitioned records
// processed only after the commit that makes them visible), and Abort drops
// the transaction whole: outputs returned as aborted, store and stream time
// back at the last commit, the internal records it processed processed
// again, so the replay counts as if the first attempt never ran.
func TestDriverManualCommit(t *testing.T) {
	b := topology.NewBuilder()
	b.Stream([]string{"orders"}, strIn).
		GroupBy(func(_, v any) any { return v }, topology.Grouped{Key: strSerde, Value: strSerde}).
		WindowedBy(topology.TimeWindows{Size: 10 * time.Millisecond}).
		Emit(topology.EmitOnWindowClose).
		Count(topology.Materialized{Name: "per-customer"}).
		ToStream().
		To("counts", topology.Produced{Key: serde.TimeWindowed{Inner: strSerde, Size: 10 * time.Millisecond}, Value: serde.Int64{}})
	d := newDriver(t, b, TestDriverConfig{ManualCommit: true})
	counts := func() []string {
		return readKVs(t, d, "counts", serde.TimeWindowed{Inner: strSerde, Size: 10 * time.Millisecond}, serde.Int64{})
	}
	pipe(t, d, "orders", "o1", "alice", 1)
	pipe(t, d, "orders", "o2", "alice", 2)
	if n := len(d.ReadOutput("per-customer-repartition")); n != 0 {
		t.Fatalf("%d repartition records readable before Commit", n)
	}
	if err := d.Commit(); err != nil { // the repartition records are processed now
		t.Fatal(err)
	}
	if n := len(d.ReadOutput("per-customer-repartition")); n != 2 {
		t.Fatalf("%d repartition records after Commit, want 2", n)
	}
	// o3 at 15 would close alice's window [0,10) with count 2; abort it.
	pipe(t, d, "orders", "o3", "alice", 15)
	if err := d.Commit(); err != nil { // commits the count updates of o1, o2 and the repartitioning of o3
		t.Fatal(err)
	}
	aborted := d.Abort() // o3's count update and the final result it closed
	var topics []string
	for _, r := range aborted {
		topics = append(topics, r.Topic)
	}
	if !slices.Contains(topics, "counts") || !slices.Contains(topics, "test-driver-per-customer-changelog") {
		t.Errorf("aborted records in %q, want the final result and changelog records", topics)
	}
	if got := counts(); len(got) != 0 {
		t.Fatalf("counts %q readable after Abort", got)
	}
	ws, err := d.WindowStore("per-customer")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := ws.Get("alice", time.UnixMilli(10)); err != nil || v != nil {
		t.Errorf("window [10,20) after Abort: %v, %v; want none", v, err)
	}
	// o3's repartition record was committed, its processing aborted: the
	// next call processes it again, as the runner rewinds to the committed
	// offsets of the repartition topic.
	for range 2 {
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if got := counts(); !slices.Equal(got, []string{"alice@0/10=2"}) {
		t.Errorf("final results %q, want [alice@0/10=2], once", got)
	}
	if v, err := ws.Get("alice", time.UnixMilli(10)); err != nil || valueOf(v) != int64(1) {
		t.Errorf("window [10,20) after the replay: %v, %v; want 1 (o3 counted once)", v, err)
	}
}

// TestDriverInMemoryByDefault: without StateDir the driver writes no file
// (its Pebble DB is in memory), and two drivers share no state.
func TestDriverInMemoryByDefault(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	build := func() *topology.Builder {
		b := topology.NewBuilder()
		b.Stream([]string{"in"}, strIn).GroupByKey(topology.Grouped{Key: strSerde, Value: strSerde}).
			Count(topology.Materialized{Name: "c"}).ToStream().To("out", topology.Produced{Key: strSerde, Value: serde.Int64{}})
		return b
	}
	d1 := newDriver(t, build(), TestDriverConfig{})
	d2 := newDriver(t, build(), TestDriverConfig{})
	pipe(t, d1, "in", "a", "x", 1)
	pipe(t, d1, "in", "a", "x", 2)
	pipe(t, d2, "in", "a", "x", 3)
	if got := readKVs(t, d2, "out", strSerde, serde.Int64{}); !slices.Equal(got, []string{"a=1"}) {
		t.Errorf("second driver's out %q, want a=1", got)
	}
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
		t.Errorf("files in TMPDIR: %v, %v", entries, err)
	}
}
