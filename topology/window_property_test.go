package topology_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// The property tests feed thousands of seeded random streams (out of order,
// with late records) through the DSL's windowed aggregations and compare
// every forwarded record with a brute-force oracle that knows nothing of the
// step logic: it keeps every record it accepted and recomputes each window's
// aggregate from them. The streams run on processor.TestDriver: the runner's
// task, Pebble window and session stores (with their expiry) and serdes. Emit-on-update must forward, for every accepted
// record, each window it updated with the window's full aggregate;
// emit-on-close must forward each closed window exactly once, with its
// final aggregate, as soon as stream time closes it. Reproduce a failure
// with its seed.

// propRetention is the stores' retention: longer than any stream, so that no
// window or session expires from the store while the oracles, which know
// nothing of expiry, still count on it. With the DSL's default retention a
// session ending at or before (stream time before the record) - gap - grace
// is hidden, as by Kafka Streams' session store (its observed stream time
// - retention), one millisecond before it closes, so a record that would
// have merged with it starts a session of its own; and the sliding checker's
// content check (see contentOK) fails on windows built from expired ones
// (TestSlidingWindowsProperty seed 4 with the default). The datadriven
// scripts cover expiry with Kafka Streams' expected outputs.
const propRetention = time.Hour

// propCases is the number of random streams per window type and emit
// strategy; -short runs fewer.
func propCases(t *testing.T) int {
	if testing.Short() {
		return 300
	}
	return 2000
}

type propRecord struct {
	key string
	id  int // the value: the record's index, unique
	ts  int64
}

// randomStream returns n records over a few keys whose timestamps walk
// forward with jitter, so that many arrive out of order and some late.
func randomStream(r *rand.Rand, n int, spread int64) []propRecord {
	keys := []string{"a", "b", "c"}[:1+r.IntN(3)]
	var out []propRecord
	cur := r.Int64N(spread + 1)
	for i := range n {
		cur += r.Int64N(spread/4 + 2)
		ts := max(0, cur-r.Int64N(spread+1))
		if r.IntN(10) == 0 {
			ts = max(0, cur-r.Int64N(4*spread+1)) // very late
		}
		out = append(out, propRecord{key: keys[r.IntN(len(keys))], id: i, ts: ts})
	}
	return out
}

// propOut is one forwarded record (or a late drop), rendered for comparison.
type propOut struct {
	key        string
	start, end int64
	value      string
	ts         int64
}

func (o propOut) String() string {
	return fmt.Sprintf("%s@%d/%d=%s@%d", o.key, o.start, o.end, o.value, o.ts)
}

