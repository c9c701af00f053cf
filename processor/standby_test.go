package processor

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestStandbyPlacement: a task's standbys are n distinct instances, never
// its active one, the same whoever computes them, and a member joining or
// leaving moves only the standbys it takes or had.
func TestStandbyPlacement(t *testing.T) {
	insts := []string{"a", "b", "c", "d", "e"}
	for _, n := range []int{0, 1, 2, 4, 9} {
		for i := range 50 {
			task := fmt.Sprintf("0_%d", i)
			active := insts[i%len(insts)]
			got := standbyPlacement(task, active, insts, n)
			if want := min(n, len(insts)-1); len(got) != want {
				t.Fatalf("n=%d task %s: %v, want %d instances", n, task, got, want)
			}
			if slices.Contains(got, active) {
				t.Fatalf("n=%d task %s: %v includes the active instance %s", n, task, got, active)
			}
			if len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
				t.Fatalf("n=%d task %s: %v repeats an instance", n, task, got)
			}
			shuffled := []string{"e", "c", "a", "d", "b"}
			if again := standbyPlacement(task, active, shuffled, n); !slices.Equal(got, again) {
				t.Fatalf("n=%d task %s: %v with members in another order, %v before", n, task, again, got)
			}
		}
	}
	// Removing a member changes only the tasks whose standby it was.
	moved := 0
	for i := range 200 {
		task := fmt.Sprintf("1_%d", i)
		before := standbyPlacement(task, "a", insts, 1)
		after := standbyPlacement(task, "a", []string{"a", "b", "c", "d"}, 1)
		if before[0] != "e" && before[0] != after[0] {
			t.Fatalf("task %s: standby moved from %s to %s though %s stayed", task, before[0], after[0], before[0])
		}
		if before[0] != after[0] {
			moved++
		}
	}
	// Spread: each of the four candidates gets some of 200 tasks.
	count := map[string]int{}
	for i := range 200 {
		count[standbyPlacement(fmt.Sprintf("2_%d", i), "a", insts, 1)[0]]++
	}
	for _, inst := range insts[1:] {
		if count[inst] < 20 {
			t.Errorf("instance %s keeps %d of 200 standbys; placement is lopsided: %v", inst, count[inst], count)
		}
	}
	t.Logf("removing one of 5 members moved %d of 200 standbys; spread %v", moved, count)
}

func TestMemberClientID(t *testing.T) {
	for _, c := range []struct{ inst, srv string }{{"a", ""}, {"host-1", "10.0.0.1:8080"}, {"x@y", "h:1"}} {
		inst, srv := parseMemberClientID(memberClientID(c.inst, c.srv))
		if inst != c.inst || srv != c.srv {
			t.Errorf("%q, %q: read back %q, %q", c.inst, c.srv, inst, srv)
		}
	}
	if inst, srv := parseMemberClientID("rdkafka"); inst != "rdkafka" || srv != "" {
		t.Errorf("a foreign client.id: %q, %q", inst, srv)
	}
}

func TestGroupViewOf(t *testing.T) {
	topic := "in"
	v := viewOf([]kafka.MemberDescription{
		{ClientID: memberClientID("b", "h2:2"), Assignment: kafka.MemberAssignment{TopicPartitions: []kafka.TopicPartition{{Topic: &topic, Partition: 1}}}},
		{ClientID: memberClientID("a", "h1:1"), Assignment: kafka.MemberAssignment{TopicPartitions: []kafka.TopicPartition{{Topic: &topic, Partition: 0}, {Topic: &topic, Partition: 2}}}},
	})
	if !slices.Equal(v.instances, []string{"a", "b"}) {
		t.Errorf("instances %v", v.instances)
	}
	for p, want := range map[int32]string{0: "a", 1: "b", 2: "a"} {
		if got := v.owner[partitionKey{topic, p}]; got != want {
			t.Errorf("partition %d: owner %q, want %q", p, got, want)
		}
	}
	if v.servers["b"] != "h2:2" {
		t.Errorf("servers %v", v.servers)
	}
}

// TestReconcileStandbys: the instance chosen for a task's standby starts
// it (its store partitions owned for the cleaner), the task's active
// instance does not, and assigning the task here cancels the standby
// before anything else (standby.go, invariants 1, 2 and 4).
func TestReconcileStandbys(t *testing.T) {
	b := topology.NewBuilder()
	b.Stream([]string{"in"}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		GroupByKey(topology.Grouped{Key: serde.String{}}).
		Count(topology.Materialized{Name: "cnt", Key: serde.String{}, Value: serde.Int64{}}).
		ToStream().To("out", topology.Produced{Key: serde.String{}, Value: serde.Int64{}})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	db, err := changelog.Open(t.TempDir(), changelog.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	plan := &topicPlan{partitions: map[int]int{0: 2}, subOf: map[string]int{"app-in": 0}, copart: copartitions{group: []string{"app-in"}}}
	for _, self := range []string{"a", "b"} {
		tm := newTaskManager(Config{ApplicationID: "app", InstanceID: self}, topo, db, nil, slog.New(slog.DiscardHandler), newMetrics("app"))
		tm.standbys = newStandbys(1, self, "app", topo, plan, tm.m)
		// a runs both tasks; b is the only other member.
		view := &groupView{instances: []string{"a", "b"}, servers: map[string]string{},
			owner: map[partitionKey]string{{"app-in", 0}: "a", {"app-in", 1}: "a"}}
		tm.reconcileStandbys(view)
		owned := map[changelog.StorePartition]bool{}
		tm.ownedStandbys(owned)
		if self == "a" {
			if len(tm.standbys.running) != 0 {
				t.Fatalf("the active instance keeps standbys: %v", tm.standbys.running)
			}
			continue
		}
		if len(tm.standbys.running) != 2 || len(tm.standbyReq) != 2 {
			t.Fatalf("b: %d standbys running, %d jobs queued; want 2 and 2", len(tm.standbys.running), len(tm.standbyReq))
		}
		if len(owned) != 2 {
			t.Errorf("b: standby store partitions owned for the cleaner: %v", owned)
		}
		job := <-tm.standbyReq
		tm.stopStandby(job.sb.t.id)
		if job.ctx.Err() == nil {
			t.Errorf("task %s assigned here: its standby was not cancelled", job.sb.t.id)
		}
		if _, ok := tm.standbys.running[job.sb.t.id]; ok {
			t.Errorf("task %s assigned here: its standby still listed", job.sb.t.id)
		}
		// With the task running here, the next reconcile keeps its
		// standby stopped and the other one running.
		tm.tasks[job.sb.t.id] = &task{id: job.sb.t.id}
		tm.reconcileStandbys(view)
		if _, ok := tm.standbys.running[job.sb.t.id]; ok || len(tm.standbys.running) != 1 {
			t.Errorf("after the task runs here: standbys %v", tm.standbys.running)
		}
	}
}
