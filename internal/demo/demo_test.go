package demo

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/examples/pageviews"
	"github.com/eos-runner/eos-runner/internal/devstack"
	"github.com/eos-runner/eos-runner/internal/registrytest"
	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
)

// testRegistry serves an in-memory embedded registry.
func testRegistry(tb testing.TB) *registry.Client {
	c, _ := registrytest.Serve(tb)
	return c
}

func TestReason(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{`value: serde: avro: topic "pageviews" value: wrong magic byte 0x7b (not Confluent wire format)`, "not Avro wire format (wrong magic byte)"},
		{`value: serde: avro: topic "pageviews" value: fetch schema id 2147483632 from http://x: registry: schema id not found: {}`, "unknown schema id"},
		{`value: serde: avro: topic "pageviews" value: schema id 1: malformed data: record P field "page": truncated: string length 7 exceeds the 4 bytes left`, "truncated payload"},
		{`value: serde: avro: topic "pageviews" value: truncated: 3 bytes, the Confluent wire format needs at least 5`, "truncated payload"},
		{`value: serde: avro: topic "pageviews" value: schema id 1: malformed data: union branch index 7 out of range [0,2)`, "malformed Avro data"},
		{`schema id 9: the declared value schema cannot read data written with it: ...`, "writer schema incompatible with the reader"},
		{`page view needs a non-empty user and page (user "u1", page "")`, "empty user or page"},
		{"", "(no message)"},
		{"short", "short"},
		{strings.Repeat("x", 70), strings.Repeat("x", 60) + "…"},
	} {
		if got := Reason(tc.msg); got != tc.want {
			t.Errorf("Reason(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

func wire(id uint32, body ...byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte{0}, id)
	return append(b, body...)
}

// TestBoard folds records of every topic into the board and reads the frame.
func TestBoard(t *testing.T) {
	c := testRegistry(t)
	counts, err := serde.NewAvro(c, pageviews.CountSchema, serde.Value, serde.AutoRegister(true))
	if err != nil {
		t.Fatal(err)
	}
	countBytes := func(page string, n int64) []byte {
		b, err := counts.Serialize(pageviews.PerPage, map[string]any{"page": page, "views": n})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	asked := map[int]int{}
	minutes, err := serde.NewAvro(c, pageviews.MinuteSchema, serde.Value)
	if err != nil {
		t.Fatal(err)
	}
	b := newBoard("app-dlq", counts, minutes, func(id int) string {
		asked[id]++
		switch id {
		case 1:
			return "v1"
		case 3:
			return "v2"
		case 7:
			return "" // registry unreachable: ask again next frame
		}
		return "unregistered"
	})
	dlq := func(class, msg string) *kgo.Record {
		return &kgo.Record{Topic: "app-dlq", Headers: []kgo.RecordHeader{{Key: "eos.error.class", Value: []byte(class)}, {Key: "eos.error.message", Value: []byte(msg)}}}
	}
	for _, r := range []*kgo.Record{
		{Topic: pageviews.Input, Value: wire(1, 2, 'u')},
		{Topic: pageviews.Input, Value: wire(1)},
		{Topic: pageviews.Input, Value: wire(3, 2, 'u')},
		{Topic: pageviews.Input, Value: wire(UnknownSchemaID)},
		{Topic: pageviews.Input, Value: wire(7)},
		{Topic: pageviews.Input, Value: []byte(`{"user":"u1"}`)},
		{Topic: pageviews.Input, Value: []byte{0, 0}},
		{Topic: pageviews.PerPage, Key: []byte("/home"), Value: countBytes("/home", 1)},
		{Topic: pageviews.PerPage, Key: []byte("/home"), Value: countBytes("/home", 2)},
		{Topic: pageviews.PerPage, Key: []byte("/a"), Value: countBytes("/a", 5)},
		{Topic: pageviews.PerPage, Key: []byte("/b"), Value: []byte("oops")},
		{Topic: pageviews.PerUser, Key: []byte("u1"), Value: []byte("3")},
		{Topic: pageviews.PerUser, Key: []byte("u2"), Value: []byte("x")},
		dlq("deserialization", "wrong magic byte 0x7b"),
		dlq("deserialization", "wrong magic byte 0x7b"),
		dlq("processing", "page view needs a non-empty user and page"),
	} {
		b.observe(r)
	}
	if b.input != 7 || b.notWire != 2 || b.byID[1] != 2 || b.byID[3] != 1 || b.byID[UnknownSchemaID] != 1 {
		t.Fatalf("input %d notWire %d byID %v", b.input, b.notWire, b.byID)
	}
	if b.pages["/home"] != 2 || b.pages["/a"] != 5 || len(b.pages) != 2 || b.users["u1"] != 3 || len(b.users) != 1 {
		t.Fatalf("pages %v users %v", b.pages, b.users)
	}
	if b.bad[pageviews.PerPage] != 1 || b.bad[pageviews.PerUser] != 1 {
		t.Fatalf("undecodable outputs %v", b.bad)
	}
	frame := b.render()
	for _, s := range []string{
		"input records 7 ", "human views counted 7 ", "dead-lettered 3",
		"schema id 1          v1                      2\n",
		"schema id 3          v2                      1\n",
		"schema id 2147483632 unregistered            1\n",
		"schema id 7          ?                       1\n",
		"not wire format (no magic byte)               2\n",
		"deserialization: not Avro wire format (wrong magic byte)              2\n",
		"processing: empty user or page                                        1\n",
		"/a                              5      u1                      3",
		"/home                           2",
		"could not decode 1 records of pageviews-per-page",
		"VIEWS PER PAGE PER MINUTE", "(none yet: the first minute's counts come 10s after it ends)",
	} {
		if !strings.Contains(frame, s) {
			t.Errorf("frame lacks %q:\n%s", s, frame)
		}
	}
	b.render()
	if asked[1] != 1 || asked[7] != 2 {
		t.Errorf("labels asked %v: want known ids asked once, unanswered ones again", asked)
	}
}

// TestBoardMinutes: the board keeps the latest minuteColumns closed
// minutes per page, whatever order their results arrive in, and draws them
// as columns, pages by views over the minutes shown.
func TestBoardMinutes(t *testing.T) {
	c := testRegistry(t)
	w, err := serde.NewAvro(c, pageviews.MinuteSchema, serde.Value, serde.AutoRegister(true))
	if err != nil {
		t.Fatal(err)
	}
	m0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	rec := func(page string, minute int, n int64) *kgo.Record {
		start := m0.Add(time.Duration(minute) * time.Minute)
		v, err := w.Serialize(pageviews.PerPagePerMinute, map[string]any{"page": page, "window_start": start,
			"window_end": start.Add(pageviews.Minute), "views": n})
		if err != nil {
			t.Fatal(err)
		}
		k, err := pageviews.MinuteKey.Serialize(pageviews.PerPagePerMinute,
			serde.Windowed{Key: page, Window: serde.Window{Start: start, End: start.Add(pageviews.Minute)}})
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: pageviews.PerPagePerMinute, Key: k, Value: v}
	}
	b := newBoard("app-dlq", nil, w, func(int) string { return "" })
	for _, r := range []*kgo.Record{
		rec("/home", 0, 100), rec("/a", 0, 7),
		rec("/home", 1, 90), rec("/a", 1, 9),
		rec("/home", 3, 80), // minute 2 is still coming from another task
		rec("/a", 2, 11), rec("/home", 2, 95), rec("/b", 2, 1),
		rec("/b", 3, 2), rec("/a", 3, 12),
		rec("/c", 0, 5), // minute 0 has left the board: not shown again
		{Topic: pageviews.PerPagePerMinute, Value: []byte("oops")},
	} {
		b.observe(r)
	}
	if len(b.minutes) != minuteColumns {
		t.Fatalf("minutes held: %v, want %d", b.minutes, minuteColumns)
	}
	frame := b.render()
	for _, s := range []string{
		"    PAGE                        10:01      10:02      10:03\n" +
			"    /home                          90         95         80\n" +
			"    /a                              9         11         12\n" +
			"    /b                              -          1          2\n",
		"could not decode 1 records of pageviews-per-page-per-minute",
	} {
		if !strings.Contains(frame, s) {
			t.Errorf("frame lacks %q:\n%s", s, frame)
		}
	}
	if strings.Contains(frame, "/c ") || strings.Contains(frame, "10:00") {
		t.Errorf("frame shows a minute that left the board:\n%s", frame)
	}
}

// TestVersionLabel names ids by the input subject's versions.
func TestVersionLabel(t *testing.T) {
	ctx := context.Background()
	c := testRegistry(t)
	w1, _ := serde.NewAvro(c, pageviews.ViewSchemaV1, serde.Value, serde.AutoRegister(true))
	w2, _ := serde.NewAvro(c, pageviews.ViewSchemaV2, serde.Value, serde.AutoRegister(true))
	other, _ := serde.NewAvro(c, pageviews.CountSchema, serde.Value, serde.AutoRegister(true))
	for _, a := range []*serde.Avro{w1, w2} {
		if err := a.Prepare(ctx, pageviews.Input); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Prepare(ctx, pageviews.PerPage); err != nil {
		t.Fatal(err)
	}
	want := map[int]string{1: "v1", 2: "v2", 3: pageviews.PerPage + "-value v1", 999: "unregistered"}
	for id, w := range want {
		if got := versionLabel(c, id); got != w {
			t.Errorf("versionLabel(%d) = %q, want %q", id, got, w)
		}
	}
	dead := httptest.NewServer(nil)
	dead.Close()
	if got := versionLabel(registry.NewClient(dead.URL), 1); got != "" {
		t.Errorf("unreachable registry: %q, want \"\"", got)
	}
}

// TestGenerate runs the generator on an in-memory broker and registry until
// it has evolved, then checks what it wrote: v1 then v2 per partition, under
// the ids the registry gave, every bad kind present, every good record
// readable with the topology's reader schema.
func TestGenerate(t *testing.T) {
	b, err := devstack.StartBroker(devstack.BrokerConfig{Listen: "127.0.0.1:0", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	brokers := []string{b.Addr()}
	ctx := context.Background()
	if err := EnsureTopics(ctx, brokers, 2); err != nil {
		t.Fatal(err)
	}
	c := testRegistry(t)
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Generate(gctx, GeneratorConfig{Brokers: brokers, Registry: c, Rate: 2000, Users: 20, Pages: 5,
			BotShare: 0.1, BadShare: 0.2, EvolveAfter: 300 * time.Millisecond, Seed: 7,
			Logger: slog.New(slog.DiscardHandler)})
	}()
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(pageviews.Input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	reader, err := serde.NewAvro(c, pageviews.ViewSchemaV2, serde.Value)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[uint32]int{}
	lastID := map[int32]uint32{}
	kinds := map[string]int{}
	var good, v2AfterV1 int
	deadline := time.Now().Add(30 * time.Second)
	for byID[2] < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("no 200 v2 records after 30s: by id %v", byID)
		}
		select {
		case err := <-done:
			t.Fatalf("generator stopped early: %v", err)
		default:
		}
		fctx, fcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(fctx)
		fcancel()
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) < 5 || r.Value[0] != 0 {
				kinds[Reason("wrong magic byte")]++
				return
			}
			id := binary.BigEndian.Uint32(r.Value[1:5])
			byID[id]++
			if id == 1 && lastID[r.Partition] == 2 {
				t.Errorf("partition %d offset %d: v1 after v2", r.Partition, r.Offset)
			}
			if id == 2 && lastID[r.Partition] == 1 {
				v2AfterV1++
			}
			if id == 1 || id == 2 {
				lastID[r.Partition] = id
			}
			v, err := reader.Deserialize(pageviews.Input, r.Value)
			if err != nil {
				kinds[Reason(err.Error())]++
				return
			}
			m := v.(map[string]any)
			if m["page"] == "" {
				kinds["empty page"]++
				return
			}
			if id == 1 && m["referrer"] != nil {
				t.Errorf("v1 record read with referrer %v, want the default null", m["referrer"])
			}
			if string(r.Key) != m["user"] {
				t.Errorf("key %q, user %v", r.Key, m["user"])
			}
			good++
		})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if byID[1] == 0 || v2AfterV1 == 0 {
		t.Errorf("by id %v, v1->v2 switches %d: want v1 records, then v2", byID, v2AfterV1)
	}
	for _, k := range []string{"not Avro wire format (wrong magic byte)", "unknown schema id", "truncated payload", "empty page"} {
		if kinds[k] == 0 {
			t.Errorf("no %q records among %v", k, kinds)
		}
	}
	if byID[UnknownSchemaID] != kinds["unknown schema id"] {
		t.Errorf("%d records name id %d, %d failed as unknown", byID[UnknownSchemaID], UnknownSchemaID, kinds["unknown schema id"])
	}
	versions, err := c.SRClient().GetSchemaVersions(pageviews.InputSubject)
	if err != nil || len(versions) != 2 {
		t.Fatalf("versions of %s: %v %v, want 2", pageviews.InputSubject, versions, err)
	}
	lvl, err := c.SRClient().GetCompatibilityLevel(pageviews.InputSubject, false)
	if err != nil || string(*lvl) != "BACKWARD" {
		t.Fatalf("level of %s: %v %v", pageviews.InputSubject, lvl, err)
	}
	t.Logf("good %d, by id %v, bad %v", good, byID, kinds)
}