// runProp pipes recs through a windowed aggregation built by agg and returns
// the outputs per input record, and which records were dropped as late.
func runProp(t *testing.T, w topology.Windows, emit topology.EmitStrategy, recs []propRecord,
	agg func(ws *topology.WindowedStream) *topology.Table) ([][]propOut, []bool) {
	t.Helper()
	str := serde.String{}
	var outKey serde.Serde
	switch w := w.(type) {
	case topology.TimeWindows:
		outKey = serde.TimeWindowed{Inner: str, Size: w.Size}
	case topology.SlidingWindows:
		outKey = serde.TimeWindowed{Inner: str, Size: w.TimeDifference}
	case topology.SessionWindows:
		outKey = serde.SessionWindowed{Inner: str}
	}
	b := topology.NewBuilder()
	ws := b.Stream([]string{"in"}, topology.Consumed{Key: str, Value: str}).GroupByKey(topology.Grouped{Key: str, Value: str}).WindowedBy(w).Emit(emit)
	agg(ws).ToStream().To("out", topology.Produced{Key: outKey, Value: str})
	d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
	outs := make([][]propOut, len(recs))
	late := make([]bool, len(recs))
	for i, r := range recs {
		dropped := d.Dropped("late")
		if err := d.PipeInput("in", r.key, strconv.Itoa(r.id), time.UnixMilli(r.ts)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		late[i] = d.Dropped("late") > dropped
		recs, err := d.ReadRecords("out", outKey, str)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		for _, o := range recs {
			wk := o.Key.(topology.Windowed)
			v := "nil"
			if o.Value != nil {
				v = fmt.Sprint(o.Value)
			}
			outs[i] = append(outs[i], propOut{key: wk.Key.(string), start: wk.Window.Start.UnixMilli(),
				end: wk.Window.End.UnixMilli(), value: v, ts: o.Timestamp.UnixMilli()})
		}
	}
	return outs, late
}

// concatAgg folds values in arrival order: "0+v1+v2...".
func concatAgg(ws *topology.WindowedStream) *topology.Table {
	return ws.Aggregate(func() any { return "0" },
		func(_, v, agg any) (any, error) { return agg.(string) + "+" + v.(string), nil },
		nil, topology.Materialized{Value: serde.String{}, Retention: propRetention})
}

// setAgg keeps the sorted set of values ("1,4,7"), so the aggregate does not
// depend on the order in which windows were merged or copied.
func setAgg(ws *topology.WindowedStream) *topology.Table {
	union := func(a, b string) string {
		var ids []int
		for _, s := range []string{a, b} {
			for _, f := range strings.Split(s, ",") {
				if f != "" {
					n, _ := strconv.Atoi(f)
					ids = append(ids, n)
				}
			}
		}
		return idSet(ids)
	}
	return ws.Aggregate(func() any { return "" },
		func(_, v, agg any) (any, error) { return union(agg.(string), v.(string)), nil },
		func(_, a, b any) (any, error) { return union(a.(string), b.(string)), nil },
		topology.Materialized{Value: serde.String{}, Retention: propRetention})
}

func idSet(ids []int) string {
	slices.Sort(ids)
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}

func compareOutputs(t *testing.T, seed uint64, desc string, recs []propRecord, got, want [][]propOut, gotLate, wantLate []bool) bool {
	t.Helper()
	for i := range recs {
		if gotLate[i] != wantLate[i] || !slices.Equal(got[i], want[i]) {
			t.Errorf("seed %d %s: record %d %s=%d@%d (late=%v):\n got  %v late=%v\n want %v late=%v",
				seed, desc, i, recs[i].key, recs[i].id, recs[i].ts, wantLate[i], got[i], gotLate[i], want[i], wantLate[i])
			return false
		}
	}
	return true
}

// closedOnce is the emit-final oracle shared by all window types: after each
// record, every window that has contents and is closed at that stream time,
// and was not emitted before, is emitted once, ordered by end then key.
type closedOnce struct {
	emitted map[string]bool
}

func (c *closedOnce) emit(live []propOut, closed func(end int64) bool) []propOut {
	var out []propOut
	for _, o := range live {
		id := fmt.Sprintf("%s@%d/%d", o.key, o.start, o.end)
		if closed(o.end) && !c.emitted[id] {
			c.emitted[id] = true
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].end != out[j].end {
			return out[i].end < out[j].end
		}
		return fmt.Sprintf("%s@%d/%d", out[i].key, out[i].start, out[i].end) < fmt.Sprintf("%s@%d/%d", out[j].key, out[j].start, out[j].end)
	})
	return out
}

func TestTimeWindowsProperty(t *testing.T) {
	for _, emit := range []topology.EmitStrategy{topology.EmitOnWindowUpdate, topology.EmitOnWindowClose} {
		t.Run(emit.String(), func(t *testing.T) {
			n := propCases(t)
			for c := range n {
				seed := uint64(c)
				r := rand.New(rand.NewPCG(seed, 1))
				size := 1 + r.Int64N(20)
				adv := size
				if r.IntN(2) == 0 {
					adv = 1 + r.Int64N(size)
				}
				grace := r.Int64N(3) * r.Int64N(15)
				w := topology.TimeWindows{Size: time.Duration(size) * time.Millisecond, Advance: time.Duration(adv) * time.Millisecond, Grace: time.Duration(grace) * time.Millisecond}
				recs := randomStream(r, 10+r.IntN(50), size+grace)
				got, gotLate := runProp(t, w, emit, recs, concatAgg)
				want, wantLate := timeOracle(recs, size, adv, grace, emit)
				if !compareOutputs(t, seed, fmt.Sprintf("%+v", w), recs, got, want, gotLate, wantLate) {
					return
				}
			}
		})
	}
}

// timeOracle: a record belongs to every window [s, s+size) with s a
// non-negative multiple of adv and s <= ts < s+size, found by trying every
// start; it is accepted into those still open (s+size+grace > stream time).
func timeOracle(recs []propRecord, size, adv, grace int64, emit topology.EmitStrategy) ([][]propOut, []bool) {
	type win struct {
		key   string
		start int64
	}
	contents := map[win][]propRecord{}
	var order []win
	st := int64(-1 << 62)
	outs := make([][]propOut, len(recs))
	late := make([]bool, len(recs))
	render := func(w win) propOut {
		o := propOut{key: w.key, start: w.start, end: w.start + size, value: "0"}
		for _, r := range contents[w] {
			o.value += "+" + strconv.Itoa(r.id)
			o.ts = max(o.ts, r.ts)
		}
		return o
	}
	final := &closedOnce{emitted: map[string]bool{}}
	for i, r := range recs {
		st = max(st, r.ts)
		var updated []win
		for s := int64(0); s <= r.ts; s += adv {
			if r.ts < s+size && s+size+grace > st {
				w := win{r.key, s}
				if _, ok := contents[w]; !ok {
					order = append(order, w)
				}
				contents[w] = append(contents[w], r)
				updated = append(updated, w)
			}
		}
		if len(updated) == 0 {
			late[i] = true
			continue
		}
		if emit == topology.EmitOnWindowUpdate {
			for _, w := range updated {
				outs[i] = append(outs[i], render(w))
			}
			continue
		}
		var live []propOut
		for _, w := range order {
			live = append(live, render(w))
		}
		outs[i] = final.emit(live, func(end int64) bool { return end+grace <= st })
	}
	return outs, late
}

