package dlqreplay

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// dlqHeaders are the headers the runner gives a record of topic@offset that
// failed with class, after the original ones.
func dlqHeaders(class, topic, offset string, orig ...topology.Header) []topology.Header {
	return append(append([]topology.Header(nil), orig...),
		topology.Header{Key: processor.HeaderErrorClass, Value: []byte(class)},
		topology.Header{Key: processor.HeaderErrorMessage, Value: []byte("boom")},
		topology.Header{Key: processor.HeaderErrorNode, Value: []byte("n")},
		topology.Header{Key: processor.HeaderSourceTopic, Value: []byte(topic)},
		topology.Header{Key: processor.HeaderSourcePart, Value: []byte("0")},
		topology.Header{Key: processor.HeaderSourceOffset, Value: []byte(offset)},
		topology.Header{Key: processor.HeaderSourceTime, Value: []byte("1")},
		topology.Header{Key: processor.HeaderApplicationID, Value: []byte("app")},
	)
}

func TestMatch(t *testing.T) {
	all := Config{DLQ: "d", To: "t", FromOffset: Open, ToOffset: Open}
	with := func(f func(*Config)) Config { c := all; f(&c); return c }
	deser := dlqHeaders("deserialization", "in", "10")
	proc := dlqHeaders("processing", "in", "20")
	other := dlqHeaders("deserialization", "other", "30")
	for _, tc := range []struct {
		name string
		cfg  Config
		hs   []topology.Header
		want bool
	}{
		{"no filter", all, proc, true},
		{"not a DLQ record", all, []topology.Header{{Key: "a", Value: []byte("b")}}, false},
		{"class in", with(func(c *Config) { c.Classes = []string{"deserialization"} }), deser, true},
		{"class out", with(func(c *Config) { c.Classes = []string{"deserialization"} }), proc, false},
		{"one of classes", with(func(c *Config) { c.Classes = []string{"panic", "processing"} }), proc, true},
		{"source in", with(func(c *Config) { c.Source = "in" }), deser, true},
		{"source out", with(func(c *Config) { c.Source = "in" }), other, false},
		{"from inclusive", with(func(c *Config) { c.FromOffset = 10 }), deser, true},
		{"below from", with(func(c *Config) { c.FromOffset = 11 }), deser, false},
		{"to inclusive", with(func(c *Config) { c.ToOffset = 20 }), proc, true},
		{"past to", with(func(c *Config) { c.ToOffset = 19 }), proc, false},
		{"in range", with(func(c *Config) { c.FromOffset, c.ToOffset = 15, 25 }), proc, true},
		{"range, bad offset", with(func(c *Config) { c.FromOffset = 0 }), dlqHeaders("processing", "in", "x"), false},
		{"no range, bad offset", all, dlqHeaders("processing", "in", "x"), true},
		// The runner's headers come last: a same-named original header does not fool it.
		{"last header wins", with(func(c *Config) { c.Classes = []string{"processing"} }),
			dlqHeaders("processing", "in", "1", topology.Header{Key: processor.HeaderErrorClass, Value: []byte("panic")}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Match(tc.hs); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"ok", Config{DLQ: "d", To: "t", FromOffset: Open, ToOffset: Open}, nil},
		{"ok range", Config{DLQ: "d", To: "t", FromOffset: 3, ToOffset: 3}, nil},
		{"empty", Config{FromOffset: Open, ToOffset: Open}, []string{"no DLQ topic", "no target topic"}},
		{"to is dlq", Config{DLQ: "d", To: "d", FromOffset: Open, ToOffset: Open}, []string{"is the DLQ itself"}},
		{"all at once", Config{DLQ: "d", To: "d", FromOffset: 5, ToOffset: 4, Classes: []string{""}},
			[]string{"is the DLQ itself", "from offset 5 is past to offset 4", "empty error class"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, missing %q", err, w)
				}
			}
			if _, terr := Topology(tc.cfg); terr == nil {
				t.Error("Topology accepted an invalid config")
			}
		})
	}
}

// TestTopologyFilter runs the replay topology on processor.TestDriver: DLQ
// records in with the runner's headers, the matching one out on the target
// topic with its original key, value, headers and timestamp, byte for byte.
func TestTopologyFilter(t *testing.T) {
	cfg := Config{DLQ: "app-dlq", To: "in", Classes: []string{"deserialization"}, FromOffset: Open, ToOffset: Open}
	topo, err := Topology(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(topo.SubTopologies); got != 1 {
		t.Fatalf("%d sub-topologies, want 1", got)
	}
	src, sink := topo.Node(SourceNode), topo.Node(SinkNode)
	if src == nil || sink == nil || !reflect.DeepEqual(src.Topics, []string{"app-dlq"}) || !reflect.DeepEqual(sink.Topics, []string{"in"}) {
		t.Fatalf("source %+v, sink %+v: want app-dlq -> in", src, sink)
	}
	d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{ApplicationID: "app-dlq-replay", OnError: processor.OnErrorFail})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	orig := []topology.Header{{Key: "trace", Value: []byte("t1")}, {Key: "eosx", Value: []byte("kept")}}
	ts := time.UnixMilli(1700000000000)
	good := processor.TestRecord{Topic: "app-dlq", Key: []byte("k"), Value: []byte("abc"), Headers: dlqHeaders("deserialization", "in", "1", orig...), Timestamp: ts}
	bad := processor.TestRecord{Topic: "app-dlq", Key: []byte("k"), Value: []byte("-1"), Headers: dlqHeaders("processing", "in", "2", orig...), Timestamp: ts}
	inHeaders := append([]topology.Header(nil), good.Headers...)
	for _, r := range []processor.TestRecord{good, bad} {
		if err := d.PipeRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	out := d.ReadOutput("in")
	if len(out) != 1 {
		t.Fatalf("forwarded %d records, want 1 (the deserialization one)", len(out))
	}
	got, err := out[0].Decode(serde.Bytes{}, serde.Bytes{})
	if err != nil {
		t.Fatal(err)
	}
	want := topology.Record{Key: []byte("k"), Value: []byte("abc"), Headers: orig, Timestamp: ts}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("forwarded %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(good.Headers, inHeaders) {
		t.Error("the input record's headers were modified")
	}
}

func TestStripRunnerHeaders(t *testing.T) {
	if got := StripRunnerHeaders(dlqHeaders("panic", "in", "1")); len(got) != 0 {
		t.Errorf("kept %v, want none", got)
	}
	if got := StripRunnerHeaders(nil); got != nil {
		t.Errorf("StripRunnerHeaders(nil) = %v", got)
	}
}

func TestCaughtUp(t *testing.T) {
	last := map[int32]int64{0: 4, 2: 9}
	for _, tc := range []struct {
		committed map[int32]int64
		want      bool
	}{
		{map[int32]int64{0: 5, 2: 10}, true},
		{map[int32]int64{0: 5, 1: 0, 2: 11}, true},
		{map[int32]int64{0: 4, 2: 10}, false}, // the last record of 0 is not committed
		{map[int32]int64{0: 5}, false},        // nothing committed on 2
		{nil, false},
	} {
		if got := caughtUp(tc.committed, last); got != tc.want {
			t.Errorf("caughtUp(%v, %v) = %v, want %v", tc.committed, last, got, tc.want)
		}
	}
	if !caughtUp(nil, map[int32]int64{}) {
		t.Error("nothing to replay is caught up")
	}
}
