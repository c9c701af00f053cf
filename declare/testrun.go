package declare

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestRecord is one line of a test's input or expected file (JSON lines):
//
//	{"topic": "orders", "key": "o1", "value": {...}, "timestamp": 1000, "headers": {"h": "v"}}
//
// Expected records may add "window": {"start": ms, "end": ms} for windowed
// keys (then "key" is the key inside the window), and, for the dead-letter
// topic, "error": a text its eos.error.message header must contain. A
// field an expected record leaves out (timestamp, window, error) is not
// compared.
type TestRecord struct {
	Topic     string            `json:"topic"`
	Key       any               `json:"key"`
	Value     any               `json:"value"`
	Timestamp *int64            `json:"timestamp,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Window    *TestWindow       `json:"window,omitempty"`
	Error     string            `json:"error,omitempty"`
	line      int
}

// TestWindow is a windowed key's window, in epoch milliseconds.
type TestWindow struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// ReadTestRecords reads a JSON-lines file of test records; blank lines and
// lines starting with # or // are skipped.
func ReadTestRecords(path string) ([]TestRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []TestRecord
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "//") {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		var r TestRecord
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if r.Topic == "" {
			return nil, fmt.Errorf("%s:%d: missing \"topic\"", path, n)
		}
		r.Key, r.Value, r.line = numbers(r.Key), numbers(r.Value), n
		out = append(out, r)
	}
	return out, sc.Err()
}

// numbers turns json.Numbers into int64 (integral) or float64, as the
// serdes and expressions expect.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// TestResult is what RunTest found.
type TestResult struct {
	Passed bool
	// Diff is a readable difference per topic, empty when Passed.
	Diff string
	// Outputs counts the records compared.
	Outputs int
	// Actual is every output record, topic by topic, as an expected file
	// would list it.
	Actual []TestRecord
}

// RunTest runs the file's topology on processor.TestDriver (no broker): it
// pipes the inputs in order, then compares every output topic's records
// (sinks and the dead-letter topic), in order, with expected. Avro formats
// use an in-memory schema registry that registers what is written.
func RunTest(f *File, inputs, expected []TestRecord) (*TestResult, error) {
	var reg *registry.Client
	if usesAvro(f) {
		srv, err := registry.Open("", registry.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			return nil, err
		}
		hs := httptest.NewServer(srv)
		defer hs.Close()
		reg = registry.NewClient(hs.URL)
	}
	topo, err := Compile(f, Options{Registry: reg, AutoRegister: true})
	if err != nil {
		return nil, err
	}
	cfg := processor.TestDriverConfig{ApplicationID: f.AppID, Partitions: map[string]int{}}
	for _, s := range f.Settings {
		switch s.Key {
		case "on.error":
			cfg.OnError = s.Value
		case "late.records":
			cfg.LateRecords = s.Value
		case "dlq.topic":
			cfg.DLQTopic = s.Value
		}
	}
	for _, s := range f.Sources {
		for _, t := range s.Topics {
			if s.Partitions > 0 {
				cfg.Partitions[t] = s.Partitions
			}
		}
	}
	for _, t := range f.Tables {
		if t.Partitions > 0 {
			cfg.Partitions[t.Topic] = t.Partitions
		}
	}
	if cfg.DLQTopic == "" {
		cfg.DLQTopic = f.AppID + "-dlq"
	}
	d, err := processor.NewTestDriver(topo, cfg)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	for _, in := range inputs {
		if err := pipeTestRecord(d, topo, in); err != nil {
			return nil, fmt.Errorf("input line %d (topic %s): %w", in.line, in.Topic, err)
		}
	}
	// Every output topic: the sinks' and the dead-letter topic.
	sinks := map[string]*topology.Node{}
	var topics []string
	for _, n := range topo.Nodes {
		if n.Kind == topology.SinkNode && !n.Internal {
			if _, ok := sinks[n.Topics[0]]; !ok {
				topics = append(topics, n.Topics[0])
			}
			sinks[n.Topics[0]] = n
		}
	}
	topics = append(topics, cfg.DLQTopic)
	want := map[string][]TestRecord{}
	for _, e := range expected {
		if _, ok := sinks[e.Topic]; !ok && e.Topic != cfg.DLQTopic {
			return nil, fmt.Errorf("expected line %d: topic %q is not an output of the topology (outputs: %s)", e.line, e.Topic, strings.Join(topics, ", "))
		}
		want[e.Topic] = append(want[e.Topic], e)
	}
	res := &TestResult{Passed: true}
	var diff strings.Builder
	for _, topic := range topics {
		got, err := actual(d, topic, sinks[topic])
		if err != nil {
			return nil, err
		}
		res.Outputs += len(got)
		res.Actual = append(res.Actual, got...)
		if text := compareTopic(topic, want[topic], got); text != "" {
			res.Passed = false
			diff.WriteString(text)
		}
	}
	res.Diff = diff.String()
	return res, nil
}

func usesAvro(f *File) bool {
	var fs []Format
	for _, s := range f.Sources {
		fs = append(fs, s.Key, s.Value)
	}
	for _, t := range f.Tables {
		fs = append(fs, t.Key, t.Value)
	}
	for _, s := range f.Sinks {
		if s.Key != nil {
			fs = append(fs, *s.Key)
		}
		if s.Value != nil {
			fs = append(fs, *s.Value)
		}
	}
	for _, s := range f.Streams {
		for _, st := range s.Steps {
			for _, p := range []*Format{st.KeyFormat, st.ValueFormat} {
				if p != nil {
					fs = append(fs, *p)
				}
			}
			if st.To != nil && st.To.Value != nil {
				fs = append(fs, *st.To.Value)
			}
		}
	}
	for _, x := range fs {
		if x.Kind == "avro" {
			return true
		}
	}
	return false
}

func pipeWithHeaders(d *processor.TestDriver, topo *topology.Topology, in TestRecord, ts time.Time) error {
	var src *topology.Node
	for _, n := range topo.Nodes {
		if n.Kind == topology.SourceNode && contains(n.Topics, in.Topic) {
			src = n
		}
	}
	if src == nil {
		return fmt.Errorf("no source reads topic %q (headers are for stream sources)", in.Topic)
	}
	kb, err := src.KeySerde.Serialize(in.Topic, in.Key)
	if err != nil {
		return err
	}
	vb, err := src.ValueSerde.Serialize(in.Topic, in.Value)
	if err != nil {
		return err
	}
	var hs []topology.Header
	keys := make([]string, 0, len(in.Headers))
	for k := range in.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		hs = append(hs, topology.Header{Key: k, Value: []byte(in.Headers[k])})
	}
	return d.PipeRecord(processor.TestRecord{Topic: in.Topic, Partition: processor.AnyPartition, Key: kb, Value: vb, Headers: hs, Timestamp: ts})
}

// actual reads a topic's records as TestRecords, keys and values decoded
// with the sink's serdes (the dead-letter topic's as text).
func actual(d *processor.TestDriver, topic string, sink *topology.Node) ([]TestRecord, error) {
	var out []TestRecord
	for _, r := range d.ReadOutput(topic) {
		ts := r.Timestamp.UnixMilli()
		tr := TestRecord{Topic: topic, Timestamp: &ts}
		if sink == nil { // dead letters: the input's bytes and the reason
			tr.Key, tr.Value = text(r.Key), text(r.Value)
			for _, h := range r.Headers {
				if h.Key == processor.HeaderErrorMessage {
					tr.Error = string(h.Value)
				}
			}
			out = append(out, tr)
			continue
		}
		rec, err := r.Decode(sink.KeySerde, sink.ValueSerde)
		if err != nil {
			return nil, err
		}
		tr.Key, tr.Value = rec.Key, rec.Value
		if w, ok := rec.Key.(serde.Windowed); ok {
			tr.Key = w.Key
			tr.Window = &TestWindow{Start: w.Window.Start.UnixMilli(), End: w.Window.End.UnixMilli()}
		}
		out = append(out, tr)
	}
	return out, nil
}

func text(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// canonical is a value's JSON with numbers compared by value, times as epoch
// milliseconds, bytes as text and map keys sorted.
func canonical(v any) string {
	b, err := json.Marshal(plain(v))
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	var x any
	_ = json.Unmarshal(b, &x)
	b, _ = json.Marshal(x)
	return string(b)
}

func plain(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UnixMilli()
	case []byte:
		return string(x)
	case *big.Rat:
		f, _ := x.Float64()
		return f
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case serde.Windowed:
		return map[string]any{"key": plain(x.Key), "window": map[string]any{"start": x.Window.Start.UnixMilli(), "end": x.Window.End.UnixMilli()}}
	}
	if v != nil && reflect.TypeOf(v).Kind() == reflect.Struct {
		return fmt.Sprintf("%v", v)
	}
	return v
}

// show is one record as a diff line.
func show(r TestRecord, full bool) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "key=%s value=%s", canonical(r.Key), canonical(r.Value))
	if r.Timestamp != nil {
		fmt.Fprintf(&sb, " timestamp=%d", *r.Timestamp)
	}
	if r.Window != nil {
		fmt.Fprintf(&sb, " window=[%d,%d)", r.Window.Start, r.Window.End)
	}
	if r.Error != "" {
		e := r.Error
		if !full && len(e) > 200 {
			e = e[:200] + "..."
		}
		fmt.Fprintf(&sb, " error=%q", e)
	}
	return sb.String()
}

func matches(want, got TestRecord) bool {
	if canonical(want.Key) != canonical(got.Key) || canonical(want.Value) != canonical(got.Value) {
		return false
	}
	if want.Timestamp != nil && (got.Timestamp == nil || *want.Timestamp != *got.Timestamp) {
		return false
	}
	if want.Window != nil && (got.Window == nil || *want.Window != *got.Window) {
		return false
	}
	if want.Error != "" && !strings.Contains(got.Error, want.Error) {
		return false
	}
	return true
}

// compareTopic returns a readable diff of one topic, "" on a match.
func compareTopic(topic string, want, got []TestRecord) string {
	var sb strings.Builder
	n := max(len(want), len(got))
	for i := 0; i < n; i++ {
		switch {
		case i >= len(want):
			fmt.Fprintf(&sb, "  #%d unexpected: %s\n", i+1, show(got[i], false))
		case i >= len(got):
			fmt.Fprintf(&sb, "  #%d missing:    %s (expected line %d)\n", i+1, show(want[i], false), want[i].line)
		case !matches(want[i], got[i]):
			w := want[i]
			g := got[i]
			if w.Timestamp == nil {
				g.Timestamp = nil
			}
			if w.Window == nil {
				g.Window = nil
			}
			if w.Error == "" {
				g.Error = ""
			}
			fmt.Fprintf(&sb, "  #%d - expected: %s (line %d)\n     + actual:   %s\n", i+1, show(w, false), w.line, show(g, false))
		}
	}
	if sb.Len() == 0 {
		return ""
	}
	return fmt.Sprintf("topic %s: %d expected, %d actual\n%s", topic, len(want), len(got), sb.String())
}

// WriteTestReport prints a result: "PASS ..." or "FAIL ..." and the diff.
func WriteTestReport(w io.Writer, path string, r *TestResult) {
	if r.Passed {
		fmt.Fprintf(w, "PASS %s: %d output records match\n", path, r.Outputs)
		return
	}
	fmt.Fprintf(w, "FAIL %s\n%s", path, r.Diff)
}

// WriteTestRecords writes records as JSON lines, in the form ReadTestRecords
// reads (`eos-runner test --update` writes the expected file with it).
func WriteTestRecords(w io.Writer, rs []TestRecord) error {
	for _, r := range rs {
		r.Key, r.Value = plain(r.Key), plain(r.Value)
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
			return err
		}
	}
	return nil
}

// pipeTestRecord pipes one input record into the driver: its timestamp (the
// epoch when absent), with its headers when it has any.
func pipeTestRecord(d *processor.TestDriver, topo *topology.Topology, in TestRecord) error {
	ts := time.UnixMilli(0)
	if in.Timestamp != nil {
		ts = time.UnixMilli(*in.Timestamp)
	}
	if len(in.Headers) > 0 {
		return pipeWithHeaders(d, topo, in, ts)
	}
	return d.PipeInput(in.Topic, in.Key, in.Value, ts)
}
