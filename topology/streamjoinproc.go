package topology

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// The stream-stream join's processors, a transcription of Kafka Streams'
// KStreamJoinWindow and KStreamKStreamJoin (3.x, KIP-633 with the fixes of
// KAFKA-13721 and KAFKA-15417).
//
// Stream time. Both sides use the task's stream time
// (ProcessorContext.StreamTime, which includes the record being processed),
// committed with the offsets and restored on assignment. KS's join keeps a
// time tracker shared by its two processors instead (the largest timestamp
// either has seen, in memory, starting afresh after a restart); with the
// join's two sources as the task's only inputs the two agree.
//
// Emission of non-joined records (left and outer joins), as KS does it:
//
//  1. A record that joins nothing is put in the outer store, unless its own
//     window already ended (t + after < stream time): then its non-joined
//     result is forwarded at once.
//  2. A record whose timestamp is the stream time first scans the outer
//     store in (timestamp, side, key) order and forwards, at its own
//     timestamp, every entry whose window has closed (t + after + grace <
//     stream time for a left entry, t + before + grace for a right one),
//     deleting them; the scan stops once it has seen an open entry of each
//     side.
//  3. A record that joins another deletes that other's outer entry (all the
//     records with its key and timestamp, which it all joins).
//
// KS skips the scan while the smallest timestamp put in the outer store
// since the last scan (minTime, kept in memory) shows nothing can have
// closed, and throttles it to once per second of wall-clock time; we keep
// the first (it decides when results appear, and the transcribed KS cases
// depend on it) and drop the second (KS's own TopologyTestDriver disables
// it; output must not depend on the wall clock). minTime is not committed: a
// processor built anew (restart, rebalance, abort) scans on its first
// chance, which only emits what has closed, possibly earlier than a run
// without the restart would have.
//
// Late records. As in KS, a record is never dropped for being late: a
// record whose window has closed still joins whatever the other side's
// buffer holds, and in left and outer joins its non-joined result is
// emitted at once (KS's testLowerWindowBound: "all previous late records
// were emitted immediately"). What differs is the buffers' expiry: ours
// expire by the task's stream time (everything older than stream time -
// (before+after+grace) is invisible), KS's by each buffer's own largest
// timestamp, so when one side runs ahead of the other a late record of the
// side ahead can find fewer matches here than in KS.

// joinTracker is what KS's TimeTracker holds beyond stream time: the lower
// bound of the outer store's timestamps, shared by a task's two join
// processors.
type joinTracker struct {
	minTime int64 // math.MaxInt64: nothing put since the last scan; math.MinInt64: unknown (scan)
}

// joinTrackers hands a task's two join processors the same tracker. They
// are keyed by the task's outer store handle, which both processors share
// and no other task has. Tasks run on different workers, hence the lock.
type joinTrackers struct {
	mu sync.Mutex
	m  map[WindowStore]*joinTracker
}

func newJoinTrackers() *joinTrackers { return &joinTrackers{m: map[WindowStore]*joinTracker{}} }

func (t *joinTrackers) get(key WindowStore) *joinTracker {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr, ok := t.m[key]
	if !ok {
		tr = &joinTracker{minTime: math.MinInt64}
		t.m[key] = tr
	}
	return tr
}

// remove forgets a task's tracker when its processors close (KS's
// TimeTrackerSupplier.remove), so processors built again start afresh.
func (t *joinTrackers) remove(key WindowStore) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}

// joinStreamTime is the stream time a join node decides by, in
// milliseconds: the task's, or the record's if later.
func joinStreamTime(ctx ProcessorContext, ts int64) int64 {
	if st := ctx.StreamTime(); !st.IsZero() {
		return max(ts, toMillis(st))
	}
	return ts
}

// joinWindowProcessor is a WINDOWED node (KS's KStreamJoinWindow): it
// passes every record on to its side's join node and then appends it to its
// side's buffer (a write the buffer's retention has expired is dropped and
// counted by the store, as KS's segmented store does). Records with a nil key or value are
// passed on (the join node drops or emits them) but never buffered.
type joinWindowProcessor struct {
	store string

	ctx ProcessorContext
	buf WindowStore
}

func (p *joinWindowProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.buf = ctx, ctx.WindowStore(p.store)
	return nil
}