func TestSessionWindowsProperty(t *testing.T) {
	for _, emit := range []topology.EmitStrategy{topology.EmitOnWindowUpdate, topology.EmitOnWindowClose} {
		t.Run(emit.String(), func(t *testing.T) {
			for c := range propCases(t) {
				seed := uint64(c)
				r := rand.New(rand.NewPCG(seed, 2))
				gap := 1 + r.Int64N(10)
				grace := r.Int64N(3) * r.Int64N(10)
				w := topology.SessionWindows{Gap: time.Duration(gap) * time.Millisecond, Grace: time.Duration(grace) * time.Millisecond}
				recs := randomStream(r, 10+r.IntN(50), 2*gap+grace)
				got, gotLate := runProp(t, w, emit, recs, setAgg)
				want, wantLate := sessionOracle(recs, gap, grace, emit)
				if !compareOutputs(t, seed, fmt.Sprintf("%+v", w), recs, got, want, gotLate, wantLate) {
					return
				}
			}
		})
	}
}

// sessionOracle: a key's sessions are the groups of its accepted records
// whose sorted timestamps are at most gap apart, recomputed from scratch
// after every record. A record is accepted when the session it forms ends
// at or after stream time - grace - gap. Accepting it replaces the sessions
// it touches (tombstones, unless it forms exactly [ts, ts]) with the new one.
func sessionOracle(recs []propRecord, gap, grace int64, emit topology.EmitStrategy) ([][]propOut, []bool) {
	accepted := map[string][]propRecord{}
	sessions := func(rs []propRecord) []propOut {
		sorted := slices.Clone(rs)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].ts < sorted[j].ts })
		var out []propOut
		var ids []int
		for i, r := range sorted {
			if i > 0 && r.ts-sorted[i-1].ts > gap {
				out[len(out)-1].value = idSet(ids)
				ids = nil
			}
			if len(ids) == 0 {
				out = append(out, propOut{key: r.key, start: r.ts})
			}
			ids = append(ids, r.id)
			out[len(out)-1].end, out[len(out)-1].ts = r.ts, r.ts
		}
		if len(out) > 0 {
			out[len(out)-1].value = idSet(ids)
		}
		return out
	}
	st := int64(-1 << 62)
	outs := make([][]propOut, len(recs))
	late := make([]bool, len(recs))
	final := &closedOnce{emitted: map[string]bool{}}
	for i, r := range recs {
		st = max(st, r.ts)
		before := sessions(accepted[r.key])
		after := sessions(append(slices.Clone(accepted[r.key]), r))
		var mine propOut
		for _, s := range after {
			if s.start <= r.ts && r.ts <= s.end {
				mine = s
			}
		}
		if mine.end+gap+grace < st {
			late[i] = true
			continue
		}
		accepted[r.key] = append(accepted[r.key], r)
		if emit == topology.EmitOnWindowUpdate {
			if mine.start != r.ts || mine.end != r.ts {
				for _, s := range before {
					if s.start >= mine.start && s.end <= mine.end {
						s.value = "nil"
						outs[i] = append(outs[i], s)
					}
				}
			}
			outs[i] = append(outs[i], mine)
			continue
		}
		var live []propOut
		for _, rs := range accepted {
			live = append(live, sessions(rs)...)
		}
		outs[i] = final.emit(live, func(end int64) bool { return end+gap+grace < st })
	}
	return outs, late
}

