package pageviews

import (
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// driver runs the example on processor.TestDriver (the runner's tasks,
// Pebble stores and error policy, without a broker), with writers of both
// PageView versions and readers of the Avro outputs.
type driver struct {
	t       *testing.T
	d       *processor.TestDriver
	writers map[int]*serde.Avro // PageView version -> writer
	counts  *serde.Avro
	minutes *serde.Avro
}

const app = "pageviews-app"

func newDriver(t *testing.T, partitions int) *driver {
	t.Helper()
	c := testRegistry(t)
	topo, err := Topology(c, true)
	if err != nil {
		t.Fatal(err)
	}
	d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{ApplicationID: app,
		Partitions: map[string]int{Input: partitions}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	dr := &driver{t: t, d: d, writers: map[int]*serde.Avro{}}
	for v, text := range map[int]string{1: ViewSchemaV1, 2: ViewSchemaV2} {
		if dr.writers[v], err = serde.NewAvro(c, text, serde.Value, serde.AutoRegister(true)); err != nil {
			t.Fatal(err)
		}
	}
	dr.counts = reader(t, c, CountSchema)
	dr.minutes = reader(t, c, MinuteSchema)
	return dr
}

func reader(t *testing.T, c *registry.Client, text string) *serde.Avro {
	t.Helper()
	a, err := serde.NewAvro(c, text, serde.Value)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// arrival is every input record's own (Kafka) timestamp: far from the
// views' ts, so the tests see that event time is ts.
var arrival = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// view writes one page view with PageView version, as a producer would.
func (dr *driver) view(version int, v View) {
	dr.t.Helper()
	b, err := dr.writers[version].Serialize(Input, v.Native(version))
	if err != nil {
		dr.t.Fatal(err)
	}
	dr.raw(v.User, b)
}

func (dr *driver) raw(user string, value []byte) {
	dr.t.Helper()
	err := dr.d.PipeRecord(processor.TestRecord{Topic: Input, Partition: processor.AnyPartition,
		Key: []byte(user), Value: value, Timestamp: arrival})
	if err != nil {
		dr.t.Fatal(err)
	}
}

// minuteKey names a per-minute result: page@minute offset from m0.
func minuteKey(page string, start, m0 time.Time) string {
	return page + "@" + strconv.Itoa(int(start.Sub(m0)/time.Minute))
}

// perMinute reads the per-minute results since the last read, by
// minuteKey, failing on a key that disagrees with its value or a result
// given twice.
func (dr *driver) perMinute(m0 time.Time) map[string]int64 {
	dr.t.Helper()
	recs, err := dr.d.ReadRecords(PerPagePerMinute, MinuteKey, dr.minutes)
	if err != nil {
		dr.t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range recs {
		w := r.Key.(topology.Windowed)
		v := r.Value.(map[string]any)
		if v["page"] != w.Key || !v["window_start"].(time.Time).Equal(w.Window.Start) ||
			!v["window_end"].(time.Time).Equal(w.Window.End) || w.Window.End.Sub(w.Window.Start) != Minute {
			dr.t.Errorf("per-minute record: key %v, value %v disagree", w, v)
		}
		k := minuteKey(w.Key.(string), w.Window.Start, m0)
		if _, dup := got[k]; dup {
			dr.t.Errorf("per-minute result %s emitted twice", k)
		}
		got[k] = v["views"].(int64)
	}
	return got
}

// perPage reads the per-page counts since the last read: the latest per page.
func (dr *driver) perPage() map[string]int64 {
	dr.t.Helper()
	recs, err := dr.d.ReadRecords(PerPage, serde.String{}, dr.counts)
	if err != nil {
		dr.t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range recs {
		got[r.Key.(string)] = r.Value.(map[string]any)["views"].(int64)
	}
	return got
}

func want(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

// TestViewsPerMinute: the per-minute count is by the views' ts, final
// results only: a minute's counts appear once, when stream time passes its
// end plus the grace; a view within the grace still counts, a later one is
// dropped as late (and still counted in the running totals); bots are left
// out.
func TestViewsPerMinute(t *testing.T) {
	dr := newDriver(t, 1)
	m0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) int64 { return m0.Add(d).UnixMilli() }

	dr.view(1, View{User: "u1", Page: "/home", TS: at(5 * time.Second)})
	dr.view(2, View{User: "u2", Page: "/home", TS: at(20 * time.Second), Referrer: "search"})
	dr.view(2, View{User: "bot-1", Page: "/home", Bot: true, TS: at(30 * time.Second)})
	dr.view(2, View{User: "u1", Page: "/a", TS: at(50 * time.Second)})
	dr.view(2, View{User: "u3", Page: "/home", TS: at(time.Minute + 5*time.Second)})
	// Stream time 1m5s: minute 0 is open until 1m10s, so a view of it
	// still counts.
	dr.view(2, View{User: "u2", Page: "/a", TS: at(58 * time.Second)})
	want(t, "per minute before minute 0 closes", dr.perMinute(m0), map[string]int64{})

	dr.view(2, View{User: "u4", Page: "/home", TS: at(time.Minute + Grace)})
	want(t, "per minute once stream time reaches 1m10s", dr.perMinute(m0), map[string]int64{"/home@0": 2, "/a@0": 2})

	dr.view(2, View{User: "u5", Page: "/home", TS: at(30 * time.Second)}) // minute 0 has closed
	if n := dr.d.Dropped("late"); n != 1 {
		t.Errorf("dropped as late: %d, want 1", n)
	}
	dr.view(2, View{User: "u1", Page: "/b", TS: at(5 * time.Minute)})
	want(t, "per minute once stream time reaches 5m", dr.perMinute(m0), map[string]int64{"/home@1": 2})
	want(t, "per page (running, late view included)", dr.perPage(), map[string]int64{"/home": 5, "/a": 2, "/b": 1})
}

// TestViewsPerMinuteAcrossPartitions: with four input partitions the views
// of a page meet in one task through the repartition topic, and a minute
// closes by that task's stream time.
func TestViewsPerMinuteAcrossPartitions(t *testing.T) {
	dr := newDriver(t, 4)
	m0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i := range 40 {
		dr.view(2, View{User: "u" + strconv.Itoa(i), Page: "/home", TS: m0.Add(time.Duration(i) * time.Second).UnixMilli()})
	}
	dr.view(2, View{User: "u0", Page: "/home", TS: m0.Add(Minute + Grace).UnixMilli()})
	want(t, "per minute", dr.perMinute(m0), map[string]int64{"/home@0": 40})
}

// TestBadRecordsOnDriver: records that are not valid page views go to the
// dead-letter topic with their error class; the others are counted.
func TestBadRecordsOnDriver(t *testing.T) {
	dr := newDriver(t, 1)
	ts := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	dr.raw("u1", []byte(`{"user":"u1"}`))               // not the wire format
	dr.view(2, View{User: "u1", Page: "", TS: ts})      // parse refuses it
	dr.view(1, View{User: "u1", Page: "/home", TS: ts}) // fine
	classes := map[string]int64{}
	for _, r := range dr.d.ReadOutput(app + "-dlq") {
		for _, h := range r.Headers {
			if h.Key == "eos.error.class" {
				classes[string(h.Value)]++
			}
		}
	}
	want(t, "dead-lettered by class", classes, map[string]int64{"deserialization": 1, "processing": 1})
	want(t, "per page", dr.perPage(), map[string]int64{"/home": 1})
}
