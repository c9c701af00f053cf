package topology

import (
	"fmt"
	"reflect"

	"github.com/eos-runner/eos-runner/serde"
)

// Grouped tables, as Kafka Streams' KGroupedTable: a table re-keyed by a
// selector and aggregated per new key. Unlike a grouped stream's, a grouped
// table's aggregate must forget a value when the table updates or deletes
// it, so every update travels as a subtraction of the old value and an
// addition of the new one (KS's KTableRepartitionMap, then KTableAggregate
// or KTableReduce):
//
//  1. The grouping node (KTABLE-SELECT) turns on old values upstream
//     (enableOld) and maps each change's old and new entries through the
//     selector. If both map to the same group key it forwards one change
//     carrying both; otherwise the old pair first, as change{Old} to its
//     old group, then the new pair, as change{New} to its new group. An
//     entry that maps to a nil key or value is left out.
//  2. The changes always go through the repartition topic
//     `<application.id>-<name>-repartition`, both values in each record
//     (changeSerde), so each reaches the task owning its group.
//  3. The aggregation node subtracts the old value from the group's
//     aggregate first, then adds the new one, and stores the result with its
//     timestamp (serde.Timestamped), as KS's timestamped stores do.
//
// The subtraction must precede the addition within a group, or an update
// that stays in its group would pass through a state that counts the value
// twice (KS's testRemoveOldBeforeAddNew); across groups the order is the
// repartition topic's, one record after the other.

// GroupedTable is a table grouped by a new key, ready to aggregate
// (Table.GroupBy).
type GroupedTable struct {
	t    *Table
	s    *Stream // the grouping node, forwarding changes keyed by group
	g    Grouped
	name string  // Named option of GroupBy, for the repartition topic
	repa *Stream // the repartitioned stream, shared when name is set
}

// GroupBy groups the table by a new key: selector maps each entry to its
// group key and the value to aggregate (KS's KTable.groupBy). A selector
// that returns a nil key or value leaves the entry out of every group; an
// error goes to the error policy.
//
// It always repartitions, through `<application.id>-<name>-repartition`,
// where name is the Named option, else the aggregation's store name (stable
// across redeploys). The topic's records carry an update's old and new
// values together, in Kafka Streams' layout over g.Value; g.Key and g.Value
// are required. Grouping turns on old values for this table (the
// subtractions need them), so the table nodes upstream compute them too.
// Named names the repartition topic only; the grouping node is
// KTABLE-SELECT-... (Kafka Streams names it after Grouped's name too).
//
// Counting users per region, from a table of user -> region:
//
//	perRegion := b.Table("user-regions", topology.Consumed{Key: str, Value: str}, topology.Materialized{}).
//		GroupBy(func(user, region any) (any, any, error) { return region, user, nil },
//			topology.Grouped{Key: str, Value: str}).
//		Count(topology.Materialized{Name: "users-per-region"})
//	perRegion.ToStream().To("region-counts", topology.Produced{Key: str, Value: serde.Int64{}})
//
// A user moving from one region to another is one update of the source
// table, and two of the result: the old region's count goes down, then the
// new one's up.
func (t *Table) GroupBy(selector func(key, value any) (newKey, newValue any, err error), g Grouped, opts ...Option) *GroupedTable {
	var o nodeOptions
	for _, opt := range opts {
		opt(&o)
	}
	gt := &GroupedTable{t: t, g: g, name: o.name}
	if selector == nil {
		t.b.errorf("group-by after %q: nil selector", t.s.node.Name)
		return gt
	}
	if !t.usable("group-by") {
		return gt
	}
	if g.Key == nil || g.Value == nil {
		t.b.errorf("group-by after %q: a grouped table is always repartitioned: Grouped needs key and value serdes", t.s.node.Name)
		return gt
	}
	t.enableOld()
	gt.s = t.s.addTable("SELECT", func() Processor {
		return &tableGroupByProcessor{selector: selector}
	}, true, nil)
	return gt
}

// tableGroupByProcessor is KS's KTableRepartitionMap processor (without
// versioned tables' out-of-order skipping).
type tableGroupByProcessor struct {
	selector func(key, value any) (any, any, error)
	ctx      ProcessorContext
}

func (p *tableGroupByProcessor) Init(ctx ProcessorContext) error { p.ctx = ctx; return nil }

