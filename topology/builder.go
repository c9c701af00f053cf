package topology

import (
	"errors"
	"fmt"
	"time"

	"github.com/eos-runner/eos-runner/serde"
)

// Consumed gives a source its serdes and, optionally, how to read a
// record's event time (default: the record's own timestamp).
type Consumed struct {
	Key, Value serde.Serde
	Timestamp  TimestampExtractor
}

// Produced gives a sink its serdes.
type Produced struct{ Key, Value serde.Serde }

// Grouped gives the serdes of a grouped stream: the store's key serde, and
// those of a repartition topic if grouping needs one.
type Grouped struct{ Key, Value serde.Serde }

// Materialized names an aggregation's store and gives its serdes. An empty
// Name gets a generated one; a nil serde falls back to the grouping's (and to
// Int64 for Count's value).
type Materialized struct {
	Name       string
	Key, Value serde.Serde
	// TTL, for a key-value store (a non-windowed aggregation), expires the
	// entries not updated within it of stream time (StoreSpec.TTL). Zero:
	// never.
	TTL time.Duration
	// Retention, for a windowed aggregation's store, is how long (of stream
	// time) windows are kept, Kafka Streams' Materialized.withRetention.
	// Zero: the least the windows need, which is also the smallest allowed
	// (Build reports a smaller one): size + grace for TimeWindows, 2 * time
	// difference + grace for SlidingWindows, gap + grace for
	// SessionWindows. It sets the changelog's retention.ms too.
	Retention time.Duration
}

// KeyValue is one output of FlatMap.
type KeyValue struct{ Key, Value any }

// Branch is one arm of Stream.Split. A nil Predicate is the default branch,
// taking records that no earlier branch took.
type Branch struct {
	Name      string
	Predicate func(key, value any) bool
}

// Option adjusts a node a DSL method adds.
type Option func(*nodeOptions)

type nodeOptions struct {
	name    string
	stores  []string
	family  string // generated names' first part: KSTREAM (default) or KTABLE
	onError string // Node.OnError
}

// Named names the node instead of the generated KSTREAM-... name.
func Named(name string) Option { return func(o *nodeOptions) { o.name = name } }

// OnError gives the node an error policy of its own, instead of the
// application's on.error, for the records it fails: "dlq", "skip" or "fail"
// (see Node.OnError). The other nodes a DSL method adds keep the
// application's.
func OnError(policy string) Option { return func(o *nodeOptions) { o.onError = policy } }

// WithStores connects state stores (added with Builder.AddStore) to a
// Process node.
func WithStores(names ...string) Option {
	return func(o *nodeOptions) { o.stores = append(o.stores, names...) }
}

// Builder assembles a topology. Its methods record mistakes instead of
// failing at once; Build reports all of them, each naming its node.
type Builder struct {
	nodes  []*Node
	stores map[string]StoreSpec
	order  []string // store names in the order added
	seq    int
	errs   []error
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{stores: map[string]StoreSpec{}}
}

