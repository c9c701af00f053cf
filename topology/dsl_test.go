package topology

import (
	"slices"
	"strings"
	"testing"

	"github.com/eos-runner/eos-runner/serde"
)

// How the DSL builds topologies: nodes, sub-topologies, names. What the
// operators do to records is tested on processor.TestDriver, from package
// topology_test (dsl_run_test.go).

// build builds b and fails the test on error.
func build(t *testing.T, b *Builder) *Topology {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return topo
}

func TestCountGeneratedStoreName(t *testing.T) {
	b := NewBuilder()
	tbl := b.Stream([]string{"in"}, inStr).GroupByKey(grpStr).Count(Materialized{})
	name := tbl.StoreName()
	if !strings.HasPrefix(name, "KSTREAM-COUNT-STATE-STORE-") {
		t.Errorf("generated store name %q", name)
	}
	topo := build(t, b)
	if _, ok := topo.Stores[name]; !ok {
		t.Errorf("store %q not in Topology.Stores %v", name, topo.Stores)
	}
}

func TestRepartitionAfterKeyChange(t *testing.T) {
	rekey := func(_, v any) any { return v }
	tests := []struct {
		name        string
		group       func(s *Stream) *GroupedStream
		repartition bool
	}{
		{"group by key", func(s *Stream) *GroupedStream { return s.GroupByKey(grpStr, Named("g")) }, false},
		{"select key", func(s *Stream) *GroupedStream { return s.SelectKey(rekey).GroupByKey(grpStr, Named("g")) }, true},
		{"group by", func(s *Stream) *GroupedStream { return s.GroupBy(rekey, grpStr, Named("g")) }, true},
		{"map", func(s *Stream) *GroupedStream { return s.Map(identity).GroupByKey(grpStr, Named("g")) }, true},
		{"flat map", func(s *Stream) *GroupedStream {
			return s.FlatMap(func(k, v any) ([]KeyValue, error) { return []KeyValue{{k, v}}, nil }).GroupByKey(grpStr, Named("g"))
		}, true},
		{"process", func(s *Stream) *GroupedStream { return s.Process(passThrough).GroupByKey(grpStr, Named("g")) }, true},
		{"map values", func(s *Stream) *GroupedStream {
			return s.MapValues(func(v any) (any, error) { return v, nil }).GroupByKey(grpStr, Named("g"))
		}, false},
		{"key change survives value ops", func(s *Stream) *GroupedStream {
			return s.SelectKey(rekey).
				Filter(keep).
				MapValues(func(v any) (any, error) { return v, nil }).
				FlatMapValues(func(v any) ([]any, error) { return []any{v}, nil }).
				Peek(func(_, _ any) {}).
				GroupByKey(grpStr, Named("g"))
		}, true},
		{"key change survives split", func(s *Stream) *GroupedStream {
			return s.SelectKey(rekey).Split([]Branch{{Name: "all"}})["all"].GroupByKey(grpStr, Named("g"))
		}, true},
		{"merge with a rekeyed stream", func(s *Stream) *GroupedStream {
			other := s.b.Stream([]string{"other"}, inStr).SelectKey(rekey)
			return s.Merge(other).GroupByKey(grpStr, Named("g"))
		}, true},
		{"explicit repartition clears key change", func(s *Stream) *GroupedStream {
			return s.SelectKey(rekey).Repartition("r", outStr).GroupByKey(grpStr, Named("g"))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder()
			tt.group(b.Stream([]string{"in"}, inStr)).Count(Materialized{Name: "c"})
			topo := build(t, b)
			sink, src := topo.Node("g-repartition-sink"), topo.Node("g-repartition-source")
			if !tt.repartition {
				if sink != nil || src != nil {
					t.Fatalf("unexpected repartition:\n%s", topo.Describe())
				}
				return
			}
			if sink == nil || src == nil {
				t.Fatalf("no repartition through g-repartition:\n%s", topo.Describe())
			}
			for _, n := range []*Node{sink, src} {
				if !n.Internal || !slices.Equal(n.Topics, []string{"g-repartition"}) {
					t.Errorf("%s %q: Internal=%v Topics=%q, want internal [g-repartition]", n.Kind, n.Name, n.Internal, n.Topics)
				}
			}
			if sink.Kind != SinkNode || src.Kind != SourceNode {
				t.Errorf("kinds: sink %v, source %v", sink.Kind, src.Kind)
			}
			if sink.Subtopology() == src.Subtopology() {
				t.Errorf("repartition sink and source in the same sub-topology %d", src.Subtopology())
			}
			if got := len(src.Children); got != 1 || !slices.Equal(src.Children[0].StoreNames, []string{"c"}) {
				t.Errorf("repartition source feeds %d nodes, want the count node", got)
			}
		})
	}
}

