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

// TestWindowsDatadrivenOnDriver runs the time and sliding window scripts of
// TestWindowsDatadriven (testdata/windows, transcribed from Kafka Streams'
// tests) on processor.TestDriver: through the runner's tasks and Pebble
// window stores, with their expiry, instead of the in-memory harness. A late
// record is one the driver dead-letters under late.records=dlq.
//
// The session scripts stay on the harness only: Kafka Streams' session tests
// build their store with a retention of three gaps, while the DSL's default
// is gap + grace, so on real stores a session that KS's test still merges
// (shouldMergeSessions: [0,0] at stream time 300001, gap 300000) has expired.
func TestWindowsDatadrivenOnDriver(t *testing.T) {
	for _, pattern := range []string{"time_*", "sliding_*"} {
		paths, err := filepath.Glob(filepath.Join("testdata/windows", pattern))
		if err != nil || len(paths) == 0 {
			t.Fatalf("no scripts %s: %v", pattern, err)
		}
		for _, path := range paths {
			t.Run(filepath.Base(path), func(t *testing.T) {
				datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
					if d.Cmd != "run" {
						t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
					}
					return runWindowScriptOnDriver(t, d)
				})
			})
		}
	}
}

func runWindowScriptOnDriver(t *testing.T, d *datadriven.TestData) string {
	args := map[string]string{"emit": "update", "agg": "concat"}
	for _, a := range d.CmdArgs {
		if len(a.Vals) != 1 {
			t.Fatalf("%s: argument %s needs one value", d.Pos, a.Key)
		}
		args[a.Key] = a.Vals[0]
	}
	dur := func(name string) time.Duration {
		v, ok := args[name]
		if !ok {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("%s: %s=%q: %v", d.Pos, name, v, err)
		}
		return time.Duration(n) * time.Millisecond
	}
	str := serde.String{}
	var w topology.Windows
	var size time.Duration // a time-windowed key holds the start only
	switch args["windows"] {
	case "time":
		w, size = topology.TimeWindows{Size: dur("size"), Advance: dur("advance"), Grace: dur("grace")}, dur("size")
	case "sliding":
		w, size = topology.SlidingWindows{TimeDifference: dur("diff"), Grace: dur("grace")}, dur("diff")
	default:
		t.Fatalf("%s: windows=%q", d.Pos, args["windows"])
	}
	b := topology.NewBuilder()
	ws := b.Stream([]string{"in"}, topology.Consumed{Key: str, Value: str}).
		GroupByKey(topology.Grouped{Key: str, Value: str}).
		WindowedBy(w)
	if args["emit"] == "close" {
		ws = ws.Emit(topology.EmitOnWindowClose)
	}
	var tbl *topology.Table
	var outValue serde.Serde = str
	switch args["agg"] {
	case "concat":
		init := "0"
		if args["init"] == "empty" {
			init = ""
		}
		tbl = ws.Aggregate(func() any { return init },
			func(_, v, agg any) (any, error) { return fmt.Sprintf("%v+%v", agg, v), nil },
			func(_, a, b any) (any, error) { return fmt.Sprintf("%v+%v", a, b), nil },
			topology.Materialized{Value: str})
	case "count":
		tbl, outValue = ws.Count(topology.Materialized{}), serde.Int64{}
	case "reduce":
		tbl = ws.Reduce(func(agg, v any) (any, error) { return fmt.Sprintf("%v+%v", agg, v), nil }, topology.Materialized{})
	default:
		t.Fatalf("%s: agg=%q", d.Pos, args["agg"])
	}
	outKey := serde.TimeWindowed{Inner: str, Size: size}
	tbl.ToStream().To("out", topology.Produced{Key: outKey, Value: outValue})
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	drv, err := processor.NewTestDriver(topo, processor.TestDriverConfig{
		ApplicationID: "app", OnError: processor.OnErrorFail, LateRecords: processor.LateRecordsDLQ})
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	defer drv.Close()
	var sb strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 3 {
			t.Fatalf("%s: input %q: want key value timestamp", d.Pos, line)
		}
		ts, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("%s: input %q: %v", d.Pos, line, err)
		}
		var v any = f[1]
		if f[1] == "-" {
			v = nil
		}
		err = drv.PipeInput("in", f[0], v, time.UnixMilli(ts))
		out, rerr := drv.ReadRecords("out", outKey, outValue)
		if rerr != nil {
			t.Fatalf("%s: %v", d.Pos, rerr)
		}
		for _, r := range out {
			val := r.Value
			if val == nil {
				val = "nil"
			}
			fmt.Fprintf(&sb, "%v %v @%d\n", r.Key, val, r.Timestamp.UnixMilli())
		}
		for _, r := range drv.ReadOutput("app-dlq") {
			rec, derr := r.Decode(serde.Bytes{}, serde.Bytes{})
			if derr != nil {
				t.Fatal(derr)
			}
			if class := string(rec.Header(processor.HeaderErrorClass)); class != "late" {
				t.Fatalf("%s: dead-lettered with class %q", d.Pos, class)
			}
			fmt.Fprintf(&sb, "late %s %s @%d\n", f[0], f[1], ts)
		}
		if err != nil {
			fmt.Fprintf(&sb, "error %s %s @%d: %v\n", f[0], f[1], ts, err)
		}
	}
	return sb.String()
}
