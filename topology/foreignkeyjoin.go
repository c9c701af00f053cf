package topology

import (
	"bytes"
	"fmt"

	"github.com/eos-runner/eos-runner/serde"
)

// The foreign-key table-table join, Kafka Streams' KIP-213
// (KTableImpl.doJoinOnForeignKey and the foreignkeyjoin package). Each left
// value names a right key, its foreign key; the result, keyed like the left
// table, holds joiner(leftKey, leftValue, right[fk(leftValue)]).
//
// The two tables need not be co-partitioned; the join goes through two
// internal topics, in three steps:
//
//  1. Left table's sub-topology (registration): each left change becomes
//     subscriptions, keyed by foreign key, on
//     `<app>-<name>-subscription-registration-topic`: subscribe to the new
//     foreign key, unsubscribe from the old one when it changed, each
//     carrying the hash of the new left value (none for a deletion).
//  2. Right table's sub-topology: a subscription updates the subscription
//     store (keyed by foreign key then left key, so the subscribers of one
//     foreign key are one range scan) and is answered with the right value
//     as of now; a right change is sent to every subscriber of its key.
//     Answers go, keyed by left key, on
//     `<app>-<name>-subscription-response-topic`.
//  3. Left table's sub-topology again (resolution): an answer whose hash is
//     not the hash of the left table's current value is stale (the left
//     value changed after the subscription was sent; its newer subscription
//     answers) and is dropped; otherwise the result is joined and
//     materialized.
//
// Invariants:
//   - the subscription topic has the right table's partition count and the
//     response topic the left's (internal topics take their reader's count,
//     processor/partitions.go), and records are partitioned by their key
//     bytes, so a subscription reaches the task holding its foreign key and
//     an answer the task holding its left key, as long as the foreign key
//     serde writes a key as the right table's key serde does;
//   - a left key's last subscription, and only it, carries the hash of the
//     left key's current value, so of all answers in flight for a left key
//     only those of its latest value produce a result: a foreign-key
//     change can never leave a result joined with the old foreign key's
//     value behind.
//
// Rejected: answering in the right sub-topology with the whole join result
// (no resolution step). The left value would travel to the right side in
// each subscription and be stored there, and a stale answer could not be
// told from a current one without the left table at hand.

// ForeignKeyJoined names a foreign-key join's internal topics and stores and
// gives the serdes they need (KS's TableJoined plus the Materialized of the
// result).
type ForeignKeyJoined struct {
	// Name names the internal topics
	// `<application.id>-<Name>-subscription-registration-topic` and
	// `<application.id>-<Name>-subscription-response-topic`, the stores
	// `<Name>-subscription-store` and the result store, and the nodes
	// `<Name>-...`. Empty: generated (`KTABLE-FK-JOIN-<n>`), which changes
	// when the topology does; name joins whose state must survive a
	// redeploy.
	Name string
	// ForeignKey serializes foreign keys: the subscription topic's key and
	// the subscription store's key prefix. Default: the right table's key
	// serde. It must write a key as the right table's key serde does, or
	// subscriptions reach the wrong partition of the right table.
	ForeignKey serde.Serde
	// Value is the left table's value serde, to hash left values. Default:
	// the left table's.
	Value serde.Serde
	// OtherValue is the right table's value serde, for the response topic.
	// Default: the right table's.
	OtherValue serde.Serde
	// Result is the serde of the joiner's results, for the result store.
	// Required.
	Result serde.Serde
	// Store names the store materializing the result; default
	// `<Name>-result-store`. Its changelog is
	// `<application.id>-<Store>-changelog`.
	Store string
}

// JoinForeignKey joins each left entry with the right table's entry whose
// key fk extracts from the left value (KS's KTable.join(other,
// foreignKeyExtractor, joiner)): the result, keyed like the left table,
// holds joiner(leftKey, leftValue, rightValue) for every left key whose
// foreign key is present on the right. A left update, a foreign-key change
// and a right update each emit the left key's new result; a left deletion,
// a right deletion, and a change to a foreign key absent on the right emit
// a deletion (a tombstone through ToStream), even where the left key had no
// result, as KS does. A left value whose foreign key is nil is dropped
// (counted, reason "null-foreign-key"); fk is never called with nil.
//
// The result's timestamp is the larger of the left record's and the right
// value's when a subscription is answered, the right record's on a right
// update. It is materialized in fj.Store (key: the left key serde, value:
// fj.Result). The tables may have any partition counts: see the file
// comment for the internal topics (created by the runner, with its
// repartition topic settings) and the processing, which waits for the
// restore of the subscription and result stores.
func (t *Table) JoinForeignKey(other *Table, fk func(value any) (any, error), joiner ValueJoiner, fj ForeignKeyJoined, opts ...Option) *Table {
	return t.joinForeignKey(other, fk, joiner, fj, false, opts)
}