// TestGroupByKeyGeneratedRepartitionName: without Named or a store name, the
// repartition topic is named after the generated store name.
func TestGroupByKeyGeneratedRepartitionName(t *testing.T) {
	b := NewBuilder()
	b.Stream([]string{"in"}, inStr).SelectKey(func(_, v any) any { return v }).GroupByKey(grpStr).Count(Materialized{})
	topo := build(t, b)
	st1 := topo.SubTopologies[1]
	topics := st1.SourceTopics()
	if len(topics) != 1 || !strings.HasPrefix(topics[0], "KSTREAM-COUNT-STATE-STORE-") || !strings.HasSuffix(topics[0], "-repartition") {
		t.Errorf("repartition topic %q, want KSTREAM-COUNT-STATE-STORE-<n>-repartition", topics)
	}
}

// TestRepartitionTopicNamedAfterStore: in Kafka Streams an unnamed grouping
// names its repartition topic after the aggregation's store
// (`<store>-repartition`), so a named store gives a stable internal topic;
// here the name is KSTREAM-GROUP-<sequence>, which changes whenever an
// upstream node is added, orphaning the old topic's data on upgrade.
func TestRepartitionTopicNamedAfterStore(t *testing.T) {
	b := NewBuilder()
	b.Stream([]string{"in"}, inStr).SelectKey(func(_, v any) any { return v }).GroupByKey(grpStr).Count(Materialized{Name: "counts"})
	topo := build(t, b)
	if got := topo.SubTopologies[len(topo.SubTopologies)-1].SourceTopics(); !slices.Equal(got, []string{"counts-repartition"}) {
		t.Errorf("BUG: repartition topic %q, want [counts-repartition] (named after the Materialized store)", got)
	}
}

func TestSubTopologyNumbering(t *testing.T) {
	b := NewBuilder()
	b.Stream([]string{"a"}, inStr, Named("src-a")).To("a-out", outStr, Named("sink-a"))
	b.Stream([]string{"b"}, inStr, Named("src-b")).
		SelectKey(func(_, v any) any { return v }).
		GroupByKey(grpStr, Named("g")).
		Count(Materialized{Name: "cnt"})
	b.Stream([]string{"c1", "c2"}, inStr, Named("src-c")).Filter(keep, Named("filter-c")).To("c-out", outStr)
	topo := build(t, b)

	want := []struct {
		topics []string
		stores []string
		nodes  []string // must belong to it
	}{
		{[]string{"a"}, nil, []string{"src-a", "sink-a"}},
		{[]string{"b"}, nil, []string{"src-b", "g-repartition-sink"}},
		{[]string{"g-repartition"}, []string{"cnt"}, []string{"g-repartition-source"}},
		{[]string{"c1", "c2"}, nil, []string{"src-c", "filter-c"}},
	}
	if len(topo.SubTopologies) != len(want) {
		t.Fatalf("%d sub-topologies, want %d:\n%s", len(topo.SubTopologies), len(want), topo.Describe())
	}
	seen := map[*Node]bool{}
	for i, st := range topo.SubTopologies {
		if st.ID != i {
			t.Errorf("sub-topology %d has ID %d", i, st.ID)
		}
		if got := st.SourceTopics(); !slices.Equal(got, want[i].topics) {
			t.Errorf("sub-topology %d SourceTopics = %q, want %q", i, got, want[i].topics)
		}
		if !slices.Equal(st.Stores, want[i].stores) {
			t.Errorf("sub-topology %d Stores = %q, want %q", i, st.Stores, want[i].stores)
		}
		for _, name := range want[i].nodes {
			if n := topo.Node(name); n == nil || n.Subtopology() != i {
				t.Errorf("node %q not in sub-topology %d", name, i)
			}
		}
		for _, n := range st.Nodes {
			if seen[n] {
				t.Errorf("node %q in two sub-topologies", n.Name)
			}
			seen[n] = true
			if n.Subtopology() != i {
				t.Errorf("node %q in sub-topology %d's Nodes says Subtopology()=%d", n.Name, i, n.Subtopology())
			}
			for _, c := range n.Children {
				if c.Subtopology() != i {
					t.Errorf("edge %q -> %q crosses sub-topologies", n.Name, c.Name)
				}
			}
		}
	}
	if len(seen) != len(topo.Nodes) {
		t.Errorf("sub-topologies hold %d nodes, topology has %d", len(seen), len(topo.Nodes))
	}
}

