package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/internal/verify"
)

// tuningSession is the session timeout the runners run with (tuning's
// session.timeout.ms). max.poll.interval.ms, the rebalance timeout, is left
// at librdkafka's default of 300s: a dead member must leave the group by its
// session timeout, as on Kafka, whatever the rebalance timeout is.
func tuningSession(t *testing.T) time.Duration {
	for _, s := range tuning {
		if v, ok := strings.CutPrefix(s, "session.timeout.ms="); ok {
			ms, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("tuning: %s: %v", s, err)
			}
			return time.Duration(ms) * time.Millisecond
		}
	}
	t.Fatal("tuning sets no session.timeout.ms")
	return 0
}

// settleBound is how long the group may take to settle after the last kill
// of a burst: every partition owned by a live instance and no dead member
// left. On Kafka's rules the members killed last expire one session timeout
// after their last heartbeat; a member killed while its JoinGroup was
// waiting is taken into the next generation and expires one session timeout
// after that generation forms; cooperative-sticky then needs two rebalance
// rounds, and the restarted processes must start, restore and rejoin. That
// is about three session timeouts and a few seconds; the bound allows ten,
// for a loaded 2-core machine (60s with the 6s of tuning). A broker that
// holds a rebalance for a dead member until its rebalance timeout (300s)
// misses it by minutes.
func settleBound(session time.Duration) time.Duration { return 10 * session }

// TestChurn (issue 9): the instances of one application are SIGKILLed and
// restarted at once, at random short intervals, often before they have
// finished joining and sometimes two at a time, while input arrives. After
// each burst of kills the group must settle within settleBound, and at
// the end `verify check` must pass. EOS_CHAOS=1 runs hundreds of kills.
func TestChurn(t *testing.T) {
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed(t), 9))
	e := &faultEnv{t: t, b: b, k: k, topic: uniqueTopic("churn"), records: scale(40_000, 400_000), rng: rng}
	e.group = e.topic + "-verify"
	bursts, killsPerBurst := scale(4, 20), scale(10, 15)
	bound := settleBound(tuningSession(t))

	genDone := make(chan error, 1)
	go func() {
		_, err := verify.Generate(ctx, verify.GenerateConfig{Brokers: []string{b.addr}, Topic: e.topic,
			Records: e.records, Keys: scale(500, 5000), Partitions: 4, Seed: int64(rng.Uint64() >> 1),
			Rate: e.records / scale(60, 450)})
		genDone <- err
	}()
	waitFor(t, time.Minute, "input topic", func() bool { return k.endOffsets(ctx, e.topic) > 0 })

	ids := []string{"a", "b", "c"}
	f := newFleet(t, b.addr, e.topic, 500*time.Millisecond)
	for _, id := range ids {
		f.start(id)
	}
	var st churnStats
	start := time.Now()
	for burst := range bursts {
		for range killsPerBurst {
			victims := []string{ids[rng.IntN(len(ids))]}
			if rng.IntN(4) == 0 { // sometimes two at once
				victims = append(victims, ids[(slices.Index(ids, victims[0])+1+rng.IntN(len(ids)-1))%len(ids)])
				st.doubles++
			}
			for _, id := range victims {
				if len(f.live[id].find("partitions assigned")) == 0 {
					st.beforeJoin++
				}
				f.kill(id)
				st.kills++
			}
			for _, id := range victims {
				f.start(id)
			}
			// A random short pause before the next kill: this is the fault
			// schedule, not a synchronization.
			time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(2300*time.Millisecond))))
		}
		d := f.awaitSettled(e, bound)
		st.settles = append(st.settles, d)
		t.Logf("burst %d: %d kills so far (%d before the victim's first assignment); settled in %v, %d of %d input committed",
			burst+1, st.kills, st.beforeJoin, d.Round(100*time.Millisecond), e.committed(), e.records)
	}
	e.progressTo(int64(e.records), "all input committed")
	if err := <-genDone; err != nil {
		t.Fatalf("generate: %v", err)
	}
	f.stopAll()
	rep := check(t, b.addr, e.topic)
	t.Logf("churn: records %d, kills %d (%d before the victim's first assignment, %d two at once), restarts %d, "+
		"rebalances %d, settles %v, longest %v (bound %v), %v: %s", e.records, st.kills, st.beforeJoin, st.doubles,
		f.starts-len(ids), f.rebalances(), roundAll(st.settles), slices.Max(st.settles).Round(100*time.Millisecond),
		bound, time.Since(start).Round(time.Second), rep.Verdict())
}

type churnStats struct {
	kills, beforeJoin, doubles int
	settles                    []time.Duration
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Millisecond)
	}
	return out
}

// awaitSettled waits until the group is settled: the broker reports it
// Stable with exactly one member per live instance (every dead member has
// expired), and the live instances together own every input partition by
// their logs. It fails the test after bound and returns how long it took.
func (f *fleet) awaitSettled(e *faultEnv, bound time.Duration) time.Duration {
	f.t.Helper()
	start := time.Now()
	var last string
	deadline := start.Add(bound)
	for {
		last = f.settledState(e)
		if last == "" {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("group not settled %v after the last kill: %s", bound, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settledState is "" when the group is settled, else what is still missing.
func (f *fleet) settledState(e *faultEnv) string {
	for id, r := range f.live {
		select {
		case <-r.done:
			f.t.Fatalf("instance %s exited on its own: %v", id, r.err)
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	groups, err := e.k.adm.DescribeGroups(ctx, e.group)
	if err != nil {
		return fmt.Sprintf("describe group: %v", err)
	}
	g, ok := groups[e.group]
	if !ok || g.Err != nil {
		return fmt.Sprintf("describe group: %v", g.Err)
	}
	if g.State != "Stable" || len(g.Members) != len(f.live) {
		return fmt.Sprintf("group %s with %d members for %d live instances", g.State, len(g.Members), len(f.live))
	}
	owned := map[string]bool{}
	for _, r := range f.live {
		for p := range r.owned() {
			owned[p] = true
		}
	}
	if len(owned) != 4 {
		return fmt.Sprintf("live instances own %d of 4 partitions", len(owned))
	}
	return ""
}