// LeftJoinForeignKey is JoinForeignKey keeping every left key (KS's
// KTable.leftJoin(other, foreignKeyExtractor, joiner)): joiner(leftKey,
// leftValue, nil) where the foreign key is absent on the right or nil (fk
// may return nil); only a left deletion deletes the result.
func (t *Table) LeftJoinForeignKey(other *Table, fk func(value any) (any, error), joiner ValueJoiner, fj ForeignKeyJoined, opts ...Option) *Table {
	return t.joinForeignKey(other, fk, joiner, fj, true, opts)
}

// fkJoin is what the nodes of one foreign-key join share.
type fkJoin struct {
	name                string // the join's Name
	subTopic, respTopic string // internal topics, unprefixed
	fk                  func(value any) (any, error)
	fkSerde             serde.Serde
	leftKey, leftValue  serde.Serde
	left                bool // a left join
	subStore            string
}

// subscriptionTopic and responseTopic are the internal topics' full names;
// primary keys are serialized as on the response topic, foreign keys as on
// the subscription topic, and left values are hashed as serialized for
// `<subscription topic>-vh` (KS's pseudo-topic).
func (j *fkJoin) subscriptionTopic(ctx ProcessorContext) string {
	return TopicName(ctx.ApplicationID(), j.subTopic, true)
}

func (j *fkJoin) responseTopic(ctx ProcessorContext) string {
	return TopicName(ctx.ApplicationID(), j.respTopic, true)
}

