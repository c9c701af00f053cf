package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/internal/verify"
)

// Joins under faults (issue 11): the verification topology with its joins
// (verify process --joins: a stream-table left join of T with the compacted
// T-ref, a windowed stream-stream self-join of T) on three instances,
// through rolling SIGKILLs and a broker restart; `verify check` must prove
// both join outputs exact beside the aggregates. Every instance's own
// reports of its assignment must keep the co-partitioned T[p] and T-ref[p]
// together and never overlap another's (assertCopartitioned).
func TestFaultsJoin(t *testing.T) {
	b := startBroker(t)
	if b.external() {
		t.Skip("restarts the broker: the embedded one only")
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(seed(t), 11))
	k := newKafka(t, b.addr)
	topic := uniqueTopic("join-faults")
	e := &faultEnv{t: t, b: b, k: k, topic: topic, group: topic + "-verify", records: scale(50_000, 400_000), rng: rng}
	genDone := make(chan error, 1)
	go func() {
		_, err := verify.Generate(context.Background(), verify.GenerateConfig{Brokers: []string{b.addr}, Topic: topic, Joins: true,
			Records: e.records, Keys: scale(500, 5000), Partitions: 4, Seed: int64(rng.Uint64() >> 1), Rate: e.records / scale(25, 120)})
		genDone <- err
	}()
	waitFor(t, time.Minute, "input topic", func() bool { return k.endOffsets(context.Background(), topic) > 0 })

	kills := scale(4, 12)
	ids := []string{"a", "b", "c"}
	f := newFleet(t, b.addr, topic, time.Second)
	f.args = []string{"--joins"}
	if chaos() {
		// Three -race runners of the join topology and the broker on two
		// cores miss a 5s transaction timeout under load, are fenced and
		// restart, over and over, so the case never gets anywhere: give
		// them the room a loaded deployment would configure.
		f.args = append(f.args, "--set", "session.timeout.ms=30000", "--set", "transaction.timeout.ms=20000")
	}
	sv := &supervisor{f: f}
	for _, id := range ids {
		f.start(id)
	}
	steps := kills + 1 // the broker restarts at the middle step
	brokerRestarts := 0
	for i := range steps {
		target := max(e.committed()+1, e.randomPoint(i, steps+1))
		sv.waitFor(5*time.Minute, fmt.Sprintf("progress before step %d", i+1), func() bool { return e.committed() >= min(target, int64(e.records)) })
		if i == steps/2 {
			b.restart()
			brokerRestarts++
			continue
		}
		id := ids[i%len(ids)]
		f.kill(id)
		// As in faultRolling: restart once the survivors own every
		// partition (T's four and T-ref's four).
		sv.waitFor(2*time.Minute, "the live instances to own every partition", func() bool {
			all := map[string]bool{}
			for _, r := range f.live {
				for p := range r.owned() {
					all[p] = true
				}
			}
			return len(all) == 8
		})
		f.start(id)
	}
	if err := <-genDone; err != nil {
		t.Fatalf("generate: %v", err)
	}
	sv.waitFor(10*time.Minute, "all input committed", func() bool { return e.committed() >= int64(e.records) })
	f.stopAll()
	st := faultStats{name: "joins-rolling-kills-broker-restart", records: e.records, kills: kills, rebalances: f.rebalances(),
		restarts: f.starts - len(ids) + brokerRestarts, redelivered: redeliveredIn(t)}
	own := assertCopartitioned(t, f, topic, verify.RefTopic(topic))
	rep := check(t, b.addr, topic)
	if j := rep.Joins; j == nil || !j.Table || !j.Windowed {
		t.Errorf("the join outputs were not checked: %+v", rep.Joins)
	}
	st.elapsed = time.Since(start)
	st.verdict = "PASS"
	if t.Failed() || st.redelivered > 0 {
		st.verdict = "FAIL"
	}
	t.Logf("%s: records %d, kills %d, broker restarts %d, supervisor restarts %d, rebalances %d, redelivered %d, %v; ownership: %s; %s",
		st.name, st.records, kills, brokerRestarts, sv.restarts, st.rebalances, st.redelivered, st.elapsed.Round(time.Second), own, rep.Verdict())
	summaryMu.Lock()
	summary = append(summary, st)
	summaryMu.Unlock()
}

// TestCopartitionedOwnership scales the join topology out from one
// instance to three while the input arrives, then SIGKILLs one and lets the
// survivors take over, and proves from every instance's own assignment
// reports that co-partitioned partitions never came apart and no partition
// had two owners (assertCopartitioned); `verify check` then proves the
// joins exact.
func TestCopartitionedOwnership(t *testing.T) {
	b := startBroker(t)
	k := newKafka(t, b.addr)
	topic := uniqueTopic("copart")
	const records = 20_000
	e := &faultEnv{t: t, b: b, k: k, topic: topic, group: topic + "-verify", records: records}
	genDone := make(chan error, 1)
	go func() {
		_, err := verify.Generate(context.Background(), verify.GenerateConfig{Brokers: []string{b.addr}, Topic: topic, Joins: true,
			Records: records, Keys: 300, Partitions: 4, Seed: 5, Rate: records / 20})
		genDone <- err
	}()
	waitFor(t, time.Minute, "input topic", func() bool { return k.endOffsets(context.Background(), topic) > 0 })
	f := newFleet(t, b.addr, topic, 500*time.Millisecond)
	f.args = []string{"--joins"}
	sv := &supervisor{f: f}
	owns := func(id string, n int) func() bool {
		return func() bool { r := f.live[id]; return r != nil && len(r.owned()) >= n }
	}
	f.start("a")
	sv.waitFor(2*time.Minute, "a to own all 8 partitions", owns("a", 8))
	sv.waitFor(2*time.Minute, "progress with a alone", func() bool { return e.committed() >= records/5 })
	f.start("b")
	sv.waitFor(2*time.Minute, "b to take partitions", owns("b", 2))
	f.start("c")
	sv.waitFor(2*time.Minute, "c to take partitions", owns("c", 2))
	sv.waitFor(2*time.Minute, "progress with three", func() bool { return e.committed() >= records/2 })
	f.kill("b")
	sv.waitFor(2*time.Minute, "a and c to own every partition", func() bool {
		return len(f.live["a"].owned())+len(f.live["c"].owned()) == 8
	})
	if err := <-genDone; err != nil {
		t.Fatalf("generate: %v", err)
	}
	sv.waitFor(5*time.Minute, "all input committed", func() bool { return e.committed() >= records })
	f.stopAll()
	t.Logf("ownership: %s; supervisor restarts %d", assertCopartitioned(t, f, topic, verify.RefTopic(topic)), sv.restarts)
	rep := check(t, b.addr, topic)
	if rep.Joins == nil || !rep.Joins.Table {
		t.Errorf("the stream-table join was not checked")
	}
}

