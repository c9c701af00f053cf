// Package pageviews is the example topology `make run` shows: page views
// keyed by user id, as Avro in the Confluent wire format through a schema
// registry. It drops bot traffic, counts views per page (re-keying by page,
// so through a repartition topic), views per page per minute of event time
// (final results only) and running totals per user, and sends records that
// are not valid page views to the dead-letter topic with the reason.
//
//	pageviews  (key: user id, value: Avro PageView, any registered version)
//	  -> source: Avro, read into PageView v2     not wire format, unknown id,
//	                                              undecodable -> DLQ (deserialization)
//	     event time: the view's ts field        missing -> DLQ (timestamp)
//	  -> MapValues(parse)                        empty user or page -> DLQ (processing)
//	  -> FilterNot(bot)
//	  -> GroupBy(page).Count()  -> pageviews-per-page  (page, Avro PageCount{page, views})
//	  -> GroupBy(page).WindowedBy(1 minute, grace 10s).Emit(on window close).Count()
//	                            -> pageviews-per-page-per-minute
//	                               (Kafka Streams' time-windowed page key,
//	                                Avro PageMinute{page, window_start, window_end, views})
//	  -> GroupByKey().Count()   -> pageviews-per-user  (user, decimal text)
//
// Time. Event time is the view's ts (Consumed.Timestamp with
// TimestampFromField), not the time the record reached Kafka, so views are
// counted in the minute they happened. Each task's stream time is the
// largest ts it has seen; a minute [m, m+1m) closes when stream time reaches
// m+1m+10s, and only then is its count written, once (EmitOnWindowClose;
// the pending counts wait in the changelogged store
// views-per-page-per-minute-emit-final). A view more than the grace behind
// its task's stream time is late: dropped and counted in
// eos_dropped_records_total{reason="late"}; the running counts still count it.
//
// Schemas. The source reads with PageView v2 (pageview_v2.avsc), which adds
// an optional referrer to v1: data written with v1 or v2 is projected into v2
// (a v1 record gets referrer null), so producers can move to v2 while the
// topology runs. The per-page sink writes PageCount (pagecount.avsc) under
// the subject pageviews-per-page-value, and the per-minute sink PageMinute
// (pageminute.avsc) under pageviews-per-page-per-minute-value; the runner
// checks each against its subject at startup and refuses to start if it is
// incompatible (and, unless auto-registration is on, if it is not registered
// yet). The per-minute key is not Avro but Kafka Streams' time-windowed
// bytes (the page's UTF-8, then the window start as 8 bytes), which Java
// consumers read with TimeWindowedDeserializer; the value repeats page and
// window, so a reader needs no key decoder. The repartition topics are
// internal to the application, so they carry JSON and need no subject.
package pageviews

import (
	_ "embed"
	"fmt"
	"time"

	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Topics of the example.
const (
	Input            = "pageviews"
	PerPage          = "pageviews-per-page"
	PerPagePerMinute = "pageviews-per-page-per-minute"
	PerUser          = "pageviews-per-user"
)

// The per-minute count's windows: tumbling minutes of event time, each
// closing Grace after its end.
const (
	Minute = time.Minute
	Grace  = 10 * time.Second
)

// InputSubject is the subject of the input's values (TopicNameStrategy).
const InputSubject = Input + "-value"

// DefaultRegistryURL is the registry Topology uses when given none:
// Confluent's default address. Building the topology never connects; the
// runner does, at startup.
const DefaultRegistryURL = "http://localhost:8081"

// The schemas, as Avro schema JSON.
var (
	// ViewSchemaV1 is PageView version 1: user, page, bot, ts.
	//go:embed pageview_v1.avsc
	ViewSchemaV1 string
	// ViewSchemaV2 is PageView version 2: v1 plus an optional referrer
	// (default null). The topology reads its input with it.
	//go:embed pageview_v2.avsc
	ViewSchemaV2 string
	// CountSchema is PageCount, the value of pageviews-per-page.
	//go:embed pagecount.avsc
	CountSchema string
	// MinuteSchema is PageMinute, the value of pageviews-per-page-per-minute.
	//go:embed pageminute.avsc
	MinuteSchema string
)

// MinuteKey is the serde of pageviews-per-page-per-minute's keys: the page,
// windowed by the minute, in Kafka Streams' time-windowed layout.
var MinuteKey = serde.TimeWindowed{Inner: serde.String{}, Size: Minute}

// View is one parsed page view. It is also the JSON of the repartition topic.
type View struct {
	User     string `json:"user"`
	Page     string `json:"page"`
	Bot      bool   `json:"bot"`
	TS       int64  `json:"ts"` // Unix milliseconds
	Referrer string `json:"referrer,omitempty"`
}

// Native returns v as the goavro native value of a PageView record: of v1
// when version is 1 (no referrer), else of v2.
func (v View) Native(version int) map[string]any {
	m := map[string]any{"user": v.User, "page": v.Page, "bot": v.Bot, "ts": v.TS}
	if version >= 2 {
		if v.Referrer == "" {
			m["referrer"] = nil
		} else {
			m["referrer"] = map[string]any{"string": v.Referrer}
		}
	}
	return m
}

// parse turns a PageView as the Avro source decodes it (a v2 record in
// goavro's native form) into a View, and refuses views that name no user or
// page: the schema cannot say "non-empty".
func parse(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("page view must be a PageView record, got %T", v)
	}
	user, _ := m["user"].(string)
	page, _ := m["page"].(string)
	if user == "" || page == "" {
		return nil, fmt.Errorf("page view needs a non-empty user and page (user %q, page %q)", user, page)
	}
	bot, _ := m["bot"].(bool)
	var ts int64
	switch t := m["ts"].(type) {
	case time.Time: // goavro decodes timestamp-millis into time.Time
		ts = t.UnixMilli()
	case int64:
		ts = t
	}
	var referrer string
	if u, ok := m["referrer"].(map[string]any); ok {
		referrer, _ = u["string"].(string)
	}
	return View{User: user, Page: page, Bot: bot, TS: ts, Referrer: referrer}, nil
}

