package topology

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"
)

// harness runs a built Topology in memory, without Kafka, the way a task
// would: each processor node's Supplier is called once, Init gets a context
// bound to that node, and a record is pushed depth first from a source.
// Records reaching a sink are collected per topic; records reaching an
// internal (repartition) sink are also queued and fed, after the current
// input record is done, to the source that reads that topic, as the runner
// would when it consumes the repartition topic.
type harness struct {
	t      *testing.T
	topo   *Topology
	procs  map[*Node]Processor
	stores map[string]*memStore
	wins   map[string]*memWindowStore
	sess   map[string]*memSessionStore
	out    map[string][]Record // by sink topic, unprefixed
	queue  []queued            // records written to internal topics, not yet read back
	md     RecordMetadata
	offset int64
}

type queued struct {
	topic string
	rec   Record
}

// newHarness instantiates and initializes every processor of topo.
func newHarness(t *testing.T, topo *Topology) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		topo:   topo,
		procs:  map[*Node]Processor{},
		stores: map[string]*memStore{},
		wins:   map[string]*memWindowStore{},
		sess:   map[string]*memSessionStore{},
		out:    map[string][]Record{},
	}
	for name, spec := range topo.Stores {
		switch spec.Kind {
		case WindowStoreKind:
			h.wins[name] = newMemWindowStore(name)
		case SessionStoreKind:
			h.sess[name] = newMemSessionStore(name)
		default:
			h.stores[name] = &memStore{name: name, m: map[string]memEntry{}}
		}
	}
	for _, n := range topo.Nodes {
		if n.Kind != ProcessorNode {
			continue
		}
		p := n.Supplier()
		if p == nil {
			t.Fatalf("node %q: supplier returned nil", n.Name)
		}
		if err := p.Init(&nodeCtx{h: h, node: n}); err != nil {
			t.Fatalf("node %q: Init: %v", n.Name, err)
		}
		h.procs[n] = p
	}
	return h
}

// build builds b and fails the test on error.
func build(t *testing.T, b *Builder) *Topology {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return topo
}

// sourceFor returns the source reading topic (internal or not).
func (h *harness) sourceFor(topic string, internal bool) *Node {
	for _, n := range h.topo.Nodes {
		if n.Kind == SourceNode && n.Internal == internal && slices.Contains(n.Topics, topic) {
			return n
		}
	}
	return nil
}

