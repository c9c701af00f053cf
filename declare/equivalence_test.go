package declare

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// The same topologies declared and built in Go give the same outputs: every
// operation, through RunTest (what `eos-runner test` runs) and through the
// test driver on the Go topology.

var str, js = serde.String{}, serde.JSON{}

func m(v any) map[string]any { x, _ := v.(map[string]any); return x }

func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return 0
}

type equivCase struct {
	name  string
	yaml  string
	build func(b *topology.Builder)
	input string // JSON lines
	// partitions of external topics, for both
	partitions map[string]int
}

func runGo(t *testing.T, c equivCase, inputs []TestRecord) []TestRecord {
	t.Helper()
	b := topology.NewBuilder()
	c.build(b)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{ApplicationID: "app", Partitions: c.partitions})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, in := range inputs {
		if err := pipeTestRecord(d, topo, in); err != nil {
			t.Fatal(err)
		}
	}
	var out []TestRecord
	seen := map[string]bool{}
	for _, n := range topo.Nodes {
		if n.Kind == topology.SinkNode && !n.Internal && !seen[n.Topics[0]] {
			seen[n.Topics[0]] = true
			got, err := actual(d, n.Topics[0], n)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, got...)
		}
	}
	got, err := actual(d, "app-dlq", nil)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, got...)
}

func runDeclared(t *testing.T, c equivCase, inputs []TestRecord) []TestRecord {
	t.Helper()
	path := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunTest(f, inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Actual
}

func byTopic(rs []TestRecord) map[string][]string {
	out := map[string][]string{}
	for _, r := range rs {
		r.Error = ""
		out[r.Topic] = append(out[r.Topic], show(r, true))
	}
	return out
}

func TestDeclaredEqualsGo(t *testing.T) {
	for _, c := range equivCases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in.jsonl")
			if err := os.WriteFile(path, []byte(c.input), 0o644); err != nil {
				t.Fatal(err)
			}
			inputs, err := ReadTestRecords(path)
			if err != nil {
				t.Fatal(err)
			}
			goOut := runGo(t, c, inputs)
			inputs, _ = ReadTestRecords(path) // values are shared maps: read afresh
			declOut := runDeclared(t, c, inputs)
			if len(goOut) == 0 {
				t.Fatal("the Go topology produced nothing: a useless case")
			}
			g, d := byTopic(goOut), byTopic(declOut)
			for topic := range maps.Keys(g) {
				if strings.Join(g[topic], "\n") != strings.Join(d[topic], "\n") {
					t.Errorf("topic %s:\nGo:\n%s\ndeclared:\n%s", topic, strings.Join(g[topic], "\n"), strings.Join(d[topic], "\n"))
				}
			}
			for topic := range maps.Keys(d) {
				if _, ok := g[topic]; !ok {
					t.Errorf("topic %s only from the declared topology:\n%s", topic, strings.Join(d[topic], "\n"))
				}
			}
		})
	}
}

const header = "application: {id: app}\n"

