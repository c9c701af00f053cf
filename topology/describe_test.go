package topology

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/eos-runner/eos-runner/serde"
)

// Serdes used throughout the tests; only their presence matters here.
var (
	inStr    = Consumed{Key: serde.String{}, Value: serde.String{}}
	outStr   = Produced{Key: serde.String{}, Value: serde.String{}}
	outCount = Produced{Key: serde.String{}, Value: serde.Int64{}}
	grpStr   = Grouped{Key: serde.String{}, Value: serde.String{}}
)

func keep(_, _ any) bool { return true }

func identity(k, v any) (any, any, error) { return k, v, nil }

// describeTopologies are the topologies testdata/describe refers to by name.
var describeTopologies = map[string]func(b *Builder){
	"filter-map-to": func(b *Builder) {
		b.Stream([]string{"input"}, inStr).
			Filter(keep).
			Map(identity).
			To("output", outStr)
	},
	"count-per-key": func(b *Builder) {
		b.Stream([]string{"words"}, inStr).
			GroupByKey(grpStr).
			Count(Materialized{Name: "counts"}).
			ToStream().
			To("word-counts", outCount)
	},
	"selectkey-groupbykey-count": func(b *Builder) {
		b.Stream([]string{"orders"}, inStr).
			SelectKey(func(_, v any) any { return v }).
			GroupByKey(grpStr).
			Count(Materialized{}).
			ToStream().
			To("order-counts", outCount)
	},
	"named-repartition": func(b *Builder) {
		b.Stream([]string{"orders"}, inStr).
			SelectKey(func(_, v any) any { return v }, Named("by-customer")).
			GroupByKey(grpStr, Named("orders-by-customer")).
			Count(Materialized{Name: "customer-counts"}).
			ToStream().
			To("customer-counts", outCount)
	},
	"explicit-repartition": func(b *Builder) {
		b.Stream([]string{"clicks"}, inStr).
			Repartition("clicks-by-key", outStr).
			To("clicks-out", outStr)
	},
	"merge": func(b *Builder) {
		left := b.Stream([]string{"left"}, inStr)
		right := b.Stream([]string{"right"}, inStr).MapValues(func(v any) (any, error) { return v, nil })
		left.Merge(right).To("merged", outStr)
	},
	"split-branches": func(b *Builder) {
		br := b.Stream([]string{"events"}, inStr).Split([]Branch{
			{Name: "errors", Predicate: func(_, v any) bool { return v == "error" }},
			{Name: "warnings", Predicate: func(_, v any) bool { return v == "warning" }},
			{Name: "rest"},
		}, Named("route"))
		br["errors"].To("errors", outStr)
		br["warnings"].To("warnings", outStr)
		br["rest"].To("other", outStr)
	},
	"processor-api-with-store": func(b *Builder) {
		b.AddStore(StoreSpec{Name: "seen", KeySerde: serde.String{}, ValueSerde: serde.Int64{}})
		b.Stream([]string{"input"}, inStr, Named("in")).
			Process(func() Processor { return &dedup{store: "seen"} }, Named("dedup"), WithStores("seen")).
			To("deduped", outStr, Named("out"))
	},
	"shared-store-joins-subtopologies": func(b *Builder) {
		b.AddStore(StoreSpec{Name: "shared", KeySerde: serde.String{}, ValueSerde: serde.Int64{}})
		b.Stream([]string{"a"}, inStr, Named("src-a")).
			Process(func() Processor { return &dedup{store: "shared"} }, Named("proc-a"), WithStores("shared"))
		b.Stream([]string{"b"}, inStr, Named("src-b")).
			Process(func() Processor { return &dedup{store: "shared"} }, Named("proc-b"), WithStores("shared"))
	},
	"independent-streams": func(b *Builder) {
		b.Stream([]string{"a"}, inStr).To("a-out", outStr)
		b.Stream([]string{"b"}, inStr).To("b-out", outStr)
	},
	"reduce": func(b *Builder) {
		b.Stream([]string{"amounts"}, inStr).
			GroupByKey(grpStr).
			Reduce(func(agg, v any) (any, error) { return agg.(string) + v.(string), nil }, Materialized{Name: "concat"}).
			ToStream().
			To("concatenated", outStr)
	},
	"aggregate": func(b *Builder) {
		b.Stream([]string{"amounts"}, inStr).
			GroupBy(func(_, v any) any { return v }, grpStr).
			Aggregate(func() any { return int64(0) },
				func(_, _, agg any) (any, error) { return agg.(int64) + 1, nil },
				Materialized{Name: "totals", Value: serde.Int64{}}).
			ToStream().
			To("totals", outCount)
	},
	"flatmap": func(b *Builder) {
		b.Stream([]string{"sentences"}, inStr).
			FlatMap(func(_, v any) ([]KeyValue, error) { return nil, nil }).
			GroupByKey(grpStr).
			Count(Materialized{}).
			ToStream().
			To("word-counts", outCount)
	},
	"flatmapvalues-peek": func(b *Builder) {
		b.Stream([]string{"sentences"}, inStr).
			FlatMapValues(func(v any) ([]any, error) { return nil, nil }).
			Peek(func(_, _ any) {}).
			GroupByKey(grpStr).
			Count(Materialized{Name: "no-repartition"})
	},
	"table-groupby-count": func(b *Builder) {
		b.Table("user-regions", inStr, Materialized{}).
			GroupBy(func(user, region any) (any, any, error) { return region, user, nil }, grpStr).
			Count(Materialized{}).
			ToStream().
			To("region-counts", outCount)
	},
	"table-groupby-named-shared-repartition": func(b *Builder) {
		byRegion := b.Table("user-regions", inStr, Materialized{Name: "users"}).
			GroupBy(func(user, region any) (any, any, error) { return region, user, nil }, grpStr, Named("by-region"))
		byRegion.Count(Materialized{Name: "region-counts"})
		byRegion.Reduce(
			func(agg, v any) (any, error) { return agg.(string) + v.(string), nil },
			func(agg, v any) (any, error) { return agg, nil },
			Materialized{Name: "region-users"})
	},
	"table-groupby-invalid": func(b *Builder) {
		byRegion := func(user, region any) (any, any, error) { return region, user, nil }
		users := b.Table("user-regions", inStr, Materialized{Name: "users"})
		g := users.GroupBy(byRegion, grpStr)
		g.Count(Materialized{Name: "counts", TTL: time.Hour})
		g.Aggregate(func() any { return "" }, nil, nil, Materialized{Name: "agg"})
		users.GroupBy(byRegion, Grouped{Key: serde.String{}}).Count(Materialized{Name: "more-counts"})
	},
	"invalid": func(b *Builder) {
		b.Stream([]string{"x"}, Consumed{}, Named("src")).To("", Produced{}, Named("sink"))
	},
}

