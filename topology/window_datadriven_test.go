package topology

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/eos-runner/eos-runner/serde"
)

// TestWindowsDatadriven runs the scripts in testdata/windows, most of them
// transcribed from Kafka Streams' own tests (each file names its source).
//
//	run windows=time size=10 advance=5 grace=100 emit=update agg=concat
//	A 1 0        <- key value timestamp(ms); value "-" is nil
//	----
//	A@0/10 0+1 @0
//	late A 1 @0  <- a record dropped as late
//
// windows: time (size, advance, grace), sliding (diff, grace), session (gap,
// grace). emit: update (default) or close. agg: concat (init "0", or ""
// with init=empty; value appended as "+v"; sessions merged as "a+b"), count,
// or reduce (values joined with "+"). Each output line is a forwarded record:
// windowed key, value (nil for a tombstone) and timestamp.
func TestWindowsDatadriven(t *testing.T) {
	datadriven.Walk(t, "testdata/windows", func(t *testing.T, path string) {
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
	var w Windows
	switch args["windows"] {
	case "time":
		w = TimeWindows{Size: dur("size"), Advance: dur("advance"), Grace: dur("grace")}
	case "sliding":
		w = SlidingWindows{TimeDifference: dur("diff"), Grace: dur("grace")}
	case "session":
		w = SessionWindows{Gap: dur("gap"), Grace: dur("grace")}
	default:
		t.Fatalf("%s: windows=%q", d.Pos, args["windows"])
	}
	b := NewBuilder()
	ws := b.Stream([]string{"in"}, inStr).GroupByKey(Grouped{Key: serde.String{}, Value: serde.String{}}).WindowedBy(w)
	if args["emit"] == "close" {
		ws = ws.Emit(EmitOnWindowClose)
	}
	var tbl *Table
	switch args["agg"] {
	case "concat":
		init := "0"
		if args["init"] == "empty" {
			init = ""
		}
		tbl = ws.Aggregate(func() any { return init },
			func(_, v, agg any) (any, error) { return fmt.Sprintf("%v+%v", agg, v), nil },
			// KS's MockAggregator/MockInitializer session tests merge
			// strings as aggOne + "+" + aggTwo
			func(_, a, b any) (any, error) { return fmt.Sprintf("%v+%v", a, b), nil },
			Materialized{Value: serde.String{}})
	case "count":
		tbl = ws.Count(Materialized{})
	case "reduce":
		tbl = ws.Reduce(func(agg, v any) (any, error) { return fmt.Sprintf("%v+%v", agg, v), nil }, Materialized{})
	default:
		t.Fatalf("%s: agg=%q", d.Pos, args["agg"])
	}
	var outKey serde.Serde = serde.TimeWindowed{Inner: serde.String{}, Size: time.Millisecond}
	if _, ok := w.(SessionWindows); ok {
		outKey = serde.SessionWindowed{Inner: serde.String{}}
	}
	tbl.ToStream().To("out", Produced{Key: outKey, Value: serde.String{}})
	h := newHarness(t, build(t, b))
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
		before := len(h.out["out"])
		err = h.pipe("in", Record{Key: f[0], Value: v, Timestamp: at(ts)})
		for _, r := range h.out["out"][before:] {
			val := r.Value
			if val == nil {
				val = "nil"
			}
			fmt.Fprintf(&sb, "%v %v @%d\n", r.Key, val, toMillis(r.Timestamp))
		}
		switch {
		case err == nil:
		case IsLate(err):
			fmt.Fprintf(&sb, "late %s %s @%d\n", f[0], f[1], ts)
		default:
			fmt.Fprintf(&sb, "error %s %s @%d: %v\n", f[0], f[1], ts, err)
		}
	}
	return sb.String()
}