func (p *tableGroupByProcessor) Process(r Record) error {
	if r.Key == nil {
		dropped(p.ctx, "null-key", fmt.Errorf("table group-by: record with a nil key"))
		return nil
	}
	c := r.Value.(change)
	// pair maps one value of the change; ok is false when there is nothing
	// to forward for it.
	pair := func(v any) (k, nv any, ok bool, err error) {
		if v == nil {
			return nil, nil, false, nil
		}
		k, nv, err = p.selector(r.Key, v)
		return k, nv, err == nil && k != nil && nv != nil, err
	}
	newK, newV, newOK, err := pair(c.New)
	if err != nil {
		return err
	}
	oldK, oldV, oldOK, err := pair(c.Old)
	if err != nil {
		return err
	}
	if newOK && oldOK && sameKey(oldK, newK) {
		return p.ctx.Forward(Record{Key: oldK, Value: change{New: newV, Old: oldV}, Headers: r.Headers, Timestamp: r.Timestamp})
	}
	if oldOK {
		if err := p.ctx.Forward(Record{Key: oldK, Value: change{Old: oldV}, Headers: r.Headers, Timestamp: r.Timestamp}); err != nil {
			return err
		}
	}
	if newOK {
		return p.ctx.Forward(Record{Key: newK, Value: change{New: newV}, Headers: r.Headers, Timestamp: r.Timestamp})
	}
	return nil
}

func (p *tableGroupByProcessor) Close() error { return nil }

// sameKey is KS's equals on group keys: reflect.DeepEqual, which is == for
// comparable keys and also compares []byte and map keys (where == would
// panic). Keys it tells apart that serialize alike only cost a transient
// state downstream (subtraction and addition as two updates), as a Java key
// type without equals does in KS (testNoEqualsAndNotSameObject).
func sameKey(a, b any) bool { return reflect.DeepEqual(a, b) }

// Count counts the entries per group (KS's KGroupedTable.count): an entry
// joining a group adds one, one leaving it (deleted, or moved to another
// group) subtracts one; a group whose entries all left stays, at zero.
// Values are int64. The result is materialized in m's store (name
// generated when empty, KTABLE-AGGREGATE-STATE-STORE-...), changelog
// `<application.id>-<store>-changelog`; processing waits for its restore.
// Its values carry the timestamp of the update that last changed them
// (serde.Timestamped over m.Value, default Int64).
func (gt *GroupedTable) Count(m Materialized) *Table {
	return gt.aggregate("AGGREGATE", "count", m, serde.Int64{}, func() any { return int64(0) },
		func(_, _, agg any) (any, error) { return agg.(int64) + 1, nil },
		func(_, _, agg any) (any, error) { return agg.(int64) - 1, nil })
}

// Reduce combines the values per group (KS's KGroupedTable.reduce): the
// first value of a group is its aggregate; adder(aggregate, value) adds a
// value joining the group, subtractor(aggregate, value) removes one leaving
// it, before the new value is added. A subtractor returning nil deletes the
// group from the result (a tombstone through ToStream); the next value to
// join starts it again. The store is as for Count, its value serde m.Value,
// default the Grouped value serde.
func (gt *GroupedTable) Reduce(adder, subtractor func(agg, value any) (any, error), m Materialized) *Table {
	if adder == nil || subtractor == nil {
		gt.t.b.errorf("reduce after %q: nil adder or subtractor", gt.t.s.node.Name)
		return gt.t
	}
	return gt.aggregate("REDUCE", "reduce", m, gt.g.Value, nil,
		func(_, v, agg any) (any, error) {
			if agg == nil {
				return v, nil
			}
			return adder(agg, v)
		},
		func(_, v, agg any) (any, error) { return subtractor(agg, v) })
}

// Aggregate folds the values per group (KS's KGroupedTable.aggregate): a
// group starts at init(); adder(key, value, aggregate) adds a value joining
// it, subtractor(key, value, aggregate) removes one leaving it, before the
// new value is added. A subtractor returning nil deletes the group from the
// result (a tombstone through ToStream); the next value to join starts it
// again from init(). The store is as for Count; m.Value, the aggregate's
// serde, is required.
func (gt *GroupedTable) Aggregate(init func() any, adder, subtractor func(key, value, agg any) (any, error), m Materialized) *Table {
	if init == nil || adder == nil || subtractor == nil {
		gt.t.b.errorf("aggregate after %q: nil initializer, adder or subtractor", gt.t.s.node.Name)
		return gt.t
	}
	return gt.aggregate("AGGREGATE", "aggregate", m, nil, init, adder, subtractor)
}

