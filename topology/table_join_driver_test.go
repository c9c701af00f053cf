package topology_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestTableJoinsDatadriven runs the scripts in testdata/tablejoin on
// processor.TestDriver: stream-table and table-table joins, each script
// transcribed from Kafka Streams (its DSL guide's join semantics tables and
// its join tests, cited in each file).
//
// A script:
//
//	run join=stream-table|table-table kind=inner|left|outer [left-op=filter:V]
//	<ts-millis> left|right <key> <value|null>
//	...
//	----
//	<key>=<joined value|null> @<ts-millis>    one line per output record, in order
//
// The joiner writes "[left, right]", with "null" for a missing side. A
// left-op of filter:V puts a Filter keeping value V on the left table.
func TestTableJoinsDatadriven(t *testing.T) {
	paths, err := filepath.Glob("testdata/tablejoin/*")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				if d.Cmd != "run" {
					t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
				}
				return runTableJoinScript(t, d)
			})
		})
	}
}

func runTableJoinScript(t *testing.T, d *datadriven.TestData) string {
	args := map[string]string{}
	for _, a := range d.CmdArgs {
		args[a.Key] = strings.Join(a.Vals, ",")
	}
	str := serde.String{}
	joiner := func(_, l, r any) (any, error) {
		s := func(v any) string {
			if v == nil {
				return "null"
			}
			return v.(string)
		}
		return "[" + s(l) + ", " + s(r) + "]", nil
	}
	b := topology.NewBuilder()
	var out *topology.Stream
	if args["join"] == "stream-globaltable" {
		right := b.GlobalTable("right", topology.Consumed{Key: str, Value: str}, "right-store")
		left := b.Stream([]string{"left"}, topology.Consumed{Key: str, Value: str})
		// The table key: the record key, or with key-of=prefix the value's
		// part before the first ':' (a foreign key in the value).
		keyOf := func(k, _ any) any { return k }
		if args["key-of"] == "prefix" {
			keyOf = func(_, v any) any {
				s, _, _ := strings.Cut(v.(string), ":")
				if s == "" {
					return nil
				}
				return s
			}
		}
		switch args["kind"] {
		case "inner":
			out = left.JoinGlobalTable(right, keyOf, joiner)
		case "left":
			out = left.LeftJoinGlobalTable(right, keyOf, joiner)
		default:
			t.Fatalf("%s: stream-globaltable join kind %q", d.Pos, args["kind"])
		}
		return pipeJoinScript(t, d, b, out, args)
	}
	right := b.Table("right", topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "right-store"})
	switch args["join"] {
	case "stream-table":
		left := b.Stream([]string{"left"}, topology.Consumed{Key: str, Value: str})
		switch args["kind"] {
		case "inner":
			out = left.JoinTable(right, joiner, topology.Joined{})
		case "left":
			out = left.LeftJoinTable(right, joiner, topology.Joined{})
		default:
			t.Fatalf("%s: stream-table join kind %q", d.Pos, args["kind"])
		}
	case "table-table":
		left := b.Table("left", topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "left-store"})
		if f, ok := strings.CutPrefix(args["left-op"], "filter:"); ok {
			left = left.Filter(func(_, v any) bool { return v == f })
		}
		var joined *topology.Table
		switch args["kind"] {
		case "inner":
			joined = left.Join(right, joiner)
		case "left":
			joined = left.LeftJoin(right, joiner)
		case "outer":
			joined = left.OuterJoin(right, joiner)
		default:
			t.Fatalf("%s: table-table join kind %q", d.Pos, args["kind"])
		}
		out = joined.ToStream()
	default:
		t.Fatalf("%s: join %q", d.Pos, args["join"])
	}
	return pipeJoinScript(t, d, b, out, args)
}

// pipeJoinScript builds the topology with out written to "out", pipes the
// script's input and prints what "out" received.
func pipeJoinScript(t *testing.T, d *datadriven.TestData, b *topology.Builder, out *topology.Stream, args map[string]string) string {
	str := serde.String{}
	out.To("out", topology.Produced{Key: str, Value: str})
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	cfg := processor.TestDriverConfig{}
	if n, err := strconv.Atoi(args["partitions"]); err == nil {
		// The stream and table topics' partition count; a global table's
		// topic may differ (it is not co-partitioned).
		cfg.Partitions = map[string]int{"left": n, "right": n}
		if g, err := strconv.Atoi(args["global-partitions"]); err == nil {
			cfg.Partitions["right"] = g
		}
	}
	drv, err := processor.NewTestDriver(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("%s: line %q: want <ts> left|right <key> <value|null>", d.Pos, line)
		}
		ts, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("%s: line %q: %v", d.Pos, line, err)
		}
		var v any = f[3]
		if f[3] == "null" {
			v = nil
		}
		if err := drv.PipeInput(f[1], f[2], v, time.UnixMilli(ts)); err != nil {
			t.Fatalf("%s: line %q: %v", d.Pos, line, err)
		}
	}
	recs, err := drv.ReadRecords("out", str, str)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, r := range recs {
		v := "null"
		if r.Value != nil {
			v = r.Value.(string)
		}
		fmt.Fprintf(&sb, "%v=%s @%d\n", r.Key, v, r.Timestamp.UnixMilli())
	}
	return sb.String()
}
