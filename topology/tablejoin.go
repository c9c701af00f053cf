package topology

import (
	"fmt"
	"time"
)

// Joins of a stream or a table with a table, with Kafka Streams' semantics
// (the tables of its DSL guide, "Joining"; the processors
// KStreamKTableJoinProcessor and KTableKTable{Inner,Left,Right,Outer}Join).
// A table is read through its view, as of the moment the record is
// processed: the join node is connected to the view's stores, so it runs in
// the table's sub-topology, on the co-partitioned partition.

// JoinTable joins each stream record with the table's current value for its
// key (KS's KStream.join(KTable)): a record whose key is absent from the
// table produces nothing; a table update produces nothing. Records with a
// nil key or value are dropped (counted, reason "null-key" or "null-value").
// The result has the stream record's key and timestamp.
//
// If the stream's key was changed upstream it is repartitioned first,
// through `<application.id>-<name>-repartition` (name from j.Name, else the
// join node's), with j's serdes.
func (s *Stream) JoinTable(t *Table, joiner ValueJoiner, j Joined, opts ...Option) *Stream {
	return s.joinTable("JOIN", t, joiner, j, false, opts)
}

// LeftJoinTable is JoinTable that also emits the records whose key is
// absent from the table, joined with nil (KS's KStream.leftJoin(KTable)). A
// record with a nil key and a value joins with nil (KIP-962); a nil value is
// dropped.
func (s *Stream) LeftJoinTable(t *Table, joiner ValueJoiner, j Joined, opts ...Option) *Stream {
	return s.joinTable("LEFTJOIN", t, joiner, j, true, opts)
}

func (s *Stream) joinTable(prefix string, t *Table, joiner ValueJoiner, j Joined, left bool, opts []Option) *Stream {
	if t == nil || joiner == nil {
		s.b.errorf("%s after %q: nil table or joiner", prefix, s.node.Name)
		return s
	}
	if !t.usable("join") {
		return s
	}
	src := s
	if s.keyChanged {
		if j.Key == nil || j.Value == nil {
			s.b.errorf("%s after %q: the key was changed, so the stream is repartitioned before the join: Joined needs key and value serdes", prefix, s.node.Name)
		}
		name := j.Name
		if name == "" {
			name = fmt.Sprintf("KSTREAM-%s-%010d", prefix, s.b.seq)
			s.b.seq++
		}
		src = s.Repartition(name, Produced{Key: j.Key, Value: j.Value})
	}
	view := t.view
	out := src.add(prefix, func() Processor {
		return &streamTableJoinProcessor{view: view, joiner: joiner, left: left, keyOf: func(k, _ any) (any, error) { return k, nil }}
	}, false, append([]Option{WithStores(view.stores...)}, opts...))
	return out
}

// streamTableJoinProcessor is KS's KStreamKTableJoinProcessor (without the
// versioned-table grace buffer): look the record's key up in the table's
// view and forward the joined value.
type streamTableJoinProcessor struct {
	view   *viewSupplier
	joiner ValueJoiner
	left   bool
	keyOf  func(key, value any) (any, error) // the table key: the record key, or a GlobalTable's key selector
	ctx    ProcessorContext
	get    tableView
}

func (p *streamTableJoinProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.get = ctx, p.view.open(ctx)
	return nil
}

func (p *streamTableJoinProcessor) Process(r Record) error {
	if r.Value == nil {
		dropped(p.ctx, "null-value", fmt.Errorf("stream-table join: record with a nil value"))
		return nil
	}
	// KS: a nil table key drops the record, except in a left join of a
	// record with a nil key (KIP-962), which joins with nil.
	var other any
	tk, err := p.keyOf(r.Key, r.Value)
	if err != nil {
		return err
	}
	if tk == nil && !(p.left && r.Key == nil) {
		dropped(p.ctx, "null-key", fmt.Errorf("stream-table join: record with a nil join key"))
		return nil
	}
	if tk != nil {
		v, _, err := p.get(tk)
		if err != nil {
			return err
		}
		other = v
	}
	if other == nil && !p.left {
		return nil
	}
	out, err := p.joiner(r.Key, r.Value, other)
	if err != nil {
		return err
	}
	return p.ctx.Forward(r.WithValue(out))
}

func (p *streamTableJoinProcessor) Close() error { return nil }

// joinKind is a table-table join's kind.
type joinKind int

const (
	innerJoin joinKind = iota
	leftJoin
	outerJoin
)

func (k joinKind) String() string {
	return [...]string{"join", "left-join", "outer-join"}[k]
}

// Join joins two tables on their key (KS's KTable.join(KTable)): the result
// holds joiner(key, left, right) for every key present in both. An update of
// either side emits the key's new result; an update that removes the key
// from the result emits a deletion (a tombstone through ToStream), as KS
// does. The result's timestamp is the larger of the two sides'. The tables
// must be co-partitioned (the runner checks their topics' partition
// counts); the result is computed on read, not stored.
func (t *Table) Join(other *Table, joiner ValueJoiner, opts ...Option) *Table {
	return t.join(other, joiner, innerJoin, opts)
}

// LeftJoin keeps every key of the left table: joiner(key, left, nil) where
// the right table lacks it (KS's KTable.leftJoin).
func (t *Table) LeftJoin(other *Table, joiner ValueJoiner, opts ...Option) *Table {
	return t.join(other, joiner, leftJoin, opts)
}

