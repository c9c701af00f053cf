package topology_test

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestGroupedTableDatadriven runs the scripts in testdata/groupedtable on
// processor.TestDriver: Table.GroupBy with Count, Reduce and Aggregate,
// transcribed from Kafka Streams (KTableAggregateTest, KTableReduceTest,
// KGroupedTableImplTest and the DSL guide's KGroupedTable semantics table,
// cited in each file). The topology is
//
//	b.Table("input").GroupBy(<select>, Grouped).<agg>(Materialized{Name: "agg"}).ToStream().To("out")
//
// and a script is a sequence of commands sharing one driver:
//
//	start select=<selector> agg=<aggregation> [partitions=<n>]
//	----
//	(builds the topology and opens a driver on a fresh state directory)
//
//	pipe
//	<ts-millis> <key> <value>        one input record per line
//	----
//	<key>=<value> @<ts-millis> [p<partition>]   one line per output record
//
//	repartition
//	----
//	<key>=<new>/<old> @<ts-millis> [p<partition>]   the records written to the
//	                                 repartition topic since last asked ("-": absent)
//
//	store
//	----
//	<key>=<value> @<ts-millis>       the aggregate store, in key order
//
//	restart
//	----
//	(closes the driver and opens a new one on the same state directory)
//
// In inputs `null` is a nil key or value and a Go-quoted string is taken
// literally ("null", ""); outputs print nil as null and quote such strings.
// The partition is printed when the input topic has more than one.
//
// Selectors: identity (k, v); value (v, v); ks-agg-repartition (KS's
// testAggRepartition switch: key "null" -> nil key, key "NULL" -> no pair,
// else (v, v)); chars (k[0], k[1]); region (v, len(k)); int (k, the value
// parsed as a float and truncated). Aggregations: count; tostring
// (Aggregate "0", agg+"+"+v, agg+"-"+v: KS's MockAggregator); concat
// (Aggregate "", agg+v, agg with v removed); sum (Aggregate 0, +, -);
// reduce-sum (Reduce +, -); reduce-set (Reduce union, difference of
// comma-separated sets); reduce-set-nil (reduce-set, but an empty difference
// is nil).
func TestGroupedTableDatadriven(t *testing.T) {
	paths, err := filepath.Glob("testdata/groupedtable/*")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			s := &groupedTableScript{}
			defer s.close(t)
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				return s.run(t, d)
			})
		})
	}
}

type groupedTableScript struct {
	topo       *topology.Topology
	cfg        processor.TestDriverConfig
	drv        *processor.TestDriver
	outValue   serde.Serde
	partitions int
}

func (s *groupedTableScript) close(t *testing.T) {
	if s.drv != nil {
		if err := s.drv.Close(); err != nil {
			t.Error(err)
		}
		s.drv = nil
	}
}