func (p *joinWindowProcessor) Process(r Record) error {
	if r.Key == nil || r.Value == nil {
		return p.ctx.Forward(r)
	}
	// KS forwards first and buffers after, which matters only when both
	// sides are one stream (a self-join): a record then joins itself once.
	if err := p.ctx.Forward(r); err != nil {
		return err
	}
	old, err := p.buf.Get(r.Key, r.Timestamp)
	if err != nil {
		return err
	}
	vs, err := bufferList(p.buf.Name(), old)
	if err != nil {
		return err
	}
	return p.buf.Put(r.Key, r.Timestamp, append(vs, r.Value))
}

func (p *joinWindowProcessor) Close() error { return nil }

func bufferList(store string, v any) ([]any, error) {
	if v == nil {
		return nil, nil
	}
	vs, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("join store %q holds %T, want []any", store, v)
	}
	return vs, nil
}

func outerList(store string, v any) ([]sideValue, error) {
	if v == nil {
		return nil, nil
	}
	vs, ok := v.([]sideValue)
	if !ok {
		return nil, fmt.Errorf("outer join store %q holds %T, want []sideValue", store, v)
	}
	return vs, nil
}

// streamJoinProcessor is a JOINTHIS or JOINOTHER node (KS's
// KStreamKStreamJoinLeftSide and RightSide): it joins a record of its side
// with the other side's buffer and, in left and outer joins, manages the
// outer store as the file comment tells.
type streamJoinProcessor struct {
	left   bool // JOINTHIS: this is the join's left side
	w      JoinWindows
	joiner ValueJoiner
	// outer: this side's records that join nothing are emitted (the left
	// side of a left join, both sides of an outer join).
	outer      bool
	otherStore string
	outerStore string // "" for inner joins
	trackers   *joinTrackers

	ctx      ProcessorContext
	other    WindowStore
	outerBuf WindowStore // nil for inner joins
	tracker  *joinTracker
}

func (p *streamJoinProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.other = ctx, ctx.WindowStore(p.otherStore)
	if p.outerStore != "" {
		p.outerBuf = ctx.WindowStore(p.outerStore)
		p.tracker = p.trackers.get(p.outerBuf)
	}
	return nil
}

func (p *streamJoinProcessor) Close() error {
	if p.outerBuf != nil {
		p.trackers.remove(p.outerBuf)
	}
	return nil
}

// before and after bound the other side's timestamps this side's record at
// t joins: [t-before, t+after] (KS's joinBeforeMs and joinAfterMs, swapped
// on the right side).
func (p *streamJoinProcessor) before() int64 {
	if p.left {
		return p.w.Before.Milliseconds()
	}
	return p.w.After.Milliseconds()
}

func (p *streamJoinProcessor) after() int64 {
	if p.left {
		return p.w.After.Milliseconds()
	}
	return p.w.Before.Milliseconds()
}

// join calls the user's joiner with the values in left, right order.
func (p *streamJoinProcessor) join(key, this, other any) (any, error) {
	if p.left {
		return p.joiner(key, this, other)
	}
	return p.joiner(key, other, this)
}

func (p *streamJoinProcessor) Process(r Record) error {
	ts := toMillis(r.Timestamp)
	st := joinStreamTime(p.ctx, ts)
	if p.outer && r.Key == nil && r.Value != nil {
		// KIP-962 (KS 3.7+): a left/outer side's record with no key cannot
		// join, so its non-joined result goes out at once.
		v, err := p.join(nil, r.Value, nil)
		if err != nil {
			return err
		}
		return p.ctx.Forward(r.WithValue(v))
	}
	if r.Key == nil || r.Value == nil {
		// StreamStreamJoinUtil.skipRecord: "Skipping record due to null key
		// or value", counted in dropped-records.
		if d, ok := p.ctx.(DropRecorder); ok {
			d.RecordDropped("null-key-or-value", errNullKeyOrValue)
		}
		return nil
	}
	if p.outerBuf != nil && ts == st {
		if err := p.emitNonJoined(r, st); err != nil {
			return err
		}
	}
	from, to := max(0, ts-p.before()), max(0, ts+p.after())
	type match struct {
		ts    int64
		value any
	}
	var matches []match
	if err := p.other.Fetch(r.Key, fromMillis(from), fromMillis(to), func(start time.Time, v any) error {
		vs, err := bufferList(p.otherStore, v)
		if err != nil {
			return err
		}
		for _, x := range vs {
			matches = append(matches, match{toMillis(start), x})
		}
		return nil
	}); err != nil {
		return err
	}
	for i, m := range matches {
		if p.outerBuf != nil && (i == 0 || matches[i-1].ts != m.ts) {
			// KS's putIfAbsent(otherKey, null): the other side's records
			// at m.ts all join this one, so none of them is non-joined.
			if err := p.deleteOuter(outerJoinKey{Left: !p.left, Key: r.Key}, m.ts); err != nil {
				return err
			}
		}
		v, err := p.join(r.Key, r.Value, m.value)
		if err != nil {
			return err
		}
		if err := p.ctx.Forward(Record{Key: r.Key, Value: v, Headers: r.Headers, Timestamp: fromMillis(max(ts, m.ts))}); err != nil {
			return err
		}
	}
	if !p.outer || len(matches) > 0 {
		return nil
	}
	if p.outerBuf == nil || to < st {
		v, err := p.join(r.Key, r.Value, nil)
		if err != nil {
			return err
		}
		return p.ctx.Forward(r.WithValue(v))
	}
	p.tracker.minTime = min(p.tracker.minTime, ts)
	key := outerJoinKey{Left: p.left, Key: r.Key}
	old, err := p.outerBuf.Get(key, r.Timestamp)
	if err != nil {
		return err
	}
	vs, err := outerList(p.outerStore, old)
	if err != nil {
		return err
	}
	return p.outerBuf.Put(key, r.Timestamp, append(vs, sideValue{Left: p.left, Value: r.Value}))
}