// TestSubTopologyNodesSourcesFirst checks SubTopology.Nodes' documented order,
// "sources first, then breadth first", on a sub-topology whose second source
// is added after the first source's processors (joined by a shared store).
func TestSubTopologyNodesInBuilderOrder(t *testing.T) {
	b := NewBuilder()
	b.AddStore(StoreSpec{Name: "shared", KeySerde: serde.String{}, ValueSerde: serde.String{}})
	b.Stream([]string{"a"}, inStr, Named("src-a")).Process(passThrough, Named("proc-a"), WithStores("shared"))
	b.Stream([]string{"b"}, inStr, Named("src-b")).Process(passThrough, Named("proc-b"), WithStores("shared"))
	topo := build(t, b)
	if len(topo.SubTopologies) != 1 {
		t.Fatalf("a shared store should join both streams into one sub-topology:\n%s", topo.Describe())
	}
	got := names(topo.SubTopologies[0].Nodes)
	if want := []string{"src-a", "proc-a", "src-b", "proc-b"}; !slices.Equal(got, want) {
		t.Errorf("SubTopology.Nodes = %q, want %q (the order they were added, as documented)", got, want)
	}
}

func TestTopologyNodeLookup(t *testing.T) {
	b := NewBuilder()
	b.Stream([]string{"in"}, inStr, Named("src")).Filter(keep, Named("f")).To("out", outStr, Named("snk"))
	topo := build(t, b)
	for name, kind := range map[string]NodeKind{"src": SourceNode, "f": ProcessorNode, "snk": SinkNode} {
		n := topo.Node(name)
		if n == nil || n.Kind != kind || n.Name != name {
			t.Errorf("Node(%q) = %+v, want a %v", name, n, kind)
		}
	}
	if n := topo.Node("missing"); n != nil {
		t.Errorf("Node(missing) = %v, want nil", n)
	}
	f := topo.Node("f")
	if len(f.Parents) != 1 || f.Parents[0].Name != "src" || len(f.Children) != 1 || f.Children[0].Name != "snk" {
		t.Errorf("edges of f: parents %v children %v", names(f.Parents), names(f.Children))
	}
	if got := len(topo.Nodes); got != 3 {
		t.Errorf("%d nodes, want 3", got)
	}
}

func TestGeneratedNodeNames(t *testing.T) {
	b := NewBuilder()
	b.Stream([]string{"in"}, inStr).Filter(keep).MapValues(func(v any) (any, error) { return v, nil }).To("out", outStr)
	topo := build(t, b)
	want := []string{"KSTREAM-SOURCE-0000000000", "KSTREAM-FILTER-0000000001", "KSTREAM-MAPVALUES-0000000002", "KSTREAM-SINK-0000000003"}
	if got := names(topo.Nodes); !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}

func TestTopicName(t *testing.T) {
	tests := []struct {
		app, topic string
		internal   bool
		want       string
	}{
		{"app", "orders", false, "orders"},
		{"app", "g-repartition", true, "app-g-repartition"},
		{"my.app", "x", true, "my.app-x"},
	}
	for _, tt := range tests {
		if got := TopicName(tt.app, tt.topic, tt.internal); got != tt.want {
			t.Errorf("TopicName(%q, %q, %v) = %q, want %q", tt.app, tt.topic, tt.internal, got, tt.want)
		}
	}
}

func TestChangelogTopic(t *testing.T) {
	tests := []struct{ app, store, want string }{
		{"app", "counts", "app-counts-changelog"},
		{"wordcount", "KSTREAM-COUNT-STATE-STORE-0000000002", "wordcount-KSTREAM-COUNT-STATE-STORE-0000000002-changelog"},
	}
	for _, tt := range tests {
		if got := ChangelogTopic(tt.app, tt.store); got != tt.want {
			t.Errorf("ChangelogTopic(%q, %q) = %q, want %q", tt.app, tt.store, got, tt.want)
		}
	}
}

// TestTopologyUnaffectedByLaterBuilderUse: Topology is documented as
// immutable, but it shares its nodes and store map with the Builder, so
// using the Builder (or a Stream of it) after Build changes the Topology.
func TestTopologyUnaffectedByLaterBuilderUse(t *testing.T) {
	b := NewBuilder()
	s := b.Stream([]string{"in"}, inStr, Named("src"))
	s.To("out", outStr)
	topo := build(t, b)
	before := topo.Describe()

	s.To("late", outStr, Named("late-sink"))
	b.AddStore(StoreSpec{Name: "late-store", KeySerde: serde.String{}, ValueSerde: serde.String{}})

	if got := topo.Describe(); got != before {
		t.Errorf("BUG: Describe changed after later Builder use:\n%s\nwas:\n%s", got, before)
	}
	if n := len(topo.Node("src").Children); n != 1 {
		t.Errorf("BUG: src has %d children after later Builder use, want 1", n)
	}
	if _, ok := topo.Stores["late-store"]; ok {
		t.Errorf("BUG: Topology.Stores gained a store added after Build")
	}
}
