package topology

import (
	"errors"
	"fmt"
	"math"

	"github.com/eos-runner/eos-runner/serde"
)

// EmitStrategy says when a windowed aggregation forwards results, Kafka
// Streams' EmitStrategy (KIP-825).
type EmitStrategy int

const (
	// EmitOnWindowUpdate forwards a window's new aggregate on every record
	// that changes it (KS's default, EmitStrategy.onWindowUpdate, without
	// the record cache: one result per updated window per record).
	EmitOnWindowUpdate EmitStrategy = iota
	// EmitOnWindowClose forwards each window's final aggregate exactly once,
	// when stream time closes the window (end + grace; see each Windows
	// type's IsClosed), as KS's EmitStrategy.onWindowClose and
	// suppress(Suppressed.untilWindowCloses(unbounded())) do. Pending results
	// live in a second store, `<store>-emit-final`, changelogged like the
	// first, so a crash neither loses nor repeats a final result.
	EmitOnWindowClose
)

func (e EmitStrategy) String() string {
	if e == EmitOnWindowClose {
		return "on-window-close"
	}
	return "on-window-update"
}

// WindowedStream is a grouped stream with windows, ready to aggregate: Kafka
// Streams' TimeWindowedKStream and SessionWindowedKStream in one type.
// Aggregations produce a Table keyed by Windowed.
type WindowedStream struct {
	gs   *GroupedStream
	w    Windows
	emit EmitStrategy
}

// WindowedBy groups records into windows: TimeWindows (tumbling, hopping),
// SlidingWindows or SessionWindows. An invalid definition is reported by
// Build.
func (gs *GroupedStream) WindowedBy(w Windows) *WindowedStream {
	switch {
	case w == nil:
		gs.s.b.errorf("windowed-by after %q: no windows", gs.s.node.Name)
	default:
		if err := w.Validate(); err != nil {
			gs.s.b.errorf("windowed-by after %q: %w", gs.s.node.Name, err)
		}
	}
	return &WindowedStream{gs: gs, w: w}
}

// Emit sets the emit strategy (default EmitOnWindowUpdate), as KS's
// TimeWindowedKStream.emitStrategy.
func (ws *WindowedStream) Emit(e EmitStrategy) *WindowedStream {
	cp := *ws
	cp.emit = e
	return &cp
}

// Count counts each key's records per window; values are int64. Records
// with a nil key are skipped (and, for sliding windows, records with a nil
// value), as in Kafka Streams. The window store's changelog is
// `<application.id>-<store>-changelog` (compact,delete); with
// EmitOnWindowClose, `<application.id>-<store>-emit-final-changelog` too.
// Processing waits for their restore.
func (ws *WindowedStream) Count(m Materialized) *Table {
	return ws.aggregate("COUNT", m, serde.Int64{}, aggregation{
		init: func() any { return int64(0) },
		add: func(_, _, agg any) (any, error) {
			n, _ := agg.(int64)
			return n + 1, nil
		},
		merge: func(_, a, b any) (any, error) {
			x, _ := a.(int64)
			y, _ := b.(int64)
			return x + y, nil
		},
	})
}

// Reduce combines each key's values per window with fn(aggregate, value); a
// window's first value is its aggregate, and merging sessions reduces their
// aggregates in time order (KS's mergerForAggregator). Stores as for Count.
func (ws *WindowedStream) Reduce(fn func(agg, value any) (any, error), m Materialized) *Table {
	add := func(_, v, agg any) (any, error) {
		if agg == nil {
			return v, nil
		}
		return fn(agg, v)
	}
	return ws.aggregate("REDUCE", m, ws.gs.g.Value, aggregation{
		init:  func() any { return nil },
		add:   add,
		merge: func(k, a, b any) (any, error) { return add(k, b, a) },
	})
}