func (t *Table) joinForeignKey(other *Table, fk func(value any) (any, error), joiner ValueJoiner, fj ForeignKeyJoined, left bool, opts []Option) *Table {
	b := t.b
	op := "foreign-key join"
	if left {
		op = "foreign-key left join"
	}
	if other == nil || fk == nil || joiner == nil {
		b.errorf("%s after %q: nil table, foreign-key extractor or joiner", op, t.s.node.Name)
		return t
	}
	if !t.usable(op) || !other.usable(op) {
		return t
	}
	if fj.Name == "" {
		fj.Name = fmt.Sprintf("KTABLE-FK-JOIN-%010d", b.seq)
		b.seq++
	}
	if fj.ForeignKey == nil {
		fj.ForeignKey = other.key
	}
	if fj.Value == nil {
		fj.Value = t.value
	}
	if fj.OtherValue == nil {
		fj.OtherValue = other.value
	}
	if fj.Store == "" {
		fj.Store = fj.Name + "-result-store"
	}
	switch {
	case t.key == nil || fj.Value == nil:
		b.errorf("%s %q: the left table's key and value serdes are unknown (set ForeignKeyJoined.Value)", op, fj.Name)
	case fj.ForeignKey == nil || fj.OtherValue == nil:
		b.errorf("%s %q: the right table's key and value serdes are unknown (set ForeignKeyJoined.ForeignKey and OtherValue)", op, fj.Name)
	case fj.Result == nil:
		b.errorf("%s %q: ForeignKeyJoined.Result (the result serde) is required", op, fj.Name)
	}
	// KS: the left side needs old values to unsubscribe from an old foreign
	// key; the right side's are KS's too (it compares them to skip
	// unchanged values in some versions; harmless here).
	t.enableOld()
	other.enableOld()
	n := fj.Name
	j := &fkJoin{name: n, subTopic: n + "-subscription-registration-topic", respTopic: n + "-subscription-response-topic",
		fk: fk, fkSerde: fj.ForeignKey, leftKey: t.key, leftValue: fj.Value, left: left, subStore: n + "-subscription-store"}

	// 1. Registration, in the left table's sub-topology.
	send := t.s.add("FK-JOIN-SUBSCRIPTION-REGISTRATION", func() Processor { return &fkSendProcessor{j: j} },
		false, []Option{Named(n + "-subscription-registration-processor")})
	subSink, _ := b.newNode(SinkNode, "SINK", []Option{Named(n + "-subscription-registration-sink")})
	subSink.Topics, subSink.Internal = []string{j.subTopic}, true
	subSink.KeySerde, subSink.ValueSerde = fj.ForeignKey, subscriptionSerde{}
	connect(send.node, subSink)

	// 2. The right table's sub-topology.
	subSrc, _ := b.newNode(SourceNode, "SOURCE", []Option{Named(n + "-subscription-registration-source")})
	subSrc.Topics, subSrc.Internal = []string{j.subTopic}, true
	subSrc.KeySerde, subSrc.ValueSerde = fj.ForeignKey, subscriptionSerde{}
	b.AddStore(StoreSpec{Name: j.subStore, KeySerde: serde.Bytes{}, ValueSerde: serde.Timestamped{Inner: subscriptionSerde{}}})
	receive := (&Stream{b: b, node: subSrc}).add("FK-JOIN-SUBSCRIPTION-RECEIVE", func() Processor { return &fkReceiveProcessor{j: j} },
		false, []Option{Named(n + "-subscription-receive"), WithStores(j.subStore)})
	rv := other.view
	answer := receive.add("FK-JOIN-SUBSCRIPTION-JOIN-FOREIGN", func() Processor { return &fkAnswerProcessor{j: j, view: rv} },
		false, []Option{Named(n + "-subscription-join-foreign"), WithStores(rv.stores...)})
	fanOut := other.s.add("FK-JOIN-FOREIGN-JOIN-SUBSCRIPTION", func() Processor { return &fkFanOutProcessor{j: j} },
		false, []Option{Named(n + "-foreign-join-subscription"), WithStores(j.subStore)})
	respSink, _ := b.newNode(SinkNode, "SINK", []Option{Named(n + "-subscription-response-sink")})
	respSink.Topics, respSink.Internal = []string{j.respTopic}, true
	// Answers carry the primary key as the bytes the response topic's key
	// serde wrote in the left sub-topology (fkSendProcessor), so the sink
	// writes them as they are.
	respSink.KeySerde, respSink.ValueSerde = serde.Bytes{}, responseSerde{value: fj.OtherValue}
	connect(answer.node, respSink)
	connect(fanOut.node, respSink)

	// 3. Resolution, in the left table's sub-topology (the left view's
	// stores put it there).
	respSrc, _ := b.newNode(SourceNode, "SOURCE", []Option{Named(n + "-subscription-response-source")})
	respSrc.Topics, respSrc.Internal = []string{j.respTopic}, true
	respSrc.KeySerde, respSrc.ValueSerde = t.key, responseSerde{value: fj.OtherValue}
	lv := t.view
	resolve := (&Stream{b: b, node: respSrc}).add("FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER", func() Processor {
		return &fkResolveProcessor{j: j, view: lv, joiner: joiner}
	}, false, []Option{Named(n + "-subscription-response-resolver"), WithStores(lv.stores...)})

	b.AddStore(StoreSpec{Name: fj.Store, KeySerde: t.key, ValueSerde: serde.Timestamped{Inner: fj.Result}})
	nt := &Table{b: b, store: fj.Store, key: t.key, value: fj.Result, old: &oldValues{}, view: storeView(fj.Store, true)}
	store, old := fj.Store, nt.old
	resultOpts := append([]Option{Named(n + "-result"), WithStores(store)}, opts...)
	nt.s = resolve.addTable("FK-JOIN-OUTPUT", func() Processor {
		return &tableSourceProcessor{store: store, old: old}
	}, false, resultOpts)
	return nt
}

// fkSendProcessor turns left changes into subscriptions (KS's
// SubscriptionSendProcessorSupplier).
type fkSendProcessor struct {
	j                  *fkJoin
	ctx                ProcessorContext
	subTopic, hashName string
	respTopic          string
}

func (p *fkSendProcessor) Init(ctx ProcessorContext) error {
	p.ctx = ctx
	p.subTopic, p.respTopic = p.j.subscriptionTopic(ctx), p.j.responseTopic(ctx)
	p.hashName = p.subTopic + "-vh"
	return nil
}

