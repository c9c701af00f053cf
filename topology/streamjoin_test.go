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

// TestStreamJoinDatadriven runs the scripts in testdata/streamjoin on
// processor.TestDriver (the runner's tasks, Pebble stores and changelogs).
// Most are transcribed from Kafka Streams' KStreamKStreamJoinTest,
// KStreamKStreamLeftJoinTest and KStreamKStreamOuterJoinTest, each case
// naming its test method; their expected outputs are Kafka Streams'.
//
//	new join=left before=100 after=100 grace=10
//	----
//
//	pipe
//	left 0:A0@0 1:A1@0      <- records piped to the left topic, in order
//	right 0:a0@5 -:x@6      <- key "-" is nil, value "-" is nil
//	----
//	0:A0+a0@5               <- a joined record: key:value@timestamp
//	late right 1:a1@3       <- a record dropped as late
//	skipped right -:x@6     <- a record dropped for its nil key or value
//
//	restart                 <- reopen the driver on the same state directory
//	describe                <- the topology's Describe()
//
// new takes join=inner|left|outer, before, after and grace in ms, and
// optionally name= (StreamJoined.Name) and rekey=true (the right side's key
// is changed upstream, so the join repartitions it).
//
// The joiner is KS's MockValueJoiner.TOSTRING_JOINER: left+"+"+right, nil
// printed as "null". Keys and values are strings.
func TestStreamJoinDatadriven(t *testing.T) {
	datadriven.Walk(t, "testdata/streamjoin", func(t *testing.T, path string) {
		var j *joinScript
		defer func() {
			if j != nil {
				j.close()
			}
		}()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "new":
				if j != nil {
					j.close()
				}
				j = newJoinScript(t, d)
				return ""
			case "pipe":
				return j.pipe(t, d)
			case "restart":
				j.restart(t)
				return ""
			case "describe":
				return j.topo.Describe()
			}
			t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			return ""
		})
	})
}

type joinScript struct {
	topo *topology.Topology
	dir  string
	drv  *processor.TestDriver
}

var joinStr = serde.String{}

// joinTopology builds left.<kind>Join(right) over w into "out".
// With rekey, the right side's key goes through SelectKey (unchanged), so
// the join must repartition it.
func joinTopology(kind string, w topology.JoinWindows, name string, rekey bool) (*topology.Topology, error) {
	b := topology.NewBuilder()
	left := b.Stream([]string{"left"}, topology.Consumed{Key: joinStr, Value: joinStr})
	right := b.Stream([]string{"right"}, topology.Consumed{Key: joinStr, Value: joinStr})
	if rekey {
		right = right.SelectKey(func(k, _ any) any { return k })
	}
	joiner := func(_, l, r any) (any, error) {
		if l == nil {
			l = "null"
		}
		if r == nil {
			r = "null"
		}
		return fmt.Sprintf("%v+%v", l, r), nil
	}
	sj := topology.StreamJoined{Key: joinStr, Value: joinStr, OtherValue: joinStr, Name: name}
	var out *topology.Stream
	switch kind {
	case "inner":
		out = left.Join(right, joiner, w, sj)
	case "left":
		out = left.LeftJoin(right, joiner, w, sj)
	case "outer":
		out = left.OuterJoin(right, joiner, w, sj)
	default:
		return nil, fmt.Errorf("join=%q", kind)
	}
	out.To("out", topology.Produced{Key: joinStr, Value: joinStr})
	return b.Build()
}

func newJoinScript(t *testing.T, d *datadriven.TestData) *joinScript {
	args := map[string]string{}
	for _, a := range d.CmdArgs {
		args[a.Key] = strings.Join(a.Vals, ",")
	}
	ms := func(name string) time.Duration {
		n, err := strconv.ParseInt(args[name], 10, 64)
		if err != nil {
			t.Fatalf("%s: %s=%q: %v", d.Pos, name, args[name], err)
		}
		return time.Duration(n) * time.Millisecond
	}
	w := topology.JoinWindows{Before: ms("before"), After: ms("after"), Grace: ms("grace")}
	topo, err := joinTopology(args["join"], w, args["name"], args["rekey"] == "true")
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	j := &joinScript{topo: topo, dir: t.TempDir()}
	j.open(t)
	return j
}

func (j *joinScript) open(t *testing.T) {
	drv, err := processor.NewTestDriver(j.topo, processor.TestDriverConfig{
		ApplicationID: "app", OnError: processor.OnErrorFail, StateDir: filepath.Join(j.dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	j.drv = drv
}

func (j *joinScript) close() {
	if j.drv != nil {
		j.drv.Close()
		j.drv = nil
	}
}

func (j *joinScript) restart(t *testing.T) {
	j.close()
	j.open(t)
}

// pipe pipes each record of the input, in order, and prints what each
// produced.
func (j *joinScript) pipe(t *testing.T, d *datadriven.TestData) string {
	var sb strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		topic := f[0]
		if topic != "left" && topic != "right" {
			t.Fatalf("%s: %q: want left or right", d.Pos, line)
		}
		for _, rec := range f[1:] {
			k, v, ts := parseJoinRecord(t, d, rec)
			late, skipped := j.drv.Dropped("late"), j.drv.Dropped("null-key-or-value")
			if err := j.drv.PipeInput(topic, k, v, time.UnixMilli(ts)); err != nil {
				fmt.Fprintf(&sb, "error %s %s: %v\n", topic, rec, err)
			}
			out, err := j.drv.ReadRecords("out", joinStr, joinStr)
			if err != nil {
				t.Fatalf("%s: %v", d.Pos, err)
			}
			for _, r := range out {
				fmt.Fprintf(&sb, "%s:%s@%d\n", orDash(r.Key), orDash(r.Value), r.Timestamp.UnixMilli())
			}
			if j.drv.Dropped("late") > late {
				fmt.Fprintf(&sb, "late %s %s\n", topic, rec)
			}
			if j.drv.Dropped("null-key-or-value") > skipped {
				fmt.Fprintf(&sb, "skipped %s %s\n", topic, rec)
			}
		}
	}
	return sb.String()
}

// parseJoinRecord reads key:value@ts; "-" is nil.
func parseJoinRecord(t *testing.T, d *datadriven.TestData, s string) (k, v any, ts int64) {
	kv, tss, ok := strings.Cut(s, "@")
	ks, vs, ok2 := strings.Cut(kv, ":")
	if !ok || !ok2 {
		t.Fatalf("%s: record %q: want key:value@ts", d.Pos, s)
	}
	ts, err := strconv.ParseInt(tss, 10, 64)
	if err != nil {
		t.Fatalf("%s: record %q: %v", d.Pos, s, err)
	}
	if ks != "-" {
		k = ks
	}
	if vs != "-" {
		v = vs
	}
	return k, v, ts
}

func orDash(x any) string {
	if x == nil {
		return "-"
	}
	return fmt.Sprint(x)
}
