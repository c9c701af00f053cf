package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/internal/verify"
)

// tuning makes failover quick: a killed member leaves the group after the
// session timeout, also during a rebalance (the embedded broker follows
// Kafka here, docs/broker.md), and the transaction timeout must stay below it.
var tuning = []string{
	"--set", "session.timeout.ms=6000",
	"--set", "transaction.timeout.ms=5000",
	"--set", "kafka.consumer.heartbeat.interval.ms=500",
}

func uniqueTopic(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, rand.IntN(1000))
}

// processArgs runs the verification topology on the normal runtime.
func processArgs(brokers, topic, instance, stateDir string, commitInterval time.Duration) []string {
	return append([]string{"verify", "process", "--brokers", brokers, "--input", topic,
		"--instance-id", instance, "--state-dir", stateDir, "--commit-interval", commitInterval.String()}, tuning...)
}

func generate(t *testing.T, brokers, topic string, records, keys, partitions int) {
	t.Helper()
	start := time.Now()
	res, err := verify.Generate(context.Background(), verify.GenerateConfig{Brokers: strings.Split(brokers, ","),
		Topic: topic, Records: records, Keys: keys, Partitions: partitions, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != records {
		t.Fatalf("generated %d records, want %d", res.Records, records)
	}
	t.Logf("generated %d records over %d partitions in %v", records, partitions, time.Since(start).Round(time.Millisecond))
}

func check(t *testing.T, brokers, topic string) *verify.Report {
	t.Helper()
	return checkWith(t, brokers, topic, false)
}

// checkWith is check; cached: the runners had a record cache
// (verify.CheckConfig.Cached).
func checkWith(t *testing.T, brokers, topic string, cached bool) *verify.Report {
	t.Helper()
	rep, err := verify.Check(context.Background(), verify.CheckConfig{Brokers: strings.Split(brokers, ","), Input: topic,
		Group: topic + "-verify", Cached: cached})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Verdict())
	if !rep.OK {
		for i, v := range rep.Violations {
			if i == 20 {
				break
			}
			t.Error(v)
		}
		t.FailNow()
	}
	return rep
}

// TestCountSumExact: 100k records on 4 partitions through the verification
// topology (echo, sum, min, max, count) give exact results, read with
// read_committed.
func TestCountSumExact(t *testing.T) {
	const records = 100_000
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("exact")
	generate(t, b.addr, topic, records, 1000, 4)

	start := time.Now()
	r := startRunner(t, processArgs(b.addr, topic, "a", t.TempDir(), 100*time.Millisecond)...)
	waitFor(t, 5*time.Minute, "all input committed", func() bool { return k.committed(ctx, topic+"-verify", topic) == records })
	elapsed := time.Since(start)
	if err := r.stop(); err != nil {
		t.Fatalf("runner exit: %v", err)
	}
	rep := check(t, b.addr, topic)
	if rep.InputRecords != records {
		t.Fatalf("checked %d input records, want %d", rep.InputRecords, records)
	}
	t.Logf("processed %d records in %v (%.0f records/s, including startup)", records, elapsed.Round(time.Millisecond),
		float64(records)/elapsed.Seconds())
}

// TestSIGKILLRestoresOnlyTail: the runner is SIGKILLed 4 times mid-stream
// and restarted on its state dir. Outputs have no duplicate and no gap,
// aggregates are exact, and every restart restores only the changelog tail
// from its checkpoint (never a full restore), as the runner reports.
func TestSIGKILLRestoresOnlyTail(t *testing.T) {
	const records, kills = 150_000, 4
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("kill")
	generate(t, b.addr, topic, records, 500, 4)
	state := t.TempDir()
	args := processArgs(b.addr, topic, "a", state, 100*time.Millisecond)
	group := topic + "-verify"

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var tails []int64
	for i := range kills {
		r := startRunner(t, args...)
		// Kill at a random point within the i-th of kills+1 equal stretches
		// of the input, after at least one commit of this run.
		stretch := int64(records / (kills + 1))
		target := max(k.committed(ctx, group, topic)+1, int64(i)*stretch+stretch/2+rng.Int64N(stretch/2))
		waitFor(t, 3*time.Minute, fmt.Sprintf("run %d to pass %d committed", i, target), func() bool {
			return k.committed(ctx, group, topic) >= target
		})
		r.kill()
		rep := r.restores()
		if i > 0 {
			if rep.full > 0 {
				t.Errorf("run %d after SIGKILL: %d store partitions were fully restored, want only tails", i, rep.full)
			}
			if want := 4 * len(verify.Stores()); rep.partitions != want {
				t.Errorf("run %d: %d store partitions reported a restore, want %d (%d stores x 4 partitions)", i, rep.partitions, want, len(verify.Stores()))
			}
			tails = append(tails, rep.records)
		}
		t.Logf("run %d: killed with %d committed; restored %d records in %d store partitions (%d full)",
			i, k.committed(ctx, group, topic), rep.records, rep.partitions, rep.full)
	}
	r := startRunner(t, args...)
	waitFor(t, 5*time.Minute, "all input committed", func() bool { return k.committed(ctx, group, topic) == records })
	rep := r.restores()
	tails = append(tails, rep.records)
	if rep.full > 0 {
		t.Errorf("final run: %d full restores, want only tails", rep.full)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("runner exit: %v", err)
	}
	// A tail is at most what one transaction wrote: far below the changelog.
	changelogRecords := k.endOffsets(ctx, group+"-sum-changelog")
	for i, n := range tails {
		if n >= changelogRecords/4 {
			t.Errorf("restart %d restored %d records, more than a quarter of the %d in one changelog: not a tail", i+1, n, changelogRecords)
		}
	}
	t.Logf("kills %d, tail restores %v (changelog sum has %d records)", kills, tails, changelogRecords)

	// A clean restart restores nothing.
	r = startRunner(t, args...)
	waitFor(t, time.Minute, "all 4 tasks running", func() bool { return len(r.find("task running")) == 4 })
	if rep := r.restores(); rep.records != 0 || rep.full != 0 {
		t.Errorf("clean restart restored %d records (%d full), want 0", rep.records, rep.full)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("runner exit: %v", err)
	}
	check(t, b.addr, topic)
}
