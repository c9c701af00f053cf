package topology

import (
	"fmt"
	"time"

	"github.com/eos-runner/eos-runner/serde"
)

// Tables, as Kafka Streams' KTable: a changelog stream, the latest value per
// key. The nodes of a table forward changes to each other, never plain
// values: a change carries the key's new value and, when some node
// downstream needs it, the old one (KS's Change and sendOldValues). Only
// ToStream turns changes back into records (the new value; nil is a
// tombstone).
//
// Invariants a change must keep:
//   - every node downstream of a table node and upstream of ToStream
//     receives change values, and forwards change values;
//   - Old is set only where the node's sendOld flag is on, and the flag is
//     on for every node upstream of one whose flag is on (enableOld walks
//     up), so a node never reads an Old its parent did not compute;
//   - a table's view (value getter) answers what the table holds now, for
//     the key, from the stores it names: the join nodes that use it are
//     connected to those stores, which puts them in the same sub-topology,
//     on the same partitions.

// change is the value table nodes forward: the key's new value (nil: it was
// deleted) and, if sendOld is on, its previous one.
type change struct{ New, Old any }

// tableView reads a table as of now: the key's value and the timestamp of
// the record that set it (zero when unknown), or nil when the key is absent.
type tableView func(key any) (value any, ts time.Time, err error)

// viewSupplier opens a table's view in a task; stores are the state stores
// it reads, to be connected to every node that opens it.
type viewSupplier struct {
	stores []string
	open   func(ctx ProcessorContext) tableView
}

// oldValues is a table node's sendOldValues flag, set while the topology is
// built (before any processor exists) and read by its processors.
type oldValues struct {
	send   bool
	parent []*Table // tables whose old values this one needs to compute its own
}

// Table is a changelog stream: the latest value per key. Tables come from
// Builder.Table (a topic read as a table), from an aggregation of a grouped
// stream or table, or from a table operation (Filter, MapValues, a join).
type Table struct {
	b     *Builder
	s     *Stream // the node forwarding this table's changes
	store string  // the store materializing it, "" if it is computed on read
	key   serde.Serde
	value serde.Serde
	// windowed: the result of a windowed aggregation, whose node forwards
	// plain values; only ToStream applies to it.
	windowed bool
	view     *viewSupplier
	old      *oldValues
}

// StoreName is the name of the store holding the table ("" for a table
// computed on read, such as a Filter or MapValues result or a join).
func (t *Table) StoreName() string { return t.store }

// enableOld turns on old values for this table and every table it derives
// from (KS's enableSendingOldValues(true): materialized sources can always
// give them).
func (t *Table) enableOld() {
	if t.old == nil || t.old.send {
		return
	}
	t.old.send = true
	for _, p := range t.old.parent {
		p.enableOld()
	}
}

// usable reports (at Build) a table operation on a windowed aggregation's
// result, which this package does not support.
func (t *Table) usable(op string) bool {
	if t.windowed {
		t.b.errorf("%s after %q: table operations apply to non-windowed tables only (ToStream a windowed aggregation first)", op, t.s.node.Name)
		return false
	}
	return true
}

// ToStream emits every update of the table as a record: its new value, nil
// for a deletion (a tombstone). KS's KTable.toStream.
func (t *Table) ToStream(opts ...Option) *Stream {
	if t.windowed {
		return t.s
	}
	return t.s.addTable("TOSTREAM", stateless(func(ctx ProcessorContext, r Record) error {
		return ctx.Forward(r.WithValue(r.Value.(change).New))
	}), false, opts)
}

// addTable adds a KTABLE-<prefix> node below s.
func (s *Stream) addTable(prefix string, p ProcessorSupplier, keyChanged bool, opts []Option) *Stream {
	return s.add(prefix, p, keyChanged, append([]Option{tableNode()}, opts...))
}

// tableNode makes a node's generated name KTABLE-... instead of KSTREAM-....
func tableNode() Option { return func(o *nodeOptions) { o.family = "KTABLE" } }

// Table reads topic as a table (KS's StreamsBuilder.table): each record is
// the new value of its key, a nil value deletes it, and records with a nil
// key are dropped (counted, reason "null-key"). The table is materialized in
// a key-value store named m.Name (generated when empty) whose values carry
// the timestamp of the record that set them (serde.Timestamped over the
// value serde), as KS's timestamped stores do.
//
// The store needs no changelog of its own: the source topic is its
// changelog (KS's source-topic optimisation), restored up to the committed
// offset of the application's consumer group and no further, since the
// records after it will be processed. The topic should be compacted; the
// runner checks, and gives the store a changelog of its own when it is not
// (a deleted record would otherwise be missing from a restore).
func (b *Builder) Table(topic string, c Consumed, m Materialized, opts ...Option) *Table {
	src := b.Stream([]string{topic}, c, opts...)
	if m.Name == "" {
		m.Name = fmt.Sprintf("%s-STATE-STORE-%010d", topic, b.seq)
		b.seq++
	}
	if m.Key == nil {
		m.Key = c.Key
	}
	if m.Value == nil {
		m.Value = c.Value
	}
	if m.TTL != 0 {
		b.errorf("table %q: a TTL is for aggregations, not a table read from a topic", m.Name)
	}
	b.AddStore(StoreSpec{Name: m.Name, KeySerde: m.Key, ValueSerde: serde.Timestamped{Inner: m.Value}, SourceTopic: topic})
	t := &Table{b: b, store: m.Name, key: c.Key, value: c.Value, old: &oldValues{}}
	store, old := m.Name, t.old
	t.s = src.addTable("SOURCE", func() Processor {
		return &tableSourceProcessor{store: store, old: old}
	}, false, []Option{WithStores(store)})
	t.view = storeView(store, true)
	return t
}