// Aggregate folds each key's values per window with fn(key, value,
// aggregate), starting from init(). Session windows also need merge(key,
// agg1, agg2), which combines two sessions' aggregates when a record bridges
// them (KS's Merger); time and sliding windows ignore it. Materialized.Value
// is the aggregate's serde and is required. Stores as for Count.
func (ws *WindowedStream) Aggregate(init func() any, fn func(key, value, agg any) (any, error),
	merge func(key, agg1, agg2 any) (any, error), m Materialized) *Table {
	if _, ok := ws.w.(SessionWindows); ok && merge == nil {
		ws.gs.s.b.errorf("session aggregate after %q: missing merger", ws.gs.s.node.Name)
	}
	return ws.aggregate("AGGREGATE", m, nil, aggregation{init: init, add: fn, merge: merge})
}

func (ws *WindowedStream) aggregate(prefix string, m Materialized, valueDefault serde.Serde, a aggregation) *Table {
	b := ws.gs.s.b
	if m.Name == "" {
		m.Name = fmt.Sprintf("KSTREAM-%s-STATE-STORE-%010d", prefix, b.seq)
		b.seq++
	}
	if m.Key == nil {
		m.Key = ws.gs.g.Key
	}
	if m.Value == nil {
		m.Value = valueDefault
	}
	if m.Value == nil {
		b.errorf("store %q: missing value serde", m.Name)
	}
	if ws.w == nil {
		return &Table{b: b, s: ws.gs.s, store: m.Name, windowed: true}
	}
	spec, bufSpec := windowStoreSpecs(ws.w, m)
	switch {
	case m.Retention < 0:
		b.errorf("store %q: negative retention %v", m.Name, m.Retention)
	case m.Retention > 0 && m.Retention < spec.Retention:
		b.errorf("store %q: retention %v is less than the windows need (%v)", m.Name, m.Retention, spec.Retention)
	case m.Retention > 0:
		spec.Retention = m.Retention
	}
	b.AddStore(spec)
	stores := []string{spec.Name}
	if ws.emit == EmitOnWindowClose {
		b.AddStore(bufSpec)
		stores = append(stores, bufSpec.Name)
	}
	w, emit := ws.w, ws.emit
	next := ws.gs.source(m.Name).add("WINDOW-"+prefix, func() Processor {
		return &windowAggregateProcessor{w: w, a: a, store: spec.Name, buffer: bufSpec.Name, emit: emit, emitted: -1}
	}, false, []Option{WithStores(stores...)})
	return &Table{b: b, s: next, store: m.Name, windowed: true}
}

// windowStoreSpecs declares a windowed aggregation's store and its emit-final
// buffer, with Kafka Streams' default retentions (TimeWindowedKStreamImpl:
// size + grace; SlidingWindowedKStreamImpl: 2 * time difference + grace;
// SessionWindowedKStreamImpl: gap + grace).
// Materialized.Retention is not applied here.
func windowStoreSpecs(w Windows, m Materialized) (store, buffer StoreSpec) {
	var keySerde serde.Serde
	var valueSerde serde.Serde = serde.Timestamped{Inner: m.Value}
	switch w := w.(type) {
	case TimeWindows:
		store = StoreSpec{Kind: WindowStoreKind, Retention: w.Size + w.Grace, WindowSize: w.Size, Grace: w.Grace}
		keySerde = serde.TimeWindowed{Inner: m.Key, Size: w.Size}
	case SlidingWindows:
		store = StoreSpec{Kind: WindowStoreKind, Retention: 2*w.TimeDifference + w.Grace, WindowSize: w.TimeDifference, Grace: w.Grace}
		keySerde = serde.TimeWindowed{Inner: m.Key, Size: w.TimeDifference}
	case SessionWindows:
		store = StoreSpec{Kind: SessionStoreKind, Retention: w.Gap + w.Grace, Grace: w.Grace}
		keySerde = serde.SessionWindowed{Inner: m.Key}
		valueSerde = m.Value // a session store holds plain aggregates, as in KS
	}
	store.Name, store.KeySerde, store.ValueSerde = m.Name, m.Key, valueSerde
	if m.Key == nil || m.Value == nil {
		store.ValueSerde = nil // AddStore reports it
	}
	buffer = store
	buffer.Kind = WindowStoreKind
	// A pending result must stay until its window is emitted, however far
	// stream time jumps in one record; emitted entries are deleted, so the
	// buffer stays small without expiry.
	buffer.Retention = RetainForever
	buffer.Name = m.Name + "-emit-final"
	buffer.KeySerde, buffer.ValueSerde = keySerde, serde.Timestamped{Inner: m.Value}
	return store, buffer
}