// ownEvent is one "partitions assigned" or "partitions revoked" report of
// one runner, or its exit.
type ownEvent struct {
	at     time.Time
	runner int // index in the fleet's runners
	seq    int // order within the runner's log
	assign bool
	exit   bool
	lost   bool
	parts  []string
}

// assertCopartitioned checks the fleet's assignment reports against two
// properties, and returns what it saw:
//
//  1. Together: in every report of every runner, the partitions of the
//     co-partitioned topics come as whole tasks (partition p of each of
//     topics, or of none), so after every report, at every generation, the
//     runner owns partition p of all of them or of none.
//  2. Exclusive: replaying every runner's reports in time order (the JSON
//     logs' timestamps, one clock; a runner's ownership also ends when its
//     process exits), no partition is reported assigned to one runner while
//     another still owns it by its reports. A runner whose partitions are
//     later reported lost (revoked with lost=true: it was dropped from the
//     group, a zombie) may overlap its successor; that is counted apart,
//     since fencing, not the assignment, protects it.
//
// What the logs cannot show: the runner logs a revocation when the
// callback starts, before it commits, closes its tasks and unassigns, so
// "released" here means "began to release"; and two runners' reports are
// ordered by wall-clock timestamps, not by the group coordinator's
// generations, which the runner does not log.
func assertCopartitioned(t *testing.T, f *fleet, topics ...string) string {
	t.Helper()
	var events []ownEvent
	for i, r := range f.all {
		r.mu.Lock()
		seq := 0
		for _, l := range r.logs {
			msg, _ := l["msg"].(string)
			if msg != "partitions assigned" && msg != "partitions revoked" {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l["time"]))
			if err != nil {
				t.Errorf("runner %d: log time %v: %v", i, l["time"], err)
			}
			ev := ownEvent{at: at, runner: i, seq: seq, assign: msg == "partitions assigned"}
			ev.lost, _ = l["lost"].(bool)
			ps, _ := l["partitions"].([]any)
			for _, p := range ps {
				ev.parts = append(ev.parts, fmt.Sprint(p))
			}
			events = append(events, ev)
			seq++
		}
		if !r.exited.IsZero() {
			events = append(events, ownEvent{at: r.exited, runner: i, seq: seq, exit: true})
		}
		r.mu.Unlock()
	}

	// 1. Together, report by report.
	split := 0
	for _, ev := range events {
		byPartition := map[int32]map[string]bool{}
		for _, p := range ev.parts {
			topic := p[:strings.LastIndexByte(p, '[')]
			n := partitionOf(p)
			if byPartition[n] == nil {
				byPartition[n] = map[string]bool{}
			}
			byPartition[n][topic] = true
		}
		for n, got := range byPartition {
			if len(got) != len(topics) {
				split++
				if split <= 10 {
					t.Errorf("runner %d reported at %s %v: partition %d of %v, not of all of %v",
						ev.runner, ev.at.Format("15:04:05.000"), ev.parts, n, sortedSet(got), topics)
				}
			}
		}
	}

	// 2. Exclusive, in time order (a runner's own reports in log order;
	// at equal times, releases first).
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i], events[j]
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		if a.runner == b.runner {
			return a.seq < b.seq
		}
		return !a.assign && b.assign
	})
	lostLater := map[int]bool{} // runners with a lost revocation somewhere in their log
	for _, ev := range events {
		if ev.lost {
			lostLater[ev.runner] = true
		}
	}
	owner := map[string]int{}
	var overlaps, zombieOverlaps, assigns, revokes int
	for _, ev := range events {
		switch {
		case ev.exit:
			for p, o := range owner {
				if o == ev.runner {
					delete(owner, p)
				}
			}
		case ev.assign:
			assigns++
			for _, p := range ev.parts {
				if o, ok := owner[p]; ok && o != ev.runner {
					if lostLater[o] {
						zombieOverlaps++
					} else {
						overlaps++
						if overlaps <= 10 {
							t.Errorf("%s assigned to runner %d at %s while runner %d still owned it by its reports",
								p, ev.runner, ev.at.Format("15:04:05.000000"), o)
						}
					}
				}
				owner[p] = ev.runner
			}
		default:
			revokes++
			for _, p := range ev.parts {
				if owner[p] == ev.runner {
					delete(owner, p)
				}
			}
		}
	}
	if split+overlaps > 10 {
		t.Errorf("... %d split reports and %d overlaps in all", split, overlaps)
	}
	return fmt.Sprintf("%d runners, %d assignment and %d revocation reports: %d split, %d overlaps, %d overlaps by a runner later declared lost",
		len(f.all), assigns, revokes, split, overlaps, zombieOverlaps)
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
