package topology_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestWindowsDatadriven runs the scripts in testdata/windows, most of them
// transcribed from Kafka Streams' own tests (each file names its source), on
// processor.TestDriver: through the runner's tasks, serdes and Pebble window
// and session stores, with their expiry.
//
//	run windows=time size=10 advance=5 grace=100 emit=update agg=concat
//	A 1 0        <- key value timestamp(ms); value "-" is nil
//	----
//	A@0/10 0+1 @0
//	late A 1 @0  <- a record dropped as late (the driver dead-letters it
//	                under late.records=dlq)
//
// windows: time (size, advance, grace), sliding (diff, grace), session (gap,
// grace). retention: the store's (Materialized.Retention), where a KS test
// builds its store with more than the DSL's default. emit: update (default)
// or close. agg: concat (init "0", or "" with init=empty; value appended as
// "+v"; sessions merged as "a+b"), count, or reduce (values joined with
// "+"). Each output line is a forwarded record: windowed key, value (nil for
// a tombstone) and timestamp.
func TestWindowsDatadriven(t *testing.T) {
	walkWindowScripts(t, "testdata/windows")
}

// TestSuppressDatadriven runs the scripts in testdata/suppress, Kafka
// Streams' suppress(untilWindowCloses) cases, in the format of
// TestWindowsDatadriven: KS's suppression is our EmitOnWindowClose.
func TestSuppressDatadriven(t *testing.T) {
	walkWindowScripts(t, "testdata/suppress")
}

func walkWindowScripts(t *testing.T, dir string) {
	datadriven.Walk(t, dir, func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "run" {
				t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			}
			return runWindowScript(t, d)
		})
	})
}

func runWindowScript(t *testing.T, d *datadriven.TestData) string {
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
	var outKey serde.Serde
	switch args["windows"] {
	case "time":
		// A time-windowed key holds the start only; the end is start + size.
		w, outKey = topology.TimeWindows{Size: dur("size"), Advance: dur("advance"), Grace: dur("grace")},
			serde.TimeWindowed{Inner: str, Size: dur("size")}
	case "sliding":
		w, outKey = topology.SlidingWindows{TimeDifference: dur("diff"), Grace: dur("grace")},
			serde.TimeWindowed{Inner: str, Size: dur("diff")}
	case "session":
		w, outKey = topology.SessionWindows{Gap: dur("gap"), Grace: dur("grace")}, serde.SessionWindowed{Inner: str}
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
	m := topology.Materialized{Retention: dur("retention")}
	var tbl *topology.Table
	var outValue serde.Serde = str
	switch args["agg"] {
	case "concat":
		init := "0"
		if args["init"] == "empty" {
			init = ""
		}
		m.Value = str
		tbl = ws.Aggregate(func() any { return init },
			func(_, v, agg any) (any, error) { return fmt.Sprintf("%v+%v", agg, v), nil },
			// KS's MockAggregator/MockInitializer session tests merge
			// strings as aggOne + "+" + aggTwo
			func(_, a, b any) (any, error) { return fmt.Sprintf("%v+%v", a, b), nil },
			m)
	case "count":
		tbl, outValue = ws.Count(m), serde.Int64{}
	case "reduce":
		tbl = ws.Reduce(func(agg, v any) (any, error) { return fmt.Sprintf("%v+%v", agg, v), nil }, m)
	default:
		t.Fatalf("%s: agg=%q", d.Pos, args["agg"])
	}
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
