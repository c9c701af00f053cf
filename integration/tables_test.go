package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestTablesAndJoinsOnTheRunner runs an enrichment on the runner: orders
// (a stream) left-joined with customers (a table read from a compacted
// topic, co-partitioned with orders) and then with regions (a global table
// whose topic has another partition count). Then a second instance with no
// local state takes over: the customers store is restored from its source
// topic, up to the committed offset and no further (no changelog topic
// exists for it), and the global table from its topic, before any order is
// processed; a customer updated meanwhile is seen by the orders after the
// update only. A table read from a topic that deletes by time gets a
// changelog of its own.
func TestTablesAndJoinsOnTheRunner(t *testing.T) {
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	base := uniqueTopic("tables")
	orders, customers, regions, audit := base+"-orders", base+"-customers", base+"-regions", base+"-audit"
	compact := "compact"
	if _, err := k.adm.CreateTopics(ctx, 3, 1, nil, orders); err != nil {
		t.Fatal(err)
	}
	if _, err := k.adm.CreateTopics(ctx, 3, 1, map[string]*string{"cleanup.policy": &compact}, customers); err != nil {
		t.Fatal(err)
	}
	if _, err := k.adm.CreateTopics(ctx, 2, 1, map[string]*string{"cleanup.policy": &compact}, regions); err != nil {
		t.Fatal(err)
	}
	if _, err := k.adm.CreateTopics(ctx, 3, 1, nil, audit); err != nil { // deletes by time: not a changelog
		t.Fatal(err)
	}
	produce := func(topic, key, value string, ts int64) {
		t.Helper()
		r := &kgo.Record{Topic: topic, Key: []byte(key), Timestamp: time.UnixMilli(ts)}
		if value != "null" {
			r.Value = []byte(value)
		}
		if err := k.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	str := serde.String{}
	bld := topology.NewBuilder()
	cust := bld.Table(customers, topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "customers"})
	bld.Table(audit, topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "audit"}).
		ToStream().To(audit+"-copy", topology.Produced{Key: str, Value: str})
	// Customers per region: an update retracts the customer from its old
	// region, so a restore that went past the committed offset (and the
	// update then applied twice) would show in the counts.
	cust.GroupBy(func(k, v any) (any, any, error) {
		_, region, _ := strings.Cut(v.(string), "@")
		return region, k, nil
	}, topology.Grouped{Key: str, Value: str}).
		Count(topology.Materialized{Name: "per-region"}).
		ToStream().To(base+"-per-region", topology.Produced{Key: str, Value: serde.Int64{}})
	reg := bld.GlobalTable(regions, topology.Consumed{Key: str, Value: str}, "regions")
	nullable := func(v any) string {
		if v == nil {
			return "null"
		}
		return v.(string)
	}
	bld.Stream([]string{orders}, topology.Consumed{Key: str, Value: str}).
		LeftJoinTable(cust, func(_, order, customer any) (any, error) {
			return order.(string) + "|" + nullable(customer), nil
		}, topology.Joined{}).
		LeftJoinGlobalTable(reg, func(_, v any) any {
			// "<order>|<customer name>@<region code>": the region code.
			_, code, _ := strings.Cut(v.(string), "@")
			return code
		}, func(_, v, region any) (any, error) { return v.(string) + "|" + nullable(region), nil }).
		To(base+"-out", topology.Produced{Key: str, Value: str})
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(b.addr, base+"-app", t)

	produce(regions, "eu", "Europe", 1)
	produce(regions, "us", "Americas", 1)
	produce(customers, "c1", "alice@eu", 1)
	produce(customers, "c2", "bob@us", 1)
	produce(customers, "c3", "carol@xx", 1)
	produce(audit, "a", "1", 1)
	for i, c := range []string{"c1", "c2", "c3", "c4"} {
		produce(orders, c, fmt.Sprintf("o%d", i+1), 10)
	}
	_, stop := runInProcess(t, cfg, topo)
	waitFor(t, 2*time.Minute, "four orders committed", func() bool { return k.committed(ctx, cfg.ApplicationID, orders) == 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Meanwhile: c1 moves, c2 is deleted, a region is renamed.
	produce(customers, "c1", "alice@us", 20)
	produce(customers, "c2", "null", 20)
	produce(regions, "us", "USA", 20)
	for i, c := range []string{"c1", "c2", "c3"} {
		produce(orders, c, fmt.Sprintf("o%d", i+5), 30)
	}
	cfg.InstanceID, cfg.StateDir = "b", t.TempDir()
	_, stop = runInProcess(t, cfg, topo)
	waitFor(t, 2*time.Minute, "seven orders committed", func() bool { return k.committed(ctx, cfg.ApplicationID, orders) == 7 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	var got []string
	for _, r := range k.readCommitted(t, ctx, base+"-out") {
		got = append(got, string(r.Key)+"="+string(r.Value))
	}
	slices.Sort(got)
	want := []string{
		"c1=o1|alice@eu|Europe", "c1=o5|alice@us|USA",
		"c2=o2|bob@us|Americas", "c2=o6|null|null",
		"c3=o3|carol@xx|null", "c3=o7|carol@xx|null",
		"c4=o4|null|null",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("joined orders:\n got %q\nwant %q", got, want)
	}
	last := map[string]int64{}
	for _, r := range k.readCommitted(t, ctx, base+"-per-region") {
		n, err := serde.Int64{}.Deserialize("", r.Value)
		if err != nil {
			t.Fatal(err)
		}
		last[string(r.Key)] = n.(int64)
	}
	if want := map[string]int64{"eu": 0, "us": 1, "xx": 1}; fmt.Sprint(last) != fmt.Sprint(want) {
		t.Errorf("customers per region = %v, want %v", last, want)
	}
	topics, err := k.adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl := topology.ChangelogTopic(cfg.ApplicationID, "customers"); topics.Has(cl) {
		t.Errorf("%s exists: a table read from a compacted topic needs no changelog", cl)
	}
	if cl := topology.ChangelogTopic(cfg.ApplicationID, "audit"); !topics.Has(cl) {
		t.Errorf("%s does not exist: a table read from a topic that deletes needs a changelog of its own", cl)
	}
}