var errNullKeyOrValue = errors.New("stream-stream join: record with a nil key or value skipped")

// deleteOuter deletes an outer store entry if there is one (a blind delete
// would write a changelog tombstone for every join).
func (p *streamJoinProcessor) deleteOuter(key outerJoinKey, ts int64) error {
	old, err := p.outerBuf.Get(key, fromMillis(ts))
	if err != nil || old == nil {
		return err
	}
	return p.outerBuf.Put(key, fromMillis(ts), nil)
}

// emitNonJoined is KS's emitNonJoinedOuterRecords: forward and delete the
// outer store's entries whose window has closed at stream time st.
func (p *streamJoinProcessor) emitNonJoined(r Record, st int64) error {
	tr := p.tracker
	grace := p.w.Grace.Milliseconds()
	// Nothing can have closed: every entry is at least minTime (after KS's
	// scan, roughly; see the file comment). MaxInt64: the store was empty at
	// the last scan and nothing was put since.
	if tr.minTime == math.MaxInt64 || (tr.minTime != math.MinInt64 && tr.minTime+p.after()+grace >= st) {
		return nil
	}
	tr.minTime = math.MaxInt64
	type entry struct {
		key outerJoinKey
		ts  int64
		vs  []sideValue
	}
	var entries []entry
	if err := p.outerBuf.FetchAll(fromMillis(0), fromMillis(math.MaxInt64/int64(time.Millisecond)), func(k any, start time.Time, v any) error {
		key, ok := k.(outerJoinKey)
		if !ok {
			return fmt.Errorf("outer join store %q holds key %T", p.outerStore, k)
		}
		vs, err := outerList(p.outerStore, v)
		if err != nil {
			return err
		}
		entries = append(entries, entry{key, toMillis(start), vs})
		return nil
	}); err != nil {
		return err
	}
	leftOpen, rightOpen := false, false
	var prev *entry
scan:
	for i := range entries {
		e := &entries[i]
		for _, sv := range e.vs {
			tr.minTime = e.ts
			if leftOpen && rightOpen {
				break scan // no more candidates on either side
			}
			lookBack := p.w.Before.Milliseconds()
			if e.key.Left {
				lookBack = p.w.After.Milliseconds()
			}
			if e.ts+lookBack+grace >= st {
				if e.key.Left {
					leftOpen = true
				} else {
					rightOpen = true
				}
				continue
			}
			var left, right any
			if sv.Left {
				left = sv.Value
			} else {
				right = sv.Value
			}
			v, err := p.joiner(e.key.Key, left, right)
			if err != nil {
				return err
			}
			if err := p.ctx.Forward(Record{Key: e.key.Key, Value: v, Headers: r.Headers, Timestamp: fromMillis(e.ts)}); err != nil {
				return err
			}
			if prev != nil && prev != e {
				if err := p.outerBuf.Put(prev.key, fromMillis(prev.ts), nil); err != nil {
					return err
				}
			}
			prev = e
		}
	}
	if prev != nil {
		return p.outerBuf.Put(prev.key, fromMillis(prev.ts), nil)
	}
	return nil
}