func (s *groupedTableScript) open(t *testing.T) {
	drv, err := processor.NewTestDriver(s.topo, s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.drv = drv
}

func (s *groupedTableScript) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "start":
		s.close(t)
		s.start(t, d)
		s.open(t)
		return ""
	case "restart":
		s.close(t)
		s.open(t)
		return ""
	}
	if s.drv == nil {
		t.Fatalf("%s: %s before start", d.Pos, d.Cmd)
	}
	switch d.Cmd {
	case "pipe":
		return s.pipe(t, d)
	case "repartition":
		return s.repartition(t, d)
	case "store":
		return s.store(t, d)
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

func (s *groupedTableScript) start(t *testing.T, d *datadriven.TestData) {
	args := map[string]string{}
	for _, a := range d.CmdArgs {
		args[a.Key] = strings.Join(a.Vals, ",")
	}
	str, i64 := serde.String{}, serde.Int64{}
	g := topology.Grouped{Key: str, Value: str}
	var selector func(k, v any) (any, any, error)
	switch args["select"] {
	case "identity":
		selector = func(k, v any) (any, any, error) { return k, v, nil }
	case "value":
		selector = func(_, v any) (any, any, error) { return v, v, nil }
	case "ks-agg-repartition":
		selector = func(k, v any) (any, any, error) {
			switch k {
			case "null":
				return nil, v, nil
			case "NULL":
				return nil, nil, nil
			}
			return v, v, nil
		}
	case "chars":
		selector = func(k, _ any) (any, any, error) { return k.(string)[:1], k.(string)[1:2], nil }
	case "region":
		g.Value = i64
		selector = func(k, v any) (any, any, error) { return v, int64(len(k.(string))), nil }
	case "int":
		g.Value = i64
		selector = func(k, v any) (any, any, error) {
			f, err := strconv.ParseFloat(v.(string), 64)
			return k, int64(f), err
		}
	default:
		t.Fatalf("%s: selector %q", d.Pos, args["select"])
	}
	b := topology.NewBuilder()
	grouped := b.Table("input", topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "input-store"}).
		GroupBy(selector, g)
	m := topology.Materialized{Name: "agg"}
	s.outValue = str
	var agg *topology.Table
	switch args["agg"] {
	case "count":
		agg, s.outValue = grouped.Count(m), i64
	case "tostring":
		m.Value = str
		agg = grouped.Aggregate(func() any { return "0" },
			func(_, v, a any) (any, error) { return a.(string) + "+" + v.(string), nil },
			func(_, v, a any) (any, error) { return a.(string) + "-" + v.(string), nil }, m)
	case "concat":
		m.Value = str
		agg = grouped.Aggregate(func() any { return "" },
			func(_, v, a any) (any, error) { return a.(string) + v.(string), nil },
			func(_, v, a any) (any, error) { return strings.ReplaceAll(a.(string), v.(string), ""), nil }, m)
	case "sum":
		m.Value, s.outValue = i64, i64
		agg = grouped.Aggregate(func() any { return int64(0) },
			func(_, v, a any) (any, error) { return a.(int64) + v.(int64), nil },
			func(_, v, a any) (any, error) { return a.(int64) - v.(int64), nil }, m)
	case "reduce-sum":
		s.outValue = i64
		agg = grouped.Reduce(
			func(a, v any) (any, error) { return a.(int64) + v.(int64), nil },
			func(a, v any) (any, error) { return a.(int64) - v.(int64), nil }, m)
	case "reduce-set", "reduce-set-nil":
		nilWhenEmpty := args["agg"] == "reduce-set-nil"
		agg = grouped.Reduce(
			func(a, v any) (any, error) { return setUnion(a.(string), v.(string)), nil },
			func(a, v any) (any, error) {
				diff := setDifference(a.(string), v.(string))
				if diff == "" && nilWhenEmpty {
					return nil, nil
				}
				return diff, nil
			}, m)
	default:
		t.Fatalf("%s: aggregation %q", d.Pos, args["agg"])
	}
	agg.ToStream().To("out", topology.Produced{Key: str, Value: s.outValue})
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	s.topo = topo
	s.partitions = 1
	if p, ok := args["partitions"]; ok {
		if s.partitions, err = strconv.Atoi(p); err != nil {
			t.Fatalf("%s: partitions: %v", d.Pos, err)
		}
	}
	s.cfg = processor.TestDriverConfig{StateDir: t.TempDir(), Partitions: map[string]int{"input": s.partitions}}
}

func (s *groupedTableScript) pipe(t *testing.T, d *datadriven.TestData) string {
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("%s: line %q: want <ts> <key> <value>", d.Pos, line)
		}
		ts, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("%s: line %q: %v", d.Pos, line, err)
		}
		if err := s.drv.PipeInput("input", scriptToken(t, f[1]), scriptToken(t, f[2]), time.UnixMilli(ts)); err != nil {
			t.Fatalf("%s: line %q: %v", d.Pos, line, err)
		}
	}
	var sb strings.Builder
	for _, r := range s.drv.ReadOutput("out") {
		rec, err := r.Decode(serde.String{}, s.outValue)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%s=%s @%d%s\n", scriptValue(rec.Key), scriptValue(rec.Value), r.Timestamp.UnixMilli(), s.partition(r))
	}
	return sb.String()
}

// repartition prints the repartition topic's records, decoding the change
// layout (Kafka Streams' ChangedSerializer) independently of changeSerde.
func (s *groupedTableScript) repartition(t *testing.T, d *datadriven.TestData) string {
	inner := serde.Serde(serde.String{})
	for _, a := range d.CmdArgs {
		if a.Key == "int" {
			inner = serde.Int64{}
		}
	}
	show := func(b []byte) string {
		if b == nil {
			return "-"
		}
		v, err := inner.Deserialize("", b)
		if err != nil {
			t.Fatal(err)
		}
		return scriptValue(v)
	}
	var sb strings.Builder
	for _, r := range s.drv.ReadOutput("agg-repartition") {
		v := r.Value
		body := v[:len(v)-1]
		var newB, oldB []byte
		switch v[len(v)-1] {
		case 0:
			oldB = body
		case 1:
			newB = body
		case 2:
			n, w := binary.Varint(body)
			newB, oldB = body[w:w+int(n)], body[w+int(n):]
		default:
			t.Fatalf("%s: flag %d", d.Pos, v[len(v)-1])
		}
		fmt.Fprintf(&sb, "%s=%s/%s @%d%s\n", string(r.Key), show(newB), show(oldB), r.Timestamp.UnixMilli(), s.partition(r))
	}
	return sb.String()
}