func (p *fkSendProcessor) Process(r Record) error {
	c := r.Value.(change)
	if r.Key == nil {
		return nil // a table node never forwards one
	}
	pk, err := p.j.leftKey.Serialize(p.respTopic, r.Key)
	if err != nil {
		return fmt.Errorf("foreign-key join %s: primary key: %w", p.j.name, err)
	}
	var hash valueHash
	if c.New != nil {
		vb, err := p.j.leftValue.Serialize(p.hashName, c.New)
		if err != nil {
			return fmt.Errorf("foreign-key join %s: left value: %w", p.j.name, err)
		}
		hash = hashBytes(vb)
	}
	send := func(fk any, instr fkInstruction) error {
		out := r.WithKey(fk)
		out.Value = subscription{hash: hash, instruction: instr, pk: pk}
		return p.ctx.Forward(out)
	}
	var oldFK, newFK any
	var oldBytes, newBytes []byte
	if c.Old != nil {
		if oldFK, oldBytes, err = p.foreignKey(c.Old); err != nil {
			return err
		}
	}
	if c.New != nil {
		if newFK, newBytes, err = p.foreignKey(c.New); err != nil {
			return err
		}
	}
	if p.j.left {
		// KS's leftJoinInstructions: a nil foreign key subscribes to
		// nothing but is still answered (joined with nil). A deletion is
		// answered twice, by the old foreign key and by the nil one: two
		// tombstones, as in KS.
		switch {
		case c.Old != nil:
			if oldFK != nil && !bytes.Equal(oldBytes, newBytes) {
				if err := send(oldFK, deleteKeyAndPropagate); err != nil {
					return err
				}
			}
			return send(newFK, propagateNullIfNoFKValue)
		case c.New != nil:
			return send(newFK, propagateNullIfNoFKValue)
		}
		return nil
	}
	// KS's defaultJoinInstructions.
	switch {
	case c.Old != nil:
		if oldFK == nil {
			return p.nullFK()
		}
		if c.New == nil {
			return send(oldFK, deleteKeyAndPropagate)
		}
		if newFK == nil {
			return p.nullFK()
		}
		if !bytes.Equal(oldBytes, newBytes) {
			if err := send(oldFK, deleteKeyNoPropagate); err != nil {
				return err
			}
		}
		// The foreign key may have changed: overwrite any earlier result,
		// with a deletion if the new one has no right value.
		return send(newFK, propagateNullIfNoFKValue)
	case c.New != nil:
		if newFK == nil {
			return p.nullFK()
		}
		return send(newFK, propagateOnlyIfFKValue)
	}
	return nil
}

// foreignKey extracts a value's foreign key and its bytes (nil, nil for a
// nil foreign key).
func (p *fkSendProcessor) foreignKey(v any) (any, []byte, error) {
	fk, err := p.j.fk(v)
	if err != nil || fk == nil {
		return nil, nil, err
	}
	b, err := p.j.fkSerde.Serialize(p.subTopic, fk)
	if err != nil {
		return nil, nil, fmt.Errorf("foreign-key join %s: foreign key: %w", p.j.name, err)
	}
	return fk, b, nil
}

func (p *fkSendProcessor) nullFK() error {
	dropped(p.ctx, "null-foreign-key", fmt.Errorf("foreign-key join %s: nil foreign key", p.j.name))
	return nil
}

func (p *fkSendProcessor) Close() error { return nil }

// fkReceiveProcessor records a subscription in the subscription store, or
// removes it (KS's SubscriptionReceiveProcessorSupplier), and passes it on
// to be answered.
type fkReceiveProcessor struct {
	j        *fkJoin
	ctx      ProcessorContext
	kv       KeyValueStore
	subTopic string
}

func (p *fkReceiveProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.kv, p.subTopic = ctx, ctx.Store(p.j.subStore), p.j.subscriptionTopic(ctx)
	return nil
}

func (p *fkReceiveProcessor) Process(r Record) error {
	s, ok := r.Value.(subscription)
	if !ok {
		return fmt.Errorf("foreign-key join %s: subscription topic record without a subscription", p.j.name)
	}
	if r.Key == nil {
		if s.instruction != propagateNullIfNoFKValue {
			dropped(p.ctx, "null-foreign-key", fmt.Errorf("foreign-key join %s: subscription with a nil foreign key", p.j.name))
			return nil
		}
		return p.ctx.Forward(r) // a left join's nil foreign key: answered with nil, not stored
	}
	fkb, err := p.j.fkSerde.Serialize(p.subTopic, r.Key)
	if err != nil {
		return fmt.Errorf("foreign-key join %s: foreign key: %w", p.j.name, err)
	}
	key := combinedKey(fkb, s.pk)
	switch s.instruction {
	case deleteKeyAndPropagate, deleteKeyNoPropagate:
		err = p.kv.Delete(key)
	default:
		err = p.kv.Put(key, serde.ValueAndTimestamp{Value: s, Timestamp: r.Timestamp})
	}
	if err != nil {
		return err
	}
	return p.ctx.Forward(r)
}

func (p *fkReceiveProcessor) Close() error { return nil }

