// Package pageviews is the example topology `make run` shows: page views
// keyed by user id, as JSON. It drops bot traffic, counts views per page
// (re-keying by page, so through a repartition topic) and running totals per
// user, and sends records that are not valid page views to the dead-letter
// topic with the reason.
//
//	views := pageviews  (key: user id, value: {"user":..,"page":..,"bot":..,"ts":..})
//	  -> MapValues(parse)            malformed -> DLQ
//	  -> Filter(not a bot)
//	  -> GroupBy(page).Count()       -> pageviews-per-page   (page, count)
//	  -> GroupByKey().Count()        -> pageviews-per-user   (user, count)
package pageviews

import (
	"fmt"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Topics of the example.
const (
	Input   = "pageviews"
	PerPage = "pageviews-per-page"
	PerUser = "pageviews-per-user"
)

// View is one parsed page view.
type View struct {
	User string `json:"user"`
	Page string `json:"page"`
	Bot  bool   `json:"bot"`
	TS   int64  `json:"ts"`
}

// parse checks a decoded JSON value is a page view.
func parse(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("page view must be a JSON object, got %T", v)
	}
	user, _ := m["user"].(string)
	page, _ := m["page"].(string)
	if user == "" || page == "" {
		return nil, fmt.Errorf("page view needs non-empty \"user\" and \"page\"")
	}
	bot, _ := m["bot"].(bool)
	ts, _ := m["ts"].(float64)
	return View{User: user, Page: page, Bot: bot, TS: int64(ts)}, nil
}

// Topology builds the example.
func Topology() (*topology.Topology, error) {
	b := topology.NewBuilder()
	views := b.Stream([]string{Input}, topology.Consumed{Key: serde.String{}, Value: serde.JSON{}}, topology.Named("pageviews-source")).
		MapValues(parse, topology.Named("parse")).
		FilterNot(func(_, v any) bool { return v.(View).Bot }, topology.Named("drop-bots"))

	views.GroupBy(func(_, v any) any { return v.(View).Page }, topology.Grouped{Key: serde.String{}, Value: serde.JSON{}}).
		Count(topology.Materialized{Name: "views-per-page"}).
		ToStream().
		To(PerPage, topology.Produced{Key: serde.String{}, Value: serde.DecimalString{}}, topology.Named("per-page-sink"))

	views.GroupByKey(topology.Grouped{Key: serde.String{}, Value: serde.JSON{}}).
		Count(topology.Materialized{Name: "views-per-user"}).
		ToStream().
		To(PerUser, topology.Produced{Key: serde.String{}, Value: serde.DecimalString{}}, topology.Named("per-user-sink"))
	return b.Build()
}