func (s *groupedTableScript) store(t *testing.T, d *datadriven.TestData) string {
	kv, err := s.drv.KeyValueStore("agg")
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	var sb strings.Builder
	if err := kv.Range(nil, nil, func(k, v any) error {
		vt := v.(serde.ValueAndTimestamp)
		fmt.Fprintf(&sb, "%s=%s @%d\n", scriptValue(k), scriptValue(vt.Value), vt.Timestamp.UnixMilli())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func (s *groupedTableScript) partition(r processor.TestRecord) string {
	if s.partitions <= 1 {
		return ""
	}
	return fmt.Sprintf(" p%d", r.Partition)
}

// scriptToken reads an input token: null is nil, a quoted string is
// unquoted, anything else is itself.
func scriptToken(t *testing.T, tok string) any {
	if tok == "null" {
		return nil
	}
	if strings.HasPrefix(tok, `"`) {
		s, err := strconv.Unquote(tok)
		if err != nil {
			t.Fatalf("token %s: %v", tok, err)
		}
		return s
	}
	return tok
}

// scriptValue prints an output value, the inverse of scriptToken.
func scriptValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if x == "" || x == "null" || strings.ContainsAny(x, " \t\"") {
			return strconv.Quote(x)
		}
		return x
	}
	return fmt.Sprint(v)
}

// setUnion and setDifference treat a string as a sorted set of
// comma-separated elements (KTableReduceTest's Set<String>).
func setUnion(a, b string) string {
	return setJoin(append(setSplit(a), setSplit(b)...))
}

func setDifference(a, b string) string {
	drop := setSplit(b)
	return setJoin(slices.DeleteFunc(setSplit(a), func(e string) bool { return slices.Contains(drop, e) }))
}

func setSplit(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func setJoin(es []string) string {
	slices.Sort(es)
	return strings.Join(slices.Compact(es), ",")
}

// TestGroupedTableResultJoins joins a stream with a grouped table's
// aggregate, read through its store, and checks that the aggregate's
// timestamps reach a table-table join: the result is a table like any other.
func TestGroupedTableResultJoins(t *testing.T) {
	str := serde.String{}
	b := topology.NewBuilder()
	counts := b.Table("user-regions", topology.Consumed{Key: str, Value: str}, topology.Materialized{}).
		GroupBy(func(user, region any) (any, any, error) { return region, user, nil }, topology.Grouped{Key: str, Value: str}).
		Count(topology.Materialized{Name: "users-per-region"})
	show := func(_, l, r any) (any, error) { return fmt.Sprintf("%v:%v", l, r), nil }
	b.Stream([]string{"lookups"}, topology.Consumed{Key: str, Value: str}).
		LeftJoinTable(counts, show, topology.Joined{}).
		To("answers", topology.Produced{Key: str, Value: str})
	names := b.Table("region-names", topology.Consumed{Key: str, Value: str}, topology.Materialized{})
	names.Join(counts, show).ToStream().To("named-counts", topology.Produced{Key: str, Value: str})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	drv, err := processor.NewTestDriver(topo, processor.TestDriverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	pipe := func(topic, k string, v any, ms int64) {
		t.Helper()
		if err := drv.PipeInput(topic, k, v, time.UnixMilli(ms)); err != nil {
			t.Fatal(err)
		}
	}
	pipe("region-names", "E", "Europe", 1)
	pipe("user-regions", "alice", "E", 5)
	pipe("user-regions", "bob", "E", 6)
	pipe("lookups", "E", "q1", 7)
	pipe("user-regions", "alice", "A", 8)
	pipe("lookups", "E", "q2", 9)
	pipe("lookups", "A", "q3", 10)
	pipe("lookups", "X", "q4", 11)
	read := func(topic string) []string {
		recs, err := drv.ReadRecords(topic, str, str)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, fmt.Sprintf("%v=%v @%d", r.Key, r.Value, r.Timestamp.UnixMilli()))
		}
		return out
	}
	// The joiner prints the stored int64 counts; X has none.
	wantAnswers := []string{"E=q1:2 @7", "E=q2:1 @9", "A=q3:1 @10", "X=q4:<nil> @11"}
	if got := read("answers"); !slices.Equal(got, wantAnswers) {
		t.Errorf("answers = %q, want %q", got, wantAnswers)
	}
	// The table-table join fires on each change of E's count, at the later
	// of the two sides' timestamps.
	wantNamed := []string{"E=Europe:1 @5", "E=Europe:2 @6", "E=Europe:1 @8"}
	if got := read("named-counts"); !slices.Equal(got, wantNamed) {
		t.Errorf("named-counts = %q, want %q", got, wantNamed)
	}
}