// fkAnswerProcessor answers a subscription with the right value as of now
// (KS's SubscriptionJoinProcessorSupplier), keyed by the primary key's
// bytes.
type fkAnswerProcessor struct {
	j    *fkJoin
	view *viewSupplier
	ctx  ProcessorContext
	get  tableView
}

func (p *fkAnswerProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.get = ctx, p.view.open(ctx)
	return nil
}

func (p *fkAnswerProcessor) Process(r Record) error {
	s := r.Value.(subscription)
	var foreign any
	ts := r.Timestamp
	if r.Key != nil {
		v, vts, err := p.get(r.Key)
		if err != nil {
			return err
		}
		if v != nil {
			foreign, ts = v, maxTime(ts, vts)
		}
	}
	switch s.instruction {
	case deleteKeyNoPropagate:
		return nil
	case deleteKeyAndPropagate:
		foreign = nil
	case propagateOnlyIfFKValue:
		if foreign == nil {
			return nil
		}
	}
	out := r.WithKey(s.pk)
	out.Value = response{hash: s.hash, foreign: foreign}
	out.Timestamp = ts
	return p.ctx.Forward(out)
}

func (p *fkAnswerProcessor) Close() error { return nil }

// fkFanOutProcessor sends a right change to every subscriber of its key
// (KS's ForeignTableJoinProcessorSupplier), with each subscription's hash.
type fkFanOutProcessor struct {
	j        *fkJoin
	ctx      ProcessorContext
	kv       KeyValueStore
	subTopic string
}

func (p *fkFanOutProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.kv, p.subTopic = ctx, ctx.Store(p.j.subStore), p.j.subscriptionTopic(ctx)
	return nil
}

func (p *fkFanOutProcessor) Process(r Record) error {
	if r.Key == nil {
		dropped(p.ctx, "null-key", fmt.Errorf("foreign-key join %s: right record with a nil key", p.j.name))
		return nil
	}
	c := r.Value.(change)
	fkb, err := p.j.fkSerde.Serialize(p.subTopic, r.Key)
	if err != nil {
		return fmt.Errorf("foreign-key join %s: foreign key: %w", p.j.name, err)
	}
	type subscriber struct {
		pk   []byte
		hash valueHash
	}
	var subs []subscriber
	from, to := subscribersRange(fkb)
	if err := p.kv.Range(from, to, func(k, v any) error {
		_, pk, err := splitCombinedKey(k.([]byte))
		if err != nil {
			return err
		}
		subs = append(subs, subscriber{pk: pk, hash: v.(serde.ValueAndTimestamp).Value.(subscription).hash})
		return nil
	}); err != nil {
		return err
	}
	for _, s := range subs {
		out := r.WithKey(s.pk)
		out.Value = response{hash: s.hash, foreign: c.New}
		if err := p.ctx.Forward(out); err != nil {
			return err
		}
	}
	return nil
}

func (p *fkFanOutProcessor) Close() error { return nil }

// fkResolveProcessor joins an answer with the left table's current value,
// dropping a stale one (KS's ResponseJoinProcessorSupplier).
type fkResolveProcessor struct {
	j        *fkJoin
	view     *viewSupplier
	joiner   ValueJoiner
	ctx      ProcessorContext
	get      tableView
	hashName string
}

func (p *fkResolveProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.get = ctx, p.view.open(ctx)
	p.hashName = p.j.subscriptionTopic(ctx) + "-vh"
	return nil
}

func (p *fkResolveProcessor) Process(r Record) error {
	resp, ok := r.Value.(response)
	if !ok || r.Key == nil {
		return fmt.Errorf("foreign-key join %s: response topic record without a key or a response", p.j.name)
	}
	current, _, err := p.get(r.Key)
	if err != nil {
		return err
	}
	var hash valueHash
	if current != nil {
		vb, err := p.j.leftValue.Serialize(p.hashName, current)
		if err != nil {
			return fmt.Errorf("foreign-key join %s: left value: %w", p.j.name, err)
		}
		hash = hashBytes(vb)
	}
	if hash != resp.hash {
		dropped(p.ctx, "stale-foreign-key-response", fmt.Errorf("foreign-key join %s: the left value changed since the subscription", p.j.name))
		return nil
	}
	var result any
	if resp.foreign != nil || (p.j.left && current != nil) {
		if result, err = p.joiner(r.Key, current, resp.foreign); err != nil {
			return err
		}
	}
	return p.ctx.Forward(r.WithValue(result))
}

func (p *fkResolveProcessor) Close() error { return nil }
