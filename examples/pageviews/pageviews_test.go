package pageviews

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/internal/registrytest"
	"github.com/eos-runner/eos-runner/schema"
	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// testRegistry serves an in-memory embedded registry.
func testRegistry(tb testing.TB) *registry.Client {
	c, _ := registrytest.Serve(tb)
	return c
}

func TestSchemasEvolveBackward(t *testing.T) {
	v1, err := schema.Parse(ViewSchemaV1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := schema.Parse(ViewSchemaV2)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{CountSchema, MinuteSchema} {
		if _, err := schema.Parse(text); err != nil {
			t.Fatal(err)
		}
	}
	if p := schema.CheckLevel(schema.Backward, []*schema.Schema{v1}, v2); len(p) != 0 {
		t.Fatalf("v2 after v1 at BACKWARD: %v", p)
	}
	if p := schema.CheckLevel(schema.FullTransitive, []*schema.Schema{v1}, v2); len(p) != 0 {
		t.Fatalf("v2 after v1 at FULL_TRANSITIVE: %v", p)
	}
}

func TestParse(t *testing.T) {
	ts := time.UnixMilli(1_700_000_000_123).UTC()
	for _, tc := range []struct {
		name    string
		in      any
		want    View
		wantErr string
	}{
		{"v2 with referrer", map[string]any{"user": "u1", "page": "/a", "bot": false, "ts": ts, "referrer": map[string]any{"string": "search"}},
			View{User: "u1", Page: "/a", TS: ts.UnixMilli(), Referrer: "search"}, ""},
		{"v1 projected: referrer null", map[string]any{"user": "u1", "page": "/a", "bot": true, "ts": ts, "referrer": nil},
			View{User: "u1", Page: "/a", Bot: true, TS: ts.UnixMilli()}, ""},
		{"ts as plain long", map[string]any{"user": "u1", "page": "/a", "bot": false, "ts": int64(42), "referrer": nil},
			View{User: "u1", Page: "/a", TS: 42}, ""},
		{"empty page", map[string]any{"user": "u1", "page": "", "bot": false, "ts": ts}, View{}, "non-empty user and page"},
		{"empty user", map[string]any{"user": "", "page": "/a", "bot": false, "ts": ts}, View{}, "non-empty user and page"},
		{"not a record", "hello", View{}, "got string"},
		{"nil", nil, View{}, "got <nil>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("parse = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPageCount(t *testing.T) {
	k, v, err := pageCount("/home", int64(7))
	if err != nil || k != "/home" || !reflect.DeepEqual(v, map[string]any{"page": "/home", "views": int64(7)}) {
		t.Fatalf("pageCount = %v %v %v", k, v, err)
	}
	if _, _, err := pageCount(1, int64(7)); err == nil {
		t.Fatal("int key accepted")
	}
	if _, _, err := pageCount("/home", "7"); err == nil {
		t.Fatal("string count accepted")
	}
}

func TestPageMinute(t *testing.T) {
	w := topology.Windowed{Key: "/home", Window: topology.Window{Start: time.UnixMilli(60_000), End: time.UnixMilli(120_000)}}
	k, v, err := pageMinute(w, int64(3))
	want := map[string]any{"page": "/home", "window_start": time.UnixMilli(60_000).UTC(), "window_end": time.UnixMilli(120_000).UTC(), "views": int64(3)}
	if err != nil || k != w || !reflect.DeepEqual(v, want) {
		t.Fatalf("pageMinute = %v %v %v", k, v, err)
	}
	for _, tc := range []struct {
		key, value any
	}{{"/home", int64(3)}, {topology.Windowed{Key: 1, Window: w.Window}, int64(3)}, {w, "3"}} {
		if _, _, err := pageMinute(tc.key, tc.value); err == nil {
			t.Errorf("pageMinute(%v, %v) accepted", tc.key, tc.value)
		}
	}
}

// TestTopologyWithoutRegistry: building and describing needs no registry.
func TestTopologyWithoutRegistry(t *testing.T) {
	topo, err := Topology(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	d := topo.Describe()
	for _, s := range []string{
		"Source: pageviews-source (topics: [pageviews])",
		"Sink: views-per-page-repartition-sink (topic: <application.id>-views-per-page-repartition)",
		"Sink: per-page-sink (topic: pageviews-per-page)",
		"Sink: per-user-sink (topic: pageviews-per-user)",
		"Sink: views-per-page-per-minute-repartition-sink (topic: <application.id>-views-per-page-per-minute-repartition)",
		"Sink: per-minute-sink (topic: pageviews-per-page-per-minute)",
		"Store: views-per-page", "Store: views-per-user",
		"Store: views-per-page-per-minute", "Store: views-per-page-per-minute-emit-final",
	} {
		if !strings.Contains(d, s) {
			t.Errorf("Describe lacks %q:\n%s", s, d)
		}
	}
	sink := topo.Node("per-page-sink")
	a, ok := sink.ValueSerde.(*serde.Avro)
	if !ok {
		t.Fatalf("per-page sink value serde %T, want *serde.Avro", sink.ValueSerde)
	}
	if a.AutoRegistering() {
		t.Error("auto-registration on although Topology was asked for false")
	}
	minute := topo.Node("per-minute-sink")
	if a, ok := minute.ValueSerde.(*serde.Avro); !ok || a.AutoRegistering() {
		t.Errorf("per-minute sink value serde %T (want *serde.Avro, not auto-registering)", minute.ValueSerde)
	}
	if _, ok := minute.KeySerde.(serde.TimeWindowed); !ok {
		t.Errorf("per-minute sink key serde %T, want serde.TimeWindowed", minute.KeySerde)
	}
}

// TestSourceReadsBothVersions: the source serde reads v1 and v2 records into
// the v2 shape, and parse turns both into Views; bad wire format is an error.
func TestSourceReadsBothVersions(t *testing.T) {
	c := testRegistry(t)
	topo, err := Topology(c, false)
	if err != nil {
		t.Fatal(err)
	}
	src := topo.Node("pageviews-source").ValueSerde
	ts := time.UnixMilli(1_700_000_000_000).UTC()
	view := View{User: "u7", Page: "/p/1", TS: ts.UnixMilli(), Referrer: "news"}

	for _, tc := range []struct {
		version int
		text    string
		want    View
	}{
		{1, ViewSchemaV1, View{User: "u7", Page: "/p/1", TS: ts.UnixMilli()}},
		{2, ViewSchemaV2, view},
	} {
		w, err := serde.NewAvro(c, tc.text, serde.Value, serde.AutoRegister(true))
		if err != nil {
			t.Fatal(err)
		}
		b, err := w.Serialize(Input, view.Native(tc.version))
		if err != nil {
			t.Fatalf("v%d: serialize: %v", tc.version, err)
		}
		native, err := src.Deserialize(Input, b)
		if err != nil {
			t.Fatalf("v%d: deserialize: %v", tc.version, err)
		}
		got, err := parse(native)
		if err != nil {
			t.Fatalf("v%d: parse: %v", tc.version, err)
		}
		if got != tc.want {
			t.Fatalf("v%d: got %+v, want %+v", tc.version, got, tc.want)
		}
	}
	for name, b := range map[string][]byte{
		"no magic byte":  []byte(`{"user":"u1"}`),
		"unknown id":     {0, 0, 0, 0x30, 0x39, 2, 'u'},
		"truncated body": {0, 0, 0, 0, 1, 4, 'u'},
	} {
		if _, err := src.Deserialize(Input, b); err == nil {
			t.Errorf("%s: deserialized", name)
		}
	}
}

// TestPerPageSinkPrepare: the Avro sinks register only when allowed.
func TestPerPageSinkPrepare(t *testing.T) {
	ctx := context.Background()
	c := testRegistry(t)
	for _, auto := range []bool{false, true} {
		topo, err := Topology(c, auto)
		if err != nil {
			t.Fatal(err)
		}
		for sink, topic := range map[string]string{"per-page-sink": PerPage, "per-minute-sink": PerPagePerMinute} {
			p := topo.Node(sink).ValueSerde.(serde.Preparer)
			err = p.Prepare(ctx, topic)
			switch {
			case !auto && !errors.Is(err, registry.ErrNotRegistered):
				t.Fatalf("%s: auto-register off on an empty registry: %v, want ErrNotRegistered", sink, err)
			case auto && err != nil:
				t.Fatalf("%s: auto-register on: %v", sink, err)
			}
		}
	}
	for _, topic := range []string{PerPage, PerPagePerMinute} {
		versions, err := c.SRClient().GetSchemaVersions(topic + "-value")
		if err != nil || len(versions) != 1 {
			t.Fatalf("versions of %s-value: %v %v, want one", topic, versions, err)
		}
	}
}