func (b *Builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

func (b *Builder) newNode(kind NodeKind, prefix string, opts []Option) (*Node, nodeOptions) {
	var o nodeOptions
	for _, opt := range opts {
		opt(&o)
	}
	name := o.name
	if name == "" {
		family := o.family
		if family == "" {
			family = "KSTREAM"
		}
		name = fmt.Sprintf("%s-%s-%010d", family, prefix, b.seq)
	}
	b.seq++
	n := &Node{Name: name, Kind: kind, OnError: o.onError}
	b.nodes = append(b.nodes, n)
	return n, o
}

func connect(parent, child *Node) {
	parent.Children = append(parent.Children, child)
	child.Parents = append(child.Parents, parent)
}

// AddStore declares a state store for the Processor API. Its changelog topic
// is `<application.id>-<name>-changelog`.
func (b *Builder) AddStore(spec StoreSpec) {
	switch {
	case spec.Name == "":
		b.errorf("store: empty name")
		return
	case spec.KeySerde == nil || spec.ValueSerde == nil:
		b.errorf("store %q: missing key or value serde", spec.Name)
	case spec.TTL < 0:
		b.errorf("store %q: negative TTL %v", spec.Name, spec.TTL)
	case spec.TTL > 0 && spec.Kind != KeyValueStoreKind:
		b.errorf("store %q: TTL is for key-value stores (a %v store expires by its Retention)", spec.Name, spec.Kind)
	}
	if _, dup := b.stores[spec.Name]; dup {
		b.errorf("store %q: declared twice", spec.Name)
		return
	}
	b.stores[spec.Name] = spec
	b.order = append(b.order, spec.Name)
}

// Stream reads topics with the given serdes.
func (b *Builder) Stream(topics []string, c Consumed, opts ...Option) *Stream {
	n, _ := b.newNode(SourceNode, "SOURCE", opts)
	n.Topics = topics
	n.KeySerde, n.ValueSerde = c.Key, c.Value
	n.Timestamp = c.Timestamp
	if len(topics) == 0 {
		b.errorf("source %q: no topic", n.Name)
	}
	if c.Key == nil || c.Value == nil {
		b.errorf("source %q: missing key or value serde", n.Name)
	}
	return &Stream{b: b, node: n}
}

// Stream is a record stream: every record is an independent event.
type Stream struct {
	b          *Builder
	node       *Node
	keyChanged bool // a key-changing op happened since the source: grouping repartitions
}

func (s *Stream) add(prefix string, p ProcessorSupplier, keyChanged bool, opts []Option) *Stream {
	n, o := s.b.newNode(ProcessorNode, prefix, opts)
	n.Supplier = p
	n.StoreNames = o.stores
	connect(s.node, n)
	return &Stream{b: s.b, node: n, keyChanged: s.keyChanged || keyChanged}
}

// Filter keeps the records for which pred is true.
func (s *Stream) Filter(pred func(key, value any) bool, opts ...Option) *Stream {
	return s.FilterE(infalliblePredicate(pred), opts...)
}

// FilterNot drops the records for which pred is true.
func (s *Stream) FilterNot(pred func(key, value any) bool, opts ...Option) *Stream {
	return s.Filter(func(k, v any) bool { return !pred(k, v) }, opts...)
}

// Map replaces key and value. Grouping its output repartitions.
func (s *Stream) Map(fn func(key, value any) (any, any, error), opts ...Option) *Stream {
	return s.add("MAP", stateless(func(ctx ProcessorContext, r Record) error {
		k, v, err := fn(r.Key, r.Value)
		if err != nil {
			return err
		}
		r.Key, r.Value = k, v
		return ctx.Forward(r)
	}), true, opts)
}

// MapValues replaces the value; the key stays, so grouping does not repartition.
func (s *Stream) MapValues(fn func(value any) (any, error), opts ...Option) *Stream {
	return s.add("MAPVALUES", stateless(func(ctx ProcessorContext, r Record) error {
		v, err := fn(r.Value)
		if err != nil {
			return err
		}
		return ctx.Forward(r.WithValue(v))
	}), false, opts)
}

// FlatMap turns each record into zero or more. Grouping its output repartitions.
func (s *Stream) FlatMap(fn func(key, value any) ([]KeyValue, error), opts ...Option) *Stream {
	return s.add("FLATMAP", stateless(func(ctx ProcessorContext, r Record) error {
		kvs, err := fn(r.Key, r.Value)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			out := r
			out.Key, out.Value = kv.Key, kv.Value
			if err := ctx.Forward(out); err != nil {
				return err
			}
		}
		return nil
	}), true, opts)
}

// FlatMapValues turns each value into zero or more, keeping the key.
func (s *Stream) FlatMapValues(fn func(value any) ([]any, error), opts ...Option) *Stream {
	return s.add("FLATMAPVALUES", stateless(func(ctx ProcessorContext, r Record) error {
		vs, err := fn(r.Value)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if err := ctx.Forward(r.WithValue(v)); err != nil {
				return err
			}
		}
		return nil
	}), false, opts)
}

// Peek calls fn for every record and passes it on unchanged.
func (s *Stream) Peek(fn func(key, value any), opts ...Option) *Stream {
	return s.add("PEEK", stateless(func(ctx ProcessorContext, r Record) error {
		fn(r.Key, r.Value)
		return ctx.Forward(r)
	}), false, opts)
}

// SelectKey sets a new key computed from the record. Grouping its output
// repartitions.
func (s *Stream) SelectKey(fn func(key, value any) any, opts ...Option) *Stream {
	return s.SelectKeyE(infallible(fn), opts...)
}