// pipe feeds recs, in order, to the source reading the external topic, and
// drains the internal topics after each one. It stops at the first error.
func (h *harness) pipe(topic string, recs ...Record) error {
	src := h.sourceFor(topic, false)
	if src == nil {
		h.t.Fatalf("no source reads topic %q", topic)
	}
	for _, r := range recs {
		if err := h.deliver(src, topic, r); err != nil {
			return err
		}
		for len(h.queue) > 0 {
			q := h.queue[0]
			h.queue = h.queue[1:]
			isrc := h.sourceFor(q.topic, true)
			if isrc == nil {
				h.t.Fatalf("no source reads internal topic %q", q.topic)
			}
			if err := h.deliver(isrc, q.topic, q.rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// mustPipe is pipe that fails the test on error.
func (h *harness) mustPipe(topic string, recs ...Record) {
	h.t.Helper()
	if err := h.pipe(topic, recs...); err != nil {
		h.t.Fatalf("pipe %q: %v", topic, err)
	}
}

func (h *harness) deliver(src *Node, topic string, r Record) error {
	h.md = RecordMetadata{Topic: topic, Offset: h.offset}
	h.offset++
	return h.process(src, r)
}

func (h *harness) process(n *Node, r Record) error {
	switch n.Kind {
	case SourceNode:
		return h.forward(n, r)
	case SinkNode:
		topic := n.Topics[0]
		h.out[topic] = append(h.out[topic], r)
		if n.Internal {
			h.queue = append(h.queue, queued{topic: topic, rec: r})
		}
		return nil
	default:
		p, ok := h.procs[n]
		if !ok {
			h.t.Fatalf("node %q: no processor instance", n.Name)
		}
		return p.Process(r)
	}
}

func (h *harness) forward(n *Node, r Record) error {
	for _, c := range n.Children {
		if err := h.process(c, r); err != nil {
			return err
		}
	}
	return nil
}

// kvs returns the key/value pairs written to topic, as "key=value" strings.
func (h *harness) kvs(topic string) []string {
	var out []string
	for _, r := range h.out[topic] {
		out = append(out, fmt.Sprintf("%v=%v", r.Key, r.Value))
	}
	return out
}

// nodeCtx is the ProcessorContext of one node of a harness.
type nodeCtx struct {
	h    *harness
	node *Node
}

var _ ProcessorContext = (*nodeCtx)(nil)

func (c *nodeCtx) TaskID() string         { return fmt.Sprintf("%d_0", c.node.Subtopology()) }
func (c *nodeCtx) Partition() int32       { return 0 }
func (c *nodeCtx) ApplicationID() string  { return "app" }
func (c *nodeCtx) StreamTime() time.Time  { return time.Time{} }
func (c *nodeCtx) Forward(r Record) error { return c.h.forward(c.node, r) }

func (c *nodeCtx) ForwardTo(child string, r Record) error {
	for _, ch := range c.node.Children {
		if ch.Name == child {
			return c.h.process(ch, r)
		}
	}
	return fmt.Errorf("node %q: ForwardTo unknown child %q", c.node.Name, child)
}

// Store panics for a store not connected to the node, as the contract says.
func (c *nodeCtx) Store(name string) KeyValueStore {
	if !slices.Contains(c.node.StoreNames, name) {
		panic(fmt.Sprintf("node %q: store %q not connected", c.node.Name, name))
	}
	s, ok := c.h.stores[name]
	if !ok {
		panic(fmt.Sprintf("node %q: store %q not declared", c.node.Name, name))
	}
	return s
}

// WindowStore panics for a store not connected to the node, as Store does.
func (c *nodeCtx) WindowStore(name string) WindowStore {
	if !slices.Contains(c.node.StoreNames, name) {
		panic(fmt.Sprintf("node %q: window store %q not connected", c.node.Name, name))
	}
	s, ok := c.h.wins[name]
	if !ok {
		panic(fmt.Sprintf("node %q: window store %q not declared", c.node.Name, name))
	}
	return s
}

// SessionStore panics for a store not connected to the node, as Store does.
func (c *nodeCtx) SessionStore(name string) SessionStore {
	if !slices.Contains(c.node.StoreNames, name) {
		panic(fmt.Sprintf("node %q: session store %q not connected", c.node.Name, name))
	}
	s, ok := c.h.sess[name]
	if !ok {
		panic(fmt.Sprintf("node %q: session store %q not declared", c.node.Name, name))
	}
	return s
}

func (c *nodeCtx) Schedule(time.Duration, PunctuationType, Punctuator) Cancellable {
	return noCancel{}
}

func (c *nodeCtx) RecordMetadata() (RecordMetadata, bool) { return c.h.md, true }

type noCancel struct{}

func (noCancel) Cancel() {}

// memStore is an in-memory KeyValueStore keyed by fmt.Sprint of the key.
type memStore struct {
	name string
	m    map[string]memEntry
}

type memEntry struct{ key, value any }

var _ KeyValueStore = (*memStore)(nil)

func (s *memStore) Name() string { return s.name }

func (s *memStore) Get(key any) (any, error) {
	return s.m[fmt.Sprint(key)].value, nil
}

func (s *memStore) Put(key, value any) error {
	s.m[fmt.Sprint(key)] = memEntry{key, value}
	return nil
}

func (s *memStore) Delete(key any) error {
	delete(s.m, fmt.Sprint(key))
	return nil
}

// Range orders keys by their fmt.Sprint form, standing in for key bytes.
func (s *memStore) Range(from, to any, fn func(key, value any) error) error {
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		if from != nil && k < fmt.Sprint(from) {
			continue
		}
		if to != nil && k >= fmt.Sprint(to) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := s.m[k]
		if err := fn(e.key, e.value); err != nil {
			return err
		}
	}
	return nil
}

// contents returns the store as "key=value" strings in key order.
func (s *memStore) contents() []string {
	var out []string
	_ = s.Range(nil, nil, func(k, v any) error {
		out = append(out, fmt.Sprintf("%v=%v", k, v))
		return nil
	})
	return out
}
