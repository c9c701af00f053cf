package topology

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/serde"
)

// kv builds an input record.
func kv(k, v any) Record { return Record{Key: k, Value: v} }

func TestStatelessOperators(t *testing.T) {
	words := func(v any) []string { return strings.Fields(v.(string)) }
	tests := []struct {
		name string
		op   func(s *Stream) *Stream
		in   []Record
		want []string // key=value at the sink, in order
	}{
		{
			name: "filter",
			op:   func(s *Stream) *Stream { return s.Filter(func(_, v any) bool { return v == "keep" }) },
			in:   []Record{kv("a", "keep"), kv("b", "drop"), kv("c", "keep")},
			want: []string{"a=keep", "c=keep"},
		},
		{
			name: "filter not",
			op:   func(s *Stream) *Stream { return s.FilterNot(func(_, v any) bool { return v == "keep" }) },
			in:   []Record{kv("a", "keep"), kv("b", "drop"), kv("c", "keep")},
			want: []string{"b=drop"},
		},
		{
			name: "map swaps key and value",
			op:   func(s *Stream) *Stream { return s.Map(func(k, v any) (any, any, error) { return v, k, nil }) },
			in:   []Record{kv("a", "1"), kv("b", "2")},
			want: []string{"1=a", "2=b"},
		},
		{
			name: "map values keeps key",
			op: func(s *Stream) *Stream {
				return s.MapValues(func(v any) (any, error) { return strings.ToUpper(v.(string)), nil })
			},
			in:   []Record{kv("a", "x"), kv(nil, "y")},
			want: []string{"a=X", "<nil>=Y"},
		},
		{
			name: "flat map",
			op: func(s *Stream) *Stream {
				return s.FlatMap(func(_, v any) ([]KeyValue, error) {
					var out []KeyValue
					for _, w := range words(v) {
						out = append(out, KeyValue{Key: w, Value: len(w)})
					}
					return out, nil
				})
			},
			in:   []Record{kv("s1", "to be"), kv("s2", ""), kv("s3", "or")},
			want: []string{"to=2", "be=2", "or=2"},
		},
		{
			name: "flat map values",
			op: func(s *Stream) *Stream {
				return s.FlatMapValues(func(v any) ([]any, error) {
					var out []any
					for _, w := range words(v) {
						out = append(out, w)
					}
					return out, nil
				})
			},
			in:   []Record{kv("s1", "to be"), kv("s2", ""), kv("s3", "or")},
			want: []string{"s1=to", "s1=be", "s3=or"},
		},
		{
			name: "peek passes records on unchanged",
			op:   func(s *Stream) *Stream { return s.Peek(func(_, _ any) {}) },
			in:   []Record{kv("a", "1"), kv("b", "2")},
			want: []string{"a=1", "b=2"},
		},
		{
			name: "select key",
			op:   func(s *Stream) *Stream { return s.SelectKey(func(k, v any) any { return fmt.Sprint(k, v) }) },
			in:   []Record{kv("a", "1"), kv("b", "2")},
			want: []string{"a1=1", "b2=2"},
		},
		{
			name: "chain",
			op: func(s *Stream) *Stream {
				return s.Filter(func(k, _ any) bool { return k != "skip" }).
					MapValues(func(v any) (any, error) { return v.(string) + "!", nil }).
					SelectKey(func(_, v any) any { return v })
			},
			in:   []Record{kv("a", "1"), kv("skip", "2"), kv("c", "3")},
			want: []string{"1!=1!", "3!=3!"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder()
			tt.op(b.Stream([]string{"in"}, inStr)).To("out", outStr)
			h := newHarness(t, build(t, b))
			h.mustPipe("in", tt.in...)
			if got := h.kvs("out"); !slices.Equal(got, tt.want) {
				t.Errorf("output = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStatelessOperatorsKeepTimestampAndHeaders: records derived from an
// input keep its event time and headers.
func TestStatelessOperatorsKeepTimestampAndHeaders(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	hdrs := []Header{{Key: "trace", Value: []byte("t1")}}
	ops := map[string]func(s *Stream) *Stream{
		"map":       func(s *Stream) *Stream { return s.Map(func(k, v any) (any, any, error) { return v, k, nil }) },
		"mapvalues": func(s *Stream) *Stream { return s.MapValues(func(v any) (any, error) { return v, nil }) },
		"flatmap": func(s *Stream) *Stream {
			return s.FlatMap(func(k, v any) ([]KeyValue, error) { return []KeyValue{{k, v}, {v, k}}, nil })
		},
		"flatmapvalues": func(s *Stream) *Stream {
			return s.FlatMapValues(func(v any) ([]any, error) { return []any{v, v}, nil })
		},
		"selectkey": func(s *Stream) *Stream { return s.SelectKey(func(_, v any) any { return v }) },
		"filter":    func(s *Stream) *Stream { return s.Filter(keep) },
		"peek":      func(s *Stream) *Stream { return s.Peek(func(_, _ any) {}) },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			b := NewBuilder()
			op(b.Stream([]string{"in"}, inStr)).To("out", outStr)
			h := newHarness(t, build(t, b))
			h.mustPipe("in", Record{Key: "k", Value: "v", Timestamp: ts, Headers: hdrs})
			if len(h.out["out"]) == 0 {
				t.Fatal("no output")
			}
			for _, r := range h.out["out"] {
				if !r.Timestamp.Equal(ts) {
					t.Errorf("timestamp = %v, want %v", r.Timestamp, ts)
				}
				if got := string(r.Header("trace")); got != "t1" {
					t.Errorf("header trace = %q, want t1", got)
				}
			}
		})
	}
}

func TestPeekSeesEveryRecord(t *testing.T) {
	var seen []string
	b := NewBuilder()
	b.Stream([]string{"in"}, inStr).
		Peek(func(k, v any) { seen = append(seen, fmt.Sprintf("%v=%v", k, v)) }).
		Filter(func(k, _ any) bool { return k == "a" }).
		To("out", outStr)
	h := newHarness(t, build(t, b))
	h.mustPipe("in", kv("a", "1"), kv("b", "2"))
	if want := []string{"a=1", "b=2"}; !slices.Equal(seen, want) {
		t.Errorf("peeked %q, want %q", seen, want)
	}
	if want := []string{"a=1"}; !slices.Equal(h.kvs("out"), want) {
		t.Errorf("output %q, want %q", h.kvs("out"), want)
	}
}

func TestMerge(t *testing.T) {
	b := NewBuilder()
	left := b.Stream([]string{"left"}, inStr)
	right := b.Stream([]string{"right"}, inStr).MapValues(func(v any) (any, error) { return "r:" + v.(string), nil })
	left.Merge(right).To("out", outStr)
	topo := build(t, b)
	if n := len(topo.SubTopologies); n != 1 {
		t.Fatalf("merge: %d sub-topologies, want 1 (both sources in one)", n)
	}
	if got, want := topo.SubTopologies[0].SourceTopics(), []string{"left", "right"}; !slices.Equal(got, want) {
		t.Errorf("SourceTopics = %q, want %q", got, want)
	}
	h := newHarness(t, topo)
	h.mustPipe("left", kv("a", "1"))
	h.mustPipe("right", kv("b", "2"))
	h.mustPipe("left", kv("c", "3"))
	if want := []string{"a=1", "b=r:2", "c=3"}; !slices.Equal(h.kvs("out"), want) {
		t.Errorf("output %q, want %q", h.kvs("out"), want)
	}
}

func TestSplit(t *testing.T) {
	isInt := func(_, v any) bool { _, ok := v.(int); return ok }
	isPositive := func(_, v any) bool { i, ok := v.(int); return ok && i > 0 }
	tests := []struct {
		name     string
		branches []Branch
		in       []Record
		want     map[string][]string // branch name -> values reaching it
	}{
		{
			name:     "first matching branch wins",
			branches: []Branch{{Name: "pos", Predicate: isPositive}, {Name: "int", Predicate: isInt}},
			in:       []Record{kv("a", 5), kv("b", -1), kv("c", "x")},
			want:     map[string][]string{"pos": {"a=5"}, "int": {"b=-1"}},
		},
		{
			name:     "default branch takes the rest",
			branches: []Branch{{Name: "pos", Predicate: isPositive}, {Name: "rest"}},
			in:       []Record{kv("a", 5), kv("b", -1), kv("c", "x")},
			want:     map[string][]string{"pos": {"a=5"}, "rest": {"b=-1", "c=x"}},
		},
		{
			name:     "no match is dropped",
			branches: []Branch{{Name: "pos", Predicate: isPositive}},
			in:       []Record{kv("a", 5), kv("b", -1), kv("c", "x")},
			want:     map[string][]string{"pos": {"a=5"}},
		},
		{
			name:     "default first takes everything",
			branches: []Branch{{Name: "all"}, {Name: "pos", Predicate: isPositive}},
			in:       []Record{kv("a", 5), kv("b", -1)},
			want:     map[string][]string{"all": {"a=5", "b=-1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder()
			out := b.Stream([]string{"in"}, inStr).Split(tt.branches, Named("route"))
			if len(out) != len(tt.branches) {
				t.Fatalf("Split returned %d streams, want %d", len(out), len(tt.branches))
			}
			for _, br := range tt.branches {
				out[br.Name].To("topic-"+br.Name, outStr)
			}
			topo := build(t, b)
			for _, br := range tt.branches {
				if topo.Node("route-"+br.Name) == nil {
					t.Errorf("no branch node %q", "route-"+br.Name)
				}
			}
			h := newHarness(t, topo)
			h.mustPipe("in", tt.in...)
			for _, br := range tt.branches {
				got := h.kvs("topic-" + br.Name)
				if want := tt.want[br.Name]; !slices.Equal(got, want) {
					t.Errorf("branch %q got %q, want %q", br.Name, got, want)
				}
			}
		})
	}
}

// countTopology counts records per key into store "counts" and writes the
// counts to "out".
func countTopology(t *testing.T) (*harness, *Topology) {
	t.Helper()
	b := NewBuilder()
	tbl := b.Stream([]string{"in"}, inStr).GroupByKey(grpStr).Count(Materialized{Name: "counts"})
	if got := tbl.StoreName(); got != "counts" {
		t.Errorf("StoreName = %q, want counts", got)
	}
	tbl.ToStream().To("out", outCount)
	topo := build(t, b)
	return newHarness(t, topo), topo
}

func TestCount(t *testing.T) {
	h, topo := countTopology(t)
	spec, ok := topo.Stores["counts"]
	if !ok {
		t.Fatal("no store counts")
	}
	if _, ok := spec.ValueSerde.(serde.Int64); !ok {
		t.Errorf("count store value serde = %T, want serde.Int64", spec.ValueSerde)
	}
	if _, ok := spec.KeySerde.(serde.String); !ok {
		t.Errorf("count store key serde = %T, want the grouping's serde.String", spec.KeySerde)
	}
	h.mustPipe("in", kv("a", "x"), kv("b", "x"), kv(nil, "x"), kv("a", "y"), kv("a", "z"))
	if want := []string{"a=1", "b=1", "a=2", "a=3"}; !slices.Equal(h.kvs("out"), want) {
		t.Errorf("output %q, want %q (nil key skipped)", h.kvs("out"), want)
	}
	for _, r := range h.out["out"] {
		if _, ok := r.Value.(int64); !ok {
			t.Errorf("count value %v is %T, want int64", r.Value, r.Value)
		}
	}
	if want := []string{"a=3", "b=1"}; !slices.Equal(h.stores["counts"].contents(), want) {
		t.Errorf("store = %q, want %q", h.stores["counts"].contents(), want)
	}
}

// TestCountResumesFromStore: the count continues from what the store holds,
// as after a restore from the changelog.
func TestCountResumesFromStore(t *testing.T) {
	h, _ := countTopology(t)
	if err := h.stores["counts"].Put("a", int64(41)); err != nil {
		t.Fatal(err)
	}
	h.mustPipe("in", kv("a", "x"))
	if want := []string{"a=42"}; !slices.Equal(h.kvs("out"), want) {
		t.Errorf("output %q, want %q", h.kvs("out"), want)
	}
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

func TestReduce(t *testing.T) {
	b := NewBuilder()
	var calls []string
	b.Stream([]string{"in"}, inStr).
		GroupByKey(grpStr).
		Reduce(func(agg, v any) (any, error) {
			calls = append(calls, fmt.Sprintf("%v+%v", agg, v))
			return agg.(string) + "," + v.(string), nil
		}, Materialized{Name: "joined"}).
		ToStream().
		To("out", outStr)
	topo := build(t, b)
	if _, ok := topo.Stores["joined"].ValueSerde.(serde.String); !ok {
		t.Errorf("reduce store value serde = %T, want the grouping's serde.String", topo.Stores["joined"].ValueSerde)
	}
	h := newHarness(t, topo)
	h.mustPipe("in", kv("a", "1"), kv("b", "9"), kv("a", "2"), kv(nil, "0"), kv("a", "3"))
	if want := []string{"a=1", "b=9", "a=1,2", "a=1,2,3"}; !slices.Equal(h.kvs("out"), want) {
		t.Errorf("output %q, want %q", h.kvs("out"), want)
	}
	if want := []string{"1+2", "1,2+3"}; !slices.Equal(calls, want) {
		t.Errorf("reducer calls %q, want %q (first value is the aggregate, not passed to fn)", calls, want)
	}
}

func TestAggregate(t *testing.T) {
	b := NewBuilder()
	inits := 0
	b.Stream([]string{"in"}, inStr).
		GroupByKey(grpStr).
		Aggregate(func() any { inits++; return "init" },
			func(k, v, agg any) (any, error) { return fmt.Sprintf("%v|%v:%v", agg, k, v), nil },
			Materialized{Name: "agg", Value: serde.String{}}).
		ToStream().
		To("out", outStr)
	h := newHarness(t, build(t, b))
	h.mustPipe("in", kv("a", "1"), kv("b", "2"), kv("a", "3"), kv(nil, "4"))
	want := []string{"a=init|a:1", "b=init|b:2", "a=init|a:1|a:3"}
	if !slices.Equal(h.kvs("out"), want) {
		t.Errorf("output %q, want %q", h.kvs("out"), want)
	}
	if inits != 2 {
		t.Errorf("init called %d times, want once per key (2)", inits)
	}
}

// TestAggregationsSkipNilValues: Kafka Streams' count, reduce and aggregate
// ignore records with a null key OR a null value ("Skipping record due to
// null key or value"); the aggregateProcessor skips nil keys only.
func TestAggregationsSkipNilValues(t *testing.T) {
	str := serde.String{}
	tests := []struct {
		name string
		agg  func(g *GroupedStream) *Table
		want []string
	}{
		{
			name: "count",
			agg:  func(g *GroupedStream) *Table { return g.Count(Materialized{Name: "s"}) },
			want: []string{"a=1", "a=2"},
		},
		{
			name: "reduce",
			agg: func(g *GroupedStream) *Table {
				return g.Reduce(func(agg, v any) (any, error) {
					if v == nil {
						return nil, errors.New("reducer got a nil value")
					}
					return fmt.Sprint(agg, v), nil
				}, Materialized{Name: "s"})
			},
			want: []string{"a=x", "a=xy"},
		},
		{
			name: "aggregate",
			agg: func(g *GroupedStream) *Table {
				return g.Aggregate(func() any { return "" }, func(_, v, agg any) (any, error) {
					if v == nil {
						return nil, errors.New("aggregator got a nil value")
					}
					return fmt.Sprint(agg, v), nil
				}, Materialized{Name: "s", Value: str})
			},
			want: []string{"a=x", "a=xy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder()
			tt.agg(b.Stream([]string{"in"}, inStr).GroupByKey(grpStr)).ToStream().To("out", outStr)
			h := newHarness(t, build(t, b))
			if err := h.pipe("in", kv("a", "x"), kv("a", nil), kv("a", "y")); err != nil {
				t.Fatalf("BUG: nil value reached the user function: %v", err)
			}
			if got := h.kvs("out"); !slices.Equal(got, tt.want) {
				t.Errorf("BUG: nil value not skipped: output %q, want %q", got, tt.want)
			}
		})
	}
}

var errUser = errors.New("user function failed")

// TestUserErrorsPropagate: an error from a user function comes back from
// Process unchanged (wrapped at most) and nothing is written for that record.
func TestUserErrorsPropagate(t *testing.T) {
	str := serde.String{}
	tests := []struct {
		name string
		op   func(s *Stream) *Stream
	}{
		{"map", func(s *Stream) *Stream {
			return s.Map(func(_, _ any) (any, any, error) { return nil, nil, errUser })
		}},
		{"mapvalues", func(s *Stream) *Stream {
			return s.MapValues(func(any) (any, error) { return nil, errUser })
		}},
		{"flatmap", func(s *Stream) *Stream {
			return s.FlatMap(func(_, _ any) ([]KeyValue, error) { return []KeyValue{{"k", "v"}}, errUser })
		}},
		{"flatmapvalues", func(s *Stream) *Stream {
			return s.FlatMapValues(func(any) ([]any, error) { return []any{"v"}, errUser })
		}},
		{"reduce", func(s *Stream) *Stream {
			return s.GroupByKey(grpStr).
				Reduce(func(_, _ any) (any, error) { return nil, errUser }, Materialized{Name: "s"}).
				ToStream()
		}},
		{"aggregate", func(s *Stream) *Stream {
			return s.GroupByKey(grpStr).
				Aggregate(func() any { return "" }, func(_, _, _ any) (any, error) { return nil, errUser },
					Materialized{Name: "s", Value: str}).
				ToStream()
		}},
		{"processor", func(s *Stream) *Stream {
			return s.Process(func() Processor {
				return &funcProcessor{fn: func(ProcessorContext, Record) error { return errUser }}
			})
		}},
		{"downstream of filter", func(s *Stream) *Stream {
			return s.Filter(keep).MapValues(func(any) (any, error) { return nil, errUser })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder()
			tt.op(b.Stream([]string{"in"}, inStr)).To("out", outStr)
			h := newHarness(t, build(t, b))
			// Reduce only calls its function from the second value of a key on.
			err := h.pipe("in", kv("a", "1"), kv("a", "2"))
			if !errors.Is(err, errUser) {
				t.Fatalf("pipe error = %v, want %v", err, errUser)
			}
			if tt.name != "reduce" && len(h.out["out"]) != 0 {
				t.Errorf("output %q after a failing record", h.kvs("out"))
			}
		})
	}
}

// TestForwardStopsAtFirstError: an error from the first child stops the record
// from reaching later children (Forward is depth first and stops at errors).
func TestForwardStopsAtFirstError(t *testing.T) {
	b := NewBuilder()
	s := b.Stream([]string{"in"}, inStr)
	s.MapValues(func(any) (any, error) { return nil, errUser }).To("first", outStr)
	s.To("second", outStr)
	h := newHarness(t, build(t, b))
	if err := h.pipe("in", kv("a", "1")); !errors.Is(err, errUser) {
		t.Fatalf("pipe error = %v, want %v", err, errUser)
	}
	if len(h.out["second"]) != 0 {
		t.Errorf("second child got %q after the first failed", h.kvs("second"))
	}
}

// TestDepthFirst: a record goes all the way down one child before the next.
func TestDepthFirst(t *testing.T) {
	var order []string
	b := NewBuilder()
	s := b.Stream([]string{"in"}, inStr)
	s.Peek(func(k, _ any) { order = append(order, "left1:"+k.(string)) }).
		Peek(func(k, _ any) { order = append(order, "left2:"+k.(string)) })
	s.Peek(func(k, _ any) { order = append(order, "right:"+k.(string)) })
	h := newHarness(t, build(t, b))
	h.mustPipe("in", kv("a", ""), kv("b", ""))
	want := []string{"left1:a", "left2:a", "right:a", "left1:b", "left2:b", "right:b"}
	if !slices.Equal(order, want) {
		t.Errorf("visit order %q, want %q", order, want)
	}
}

func TestProcessWithStore(t *testing.T) {
	b := NewBuilder()
	b.AddStore(StoreSpec{Name: "seen", KeySerde: serde.String{}, ValueSerde: serde.Int64{}})
	b.Stream([]string{"in"}, inStr).
		Process(func() Processor { return &dedup{store: "seen"} }, Named("dedup"), WithStores("seen")).
		To("out", outStr)
	topo := build(t, b)
	if got := topo.Node("dedup").StoreNames; !slices.Equal(got, []string{"seen"}) {
		t.Errorf("StoreNames = %q, want [seen]", got)
	}
	if got := topo.SubTopologies[0].Stores; !slices.Equal(got, []string{"seen"}) {
		t.Errorf("sub-topology stores = %q, want [seen]", got)
	}
	h := newHarness(t, topo)
	h.mustPipe("in", kv("a", "1"), kv("b", "2"), kv("a", "3"))
	if want := []string{"a=1", "b=2"}; !slices.Equal(h.kvs("out"), want) {
		t.Errorf("output %q, want %q", h.kvs("out"), want)
	}
}

// TestProcessSuppliesOneInstancePerCall: Build must not call the supplier,
// and every task gets its own instance.
func TestProcessSuppliesOneInstancePerCall(t *testing.T) {
	calls := 0
	b := NewBuilder()
	b.Stream([]string{"in"}, inStr).Process(func() Processor { calls++; return passThrough() }, Named("p"))
	topo := build(t, b)
	if calls != 0 {
		t.Errorf("Build called the supplier %d times", calls)
	}
	newHarness(t, topo)
	newHarness(t, topo)
	if calls != 2 {
		t.Errorf("supplier called %d times for two tasks, want 2", calls)
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

// TestRepartitionEndToEnd regroups by value, then counts: records pass
// through the repartition topic into the second sub-topology.
func TestRepartitionEndToEnd(t *testing.T) {
	b := NewBuilder()
	b.Stream([]string{"orders"}, inStr, Named("orders")).
		SelectKey(func(_, v any) any { return v }).
		GroupByKey(grpStr, Named("by-customer")).
		Count(Materialized{Name: "per-customer"}).
		ToStream().
		To("counts", outCount)
	topo := build(t, b)

	if n := len(topo.SubTopologies); n != 2 {
		t.Fatalf("%d sub-topologies, want 2:\n%s", n, topo.Describe())
	}
	st0, st1 := topo.SubTopologies[0], topo.SubTopologies[1]
	if st0.ID != 0 || st1.ID != 1 {
		t.Errorf("IDs %d, %d; want 0, 1", st0.ID, st1.ID)
	}
	if got := st0.SourceTopics(); !slices.Equal(got, []string{"orders"}) {
		t.Errorf("sub-topology 0 SourceTopics = %q, want [orders]", got)
	}
	if got := st1.SourceTopics(); !slices.Equal(got, []string{"by-customer-repartition"}) {
		t.Errorf("sub-topology 1 SourceTopics = %q, want [by-customer-repartition]", got)
	}
	if len(st0.Sinks) != 1 || !st0.Sinks[0].Internal {
		t.Errorf("sub-topology 0 sinks %v, want the repartition sink", names(st0.Sinks))
	}
	if len(st1.Sinks) != 1 || st1.Sinks[0].Topics[0] != "counts" {
		t.Errorf("sub-topology 1 sinks %v, want the counts sink", names(st1.Sinks))
	}
	if len(st0.Stores) != 0 || !slices.Equal(st1.Stores, []string{"per-customer"}) {
		t.Errorf("stores %q / %q, want none / [per-customer]", st0.Stores, st1.Stores)
	}
	if topo.Node("orders").Subtopology() != 0 {
		t.Errorf("source in sub-topology %d", topo.Node("orders").Subtopology())
	}

	h := newHarness(t, topo)
	h.mustPipe("orders", kv("o1", "alice"), kv("o2", "bob"), kv("o3", "alice"))
	if want := []string{"alice=alice", "bob=bob", "alice=alice"}; !slices.Equal(h.kvs("by-customer-repartition"), want) {
		t.Errorf("repartition topic %q, want %q", h.kvs("by-customer-repartition"), want)
	}
	if want := []string{"alice=1", "bob=1", "alice=2"}; !slices.Equal(h.kvs("counts"), want) {
		t.Errorf("counts %q, want %q", h.kvs("counts"), want)
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