// Merge interleaves this stream and other, in the order records arrive.
func (s *Stream) Merge(other *Stream, opts ...Option) *Stream {
	n, _ := s.b.newNode(ProcessorNode, "MERGE", opts)
	n.Supplier = stateless(func(ctx ProcessorContext, r Record) error { return ctx.Forward(r) })
	connect(s.node, n)
	connect(other.node, n)
	return &Stream{b: s.b, node: n, keyChanged: s.keyChanged || other.keyChanged}
}

// Split routes each record to the first branch whose predicate holds (a nil
// predicate always holds), and drops it when none does. The returned map is
// keyed by branch name.
func (s *Stream) Split(branches []Branch, opts ...Option) map[string]*Stream {
	arms := make([]BranchE, len(branches))
	for i, br := range branches {
		arms[i] = BranchE{Name: br.Name}
		if br.Predicate != nil {
			arms[i].Predicate = infalliblePredicate(br.Predicate)
		}
	}
	return s.SplitE(arms, opts...)
}

// To writes the stream to topic with the given serdes.
func (s *Stream) To(topic string, p Produced, opts ...Option) {
	n, _ := s.b.newNode(SinkNode, "SINK", opts)
	n.Topics = []string{topic}
	n.KeySerde, n.ValueSerde = p.Key, p.Value
	if p.Key == nil || p.Value == nil {
		s.b.errorf("sink %q: missing key or value serde", n.Name)
	}
	connect(s.node, n)
}

// Process adds a node running a user Processor (the Processor API). Connect
// stores with WithStores; records the processor forwards continue down the
// returned stream. Grouping the result repartitions, since the processor may
// change keys.
func (s *Stream) Process(p ProcessorSupplier, opts ...Option) *Stream {
	return s.add("PROCESSOR", p, true, opts)
}

// Repartition writes the stream through the internal topic
// `<application.id>-<name>-repartition` and reads it back, so that records
// are partitioned by their current key.
func (s *Stream) Repartition(name string, p Produced) *Stream {
	if p.Key == nil || p.Value == nil {
		s.b.errorf("repartition %q: missing key or value serde", name)
	}
	topic := name + "-repartition"
	sink, _ := s.b.newNode(SinkNode, "REPARTITION-SINK", []Option{Named(name + "-repartition-sink")})
	sink.Topics, sink.Internal = []string{topic}, true
	sink.KeySerde, sink.ValueSerde = p.Key, p.Value
	connect(s.node, sink)
	src, _ := s.b.newNode(SourceNode, "REPARTITION-SOURCE", []Option{Named(name + "-repartition-source")})
	src.Topics, src.Internal = []string{topic}, true
	src.KeySerde, src.ValueSerde = p.Key, p.Value
	return &Stream{b: s.b, node: src}
}

// GroupByKey groups records by their key, for aggregation. If the key was
// changed upstream, the aggregation repartitions by key first, through
// `<application.id>-<name>-repartition`, where name is the Named option, else
// the aggregation's store name (stable across redeploys), else a generated one.
func (s *Stream) GroupByKey(g Grouped, opts ...Option) *GroupedStream {
	if g.Key == nil {
		s.b.errorf("group-by-key after %q: missing key serde", s.node.Name)
	}
	var o nodeOptions
	for _, opt := range opts {
		opt(&o)
	}
	return &GroupedStream{s: s, g: g, name: o.name}
}

// GroupBy groups records by a new key computed by fn; it always repartitions.
func (s *Stream) GroupBy(fn func(key, value any) any, g Grouped, opts ...Option) *GroupedStream {
	return s.SelectKey(fn).GroupByKey(g, opts...)
}

// GroupedStream is a stream grouped by key, ready to aggregate.
type GroupedStream struct {
	s    *Stream
	g    Grouped
	name string // Named option of GroupByKey, for the repartition topic
}

func (gs *GroupedStream) aggregate(prefix string, m Materialized, valueDefault serde.Serde,
	step func(key, value, agg any) (any, error)) *Table {
	b := gs.s.b
	if m.Name == "" {
		m.Name = fmt.Sprintf("KSTREAM-%s-STATE-STORE-%010d", prefix, b.seq)
		b.seq++
	}
	if m.Key == nil {
		m.Key = gs.g.Key
	}
	if m.Value == nil {
		m.Value = valueDefault
	}
	b.AddStore(StoreSpec{Name: m.Name, KeySerde: m.Key, ValueSerde: m.Value, TTL: m.TTL})
	src := gs.source(m.Name)
	store := m.Name
	t := &Table{b: b, store: store, key: m.Key, value: m.Value, old: &oldValues{}, view: storeView(store, false)}
	old := t.old
	t.s = src.add(prefix, func() Processor {
		return &aggregateProcessor{store: store, step: step, old: old}
	}, false, []Option{WithStores(store)})
	return t
}