// OuterJoin keeps every key of either table, with nil for the missing side
// (KS's KTable.outerJoin).
func (t *Table) OuterJoin(other *Table, joiner ValueJoiner, opts ...Option) *Table {
	return t.join(other, joiner, outerJoin, opts)
}

func (t *Table) join(other *Table, joiner ValueJoiner, kind joinKind, opts []Option) *Table {
	if other == nil || joiner == nil {
		t.b.errorf("table %s after %q: nil table or joiner", kind, t.s.node.Name)
		return t
	}
	if !t.usable("table "+kind.String()) || !other.usable("table "+kind.String()) {
		return t
	}
	var o nodeOptions
	for _, opt := range opts {
		opt(&o)
	}
	// KS: a left join needs the left side's old values (to tell a deletion
	// of a key that never joined from one that did), an outer join both.
	if kind != innerJoin {
		t.enableOld()
	}
	if kind == outerJoin {
		other.enableOld()
	}
	nt := &Table{b: t.b, key: t.key, old: &oldValues{parent: []*Table{t, other}}}
	old := nt.old
	lv, rv := t.view, other.view
	reverse := func(k, a, b any) (any, error) { return joiner(k, b, a) }
	named := func(suffix string) []Option {
		if o.name == "" {
			return []Option{tableNode()}
		}
		return []Option{Named(o.name + suffix)}
	}
	thisNode := t.s.add("JOINTHIS", func() Processor {
		return &tableJoinProcessor{other: rv, joiner: joiner, kind: kind, side: leftSide, old: old}
	}, false, append(named("-join-this"), WithStores(rv.stores...)))
	otherKind := kind
	otherNode := other.s.add("JOINOTHER", func() Processor {
		return &tableJoinProcessor{other: lv, joiner: reverse, kind: otherKind, side: rightSide, old: old}
	}, false, append(named("-join-other"), WithStores(lv.stores...)))
	merge := thisNode.add("MERGE", stateless(func(ctx ProcessorContext, r Record) error {
		return ctx.Forward(r)
	}), false, named(""))
	connect(otherNode.node, merge.node)
	nt.s = merge
	nt.view = joinView(lv, rv, joiner, kind)
	return nt
}

// joinSide tells the two nodes of a table-table join apart.
type joinSide int

const (
	leftSide joinSide = iota
	rightSide
)

// tableJoinProcessor is one side of a table-table join: an update of this
// side joins the other side's current value. The left side of a left join
// is KS's KTableKTableLeftJoin, its right side KTableKTableRightJoin; inner
// and outer joins are symmetric. joiner takes this side's value first.
type tableJoinProcessor struct {
	other  *viewSupplier
	joiner ValueJoiner
	kind   joinKind
	side   joinSide
	old    *oldValues
	ctx    ProcessorContext
	get    tableView
}

func (p *tableJoinProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.get = ctx, p.other.open(ctx)
	return nil
}

func (p *tableJoinProcessor) Process(r Record) error {
	if r.Key == nil {
		dropped(p.ctx, "null-key", fmt.Errorf("table-table join: record with a nil key"))
		return nil
	}
	c := r.Value.(change)
	otherV, otherTS, err := p.get(r.Key)
	if err != nil {
		return err
	}
	// An inner join needs both sides, the right side of a left join the left
	// (the other) side; the left side of a left join and both sides of an
	// outer join need only one, but forward nothing for a key absent on
	// both.
	otherRequired := p.kind == innerJoin || (p.kind == leftJoin && p.side == rightSide)
	if otherV == nil {
		if otherRequired || (c.New == nil && c.Old == nil) {
			return nil
		}
	}
	ts := r.Timestamp
	if otherV != nil && otherTS.After(ts) {
		ts = otherTS
	}
	// result is the join of one value of this side (new or old) with the
	// other side's, nil where the key has no result.
	result := func(v any) (any, error) {
		switch {
		case v != nil,
			p.kind == outerJoin && otherV != nil,
			p.kind == leftJoin && p.side == rightSide:
			return p.joiner(r.Key, v, otherV)
		}
		return nil, nil
	}
	newV, err := result(c.New)
	if err != nil {
		return err
	}
	var oldV any
	if p.old.send {
		if oldV, err = result(c.Old); err != nil {
			return err
		}
	}
	r = r.WithValue(change{New: newV, Old: oldV})
	r.Timestamp = ts
	return p.ctx.Forward(r)
}

func (p *tableJoinProcessor) Close() error { return nil }

// joinView reads a table-table join's result on demand from both sides'
// views (KS's KTableKTable*JoinValueGetter).
func joinView(lv, rv *viewSupplier, joiner ValueJoiner, kind joinKind) *viewSupplier {
	stores := append(append([]string(nil), lv.stores...), rv.stores...)
	return &viewSupplier{stores: stores, open: func(ctx ProcessorContext) tableView {
		getL, getR := lv.open(ctx), rv.open(ctx)
		return func(key any) (any, time.Time, error) {
			l, lts, err := getL(key)
			if err != nil {
				return nil, time.Time{}, err
			}
			if l == nil && kind != outerJoin {
				return nil, time.Time{}, nil
			}
			r, rts, err := getR(key)
			if err != nil {
				return nil, time.Time{}, err
			}
			if (r == nil && kind == innerJoin) || (l == nil && r == nil) {
				return nil, time.Time{}, nil
			}
			v, err := joiner(key, l, r)
			if err != nil {
				return nil, time.Time{}, err
			}
			return v, maxTime(lts, rts), nil
		}
	}}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