// pageCount is the PageCount record of a page's count.
func pageCount(key, value any) (any, any, error) {
	page, ok := key.(string)
	if !ok {
		return nil, nil, fmt.Errorf("per-page count: key %T, want string", key)
	}
	n, ok := value.(int64)
	if !ok {
		return nil, nil, fmt.Errorf("per-page count: value %T, want int64", value)
	}
	return key, map[string]any{"page": page, "views": n}, nil
}

// pageMinute is the PageMinute record of a page's final count in one minute.
func pageMinute(key, value any) (any, any, error) {
	w, ok := key.(topology.Windowed)
	if !ok {
		return nil, nil, fmt.Errorf("per-minute count: key %T, want topology.Windowed", key)
	}
	page, ok := w.Key.(string)
	if !ok {
		return nil, nil, fmt.Errorf("per-minute count: windowed key %T, want string", w.Key)
	}
	n, ok := value.(int64)
	if !ok {
		return nil, nil, fmt.Errorf("per-minute count: value %T, want int64", value)
	}
	return key, map[string]any{"page": page, "window_start": w.Window.Start.UTC(), "window_end": w.Window.End.UTC(), "views": n}, nil
}

// Topology builds the example. reg is the schema registry the Avro serdes use
// (nil: DefaultRegistryURL); nothing connects until the runner starts, so
// describing the topology needs no registry. autoRegister lets the per-page
// sink register PageCount under pageviews-per-page-value when it is
// compatible but absent, and the per-minute sink PageMinute under
// pageviews-per-page-per-minute-value (auto.register.schemas; `eos-runner dev` turns it on,
// a deployment should register schemas in CI with `eos-runner schema check`
// and a deliberate step).
func Topology(reg *registry.Client, autoRegister bool) (*topology.Topology, error) {
	if reg == nil {
		reg = registry.NewClient(DefaultRegistryURL)
	}
	views, err := serde.NewAvro(reg, ViewSchemaV2, serde.Value)
	if err != nil {
		return nil, fmt.Errorf("pageviews: input serde: %w", err)
	}
	counts, err := serde.NewAvro(reg, CountSchema, serde.Value, serde.AutoRegister(autoRegister))
	if err != nil {
		return nil, fmt.Errorf("pageviews: per-page serde: %w", err)
	}
	minutes, err := serde.NewAvro(reg, MinuteSchema, serde.Value, serde.AutoRegister(autoRegister))
	if err != nil {
		return nil, fmt.Errorf("pageviews: per-minute serde: %w", err)
	}
	byPage := func(_, v any) any { return v.(View).Page }

	b := topology.NewBuilder()
	human := b.Stream([]string{Input}, topology.Consumed{Key: serde.String{}, Value: views, Timestamp: topology.TimestampFromField("ts")},
		topology.Named("pageviews-source")).
		MapValues(parse, topology.Named("parse")).
		FilterNot(func(_, v any) bool { return v.(View).Bot }, topology.Named("drop-bots"))

	human.GroupBy(byPage, topology.Grouped{Key: serde.String{}, Value: serde.JSON{}}).
		Count(topology.Materialized{Name: "views-per-page"}).
		ToStream().
		Map(pageCount, topology.Named("page-count-record")).
		To(PerPage, topology.Produced{Key: serde.String{}, Value: counts}, topology.Named("per-page-sink"))

	// A second grouping by page, so a second repartition topic
	// (<application.id>-views-per-page-per-minute-repartition): each
	// aggregation of a re-keyed stream repartitions on its own.
	human.GroupBy(byPage, topology.Grouped{Key: serde.String{}, Value: serde.JSON{}}).
		WindowedBy(topology.TimeWindows{Size: Minute, Grace: Grace}).
		Emit(topology.EmitOnWindowClose).
		Count(topology.Materialized{Name: "views-per-page-per-minute"}).
		ToStream().
		Map(pageMinute, topology.Named("page-minute-record")).
		To(PerPagePerMinute, topology.Produced{Key: MinuteKey, Value: minutes}, topology.Named("per-minute-sink"))

	human.GroupByKey(topology.Grouped{Key: serde.String{}, Value: serde.JSON{}}).
		Count(topology.Materialized{Name: "views-per-user"}).
		ToStream().
		To(PerUser, topology.Produced{Key: serde.String{}, Value: serde.DecimalString{}}, topology.Named("per-user-sink"))
	return b.Build()
}