// source is the stream an aggregation into store reads: the grouped stream,
// or, if the key was changed upstream, its repartitioned copy.
func (gs *GroupedStream) source(store string) *Stream {
	src := gs.s
	if src.keyChanged {
		name := gs.name
		if name == "" {
			name = store
		}
		if gs.g.Value == nil {
			gs.s.b.errorf("group-by-key after %q: repartitioning needs a value serde", src.node.Name)
		}
		src = src.Repartition(name, Produced(gs.g))
	}
	return src
}

// Count counts records per key into the store; values are int64. Records with
// a nil key or value are skipped, as in Kafka Streams. Store changelog:
// `<application.id>-<store>-changelog`; processing waits for its restore.
func (gs *GroupedStream) Count(m Materialized) *Table {
	return gs.aggregate("COUNT", m, serde.Int64{}, func(_, _, agg any) (any, error) {
		n, _ := agg.(int64)
		return n + 1, nil
	})
}

// Reduce combines values per key with fn(aggregate, value); the first value of
// a key is its aggregate. Store as for Count.
func (gs *GroupedStream) Reduce(fn func(agg, value any) (any, error), m Materialized) *Table {
	return gs.aggregate("REDUCE", m, gs.g.Value, func(_, v, agg any) (any, error) {
		if agg == nil {
			return v, nil
		}
		return fn(agg, v)
	})
}

// Aggregate folds values per key with fn(key, value, aggregate), starting from
// init(). Store as for Count; Materialized.Value is the aggregate's serde.
func (gs *GroupedStream) Aggregate(init func() any, fn func(key, value, agg any) (any, error), m Materialized) *Table {
	return gs.aggregate("AGGREGATE", m, nil, func(k, v, agg any) (any, error) {
		if agg == nil {
			agg = init()
		}
		return fn(k, v, agg)
	})
}

// aggregateProcessor is Count/Reduce/Aggregate's node: read the key's
// aggregate, fold the value in, write it back and forward the change (KS's
// KStreamAggregate and KStreamReduce).
type aggregateProcessor struct {
	store string
	step  func(key, value, agg any) (any, error)
	old   *oldValues
	ctx   ProcessorContext
	kv    KeyValueStore
	// cached: the store has a record cache; updates are forwarded when it
	// flushes them (emit on flush), not here.
	cached bool
	cache  CachingKeyValueStore
}

func (p *aggregateProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.kv = ctx, ctx.Store(p.store)
	p.cached = false
	if c, ok := p.kv.(CachingKeyValueStore); ok {
		p.cache = c
		p.cached = c.SetFlushListener(func(from Record, agg, old any) error {
			if !p.old.send {
				old = nil
			}
			return p.ctx.Forward(from.WithValue(change{New: agg, Old: old}))
		}, p.old.send)
	}
	return nil
}

func (p *aggregateProcessor) Process(r Record) error {
	if r.Key == nil || r.Value == nil {
		return nil // as in Kafka Streams: null keys and values are not aggregated
	}
	old, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	agg, err := p.step(r.Key, r.Value, old)
	if err != nil {
		return err
	}
	if p.cached {
		return p.cache.PutCached(r.Key, agg, r)
	}
	if err := p.kv.Put(r.Key, agg); err != nil {
		return err
	}
	if !p.old.send {
		old = nil
	}
	return p.ctx.Forward(r.WithValue(change{New: agg, Old: old}))
}

func (p *aggregateProcessor) Close() error { return nil }

// stateless adapts a function to a ProcessorSupplier.
func stateless(fn func(ctx ProcessorContext, r Record) error) ProcessorSupplier {
	return func() Processor { return &funcProcessor{fn: fn} }
}

type funcProcessor struct {
	fn  func(ctx ProcessorContext, r Record) error
	ctx ProcessorContext
}

func (p *funcProcessor) Init(ctx ProcessorContext) error { p.ctx = ctx; return nil }
func (p *funcProcessor) Process(r Record) error          { return p.fn(p.ctx, r) }
func (p *funcProcessor) Close() error                    { return nil }

// ErrInvalid is wrapped by every error Build returns.
var ErrInvalid = errors.New("invalid topology")