// storeView is the view of a table materialized in store; timestamped says
// its values are serde.ValueAndTimestamp.
func storeView(store string, timestamped bool) *viewSupplier {
	return &viewSupplier{stores: []string{store}, open: func(ctx ProcessorContext) tableView {
		kv := ctx.Store(store)
		return func(key any) (any, time.Time, error) {
			v, err := kv.Get(key)
			if err != nil || v == nil {
				return nil, time.Time{}, err
			}
			if !timestamped {
				return v, time.Time{}, nil
			}
			vt := v.(serde.ValueAndTimestamp)
			return vt.Value, vt.Timestamp, nil
		}
	}}
}

// tableSourceProcessor is KS's KTableSource, materialized: put the record in
// the store and forward the change.
type tableSourceProcessor struct {
	store string
	old   *oldValues
	ctx   ProcessorContext
	kv    KeyValueStore
}

func (p *tableSourceProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.kv = ctx, ctx.Store(p.store)
	return nil
}

func (p *tableSourceProcessor) Process(r Record) error {
	if r.Key == nil {
		dropped(p.ctx, "null-key", fmt.Errorf("table %s: record with a nil key", p.store))
		return nil
	}
	prev, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	var oldValue any
	if prev != nil {
		oldValue = prev.(serde.ValueAndTimestamp).Value
	}
	if r.Value == nil {
		err = p.kv.Delete(r.Key)
	} else {
		err = p.kv.Put(r.Key, serde.ValueAndTimestamp{Value: r.Value, Timestamp: r.Timestamp})
	}
	if err != nil {
		return err
	}
	if !p.old.send {
		oldValue = nil
	}
	return p.ctx.Forward(r.WithValue(change{New: r.Value, Old: oldValue}))
}

func (p *tableSourceProcessor) Close() error { return nil }

// dropped counts a record a node drops on purpose, if the context counts
// drops (DropRecorder).
func dropped(ctx ProcessorContext, reason string, why error) {
	if d, ok := ctx.(DropRecorder); ok {
		d.RecordDropped(reason, why)
	}
}

// Filter keeps the entries for which pred(key, value) is true, KS's
// KTable.filter: an update that fails the predicate becomes a deletion of
// the key downstream (a tombstone through ToStream), unless old values are
// being sent and neither the new nor the old value passed, in which case
// nothing is forwarded (KS's KTableFilter).
func (t *Table) Filter(pred func(key, value any) bool, opts ...Option) *Table {
	return t.FilterE(infalliblePredicate(pred), false, opts...)
}

// FilterNot keeps the entries for which pred is false.
func (t *Table) FilterNot(pred func(key, value any) bool, opts ...Option) *Table {
	return t.FilterE(infalliblePredicate(pred), true, opts...)
}

// MapValues maps each entry's value with fn(key, value), KS's
// KTable.mapValues; deletions stay deletions (fn is not called with nil).
// The result is computed on read, not stored; valueSerde is its serde (for
// a later repartition or materialization).
func (t *Table) MapValues(fn func(key, value any) (any, error), valueSerde serde.Serde, opts ...Option) *Table {
	if !t.usable("map-values") {
		return t
	}
	nt := t.derive("MAPVALUES", fn, opts)
	nt.value = valueSerde
	return nt
}

// derive adds a node computing a table from t entry by entry: fn maps a
// present value (never nil) to the new table's value, nil meaning absent.
// The new table is computed on read from t's view.
func (t *Table) derive(prefix string, fn func(k, v any) (any, error), opts []Option) *Table {
	nt := &Table{b: t.b, key: t.key, value: t.value, old: &oldValues{parent: []*Table{t}}}
	old, parentView := nt.old, t.view
	apply := func(k, v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		return fn(k, v)
	}
	nt.s = t.s.addTable(prefix, func() Processor {
		return &tableMapProcessor{fn: apply, old: old}
	}, false, opts)
	nt.view = &viewSupplier{stores: parentView.stores, open: func(ctx ProcessorContext) tableView {
		get := parentView.open(ctx)
		return func(key any) (any, time.Time, error) {
			v, ts, err := get(key)
			if err != nil || v == nil {
				return nil, time.Time{}, err
			}
			out, err := apply(key, v)
			if err != nil || out == nil {
				return nil, time.Time{}, err
			}
			return out, ts, nil
		}
	}}
	return nt
}

// connectStores connects stores to n (idempotently).
func connectStores(n *Node, stores []string) {
	for _, s := range stores {
		if !contains(n.StoreNames, s) {
			n.StoreNames = append(n.StoreNames, s)
		}
	}
}

// tableMapProcessor is KS's KTableFilter and KTableMapValues, not
// materialized: compute the new (and, when sent, the old) value.
type tableMapProcessor struct {
	fn  func(k, v any) (any, error)
	old *oldValues
	ctx ProcessorContext
}

func (p *tableMapProcessor) Init(ctx ProcessorContext) error { p.ctx = ctx; return nil }

func (p *tableMapProcessor) Process(r Record) error {
	c := r.Value.(change)
	newV, err := p.fn(r.Key, c.New)
	if err != nil {
		return err
	}
	var oldV any
	if p.old.send {
		if oldV, err = p.fn(r.Key, c.Old); err != nil {
			return err
		}
		if newV == nil && oldV == nil {
			return nil // KS: nothing to forward
		}
	}
	return p.ctx.Forward(r.WithValue(change{New: newV, Old: oldV}))
}

func (p *tableMapProcessor) Close() error { return nil }