var equivCases = []equivCase{
	{
		name: "stateless",
		yaml: header + `
sources:
  in: {topic: in, key: string, value: json}
  other: {topic: other, key: string, value: json}
streams:
  a:
    from: in
    steps:
      - filter: value.n > 1
      - filterNot: value.skip == true
      - mapValues: "merge(value, {'double': value.n * 2})"
      - merge: other
      - project: [n, double, tag]
      - rename: {tag: label}
      - branch:
          - {when: value.n > 10, to: {topic: big}}
          - {as: small}
  b:
    from: small
    steps:
      - map: {key: "key + '-' + string(value.n)", value: "value.n"}
        valueFormat: json
      - to: {topic: mapped}
  c:
    from: small
    steps:
      - selectKey: "'k' + string(value.n)"
      - flatMapValues: "[value.n, value.n + 100]"
      - to: {topic: flat-values}
  d:
    from: small
    steps:
      - flatMap: "[{'key': key, 'value': 1}, {'key': key + 'x', 'value': 2}]"
      - to: {topic: flat}
`,
		build: func(b *topology.Builder) {
			in := b.Stream([]string{"in"}, topology.Consumed{Key: str, Value: js})
			other := b.Stream([]string{"other"}, topology.Consumed{Key: str, Value: js})
			s := in.Filter(func(_, v any) bool { return num(m(v)["n"]) > 1 }).
				FilterNot(func(_, v any) bool { return m(v)["skip"] == true }).
				MapValues(func(v any) (any, error) {
					out := maps.Clone(m(v))
					out["double"] = num(m(v)["n"]) * 2
					return out, nil
				}).Merge(other).
				MapValues(func(v any) (any, error) {
					out := map[string]any{}
					for _, f := range []string{"n", "double", "tag"} {
						if x, ok := m(v)[f]; ok {
							out[f] = x
						}
					}
					return out, nil
				}).
				MapValues(func(v any) (any, error) {
					out := maps.Clone(m(v))
					if x, ok := out["tag"]; ok {
						delete(out, "tag")
						out["label"] = x
					}
					return out, nil
				})
			arms := s.Split([]topology.Branch{{Name: "1", Predicate: func(_, v any) bool { return num(m(v)["n"]) > 10 }}, {Name: "small"}})
			arms["1"].To("big", topology.Produced{Key: str, Value: js})
			small := arms["small"]
			small.Map(func(k, v any) (any, any, error) {
				return fmt.Sprint(k, "-", m(v)["n"]), m(v)["n"], nil
			}).To("mapped", topology.Produced{Key: str, Value: js})
			small.SelectKey(func(_, v any) any { return fmt.Sprint("k", m(v)["n"]) }).
				FlatMapValues(func(v any) ([]any, error) { return []any{m(v)["n"], num(m(v)["n"]) + 100}, nil }).
				To("flat-values", topology.Produced{Key: str, Value: js})
			small.FlatMap(func(k, v any) ([]topology.KeyValue, error) {
				return []topology.KeyValue{{Key: k, Value: 1}, {Key: k.(string) + "x", Value: 2}}, nil
			}).To("flat", topology.Produced{Key: str, Value: js})
		},
		input: `{"topic": "in", "key": "a", "value": {"n": 1, "tag": "x"}, "timestamp": 1}
{"topic": "in", "key": "b", "value": {"n": 2, "tag": "y"}, "timestamp": 2}
{"topic": "in", "key": "c", "value": {"n": 20}, "timestamp": 3}
{"topic": "in", "key": "d", "value": {"n": 5, "skip": true}, "timestamp": 4}
{"topic": "other", "key": "e", "value": {"n": 3, "tag": "z", "extra": 1}, "timestamp": 5}`,
	},
	{
		name: "aggregations",
		yaml: header + `
sources:
  in: {topic: in, key: string, value: json}
streams:
  count:
    from: in
    steps:
      - groupBy: value.page
        name: by-page
      - count: {store: counts}
      - toStream: true
      - to: {topic: count, value: int64}
  sum:
    from: in
    steps:
      - groupByKey: true
      - sum: value.n
        store: sums
      - toStream: true
      - to: {topic: sum}
  min:
    from: in
    steps:
      - groupByKey: true
      - min: value.n
        store: mins
      - toStream: true
      - to: {topic: min}
  max:
    from: in
    steps:
      - groupByKey: true
      - max: value.n
        store: maxs
      - toStream: true
      - to: {topic: max}
  avg:
    from: in
    steps:
      - groupByKey: true
      - avg: value.n
        store: avgs
      - toStream: true
      - to: {topic: avg}
  reduce:
    from: in
    steps:
      - mapValues: value.n
        valueFormat: json
      - groupByKey: true
      - reduce: agg + value
        store: reduced
      - toStream: true
      - to: {topic: reduce}
  aggregate:
    from: in
    steps:
      - groupByKey: true
      - aggregate: {init: "[]", add: "concat(agg, [value.page])"}
        store: pages
      - toStream: true
      - to: {topic: aggregate}
`,
		build: func(b *topology.Builder) {
			in := b.Stream([]string{"in"}, topology.Consumed{Key: str, Value: js})
			in.GroupBy(func(_, v any) any { return m(v)["page"] }, topology.Grouped{Key: str, Value: js}, topology.Named("by-page")).
				Count(topology.Materialized{Name: "counts"}).ToStream().To("count", topology.Produced{Key: str, Value: serde.Int64{}})
			g := in.GroupByKey(topology.Grouped{Key: str, Value: js})
			fold := func(store, topic string, init func() any, fn func(agg any, n float64) any) {
				g.Aggregate(init, func(_, v, agg any) (any, error) { return fn(agg, num(m(v)["n"])), nil },
					topology.Materialized{Name: store, Value: js}).ToStream().To(topic, topology.Produced{Key: str, Value: js})
			}
			fold("sums", "sum", func() any { return 0.0 }, func(agg any, n float64) any { return num(agg) + n })
			fold("mins", "min", func() any { return nil }, func(agg any, n float64) any {
				if agg == nil || n < num(agg) {
					return n
				}
				return agg
			})
			fold("maxs", "max", func() any { return nil }, func(agg any, n float64) any {
				if agg == nil || n > num(agg) {
					return n
				}
				return agg
			})
			g.Aggregate(func() any { return map[string]any{"sum": 0.0, "count": 0.0} }, func(_, v, agg any) (any, error) {
				a := m(agg)
				return map[string]any{"sum": num(a["sum"]) + num(m(v)["n"]), "count": num(a["count"]) + 1}, nil
			}, topology.Materialized{Name: "avgs", Value: js}).
				MapValues(func(_, v any) (any, error) { return num(m(v)["sum"]) / num(m(v)["count"]), nil }, js).
				ToStream().To("avg", topology.Produced{Key: str, Value: js})
			in.MapValues(func(v any) (any, error) { return m(v)["n"], nil }).
				GroupByKey(topology.Grouped{Key: str, Value: js}).
				Reduce(func(agg, v any) (any, error) { return num(agg) + num(v), nil }, topology.Materialized{Name: "reduced"}).
				ToStream().To("reduce", topology.Produced{Key: str, Value: js})
			g.Aggregate(func() any { return []any{} }, func(_, v, agg any) (any, error) {
				return append(agg.([]any), m(v)["page"]), nil
			}, topology.Materialized{Name: "pages", Value: js}).ToStream().To("aggregate", topology.Produced{Key: str, Value: js})
		},
		input: `{"topic": "in", "key": "u1", "value": {"page": "/a", "n": 3}, "timestamp": 1}
{"topic": "in", "key": "u2", "value": {"page": "/a", "n": 7}, "timestamp": 2}
{"topic": "in", "key": "u1", "value": {"page": "/b", "n": 1}, "timestamp": 3}
{"topic": "in", "key": "u1", "value": {"page": "/a", "n": 5}, "timestamp": 4}`,
	},
	{
		name: "windows",
		yaml: header + `
sources:
  in: {topic: in, key: string, value: json}
streams:
  tumbling:
    from: in
    steps:
      - groupByKey: true
      - windowedBy: {type: tumbling, size: 10s, grace: 2s, emit: final}
      - count: {store: tumbling}
      - toStream: true
      - to: {topic: tumbling, value: int64}
  hopping:
    from: in
    steps:
      - groupByKey: true
      - windowedBy: {type: hopping, size: 10s, advance: 5s}
      - count: {store: hopping}
      - toStream: true
      - to: {topic: hopping, value: int64}
  sliding:
    from: in
    steps:
      - groupByKey: true
      - windowedBy: {type: sliding, size: 5s, grace: 1s}
      - sum: value.n
        store: sliding
      - toStream: true
      - to: {topic: sliding}
  session:
    from: in
    steps:
      - groupByKey: true
      - windowedBy: {type: session, gap: 3s}
      - aggregate: {init: "0", add: agg + value.n, merge: agg + value}
        store: session
      - toStream: true
      - to: {topic: session}
`,
		build: func(b *topology.Builder) {
			g := b.Stream([]string{"in"}, topology.Consumed{Key: str, Value: js}).GroupByKey(topology.Grouped{Key: str, Value: js})
			g.WindowedBy(topology.TimeWindows{Size: 10 * time.Second, Grace: 2 * time.Second}).Emit(topology.EmitOnWindowClose).
				Count(topology.Materialized{Name: "tumbling"}).ToStream().
				To("tumbling", topology.Produced{Key: serde.TimeWindowed{Inner: str, Size: 10 * time.Second}, Value: serde.Int64{}})
			g.WindowedBy(topology.TimeWindows{Size: 10 * time.Second, Advance: 5 * time.Second}).
				Count(topology.Materialized{Name: "hopping"}).ToStream().
				To("hopping", topology.Produced{Key: serde.TimeWindowed{Inner: str, Size: 10 * time.Second}, Value: serde.Int64{}})
			add := func(_, v, agg any) (any, error) { return num(agg) + num(m(v)["n"]), nil }
			g.WindowedBy(topology.SlidingWindows{TimeDifference: 5 * time.Second, Grace: time.Second}).
				Aggregate(func() any { return 0.0 }, add, nil, topology.Materialized{Name: "sliding", Value: js}).ToStream().
				To("sliding", topology.Produced{Key: serde.TimeWindowed{Inner: str, Size: 5 * time.Second}, Value: js})
			g.WindowedBy(topology.SessionWindows{Gap: 3 * time.Second}).
				Aggregate(func() any { return 0.0 }, add, func(_, a, b any) (any, error) { return num(a) + num(b), nil },
					topology.Materialized{Name: "session", Value: js}).ToStream().
				To("session", topology.Produced{Key: serde.SessionWindowed{Inner: str}, Value: js})
		},
		input: `{"topic": "in", "key": "a", "value": {"n": 1}, "timestamp": 1000}
{"topic": "in", "key": "a", "value": {"n": 2}, "timestamp": 3000}
{"topic": "in", "key": "b", "value": {"n": 4}, "timestamp": 6000}
{"topic": "in", "key": "a", "value": {"n": 8}, "timestamp": 9000}
{"topic": "in", "key": "a", "value": {"n": 16}, "timestamp": 15000}
{"topic": "in", "key": "b", "value": {"n": 32}, "timestamp": 26000}`,
	},
	{
		name: "joins",
		yaml: header + `
sources:
  orders: {topic: orders, key: string, value: json}
  payments: {topic: payments, key: string, value: json}
tables:
  customers: {topic: customers, key: string, value: json, store: customers}
  products: {topic: products, key: string, value: json, store: products, global: true}
  accounts: {topic: accounts, key: string, value: json, store: accounts}
streams:
  with-customer:
    from: orders
    steps:
      - join: {with: customers, type: left, value: "merge(left, {'c': right?.name})"}
      - join: {with: products, key: value.product, value: "merge(left, {'p': right.title})"}
      - to: {topic: enriched}
  paid:
    from: orders
    steps:
      - join: {with: payments, type: outer, within: 5s, value: "{'o': left?.product, 'p': right?.amount}"}
        name: paid
      - to: {topic: paid}
  inner:
    from: orders
    steps:
      - join: {with: payments, within: 5s, value: "{'o': left.product, 'p': right.amount}"}
        name: inner
      - to: {topic: inner}
  tables:
    from: customers
    steps:
      - join: {with: accounts, type: outer, value: "{'c': left?.name, 'a': right?.balance}"}
      - toStream: true
      - to: {topic: tables}
`,
		build: func(b *topology.Builder) {
			cons := topology.Consumed{Key: str, Value: js}
			orders := b.Stream([]string{"orders"}, cons)
			payments := b.Stream([]string{"payments"}, cons)
			customers := b.Table("customers", cons, topology.Materialized{Name: "customers"})
			products := b.GlobalTable("products", cons, "products")
			accounts := b.Table("accounts", cons, topology.Materialized{Name: "accounts"})
			orders.LeftJoinTable(customers, func(_, l, r any) (any, error) {
				out := maps.Clone(m(l))
				out["c"] = m(r)["name"]
				return out, nil
			}, topology.Joined{Key: str, Value: js}).
				JoinGlobalTable(products, func(_, v any) any { return m(v)["product"] }, func(_, l, r any) (any, error) {
					out := maps.Clone(m(l))
					out["p"] = m(r)["title"]
					return out, nil
				}).To("enriched", topology.Produced{Key: str, Value: js})
			joiner := func(_, l, r any) (any, error) {
				return map[string]any{"o": m(l)["product"], "p": m(r)["amount"]}, nil
			}
			orders.OuterJoin(payments, joiner, topology.JoinTimeDifference(5*time.Second, 0),
				topology.StreamJoined{Key: str, Value: js, OtherValue: js, Name: "paid"}).To("paid", topology.Produced{Key: str, Value: js})
			orders.Join(payments, joiner, topology.JoinTimeDifference(5*time.Second, 0),
				topology.StreamJoined{Key: str, Value: js, OtherValue: js, Name: "inner"}).To("inner", topology.Produced{Key: str, Value: js})
			customers.OuterJoin(accounts, func(_, l, r any) (any, error) {
				return map[string]any{"c": m(l)["name"], "a": m(r)["balance"]}, nil
			}).ToStream().To("tables", topology.Produced{Key: str, Value: js})
		},
		input: `{"topic": "customers", "key": "c1", "value": {"name": "Ada"}, "timestamp": 0}
{"topic": "products", "key": "p1", "value": {"title": "Pen"}, "timestamp": 0}
{"topic": "accounts", "key": "c2", "value": {"balance": 5}, "timestamp": 0}
{"topic": "accounts", "key": "c1", "value": {"balance": 9}, "timestamp": 1}
{"topic": "orders", "key": "c1", "value": {"product": "p1"}, "timestamp": 1000}
{"topic": "orders", "key": "c2", "value": {"product": "p1"}, "timestamp": 2000}
{"topic": "payments", "key": "c1", "value": {"amount": 3}, "timestamp": 3000}
{"topic": "payments", "key": "c3", "value": {"amount": 4}, "timestamp": 4000}
{"topic": "payments", "key": "c9", "value": {"amount": 1}, "timestamp": 20000}`,
	},
	{
		name: "tables-and-dedup",
		yaml: header + `
sources:
  events: {topic: events, key: string, value: json}
tables:
  items: {topic: items, key: string, value: json, store: items}
  owners: {topic: owners, key: string, value: json, store: owners}
streams:
  per-owner:
    from: items
    steps:
      - filter: value.qty > 0
      - mapValues: "merge(value, {'k': key})"
      - groupBy: {key: value.owner, value: value.qty}
      - sum: value
        store: qty-per-owner
      - toStream: true
      - to: {topic: per-owner}
  fk:
    from: items
    steps:
      - join: {with: owners, foreignKey: value.owner, value: "{'item': left.qty, 'owner': right.name}"}
        name: item-owner
      - toStream: true
      - to: {topic: fk}
  unique:
    from: events
    steps:
      - dedup: {field: id, ttl: 10s}
        name: dedup
      - to: {topic: unique}
`,
		build: func(b *topology.Builder) {
			cons := topology.Consumed{Key: str, Value: js}
			items := b.Table("items", cons, topology.Materialized{Name: "items"})
			owners := b.Table("owners", cons, topology.Materialized{Name: "owners"})
			items.Filter(func(_, v any) bool { return num(m(v)["qty"]) > 0 }).
				MapValues(func(k, v any) (any, error) {
					out := maps.Clone(m(v))
					out["k"] = k
					return out, nil
				}, js).
				GroupBy(func(_, v any) (any, any, error) { return m(v)["owner"], m(v)["qty"], nil }, topology.Grouped{Key: str, Value: js}).
				Aggregate(func() any { return 0.0 },
					func(_, v, agg any) (any, error) { return num(agg) + num(v), nil },
					func(_, v, agg any) (any, error) { return num(agg) - num(v), nil },
					topology.Materialized{Name: "qty-per-owner", Value: js}).
				ToStream().To("per-owner", topology.Produced{Key: str, Value: js})
			items.JoinForeignKey(owners, func(v any) (any, error) { return m(v)["owner"], nil },
				func(_, l, r any) (any, error) { return map[string]any{"item": m(l)["qty"], "owner": m(r)["name"]}, nil },
				topology.ForeignKeyJoined{Name: "item-owner", Result: js}).
				ToStream().To("fk", topology.Produced{Key: str, Value: js})
			b.Stream([]string{"events"}, cons).Dedup(topology.ByField("id"), 10*time.Second, topology.Named("dedup")).
				To("unique", topology.Produced{Key: str, Value: js})
		},
		input: `{"topic": "owners", "key": "o1", "value": {"name": "Ann"}, "timestamp": 0}
{"topic": "items", "key": "i1", "value": {"owner": "o1", "qty": 2}, "timestamp": 1}
{"topic": "items", "key": "i2", "value": {"owner": "o1", "qty": 3}, "timestamp": 2}
{"topic": "items", "key": "i1", "value": {"owner": "o2", "qty": 4}, "timestamp": 3}
{"topic": "owners", "key": "o2", "value": {"name": "Bo"}, "timestamp": 4}
{"topic": "items", "key": "i2", "value": {"owner": "o1", "qty": 0}, "timestamp": 5}
{"topic": "events", "key": "e", "value": {"id": "x"}, "timestamp": 1000}
{"topic": "events", "key": "e", "value": {"id": "x"}, "timestamp": 2000}
{"topic": "events", "key": "e", "value": {"id": "y"}, "timestamp": 3000}
{"topic": "events", "key": "e", "value": {"id": "x"}, "timestamp": 20000}`,
	},
}