// dedup forwards a key's first record only; it remembers keys in a store.
type dedup struct {
	store string
	ctx   ProcessorContext
	kv    KeyValueStore
}

func (d *dedup) Init(ctx ProcessorContext) error {
	d.ctx, d.kv = ctx, ctx.Store(d.store)
	return nil
}

func (d *dedup) Process(r Record) error {
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

// TestDescribe prints Topology.Describe() of the named topologies. Regenerate
// with `go test ./topology -run TestDescribe -rewrite` and review the diff.
func TestDescribe(t *testing.T) {
	datadriven.RunTest(t, "testdata/describe", func(t *testing.T, d *datadriven.TestData) string {
		switch d.Cmd {
		case "describe":
			var name string
			d.ScanArgs(t, "topology", &name)
			fn, ok := describeTopologies[name]
			if !ok {
				d.Fatalf(t, "unknown topology %q", name)
			}
			b := NewBuilder()
			fn(b)
			topo, err := b.Build()
			if err != nil {
				return "error: " + strings.ReplaceAll(err.Error(), "\n", "\n  ") + "\n"
			}
			return topo.Describe()
		default:
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		}
	})
}

// TestDescribeCoversAllTopologies keeps the table and testdata/describe in step.
func TestDescribeCoversAllTopologies(t *testing.T) {
	used := map[string]bool{}
	datadriven.Walk(t, "testdata/describe", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var name string
			d.ScanArgs(t, "topology", &name)
			used[name] = true
			return d.Expected
		})
	})
	var missing []string
	for name := range describeTopologies {
		if !used[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("topologies not described in testdata/describe: %v", missing)
	}
}

// TestDescribeMatchesKafkaFormat compares Describe with the text Kafka
// Streams' TopologyDescription.toString prints for the same graph (node names
// given explicitly so both agree): a sink prints only its predecessors (no
// "--> none"), each sub-topology ends with a blank line, and later
// sub-topologies are indented by two spaces, not three.
func TestDescribeMatchesKafkaFormat(t *testing.T) {
	b := NewBuilder()
	b.Stream([]string{"input"}, inStr, Named("source")).
		Filter(keep, Named("filter")).
		To("output", outStr, Named("sink"))
	b.Stream([]string{"other"}, inStr, Named("source2")).
		To("other-out", outStr, Named("sink2"))
	got := build(t, b).Describe()
	want := `Topologies:
   Sub-topology: 0
    Source: source (topics: [input])
      --> filter
    Processor: filter (stores: [])
      --> sink
      <-- source
    Sink: sink (topic: output)
      <-- filter

  Sub-topology: 1
    Source: source2 (topics: [other])
      --> sink2
    Sink: sink2 (topic: other-out)
      <-- source2

`
	if got != want {
		t.Errorf("BUG: Describe differs from Kafka Streams' TopologyDescription format\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// TestDescribeStores checks the store lines: one per store, sorted, in the
// sub-topology that uses it, naming the changelog topic.
func TestDescribeStores(t *testing.T) {
	b := NewBuilder()
	b.AddStore(StoreSpec{Name: "zeta", KeySerde: serde.String{}, ValueSerde: serde.String{}})
	b.AddStore(StoreSpec{Name: "alpha", KeySerde: serde.String{}, ValueSerde: serde.String{}})
	b.Stream([]string{"in"}, inStr).
		Process(func() Processor { return &dedup{store: "zeta"} }, WithStores("zeta", "alpha"))
	got := build(t, b).Describe()
	for _, want := range []string{
		"Processor: KSTREAM-PROCESSOR-0000000001 (stores: [zeta, alpha])\n",
		"    Store: alpha (changelog: <application.id>-alpha-changelog)\n    Store: zeta (changelog: <application.id>-zeta-changelog)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Describe lacks %q:\n%s", want, got)
		}
	}
}

// TestDescribeDeterministic: building the same topology twice describes it
// identically (no map iteration order leaks into numbering or order).
func TestDescribeDeterministic(t *testing.T) {
	for name, fn := range describeTopologies {
		var outs [2]string
		for i := range outs {
			b := NewBuilder()
			fn(b)
			topo, err := b.Build()
			if err != nil {
				outs[i] = err.Error()
				continue
			}
			outs[i] = topo.Describe()
		}
		if outs[0] != outs[1] {
			t.Errorf("%s: two builds differ:\n%s\n---\n%s", name, outs[0], outs[1])
		}
	}
}
