package topology_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// The DSL's operators run on processor.TestDriver: records go in through
// the source's serdes, run through the runner's task (its forwarding, store
// overlay, error policy) on Pebble stores, and come out through the sink's
// serdes. The tests of how a topology is built (nodes, sub-topologies,
// names) need no driver and stay in dsl_test.go.

var (
	str      = serde.String{}
	inStr    = topology.Consumed{Key: str, Value: str}
	outStr   = topology.Produced{Key: str, Value: str}
	outCount = topology.Produced{Key: str, Value: serde.Int64{}}
	grpStr   = topology.Grouped{Key: str, Value: str}
)

// newDriver builds b and runs it on a TestDriver closed when the test ends.
func newDriver(t *testing.T, b *topology.Builder, cfg processor.TestDriverConfig) *processor.TestDriver {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	d, err := processor.NewTestDriver(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// kv builds an input record.
func kv(k, v any) topology.Record { return topology.Record{Key: k, Value: v} }

// pipe writes recs, in order, to topic (whose source reads strings), key and
// value serialized with serde.String, headers and timestamp kept. It stops
// at the first error, which the driver returns under on.error=fail.
func pipe(d *processor.TestDriver, topic string, recs ...topology.Record) error {
	for _, r := range recs {
		k, err := str.Serialize(topic, r.Key)
		if err != nil {
			return err
		}
		v, err := str.Serialize(topic, r.Value)
		if err != nil {
			return err
		}
		if err := d.PipeRecord(processor.TestRecord{Topic: topic, Partition: processor.AnyPartition,
			Key: k, Value: v, Headers: r.Headers, Timestamp: r.Timestamp}); err != nil {
			return err
		}
	}
	return nil
}

// mustPipe is pipe that fails the test on error.
func mustPipe(t *testing.T, d *processor.TestDriver, topic string, recs ...topology.Record) {
	t.Helper()
	if err := pipe(d, topic, recs...); err != nil {
		t.Fatalf("pipe %q: %v", topic, err)
	}
}

// read returns the records written to topic since it was last read.
func read(t *testing.T, d *processor.TestDriver, topic string, value serde.Serde) []topology.Record {
	t.Helper()
	recs, err := d.ReadRecords(topic, str, value)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// kvs renders records as "key=value" strings.
func kvs(recs []topology.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%v=%v", r.Key, r.Value))
	}
	return out
}

// readKVs returns topic's new records (string keys and values) as
// "key=value" strings.
func readKVs(t *testing.T, d *processor.TestDriver, topic string) []string {
	t.Helper()
	return kvs(read(t, d, topic, str))
}

// storeContents returns a key-value store as "key=value" strings in key
// order.
func storeContents(t *testing.T, d *processor.TestDriver, name string) []string {
	t.Helper()
	kv, err := d.KeyValueStore(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if err := kv.Range(nil, nil, func(k, v any) error {
		out = append(out, fmt.Sprintf("%v=%v", k, v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func keep(_, _ any) bool { return true }

// funcProc is a processor made of a function.
type funcProc struct {
	ctx topology.ProcessorContext
	fn  func(ctx topology.ProcessorContext, r topology.Record) error
}

func (p *funcProc) Init(ctx topology.ProcessorContext) error { p.ctx = ctx; return nil }
func (p *funcProc) Process(r topology.Record) error          { return p.fn(p.ctx, r) }
func (p *funcProc) Close() error                             { return nil }

// passThrough is a Processor API supplier that forwards every record.
func passThrough() topology.Processor {
	return &funcProc{fn: func(ctx topology.ProcessorContext, r topology.Record) error { return ctx.Forward(r) }}
}

func nodeNames(ns []*topology.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

func TestStatelessOperators(t *testing.T) {
	words := func(v any) []string { return strings.Fields(v.(string)) }
	tests := []struct {
		name string
		op   func(s *topology.Stream) *topology.Stream
		in   []topology.Record
		want []string // key=value at the sink, in order
	}{
		{
			name: "filter",
			op:   func(s *topology.Stream) *topology.Stream { return s.Filter(func(_, v any) bool { return v == "keep" }) },
			in:   []topology.Record{kv("a", "keep"), kv("b", "drop"), kv("c", "keep")},
			want: []string{"a=keep", "c=keep"},
		},
		{
			name: "filter not",
			op: func(s *topology.Stream) *topology.Stream {
				return s.FilterNot(func(_, v any) bool { return v == "keep" })
			},
			in:   []topology.Record{kv("a", "keep"), kv("b", "drop"), kv("c", "keep")},
			want: []string{"b=drop"},
		},
		{
			name: "map swaps key and value",
			op: func(s *topology.Stream) *topology.Stream {
				return s.Map(func(k, v any) (any, any, error) { return v, k, nil })
			},
			in:   []topology.Record{kv("a", "1"), kv("b", "2")},
			want: []string{"1=a", "2=b"},
		},
		{
			name: "map values keeps key",
			op: func(s *topology.Stream) *topology.Stream {
				return s.MapValues(func(v any) (any, error) { return strings.ToUpper(v.(string)), nil })
			},
			in:   []topology.Record{kv("a", "x"), kv(nil, "y")},
			want: []string{"a=X", "<nil>=Y"},
		},
		{
			name: "flat map",
			op: func(s *topology.Stream) *topology.Stream {
				return s.FlatMap(func(_, v any) ([]topology.KeyValue, error) {
					var out []topology.KeyValue
					for _, w := range words(v) {
						out = append(out, topology.KeyValue{Key: w, Value: strconv.Itoa(len(w))})
					}
					return out, nil
				})
			},
			in:   []topology.Record{kv("s1", "to be"), kv("s2", ""), kv("s3", "or")},
			want: []string{"to=2", "be=2", "or=2"},
		},
		{
			name: "flat map values",
			op: func(s *topology.Stream) *topology.Stream {
				return s.FlatMapValues(func(v any) ([]any, error) {
					var out []any
					for _, w := range words(v) {
						out = append(out, w)
					}
					return out, nil
				})
			},
			in:   []topology.Record{kv("s1", "to be"), kv("s2", ""), kv("s3", "or")},
			want: []string{"s1=to", "s1=be", "s3=or"},
		},
		{
			name: "peek passes records on unchanged",
			op:   func(s *topology.Stream) *topology.Stream { return s.Peek(func(_, _ any) {}) },
			in:   []topology.Record{kv("a", "1"), kv("b", "2")},
			want: []string{"a=1", "b=2"},
		},
		{
			name: "select key",
			op: func(s *topology.Stream) *topology.Stream {
				return s.SelectKey(func(k, v any) any { return fmt.Sprint(k, v) })
			},
			in:   []topology.Record{kv("a", "1"), kv("b", "2")},
			want: []string{"a1=1", "b2=2"},
		},
		{
			name: "chain",
			op: func(s *topology.Stream) *topology.Stream {
				return s.Filter(func(k, _ any) bool { return k != "skip" }).
					MapValues(func(v any) (any, error) { return v.(string) + "!", nil }).
					SelectKey(func(_, v any) any { return v })
			},
			in:   []topology.Record{kv("a", "1"), kv("skip", "2"), kv("c", "3")},
			want: []string{"1!=1!", "3!=3!"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tt.op(b.Stream([]string{"in"}, inStr)).To("out", outStr)
			d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
			mustPipe(t, d, "in", tt.in...)
			if got := readKVs(t, d, "out"); !slices.Equal(got, tt.want) {
				t.Errorf("output = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStatelessOperatorsKeepTimestampAndHeaders: records derived from an
// input keep its event time and headers.
func TestStatelessOperatorsKeepTimestampAndHeaders(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	hdrs := []topology.Header{{Key: "trace", Value: []byte("t1")}}
	ops := map[string]func(s *topology.Stream) *topology.Stream{
		"map": func(s *topology.Stream) *topology.Stream {
			return s.Map(func(k, v any) (any, any, error) { return v, k, nil })
		},
		"mapvalues": func(s *topology.Stream) *topology.Stream {
			return s.MapValues(func(v any) (any, error) { return v, nil })
		},
		"flatmap": func(s *topology.Stream) *topology.Stream {
			return s.FlatMap(func(k, v any) ([]topology.KeyValue, error) { return []topology.KeyValue{{k, v}, {v, k}}, nil })
		},
		"flatmapvalues": func(s *topology.Stream) *topology.Stream {
			return s.FlatMapValues(func(v any) ([]any, error) { return []any{v, v}, nil })
		},
		"selectkey": func(s *topology.Stream) *topology.Stream { return s.SelectKey(func(_, v any) any { return v }) },
		"filter":    func(s *topology.Stream) *topology.Stream { return s.Filter(keep) },
		"peek":      func(s *topology.Stream) *topology.Stream { return s.Peek(func(_, _ any) {}) },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			b := topology.NewBuilder()
			op(b.Stream([]string{"in"}, inStr)).To("out", outStr)
			d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
			mustPipe(t, d, "in", topology.Record{Key: "k", Value: "v", Timestamp: ts, Headers: hdrs})
			out := read(t, d, "out", str)
			if len(out) == 0 {
				t.Fatal("no output")
			}
			for _, r := range out {
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
	b := topology.NewBuilder()
	b.Stream([]string{"in"}, inStr).
		Peek(func(k, v any) { seen = append(seen, fmt.Sprintf("%v=%v", k, v)) }).
		Filter(func(k, _ any) bool { return k == "a" }).
		To("out", outStr)
	d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
	mustPipe(t, d, "in", kv("a", "1"), kv("b", "2"))
	if want := []string{"a=1", "b=2"}; !slices.Equal(seen, want) {
		t.Errorf("peeked %q, want %q", seen, want)
	}
	if got, want := readKVs(t, d, "out"), []string{"a=1"}; !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestMerge(t *testing.T) {
	b := topology.NewBuilder()
	left := b.Stream([]string{"left"}, inStr)
	right := b.Stream([]string{"right"}, inStr).MapValues(func(v any) (any, error) { return "r:" + v.(string), nil })
	left.Merge(right).To("out", outStr)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topo.SubTopologies); n != 1 {
		t.Fatalf("merge: %d sub-topologies, want 1 (both sources in one)", n)
	}
	if got, want := topo.SubTopologies[0].SourceTopics(), []string{"left", "right"}; !slices.Equal(got, want) {
		t.Errorf("SourceTopics = %q, want %q", got, want)
	}
	d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
	mustPipe(t, d, "left", kv("a", "1"))
	mustPipe(t, d, "right", kv("b", "2"))
	mustPipe(t, d, "left", kv("c", "3"))
	if got, want := readKVs(t, d, "out"), []string{"a=1", "b=r:2", "c=3"}; !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestSplit(t *testing.T) {
	isInt := func(_, v any) bool { _, err := strconv.Atoi(v.(string)); return err == nil }
	isPositive := func(_, v any) bool { i, err := strconv.Atoi(v.(string)); return err == nil && i > 0 }
	tests := []struct {
		name     string
		branches []topology.Branch
		in       []topology.Record
		want     map[string][]string // branch name -> values reaching it
	}{
		{
			name:     "first matching branch wins",
			branches: []topology.Branch{{Name: "pos", Predicate: isPositive}, {Name: "int", Predicate: isInt}},
			in:       []topology.Record{kv("a", "5"), kv("b", "-1"), kv("c", "x")},
			want:     map[string][]string{"pos": {"a=5"}, "int": {"b=-1"}},
		},
		{
			name:     "default branch takes the rest",
			branches: []topology.Branch{{Name: "pos", Predicate: isPositive}, {Name: "rest"}},
			in:       []topology.Record{kv("a", "5"), kv("b", "-1"), kv("c", "x")},
			want:     map[string][]string{"pos": {"a=5"}, "rest": {"b=-1", "c=x"}},
		},
		{
			name:     "no match is dropped",
			branches: []topology.Branch{{Name: "pos", Predicate: isPositive}},
			in:       []topology.Record{kv("a", "5"), kv("b", "-1"), kv("c", "x")},
			want:     map[string][]string{"pos": {"a=5"}},
		},
		{
			name:     "default first takes everything",
			branches: []topology.Branch{{Name: "all"}, {Name: "pos", Predicate: isPositive}},
			in:       []topology.Record{kv("a", "5"), kv("b", "-1")},
			want:     map[string][]string{"all": {"a=5", "b=-1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := topology.NewBuilder()
			out := b.Stream([]string{"in"}, inStr).Split(tt.branches, topology.Named("route"))
			if len(out) != len(tt.branches) {
				t.Fatalf("Split returned %d streams, want %d", len(out), len(tt.branches))
			}
			for _, br := range tt.branches {
				out[br.Name].To("topic-"+br.Name, outStr)
			}
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			for _, br := range tt.branches {
				if topo.Node("route-"+br.Name) == nil {
					t.Errorf("no branch node %q", "route-"+br.Name)
				}
			}
			d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
			mustPipe(t, d, "in", tt.in...)
			for _, br := range tt.branches {
				got := readKVs(t, d, "topic-"+br.Name)
				if want := tt.want[br.Name]; !slices.Equal(got, want) {
					t.Errorf("branch %q got %q, want %q", br.Name, got, want)
				}
			}
		})
	}
}

// countTopology counts records per key into store "counts" and writes the
// counts to "out".
func countTopology(t *testing.T) (*processor.TestDriver, *topology.Topology) {
	t.Helper()
	b := topology.NewBuilder()
	tbl := b.Stream([]string{"in"}, inStr).GroupByKey(grpStr).Count(topology.Materialized{Name: "counts"})
	if got := tbl.StoreName(); got != "counts" {
		t.Errorf("StoreName = %q, want counts", got)
	}
	tbl.ToStream().To("out", outCount)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail}), topo
}

func TestCount(t *testing.T) {
	d, topo := countTopology(t)
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
	mustPipe(t, d, "in", kv("a", "x"), kv("b", "x"), kv(nil, "x"), kv("a", "y"), kv("a", "z"))
	out := read(t, d, "out", serde.Int64{})
	if got, want := kvs(out), []string{"a=1", "b=1", "a=2", "a=3"}; !slices.Equal(got, want) {
		t.Errorf("output %q, want %q (nil key skipped)", got, want)
	}
	for _, r := range out {
		if _, ok := r.Value.(int64); !ok {
			t.Errorf("count value %v is %T, want int64", r.Value, r.Value)
		}
	}
	if got, want := storeContents(t, d, "counts"), []string{"a=3", "b=1"}; !slices.Equal(got, want) {
		t.Errorf("store = %q, want %q", got, want)
	}
}

// TestCountResumesFromStore: the count continues from what the store holds,
// as after a restore from the changelog.
func TestCountResumesFromStore(t *testing.T) {
	d, _ := countTopology(t)
	kv, err := d.KeyValueStore("counts")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Put("a", int64(41)); err != nil {
		t.Fatal(err)
	}
	mustPipe(t, d, "in", topology.Record{Key: "a", Value: "x"})
	if got, want := kvs(read(t, d, "out", serde.Int64{})), []string{"a=42"}; !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestReduce(t *testing.T) {
	b := topology.NewBuilder()
	var calls []string
	b.Stream([]string{"in"}, inStr).
		GroupByKey(grpStr).
		Reduce(func(agg, v any) (any, error) {
			calls = append(calls, fmt.Sprintf("%v+%v", agg, v))
			return agg.(string) + "," + v.(string), nil
		}, topology.Materialized{Name: "joined"}).
		ToStream().
		To("out", outStr)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := topo.Stores["joined"].ValueSerde.(serde.String); !ok {
		t.Errorf("reduce store value serde = %T, want the grouping's serde.String", topo.Stores["joined"].ValueSerde)
	}
	d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
	mustPipe(t, d, "in", kv("a", "1"), kv("b", "9"), kv("a", "2"), kv(nil, "0"), kv("a", "3"))
	if got, want := readKVs(t, d, "out"), []string{"a=1", "b=9", "a=1,2", "a=1,2,3"}; !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
	if want := []string{"1+2", "1,2+3"}; !slices.Equal(calls, want) {
		t.Errorf("reducer calls %q, want %q (first value is the aggregate, not passed to fn)", calls, want)
	}
}

func TestAggregate(t *testing.T) {
	b := topology.NewBuilder()
	inits := 0
	b.Stream([]string{"in"}, inStr).
		GroupByKey(grpStr).
		Aggregate(func() any { inits++; return "init" },
			func(k, v, agg any) (any, error) { return fmt.Sprintf("%v|%v:%v", agg, k, v), nil },
			topology.Materialized{Name: "agg", Value: str}).
		ToStream().
		To("out", outStr)
	d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
	mustPipe(t, d, "in", kv("a", "1"), kv("b", "2"), kv("a", "3"), kv(nil, "4"))
	want := []string{"a=init|a:1", "b=init|b:2", "a=init|a:1|a:3"}
	if got := readKVs(t, d, "out"); !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
	if inits != 2 {
		t.Errorf("init called %d times, want once per key (2)", inits)
	}
}

// TestAggregationsSkipNilValues: Kafka Streams' count, reduce and aggregate
// ignore records with a null key OR a null value ("Skipping record due to
// null key or value"); the aggregateProcessor skips nil keys only.
func TestAggregationsSkipNilValues(t *testing.T) {
	tests := []struct {
		name string
		agg  func(g *topology.GroupedStream) *topology.Table
		want []string
	}{
		{
			name: "count",
			agg:  func(g *topology.GroupedStream) *topology.Table { return g.Count(topology.Materialized{Name: "s"}) },
			want: []string{"a=1", "a=2"},
		},
		{
			name: "reduce",
			agg: func(g *topology.GroupedStream) *topology.Table {
				return g.Reduce(func(agg, v any) (any, error) {
					if v == nil {
						return nil, errors.New("reducer got a nil value")
					}
					return fmt.Sprint(agg, v), nil
				}, topology.Materialized{Name: "s"})
			},
			want: []string{"a=x", "a=xy"},
		},
		{
			name: "aggregate",
			agg: func(g *topology.GroupedStream) *topology.Table {
				return g.Aggregate(func() any { return "" }, func(_, v, agg any) (any, error) {
					if v == nil {
						return nil, errors.New("aggregator got a nil value")
					}
					return fmt.Sprint(agg, v), nil
				}, topology.Materialized{Name: "s", Value: str})
			},
			want: []string{"a=x", "a=xy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := topology.NewBuilder()
			out := outStr
			if tt.name == "count" {
				out = outCount
			}
			tt.agg(b.Stream([]string{"in"}, inStr).GroupByKey(grpStr)).ToStream().To("out", out)
			d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
			if err := pipe(d, "in", kv("a", "x"), kv("a", nil), kv("a", "y")); err != nil {
				t.Fatalf("BUG: nil value reached the user function: %v", err)
			}
			if got := kvs(read(t, d, "out", out.Value)); !slices.Equal(got, tt.want) {
				t.Errorf("BUG: nil value not skipped: output %q, want %q", got, tt.want)
			}
		})
	}
}

var errUser = errors.New("user function failed")

// TestUserErrorsPropagate: an error from a user function comes back from
// Process unchanged (wrapped at most; under on.error=fail the driver returns
// it in a *processor.ProcessingError) and nothing is written for that
// record.
func TestUserErrorsPropagate(t *testing.T) {
	tests := []struct {
		name string
		op   func(s *topology.Stream) *topology.Stream
	}{
		{"map", func(s *topology.Stream) *topology.Stream {
			return s.Map(func(_, _ any) (any, any, error) { return nil, nil, errUser })
		}},
		{"mapvalues", func(s *topology.Stream) *topology.Stream {
			return s.MapValues(func(any) (any, error) { return nil, errUser })
		}},
		{"flatmap", func(s *topology.Stream) *topology.Stream {
			return s.FlatMap(func(_, _ any) ([]topology.KeyValue, error) { return []topology.KeyValue{{"k", "v"}}, errUser })
		}},
		{"flatmapvalues", func(s *topology.Stream) *topology.Stream {
			return s.FlatMapValues(func(any) ([]any, error) { return []any{"v"}, errUser })
		}},
		{"reduce", func(s *topology.Stream) *topology.Stream {
			return s.GroupByKey(grpStr).
				Reduce(func(_, _ any) (any, error) { return nil, errUser }, topology.Materialized{Name: "s"}).
				ToStream()
		}},
		{"aggregate", func(s *topology.Stream) *topology.Stream {
			return s.GroupByKey(grpStr).
				Aggregate(func() any { return "" }, func(_, _, _ any) (any, error) { return nil, errUser },
					topology.Materialized{Name: "s", Value: str}).
				ToStream()
		}},
		{"processor", func(s *topology.Stream) *topology.Stream {
			return s.Process(func() topology.Processor {
				return &funcProc{fn: func(topology.ProcessorContext, topology.Record) error { return errUser }}
			})
		}},
		{"downstream of filter", func(s *topology.Stream) *topology.Stream {
			return s.Filter(keep).MapValues(func(any) (any, error) { return nil, errUser })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tt.op(b.Stream([]string{"in"}, inStr)).To("out", outStr)
			d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
			// Reduce only calls its function from the second value of a key on.
			err := pipe(d, "in", kv("a", "1"), kv("a", "2"))
			if !errors.Is(err, errUser) {
				t.Fatalf("pipe error = %v, want %v", err, errUser)
			}
			var want []string // the failed record wrote nothing
			if tt.name == "reduce" {
				want = []string{"a=1"} // the first record's
			}
			if got := readKVs(t, d, "out"); !slices.Equal(got, want) {
				t.Errorf("output %q, want %q", got, want)
			}
		})
	}
}

// TestForwardStopsAtFirstError: an error from the first child stops the record
// from reaching later children (Forward is depth first and stops at errors).
func TestForwardStopsAtFirstError(t *testing.T) {
	b := topology.NewBuilder()
	s := b.Stream([]string{"in"}, inStr)
	s.MapValues(func(any) (any, error) { return nil, errUser }).To("first", outStr)
	reached := false
	s.Peek(func(_, _ any) { reached = true }).To("second", outStr)
	d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
	if err := pipe(d, "in", kv("a", "1")); !errors.Is(err, errUser) {
		t.Fatalf("pipe error = %v, want %v", err, errUser)
	}
	if got := readKVs(t, d, "second"); reached || len(got) != 0 {
		t.Errorf("second child reached (%v), got %q after the first failed", reached, got)
	}
}

// TestDepthFirst: a record goes all the way down one child before the next.
func TestDepthFirst(t *testing.T) {
	var order []string
	b := topology.NewBuilder()
	s := b.Stream([]string{"in"}, inStr)
	s.Peek(func(k, _ any) { order = append(order, "left1:"+k.(string)) }).
		Peek(func(k, _ any) { order = append(order, "left2:"+k.(string)) })
	s.Peek(func(k, _ any) { order = append(order, "right:"+k.(string)) })
	d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
	mustPipe(t, d, "in", kv("a", ""), kv("b", ""))
	want := []string{"left1:a", "left2:a", "right:a", "left1:b", "left2:b", "right:b"}
	if !slices.Equal(order, want) {
		t.Errorf("visit order %q, want %q", order, want)
	}
}

// dedup forwards a key's first record only; it remembers keys in a store.
type dedup struct {
	store string
	ctx   topology.ProcessorContext
	kv    topology.KeyValueStore
}

func (d *dedup) Init(ctx topology.ProcessorContext) error {
	d.ctx, d.kv = ctx, ctx.Store(d.store)
	return nil
}

func (d *dedup) Process(r topology.Record) error {
	v, err := d.kv.Get(r.Key)
	if err != nil {
		return err
	}
	if v != nil {
		return nil
	}
	if err := d.kv.Put(r.Key, int64(1)); err != nil {
		return err
	}
	return d.ctx.Forward(r)
}

func (d *dedup) Close() error { return nil }

func TestProcessWithStore(t *testing.T) {
	b := topology.NewBuilder()
	b.AddStore(topology.StoreSpec{Name: "seen", KeySerde: str, ValueSerde: serde.Int64{}})
	b.Stream([]string{"in"}, inStr).
		Process(func() topology.Processor { return &dedup{store: "seen"} }, topology.Named("dedup"), topology.WithStores("seen")).
		To("out", outStr)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Node("dedup").StoreNames; !slices.Equal(got, []string{"seen"}) {
		t.Errorf("StoreNames = %q, want [seen]", got)
	}
	if got := topo.SubTopologies[0].Stores; !slices.Equal(got, []string{"seen"}) {
		t.Errorf("sub-topology stores = %q, want [seen]", got)
	}
	d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
	mustPipe(t, d, "in", kv("a", "1"), kv("b", "2"), kv("a", "3"))
	if got, want := readKVs(t, d, "out"), []string{"a=1", "b=2"}; !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
}

// TestProcessSuppliesOneInstancePerCall: Build must not call the supplier,
// and every task gets its own instance.
func TestProcessSuppliesOneInstancePerCall(t *testing.T) {
	calls := 0
	b := topology.NewBuilder()
	b.Stream([]string{"in"}, inStr).Process(func() topology.Processor { calls++; return passThrough() }, topology.Named("p"))
	if _, err := b.Build(); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Errorf("Build called the supplier %d times", calls)
	}
	newDriver(t, b, processor.TestDriverConfig{Partitions: map[string]int{"in": 2}}) // two tasks
	if calls != 2 {
		t.Errorf("supplier called %d times for two tasks, want 2", calls)
	}
}

// TestRepartitionEndToEnd regroups by value, then counts: records pass
// through the repartition topic into the second sub-topology.
func TestRepartitionEndToEnd(t *testing.T) {
	b := topology.NewBuilder()
	b.Stream([]string{"orders"}, inStr, topology.Named("orders")).
		SelectKey(func(_, v any) any { return v }).
		GroupByKey(grpStr, topology.Named("by-customer")).
		Count(topology.Materialized{Name: "per-customer"}).
		ToStream().
		To("counts", outCount)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

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
		t.Errorf("sub-topology 0 sinks %v, want the repartition sink", nodeNames(st0.Sinks))
	}
	if len(st1.Sinks) != 1 || st1.Sinks[0].Topics[0] != "counts" {
		t.Errorf("sub-topology 1 sinks %v, want the counts sink", nodeNames(st1.Sinks))
	}
	if len(st0.Stores) != 0 || !slices.Equal(st1.Stores, []string{"per-customer"}) {
		t.Errorf("stores %q / %q, want none / [per-customer]", st0.Stores, st1.Stores)
	}
	if topo.Node("orders").Subtopology() != 0 {
		t.Errorf("source in sub-topology %d", topo.Node("orders").Subtopology())
	}

	d := newDriver(t, b, processor.TestDriverConfig{OnError: processor.OnErrorFail})
	mustPipe(t, d, "orders", kv("o1", "alice"), kv("o2", "bob"), kv("o3", "alice"))
	if got, want := readKVs(t, d, "by-customer-repartition"), []string{"alice=alice", "bob=bob", "alice=alice"}; !slices.Equal(got, want) {
		t.Errorf("repartition topic %q, want %q", got, want)
	}
	if got, want := kvs(read(t, d, "counts", serde.Int64{})), []string{"alice=1", "bob=1", "alice=2"}; !slices.Equal(got, want) {
		t.Errorf("counts %q, want %q", got, want)
	}
}