// TestSlidingWindowsProperty checks KS's sliding-window algorithm, whose
// window creation is intricate, against what the windows must contain
// rather than against a second copy of the algorithm: every result's
// aggregate is the set of accepted records inside the window [start, end]
// that arrived while it was open, its timestamp their largest (see
// contentOK for where KS's algorithm stops guaranteeing this);
// each accepted record's left window ([ts-d, ts], or [0, d] before d) is
// among its results while open; lateness matches; with emit on close, each
// window is emitted once, by the record whose stream time closes it, with the
// last aggregate emit-on-update forwarded for it, and every accepted
// record's left window is emitted once closed.
func TestSlidingWindowsProperty(t *testing.T) {
	n := propCases(t)
	for c := range n {
		seed := uint64(c)
		r := rand.New(rand.NewPCG(seed, 3))
		td := 1 + r.Int64N(15)
		grace := r.Int64N(3) * r.Int64N(10)
		w := topology.SlidingWindows{TimeDifference: time.Duration(td) * time.Millisecond, Grace: time.Duration(grace) * time.Millisecond}
		recs := randomStream(r, 10+r.IntN(50), td+grace)
		upd, updLate := runProp(t, w, topology.EmitOnWindowUpdate, recs, setAgg)
		fin, finLate := runProp(t, w, topology.EmitOnWindowClose, recs, setAgg)
		if msg := checkSliding(recs, td, grace, upd, updLate, fin, finLate); msg != "" {
			t.Fatalf("seed %d %+v: %s", seed, w, msg)
		}
	}
}

func checkSliding(recs []propRecord, td, grace int64, upd [][]propOut, updLate []bool, fin [][]propOut, finLate []bool) string {
	type arrival struct {
		r     propRecord
		st    int64 // stream time when it arrived
		whole bool  // its left window was open then
	}
	var accepted []arrival
	// contentOK: the result holds exactly the accepted records of the window
	// that arrived while it was open. It holds only while every accepted
	// record found its left window open (exact): KS's algorithm (ported
	// step for step) then keeps its invariant. A record that is not late but
	// whose left window has closed updates only the open windows that exist
	// and creates no right window, so windows KS creates later from copied
	// aggregates may miss it or hold records outside them; from such a
	// record on, only lateness, emission and update/final agreement are
	// checked.
	exact := true
	contentOK := func(o propOut) bool {
		if !exact {
			return true
		}
		got := map[int]bool{}
		for _, f := range strings.Split(o.value, ",") {
			if f != "" {
				n, _ := strconv.Atoi(f)
				got[n] = true
			}
		}
		var ts int64
		for _, a := range accepted {
			in := a.r.key == o.key && o.start <= a.r.ts && a.r.ts <= o.end && o.end >= a.st-grace
			if got[a.r.id] != in {
				return false
			}
			if got[a.r.id] {
				ts = max(ts, a.r.ts)
				delete(got, a.r.id)
			}
		}
		return len(got) == 0 && ts == o.ts
	}
	leftOf := func(r propRecord) (int64, int64) {
		if r.ts < td {
			return 0, td
		}
		return r.ts - td, r.ts
	}
	st, prevSt := int64(-1<<62), int64(-1<<62)
	lastUpdate := map[string]propOut{}
	emitted := map[string]bool{}
	var lefts []propOut
	for i, r := range recs {
		prevSt, st = st, max(st, r.ts)
		wantLate := r.ts+td < st-grace
		if updLate[i] != wantLate || finLate[i] != wantLate {
			return fmt.Sprintf("record %d %s@%d at stream time %d: late = %v (update) %v (close), want %v", i, r.key, r.ts, st, updLate[i], finLate[i], wantLate)
		}
		if !wantLate {
			s, e := leftOf(r)
			accepted = append(accepted, arrival{r, st, e >= st-grace})
			exact = exact && e >= st-grace
			left := fmt.Sprintf("%s@%d/%d", r.key, s, e)
			found := e < st-grace // closed: KS skips it
			for _, o := range upd[i] {
				if !contentOK(o) {
					return fmt.Sprintf("record %d %s@%d: update %v does not hold the window's records", i, r.key, r.ts, o)
				}
				id := fmt.Sprintf("%s@%d/%d", o.key, o.start, o.end)
				found = found || id == left
				lastUpdate[id] = o
			}
			if !found {
				return fmt.Sprintf("record %d %s@%d: its left window %s is not among its updates %v", i, r.key, r.ts, left, upd[i])
			}
			if e >= st-grace {
				lefts = append(lefts, propOut{key: r.key, start: s, end: e})
			}
		}
		for _, o := range fin[i] {
			id := fmt.Sprintf("%s@%d/%d", o.key, o.start, o.end)
			switch {
			case emitted[id]:
				return fmt.Sprintf("record %d: %s emitted twice", i, id)
			case !(o.end < st-grace && o.end >= prevSt-grace):
				return fmt.Sprintf("record %d: %s emitted at stream time %d (previous %d), not when it closed", i, id, st, prevSt)
			case o != lastUpdate[id]:
				return fmt.Sprintf("record %d: final %v, but the last update was %v", i, o, lastUpdate[id])
			}
			emitted[id] = true
		}
	}
	for _, l := range lefts {
		id := fmt.Sprintf("%s@%d/%d", l.key, l.start, l.end)
		if l.end < st-grace && !emitted[id] {
			return fmt.Sprintf("left window %s closed but never emitted", id)
		}
	}
	return ""
}
