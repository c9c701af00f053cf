package processor

import (
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestPlanPartitions: co-partitioned sources agree or are named in an
// error with both counts; a repartition topic read beside an external
// source takes that source's count, whatever the writer's.
func TestPlanPartitions(t *testing.T) {
	str := serde.String{}
	build := func() *topology.Topology {
		b := topology.NewBuilder()
		table := b.Table("customers", topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "customers"})
		b.Stream([]string{"orders"}, topology.Consumed{Key: str, Value: str}).
			SelectKey(func(_, v any) any { return v }).
			JoinTable(table, func(_, l, r any) (any, error) { return l, nil }, topology.Joined{Key: str, Value: str, Name: "by-customer"}).
			To("out", topology.Produced{Key: str, Value: str})
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	topo := build()
	counts := func(m map[string]int) func(string) (int, bool) {
		return func(full string) (int, bool) { n, ok := m[full]; return n, ok }
	}
	// orders (3 partitions) is re-keyed into by-customer-repartition, read
	// beside customers (5 partitions): the repartition topic gets 5.
	pp, err := planPartitions(topo, "app", counts(map[string]int{"orders": 3, "customers": 5}))
	if err != nil {
		t.Fatal(err)
	}
	if n := pp.repartition["app-by-customer-repartition"]; n != 5 {
		t.Errorf("repartition topic partitions = %d, want 5 (its reader's co-partitioned source)", n)
	}
	if pp.sub[pp.subOf["customers"]] != 5 || pp.sub[pp.subOf["orders"]] != 3 {
		t.Errorf("sub-topology partitions = %v", pp.sub)
	}
	// A missing source is named.
	if _, err := planPartitions(topo, "app", counts(map[string]int{"orders": 3})); err == nil || !strings.Contains(err.Error(), `"customers"`) {
		t.Errorf("missing source: err = %v", err)
	}

	// Two external sources of one sub-topology with different counts.
	b := topology.NewBuilder()
	left := b.Table("left", topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "l"})
	right := b.Table("right", topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "r"})
	left.Join(right, func(_, l, r any) (any, error) { return l, nil }).ToStream().To("out", topology.Produced{Key: str, Value: str})
	topo2, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	_, err = planPartitions(topo2, "app", counts(map[string]int{"left": 2, "right": 4}))
	want := `source topics are not co-partitioned: "left" has 2 partitions, "right" has 4`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to contain %q", err, want)
	}
}

// TestCopartitions: the group subscribes to one topic per sub-topology; a
// leader's partition brings the same partition of its followers.
func TestCopartitions(t *testing.T) {
	cp := planCopartitions(map[string]int{"b": 0, "a": 0, "c": 0, "solo": 1})
	if strings.Join(cp.group, ",") != "a,solo" {
		t.Fatalf("group topics = %v, want [a solo]", cp.group)
	}
	a, solo := "a", "solo"
	got := cp.expand([]kafka.TopicPartition{{Topic: &a, Partition: 2}, {Topic: &solo, Partition: 0}})
	var names []string
	for _, p := range got {
		names = append(names, *p.Topic+"["+string(rune('0'+p.Partition))+"]")
	}
	if strings.Join(names, " ") != "a[2] b[2] c[2] solo[0]" {
		t.Fatalf("expand = %v", names)
	}
}

// TestPlanPartitionsForeignKeyJoin: a foreign-key join of a 3-partition left
// table with a 5-partition right table subscribes through a topic of 5
// partitions (read by the right table's sub-topology) and answers through
// one of 3 (read by the left's), as Kafka Streams requires.
func TestPlanPartitionsForeignKeyJoin(t *testing.T) {
	str := serde.String{}
	b := topology.NewBuilder()
	left := b.Table("left", topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "l"})
	right := b.Table("right", topology.Consumed{Key: str, Value: str}, topology.Materialized{Name: "r"})
	left.JoinForeignKey(right, func(v any) (any, error) { return v, nil },
		func(_, l, r any) (any, error) { return l, nil }, topology.ForeignKeyJoined{Name: "fk", Result: str}).
		ToStream().To("out", topology.Produced{Key: str, Value: str})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{"left": 3, "right": 5}
	pp, err := planPartitions(topo, "app", func(full string) (int, bool) { n, ok := counts[full]; return n, ok })
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]int{"app-fk-subscription-registration-topic": 5, "app-fk-subscription-response-topic": 3} {
		if n := pp.repartition[topic]; n != want {
			t.Errorf("%s: %d partitions, want %d", topic, n, want)
		}
	}
	if pp.subOf["app-fk-subscription-registration-topic"] != pp.subOf["right"] ||
		pp.subOf["app-fk-subscription-response-topic"] != pp.subOf["left"] {
		t.Errorf("readers %v", pp.subOf)
	}
}