// aggregate adds the repartition and the aggregation node; init nil means
// add receives a nil aggregate for an empty group.
func (gt *GroupedTable) aggregate(prefix, op string, m Materialized, valueDefault serde.Serde, init func() any,
	add, sub func(key, value, agg any) (any, error)) *Table {
	b := gt.t.b
	if gt.s == nil { // GroupBy reported why
		return gt.t
	}
	if m.Name == "" {
		m.Name = fmt.Sprintf("KTABLE-AGGREGATE-STATE-STORE-%010d", b.seq)
		b.seq++
	}
	if m.Key == nil {
		m.Key = gt.g.Key
	}
	if m.Value == nil {
		m.Value = valueDefault
	}
	if m.TTL != 0 {
		// An expired group would be gone when a subtraction for it arrives,
		// which then cannot be applied: the aggregate would go wrong silently.
		b.errorf("%s %q: a grouped table's aggregate cannot expire (TTL)", op, m.Name)
	}
	var vs serde.Serde
	if m.Value != nil {
		vs = serde.Timestamped{Inner: m.Value}
	}
	b.AddStore(StoreSpec{Name: m.Name, KeySerde: m.Key, ValueSerde: vs})
	src := gt.repartitioned(m.Name)
	store := m.Name
	t := &Table{b: b, store: store, key: m.Key, value: m.Value, old: &oldValues{}, view: storeView(store, true)}
	old := t.old
	t.s = src.addTable(prefix, func() Processor {
		return &tableAggregateProcessor{store: store, init: init, add: add, sub: sub, old: old}
	}, false, []Option{WithStores(store)})
	return t
}

// repartitioned is the grouping node's output read back from the
// repartition topic, named after the Named option of GroupBy (then shared
// by every aggregation of this grouped table, as in KS) or else after store.
func (gt *GroupedTable) repartitioned(store string) *Stream {
	if gt.name != "" && gt.repa != nil {
		return gt.repa
	}
	name := gt.name
	if name == "" {
		name = store
	}
	gt.repa = gt.s.Repartition(name, Produced{Key: gt.g.Key, Value: changeSerde{inner: gt.g.Value}})
	return gt.repa
}

// tableAggregateProcessor is KS's KTableAggregate and KTableReduce: subtract
// the change's old value from the group's aggregate, add the new one, store
// the result with its timestamp and forward the change.
//
// The timestamp is the record's, or the later of it and the stored
// aggregate's when the record changed an existing aggregate (KS: the
// subtraction, or an addition to a present aggregate, takes the max). A nil
// result deletes the group.
type tableAggregateProcessor struct {
	store    string
	init     func() any // nil: add takes a nil aggregate (Reduce)
	add, sub func(key, value, agg any) (any, error)
	old      *oldValues
	ctx      ProcessorContext
	kv       KeyValueStore
}

func (p *tableAggregateProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.kv = ctx, ctx.Store(p.store)
	return nil
}

func (p *tableAggregateProcessor) Process(r Record) error {
	if r.Key == nil {
		dropped(p.ctx, "null-key", fmt.Errorf("table aggregation %s: record with a nil key", p.store))
		return nil
	}
	c := r.Value.(change)
	prev, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	var oldAgg any
	ts := r.Timestamp
	if prev != nil {
		vt := prev.(serde.ValueAndTimestamp)
		oldAgg = vt.Value
		if vt.Timestamp.After(ts) && (c.Old != nil || c.New != nil) {
			ts = vt.Timestamp
		}
	}
	agg := oldAgg
	if c.Old != nil && agg != nil {
		if agg, err = p.sub(r.Key, c.Old, agg); err != nil {
			return err
		}
	}
	if c.New != nil {
		if agg == nil && p.init != nil {
			agg = p.init()
		}
		if agg, err = p.add(r.Key, c.New, agg); err != nil {
			return err
		}
	}
	if agg == nil {
		err = p.kv.Delete(r.Key)
	} else {
		err = p.kv.Put(r.Key, serde.ValueAndTimestamp{Value: agg, Timestamp: ts})
	}
	if err != nil {
		return err
	}
	if !p.old.send {
		oldAgg = nil
	}
	out := r.WithValue(change{New: agg, Old: oldAgg})
	out.Timestamp = ts
	return p.ctx.Forward(out)
}

func (p *tableAggregateProcessor) Close() error { return nil }