// windowAggregateProcessor is the node of every windowed aggregation: it
// runs the window type's step on each record and forwards its results, or,
// with EmitOnWindowClose, buffers them and forwards the windows the record's
// stream time closed.
type windowAggregateProcessor struct {
	w      Windows
	a      aggregation
	store  string
	buffer string // with EmitOnWindowClose
	emit   EmitStrategy

	ctx      ProcessorContext
	ws       WindowStore  // time and sliding windows
	ss       SessionStore // session windows
	buf      WindowStore  // with EmitOnWindowClose
	observed int64        // largest timestamp seen; see windowagg.go on stream time
	// emitted: every buffered window ending at or before it has been
	// emitted (and deleted). In memory only: a new instance (a restart, an
	// abort's rebuild) starts at -1 and scans the buffer once from 0.
	emitted int64
}

func (p *windowAggregateProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.observed = ctx, math.MinInt64
	if _, ok := p.w.(SessionWindows); ok {
		p.ss = ctx.SessionStore(p.store)
	} else {
		p.ws = ctx.WindowStore(p.store)
	}
	if p.emit == EmitOnWindowClose {
		p.buf = ctx.WindowStore(p.buffer)
	}
	return nil
}

func (p *windowAggregateProcessor) Process(r Record) error {
	_, sliding := p.w.(SlidingWindows)
	if r.Key == nil || (sliding && r.Value == nil) {
		return nil // as in KS: skipped (dropped-records)
	}
	if err := CheckTimestamp(r.Timestamp); err != nil {
		return err
	}
	ts := toMillis(r.Timestamp)
	st := max(p.observed, ts)
	if task := p.ctx.StreamTime(); !task.IsZero() {
		st = max(st, toMillis(task))
	}
	p.observed = st
	var ups []WindowResult
	var err error
	var closed int64
	switch w := p.w.(type) {
	case TimeWindows:
		ups, err = aggregateTime(w, p.ws, p.a, r.Key, r.Value, ts, st)
		closed = w.closedThrough(st)
	case SlidingWindows:
		ups, err = aggregateSliding(w, p.ws, p.a, r.Key, r.Value, ts, st)
		closed = w.closedThrough(st)
	case SessionWindows:
		ups, err = aggregateSession(w, p.ss, p.a, r.Key, r.Value, ts, st)
		closed = w.closedThrough(st)
	default:
		return fmt.Errorf("windowed aggregation: unknown windows %T", p.w)
	}
	if IsLate(err) {
		// Kafka Streams skips a late record in this node only (logged and
		// counted); an error would drop its effects on every other branch of
		// the sub-topology too. A context that cannot record drops gets the
		// error instead.
		if d, ok := p.ctx.(DropRecorder); ok {
			d.RecordDropped("late", err)
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	if p.emit == EmitOnWindowClose {
		if err := bufferUpdates(p.buf, ups); err != nil {
			return err
		}
		from := p.emitted + 1
		for _, u := range ups {
			from = min(from, toMillis(u.Key.Window.End))
		}
		if ups, err = emitClosed(p.buf, from, closed); err != nil {
			return err
		}
		p.emitted = max(p.emitted, closed)
	}
	for _, u := range ups {
		out := Record{Key: u.Key, Value: u.Value, Headers: r.Headers, Timestamp: u.Timestamp}
		if err := p.ctx.Forward(out); err != nil {
			return err
		}
	}
	return nil
}

func (p *windowAggregateProcessor) Close() error { return nil }

// IsLate reports whether err says a windowed aggregation dropped a record
// as late (ErrLateRecord).
func IsLate(err error) bool { return errors.Is(err, ErrLateRecord) }
