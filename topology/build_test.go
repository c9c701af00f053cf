package topology

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/eos-runner/eos-runner/serde"
)

// passThrough is a Processor API supplier that forwards every record.
func passThrough() Processor {
	return &funcProcessor{fn: func(ctx ProcessorContext, r Record) error { return ctx.Forward(r) }}
}

// TestBuildErrors checks that each mistake fails Build with an error that
// wraps ErrInvalid and names the node or store at fault.
func TestBuildErrors(t *testing.T) {
	str := serde.String{}
	tests := []struct {
		name  string
		build func(b *Builder)
		want  string // substring of the error, naming the culprit
	}{
		{
			name: "duplicate store",
			build: func(b *Builder) {
				b.AddStore(StoreSpec{Name: "s", KeySerde: str, ValueSerde: str})
				b.AddStore(StoreSpec{Name: "s", KeySerde: str, ValueSerde: str})
				b.Stream([]string{"in"}, inStr).Process(passThrough, WithStores("s"))
			},
			want: `store "s": declared twice`,
		},
		{
			name: "store without name",
			build: func(b *Builder) {
				b.AddStore(StoreSpec{KeySerde: str, ValueSerde: str})
				b.Stream([]string{"in"}, inStr).To("out", outStr)
			},
			want: `store: empty name`,
		},
		{
			name: "store without value serde",
			build: func(b *Builder) {
				b.AddStore(StoreSpec{Name: "s", KeySerde: str})
				b.Stream([]string{"in"}, inStr).Process(passThrough, WithStores("s"))
			},
			want: `store "s": missing key or value serde`,
		},
		{
			name: "store without key serde",
			build: func(b *Builder) {
				b.AddStore(StoreSpec{Name: "s", ValueSerde: str})
				b.Stream([]string{"in"}, inStr).Process(passThrough, WithStores("s"))
			},
			want: `store "s": missing key or value serde`,
		},
		{
			name: "source without key serde",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, Consumed{Value: str}, Named("src")).To("out", outStr)
			},
			want: `source "src": missing key or value serde`,
		},
		{
			name: "source without value serde",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, Consumed{Key: str}, Named("src")).To("out", outStr)
			},
			want: `source "src": missing key or value serde`,
		},
		{
			name: "source without topic",
			build: func(b *Builder) {
				b.Stream(nil, inStr, Named("src")).To("out", outStr)
			},
			want: `source "src": no topic`,
		},
		{
			name: "source nobody reads",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr, Named("src"))
			},
			want: `source "src": nothing reads from it`,
		},
		{
			name: "sink without serdes",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr).To("out", Produced{}, Named("snk"))
			},
			want: `sink "snk": missing key or value serde`,
		},
		{
			name: "sink without topic",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr).To("", outStr, Named("snk"))
			},
			want: `sink "snk": no topic`,
		},
		{
			name: "two sources on one topic",
			build: func(b *Builder) {
				b.Stream([]string{"t"}, inStr, Named("first")).To("a", outStr)
				b.Stream([]string{"u", "t"}, inStr, Named("second")).To("b", outStr)
			},
			want: `source "second": topic "t" is already read by source "first"`,
		},
		{
			name: "group without key serde",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr, Named("src")).
					GroupByKey(Grouped{}).
					Count(Materialized{Name: "c", Key: str})
			},
			want: `group-by-key after "src": missing key serde`,
		},
		{
			name: "repartitioning group without value serde",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr).
					SelectKey(func(k, _ any) any { return k }, Named("rekey")).
					GroupByKey(Grouped{Key: str}).
					Count(Materialized{Name: "c"})
			},
			want: `group-by-key after "rekey": repartitioning needs a value serde`,
		},
		{
			name: "explicit repartition without serdes",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr).Repartition("by-x", Produced{}).To("out", outStr)
			},
			want: `repartition "by-x": missing key or value serde`,
		},
		{
			name: "reduce without value serde",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr).
					GroupByKey(Grouped{Key: str}).
					Reduce(func(a, _ any) (any, error) { return a, nil }, Materialized{Name: "r"})
			},
			want: `store "r": missing key or value serde`,
		},
		{
			name: "aggregate without value serde",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr).
					GroupByKey(grpStr).
					Aggregate(func() any { return 0 }, func(_, _, a any) (any, error) { return a, nil }, Materialized{Name: "agg"})
			},
			want: `store "agg": missing key or value serde`,
		},
		{
			name: "processor names an undeclared store",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr).Process(passThrough, Named("p"), WithStores("nope"))
			},
			want: `processor "p": store "nope" is not declared`,
		},
		{
			name: "store connected to no processor",
			build: func(b *Builder) {
				b.AddStore(StoreSpec{Name: "lonely", KeySerde: str, ValueSerde: str})
				b.Stream([]string{"in"}, inStr).To("out", outStr)
			},
			want: `store "lonely": not connected to any processor`,
		},
		{
			name: "duplicate node names",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr).
					Filter(keep, Named("x")).
					MapValues(func(v any) (any, error) { return v, nil }, Named("x")).
					To("out", outStr)
			},
			want: `node "x": name used twice`,
		},
		{
			name: "nil processor supplier",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr).Process(nil, Named("p")).To("out", outStr)
			},
			want: `processor "p": no processor supplier`,
		},
		{
			name: "split branch without name",
			build: func(b *Builder) {
				br := b.Stream([]string{"in"}, inStr).Split([]Branch{{Name: "a", Predicate: keep}, {}}, Named("route"))
				br["a"].To("a", outStr)
			},
			want: `split "route": branch 1 has no name`,
		},
		{
			name: "split branch named twice",
			build: func(b *Builder) {
				br := b.Stream([]string{"in"}, inStr).Split([]Branch{{Name: "a", Predicate: keep}, {Name: "a"}}, Named("route"))
				br["a"].To("a", outStr)
			},
			want: `node "route-a": name used twice`,
		},
		{
			name:  "empty topology",
			build: func(*Builder) {},
			want:  `no nodes`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder()
			tt.build(b)
			topo, err := b.Build()
			if err == nil {
				t.Fatalf("Build succeeded, want error containing %q", tt.want)
			}
			if topo != nil {
				t.Errorf("Build returned a topology with its error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

// TestBuildReportsAllErrors makes several independent mistakes and expects
// one Build call to name every one of them.
func TestBuildReportsAllErrors(t *testing.T) {
	str := serde.String{}
	b := NewBuilder()
	b.AddStore(StoreSpec{Name: "lonely", KeySerde: str, ValueSerde: str})
	b.AddStore(StoreSpec{Name: "dup", KeySerde: str, ValueSerde: str})
	b.AddStore(StoreSpec{Name: "dup", KeySerde: str, ValueSerde: str})
	s := b.Stream([]string{"in"}, Consumed{}, Named("src"))
	s.Process(passThrough, Named("p"), WithStores("dup", "ghost")).To("", outStr, Named("snk"))
	b.Stream([]string{"in"}, inStr, Named("src2")).Filter(keep, Named("p")).To("out", Produced{}, Named("snk2"))

	_, err := b.Build()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Build error = %v, want one wrapping ErrInvalid", err)
	}
	for _, want := range []string{
		`store "dup": declared twice`,
		`store "lonely": not connected to any processor`,
		`source "src": missing key or value serde`,
		`processor "p": store "ghost" is not declared`,
		`sink "snk": no topic`,
		`source "src2": topic "in" is already read by source "src"`,
		`node "p": name used twice`,
		`sink "snk2": missing key or value serde`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q; got:\n%v", want, err)
		}
	}
}

// TestBuildReportsEachProblemOnce: one mistake should give one line, not the
// builder's message and Build's message for the same thing.
func TestBuildReportsEachProblemOnce(t *testing.T) {
	str := serde.String{}
	tests := []struct {
		name  string
		build func(b *Builder)
		// each problem is counted by a distinctive substring of its line(s)
		culprit string
	}{
		{
			name:    "sink without topic",
			build:   func(b *Builder) { b.Stream([]string{"in"}, inStr).To("", outStr, Named("snk")) },
			culprit: `"snk"`,
		},
		{
			name:    "nil processor supplier",
			build:   func(b *Builder) { b.Stream([]string{"in"}, inStr).Process(nil, Named("p")).To("out", outStr) },
			culprit: `supplier`,
		},
		{
			name: "aggregate without value serde",
			build: func(b *Builder) {
				b.Stream([]string{"in"}, inStr).GroupByKey(Grouped{Key: str}).
					Aggregate(func() any { return 0 }, func(_, _, a any) (any, error) { return a, nil }, Materialized{Name: "agg"})
			},
			culprit: `"agg"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder()
			tt.build(b)
			_, err := b.Build()
			if err == nil {
				t.Fatal("Build succeeded")
			}
			var lines []string
			for _, l := range strings.Split(err.Error(), "\n") {
				if strings.Contains(l, tt.culprit) {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Errorf("BUG: one mistake reported %d times:\n%s", len(lines), strings.Join(lines, "\n"))
			}
		})
	}
}

// handBuilt returns a Builder whose graph is wired by hand, as the DSL never
// would: edges are given as parent->child pairs of node names.
func handBuilt(nodes []*Node, edges [][2]string) *Builder {
	byName := map[string]*Node{}
	for _, n := range nodes {
		byName[n.Name] = n
		if n.Kind == ProcessorNode && n.Supplier == nil {
			n.Supplier = passThrough
		}
	}
	for _, e := range edges {
		connect(byName[e[0]], byName[e[1]])
	}
	b := NewBuilder()
	b.nodes = nodes
	return b
}

func TestBuildRejectsCycle(t *testing.T) {
	b := handBuilt([]*Node{
		{Name: "src", Kind: SourceNode, Topics: []string{"in"}},
		{Name: "a", Kind: ProcessorNode},
		{Name: "b", Kind: ProcessorNode},
	}, [][2]string{{"src", "a"}, {"a", "b"}, {"b", "a"}})
	topo, err := b.Build()
	if !errors.Is(err, ErrInvalid) || topo != nil {
		t.Fatalf("Build = %v, %v; want nil and an error wrapping ErrInvalid", topo, err)
	}
	if want := "cycle through nodes"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want it to contain %q", err, want)
	}
	for _, name := range []string{`a`, `b`} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("cycle error %v does not name node %q", err, name)
		}
	}
}

func TestFindCycle(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		edges [][2]string
		want  []string // nil: no cycle
	}{
		{name: "chain", nodes: []string{"s", "a", "b"}, edges: [][2]string{{"s", "a"}, {"a", "b"}}},
		{
			name:  "diamond is not a cycle",
			nodes: []string{"s", "l", "r", "m"},
			edges: [][2]string{{"s", "l"}, {"s", "r"}, {"l", "m"}, {"r", "m"}},
		},
		{name: "self loop", nodes: []string{"a"}, edges: [][2]string{{"a", "a"}}, want: []string{"a", "a"}},
		{name: "two nodes", nodes: []string{"a", "b"}, edges: [][2]string{{"a", "b"}, {"b", "a"}}, want: []string{"a", "b", "a"}},
		{
			name:  "cycle below a source",
			nodes: []string{"s", "a", "b", "c"},
			edges: [][2]string{{"s", "a"}, {"a", "b"}, {"b", "c"}, {"c", "a"}},
			want:  []string{"a", "b", "c", "a"},
		},
		{
			name:  "cycle reached after a finished branch",
			nodes: []string{"s", "x", "a", "b"},
			edges: [][2]string{{"s", "x"}, {"s", "a"}, {"a", "b"}, {"b", "a"}},
			want:  []string{"a", "b", "a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nodes []*Node
			for _, n := range tt.nodes {
				nodes = append(nodes, &Node{Name: n, Kind: ProcessorNode})
			}
			handBuilt(nodes, tt.edges)
			got := findCycle(nodes)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("findCycle = %v, want none", got)
				}
				return
			}
			if len(got) < 2 || got[0] != got[len(got)-1] {
				t.Fatalf("BUG: findCycle = %v, want the cycle %v only (starting and ending at the same node)", got, tt.want)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("findCycle = %v, want %v", got, tt.want)
			}
		})
	}
}
