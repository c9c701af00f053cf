// Package pageviews is the example topology `make run` shows: page views
// keyed by user id, as Avro in the Confluent wire format through a schema
// registry. It drops bot traffic, counts views per page (re-keying by page,
// so through a repartition topic) and running totals per user, and sends
// records that are not valid page views to the dead-letter topic with the
// reason.
//
//	pageviews  (key: user id, value: Avro PageView, any registered version)
//	  -> source: Avro, read into PageView v2     not wire format, unknown id,
//	                                              undecodable -> DLQ (deserialization)
//	  -> MapValues(parse)                        empty user or page -> DLQ (processing)
//	  -> FilterNot(bot)
//	  -> GroupBy(page).Count()  -> pageviews-per-page  (page, Avro PageCount{page, views})
//	  -> GroupByKey().Count()   -> pageviews-per-user  (user, decimal text)
//
// Schemas. The source reads with PageView v2 (pageview_v2.avsc), which adds
// an optional referrer to v1: data written with v1 or v2 is projected into v2
// (a v1 record gets referrer null), so producers can move to v2 while the
// topology runs. The per-page sink writes PageCount (pagecount.avsc) under
// the subject pageviews-per-page-value; the runner checks it against that
// subject at startup and refuses to start if it is incompatible (and, unless
// auto-registration is on, if it is not registered yet). The repartition
// topic is internal to the application, so it carries JSON and needs no
// subject.
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
	Input   = "pageviews"
	PerPage = "pageviews-per-page"
	PerUser = "pageviews-per-user"
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
)

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

// Topology builds the example. reg is the schema registry the Avro serdes use
// (nil: DefaultRegistryURL); nothing connects until the runner starts, so
// describing the topology needs no registry. autoRegister lets the per-page
// sink register PageCount under pageviews-per-page-value when it is
// compatible but absent (auto.register.schemas; `eos-runner dev` turns it on,
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

	b := topology.NewBuilder()
	human := b.Stream([]string{Input}, topology.Consumed{Key: serde.String{}, Value: views}, topology.Named("pageviews-source")).
		MapValues(parse, topology.Named("parse")).
		FilterNot(func(_, v any) bool { return v.(View).Bot }, topology.Named("drop-bots"))

	human.GroupBy(func(_, v any) any { return v.(View).Page }, topology.Grouped{Key: serde.String{}, Value: serde.JSON{}}).
		Count(topology.Materialized{Name: "views-per-page"}).
		ToStream().
		Map(pageCount, topology.Named("page-count-record")).
		To(PerPage, topology.Produced{Key: serde.String{}, Value: counts}, topology.Named("per-page-sink"))

	human.GroupByKey(topology.Grouped{Key: serde.String{}, Value: serde.JSON{}}).
		Count(topology.Materialized{Name: "views-per-user"}).
		ToStream().
		To(PerUser, topology.Produced{Key: serde.String{}, Value: serde.DecimalString{}}, topology.Named("per-user-sink"))
	return b.Build()
}
