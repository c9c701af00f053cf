package integration

import (
	"bufio"
	"context"
	byteorder "encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eos-runner/eos-runner/internal/verify"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// Failure paths of the exactly-once protocol (issue 8): a failure found
// while a commit is due, a fatal exit from a punctuator, revocations in the
// middle of large restores, and a runner cut off from the broker by the
// network until it is a zombie. Each case proves what must hold on its
// path, and ends (where the input is valid) with `verify check` passing.
// The last case cuts a lone runner off until its producer is lost, and
// checks that it recovers in process (processor/recover.go).
// EOS_CHAOS=1 runs more trials, records and faults, with a random seed; the
// rows join TestFaults' summary table.
func TestFailurePaths(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, b *brokerProc, st *faultStats)
	}{
		{"poison-during-commit", failPoisonDuringCommit},
		{"punctuator-fails", failPunctuator},
		{"revoke-during-restore", failRevokeDuringRestore},
		{"network-partition", failNetworkPartition},
		{"lost-producer-recovers", failLostProducer}, // producer_recovery_test.go
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			var st faultStats
			// Registered first, so it runs after every runner's cleanup: a
			// race report found there fails the case in its row too.
			t.Cleanup(func() {
				st.name, st.elapsed = c.name, time.Since(start)
				st.redelivered = redeliveredIn(t)
				switch {
				case t.Failed():
					st.verdict = "FAIL"
				case st.verdict == "":
					st.verdict = "PASS"
				default:
					st.verdict = "PASS (" + st.verdict + ")"
				}
				t.Logf("%s: records %d, kills %d, cuts %d, rebalances %d, restarts %d, redelivered %d, %v: %s",
					st.name, st.records, st.kills, st.cuts, st.rebalances, st.restarts, st.redelivered, st.elapsed.Round(time.Second), st.verdict)
				summaryMu.Lock()
				summary = append(summary, st)
				summaryMu.Unlock()
			})
			c.run(t, startBroker(t), &st)
		})
	}
}

// failPoisonDuringCommit: a one-partition input with one record that does
// not deserialize at a random offset K, run under on.error=fail with a 20ms
// commit interval, so that commits are due all the time and the poison
// record lands in the middle of them. Every start must stop at the record,
// exit non-zero naming its coordinates, and leave the group's committed
// offset at exactly K; read_committed outputs and changelogs must hold
// exactly the effects of the records before K.
func failPoisonDuringCommit(t *testing.T, b *brokerProc, st *faultStats) {
	const records, keys = 20_000, 100
	trials, starts := scale(3, 12), scale(2, 3)
	rng := rand.New(rand.NewPCG(seed(t), 8))
	k := newKafka(t, b.addr)
	var at []string
	for trial := range trials {
		topic := uniqueTopic("poison")
		app := topic + "-verify"
		poison := int64(records/10 + rng.IntN(records*8/10))
		values := make([]string, records)
		for i := range values {
			values[i] = strconv.Itoa(rng.IntN(2001) - 1000)
		}
		values[poison] = "not-a-number"
		// A record every millisecond of event time: the verification
		// topology's 5s windows close as the input goes, so final windowed
		// results are among what must stop at the poison record too.
		produceSequence(t, k, topic, keys, values, time.Now().Add(-records*time.Millisecond), time.Millisecond)
		st.records += records
		at = append(at, strconv.FormatInt(poison, 10))
		coords := fmt.Sprintf("%s[0]@%d", topic, poison)
		f := newFleet(t, b.addr, topic, 20*time.Millisecond)
		wrong := 0 // violations in this trial (t.Failed() also counts a race report)
		windows := 0
		for start := range starts {
			r := f.startWith("a", b.addr, "--set", "on.error=fail")
			if trial > 0 || start > 0 {
				st.restarts++
			}
			select {
			case <-r.done:
			case <-time.After(3 * time.Minute):
				t.Fatalf("trial %d, start %d: the runner did not stop at the poison record %s", trial, start, coords)
			}
			var ee *exec.ExitError
			if !errors.As(r.err, &ee) {
				t.Fatalf("trial %d, start %d: runner exit %v, want a non-zero exit at %s", trial, start, r.err, coords)
			}
			exitLines := slices.DeleteFunc(r.plainLines(), func(l string) bool { return !strings.HasPrefix(l, "eos-runner:") })
			if !slices.ContainsFunc(exitLines, func(l string) bool { return strings.Contains(l, coords) }) {
				wrong++
				t.Errorf("trial %d, start %d: exit %v; its error does not name the record %s: %q", trial, start, r.err, coords, exitLines)
			}
			c, ok := committedOffsets(t, k, app, topic)[0]
			if !ok || c != poison {
				wrong++
			}
			switch {
			case !ok:
				t.Errorf("trial %d, start %d: no committed offset, want exactly %d, the poison record's", trial, start, poison)
			case c > poison:
				t.Errorf("trial %d, start %d: committed offset %d is %d records past the poison record at %d", trial, start, c, c-poison, poison)
			case c < poison:
				t.Errorf("trial %d, start %d: committed offset %d, want exactly %d: the %d records before the poison record were not committed",
					trial, start, c, poison, poison-c)
			}
			rep := checkPrefix(t, k, app, topic, map[int32]int64{0: poison})
			wrong += rep.violations
			windows = rep.windows
		}
		if wrong > 0 {
			t.FailNow()
		}
		t.Logf("trial %d: poison at offset %d: %d starts each stopped there, committed %d, outputs exact (%d final windowed results, all closed before it)",
			trial, poison, starts, poison, windows)
	}
	st.verdict = fmt.Sprintf("%d trials x %d starts, poison at %s", trials, starts, strings.Join(at, ","))
}

// punctFault makes the test punctuator of one task fail once, at its first
// punctuation at or after stream time at, by returning an error or by
// panicking. (Stream time rather than a count of punctuations: a task
// rebuilt after an abort counts again from zero, but replays the same
// stream time.)
type punctFault struct {
	partition int32
	at        time.Time
	panics    bool
	fired     atomic.Bool
	// lastOffset is the offset of the record whose processing fired the
	// failing punctuation: stream-time punctuators run right after the
	// record that advances stream time, in the same transaction.
	lastOffset atomic.Int64
}

// testPunctuator is a node beside the verification topology's: it forwards
// nothing and schedules a stream-time punctuator, which fails as its fault
// says (nil: never).
type testPunctuator struct {
	ctx   topology.ProcessorContext
	fault *punctFault
	last  int64
}

// punctuateEvery is the test punctuator's interval of stream time.
const punctuateEvery = 100 * time.Millisecond

func (p *testPunctuator) Init(ctx topology.ProcessorContext) error {
	p.ctx = ctx
	ctx.Schedule(punctuateEvery, topology.StreamTime, p.punctuate)
	return nil
}

func (p *testPunctuator) Process(topology.Record) error {
	if md, ok := p.ctx.RecordMetadata(); ok {
		p.last = md.Offset
	}
	return nil
}

func (p *testPunctuator) punctuate(ts time.Time) error {
	f := p.fault
	if f == nil || p.ctx.Partition() != f.partition || ts.Before(f.at) || !f.fired.CompareAndSwap(false, true) {
		return nil
	}
	f.lastOffset.Store(p.last)
	if f.panics {
		panic(fmt.Sprintf("test punctuator: injected panic at stream time %d, after offset %d", ts.UnixMilli(), p.last))
	}
	return fmt.Errorf("test punctuator: injected failure at stream time %d, after offset %d", ts.UnixMilli(), p.last)
}

func (p *testPunctuator) Close() error { return nil }

// punctuatedVerifyTopology is verify.Topology(input) with the test
// punctuator as one more child of the source: the same outputs, stores and
// changelogs, so `verify check` judges its runs.
func punctuatedVerifyTopology(t *testing.T, input string, fault *punctFault) *topology.Topology {
	t.Helper()
	str, dec := serde.String{}, serde.DecimalString{}
	out := topology.Produced{Key: str, Value: dec}
	topics := verify.OutputTopics(input) // echo, sum, min, max, cnt
	b := topology.NewBuilder()
	src := b.Stream([]string{input}, topology.Consumed{Key: str, Value: dec})
	src.To(topics[0], out)
	src.Process(func() topology.Processor { return &testPunctuator{fault: fault} }, topology.Named("test-punctuator"))
	grouped := src.GroupByKey(topology.Grouped{Key: str, Value: dec})
	for i, agg := range []struct {
		store string
		fn    func(a, x int64) int64
	}{
		{verify.StoreSum, func(a, x int64) int64 { return a + x }},
		{verify.StoreMin, func(a, x int64) int64 { return min(a, x) }},
		{verify.StoreMax, func(a, x int64) int64 { return max(a, x) }},
	} {
		grouped.Reduce(func(a, v any) (any, error) { return agg.fn(a.(int64), v.(int64)), nil },
			topology.Materialized{Name: agg.store, Key: str, Value: serde.Int64{}}).ToStream().To(topics[1+i], out)
	}
	grouped.Count(topology.Materialized{Name: verify.StoreCnt, Key: str, Value: serde.Int64{}}).ToStream().To(topics[4], out)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// failPunctuator: a stream-time punctuator of one task fails (an error, or
// a panic) in the middle of the input, right after a record of its task, in
// an open transaction holding records of every partition. The runner must
// exit with an error and commit nothing of that transaction: the failing
// task's committed offset stays at or below the record that fired the
// punctuation, and read_committed outputs and changelogs hold exactly the
// records below the committed offsets. A restart without the fault then
// processes everything exactly once.
func failPunctuator(t *testing.T, b *brokerProc, st *faultStats) {
	const partitions = 4
	records := scale(20_000, 60_000)
	trials := scale(2, 6)
	rng := rand.New(rand.NewPCG(seed(t), 9))
	k := newKafka(t, b.addr)
	ctx := context.Background()
	for trial := range trials {
		topic := uniqueTopic("punct-fail")
		app := topic + "-verify"
		// One record a millisecond of event time: each task punctuates about
		// every 25 of its records. The first half is processed and committed
		// before the second half arrives, in which the fault strikes: the
		// failing transaction is never the first.
		half := records / 2
		next := produceTimed(t, k, topic, partitions, half, 500, rng, time.Now().Add(-time.Duration(records)*time.Millisecond), time.Millisecond)
		st.records += records
		fault := &punctFault{partition: int32(rng.IntN(partitions)), panics: trial%2 == 1,
			at: next.Add(time.Duration(rng.IntN(half*9/10)) * time.Millisecond)}
		cfg := baseConfig(b.addr, app, t)
		cfg.CommitInterval = 100 * time.Millisecond
		r, err := processor.New(cfg, punctuatedVerifyTopology(t, topic, fault),
			processor.WithLogger(slog.New(slog.NewJSONHandler(logFile(t, fmt.Sprintf("punct-fail-%d", trial)), nil))))
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute) // bounds a broken runner
		finished := make(chan struct{})
		go func() { err = r.Run(rctx); close(finished) }()
		t.Cleanup(func() { cancel(); <-finished })
		waitFor(t, 2*time.Minute, "the first half committed", func() bool { return k.committed(ctx, app, topic) == int64(half) })
		before := committedOffsets(t, k, app, topic)
		produceTimed(t, k, topic, partitions, records-half, 500, rng, next, time.Millisecond)
		<-finished // Run returns by itself on the failure
		if !fault.fired.Load() {
			t.Fatalf("trial %d: the punctuator of task 0_%d never reached stream time %d (runner: %v)", trial, fault.partition, fault.at.UnixMilli(), err)
		}
		if err == nil || !strings.Contains(err.Error(), "injected") {
			t.Fatalf("trial %d: runner returned %v, want the punctuator's failure", trial, err)
		}
		st.kills++ // a fatal exit
		last := fault.lastOffset.Load()
		committed := committedOffsets(t, k, app, topic)
		wrong := 0 // violations in this trial (t.Failed() also counts a race report)
		if c := committed[fault.partition]; c > last {
			wrong++
			t.Errorf("trial %d: partition %d committed up to %d after the punctuator failed following offset %d: the failing transaction committed",
				trial, fault.partition, c, last)
		}
		for p, c := range before {
			if committed[p] < c {
				wrong++
				t.Errorf("trial %d: partition %d: committed offset went back from %d to %d", trial, p, c, committed[p])
			}
		}
		rep := checkPrefix(t, k, app, topic, committed)
		if wrong+rep.violations > 0 {
			t.Fatalf("trial %d: fatal exit left %v committed (failure after %s[%d]@%d)", trial, committed, topic, fault.partition, last)
		}
		how := "error"
		if fault.panics {
			how = "panic"
		}
		t.Logf("trial %d: punctuator %s in task 0_%d after offset %d: runner exited (%v); committed %v, %d records' effects visible, nothing more",
			trial, how, fault.partition, last, firstLine(err), committed, rep.below)

		// The fault removed, a restart processes everything once.
		_, stop := runInProcess(t, cfg, punctuatedVerifyTopology(t, topic, nil))
		st.restarts++
		waitFor(t, 3*time.Minute, "all input committed after the restart", func() bool {
			return k.committed(ctx, app, topic) == int64(records)
		})
		if err := stop(); err != nil {
			t.Fatalf("trial %d: restarted runner: %v", trial, err)
		}
		check(t, b.addr, topic)
	}
	st.verdict = fmt.Sprintf("%d fatal exits, none committed", st.kills)
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// failRevokeDuringRestore: instance a builds a lot of state; then, round by
// round, b starts with no state while a is down and restores every store
// partition from scratch, a joins and takes partitions from b in the middle
// of those restores, a leaves again so that they move back to b (which
// resumes them from their partial checkpoints), and c joins with no state
// while b is still restoring. Every task must restore and run, and `verify
// check` pass at the end.
func failRevokeDuringRestore(t *testing.T, b *brokerProc, st *faultStats) {
	initial, more := scale(400_000, 500_000), scale(40_000, 200_000)
	rounds := scale(1, 4)
	k := newKafka(t, b.addr)
	topic := uniqueTopic("restore-moves")
	e := &faultEnv{t: t, b: b, k: k, topic: topic, group: topic + "-verify", records: initial + more}
	generate(t, b.addr, topic, initial, 50_000, 4)
	f := newFleet(t, b.addr, topic, 100*time.Millisecond)
	sv := &supervisor{f: f}
	f.start("a")
	// Under EOS_CHAOS the runner is built with -race: several times slower.
	sv.waitFor(20*time.Minute, "a to process the initial input", func() bool { return e.committed() >= int64(initial) })
	genDone := make(chan error, 1)
	go func() {
		_, err := verify.Generate(context.Background(), verify.GenerateConfig{Brokers: []string{b.addr}, Topic: topic,
			Records: more, Keys: 50_000, Partitions: 4, Seed: 8, Rate: more / scale(20, 120)})
		genDone <- err
	}()
	owns := func(id string, n int) func() bool {
		return func() bool { r := f.live[id]; return r != nil && len(r.owned()) >= n }
	}
	for round := range rounds {
		// a leaves; b starts with no state and gets every partition.
		sv.term("a")
		f.states["b"] = t.TempDir()
		f.start("b")
		sv.waitFor(2*time.Minute, "b to own every partition and restore them", func() bool {
			r := f.live["b"]
			return owns("b", 4)() && len(restoreTrackOf(r).restoring) > 0
		})
		// a joins while b restores: partitions move from b to a mid-restore.
		f.start("a")
		sv.waitFor(2*time.Minute, "a to take partitions from b", owns("a", 1))
		// a leaves again: they move back to b, still restoring or not.
		sv.term("a")
		sv.waitFor(2*time.Minute, "b to own every partition again", owns("b", 4))
		// c joins with no state, then a, while b may still be restoring.
		f.states["c"] = t.TempDir()
		f.start("c")
		f.start("a")
		sv.waitFor(3*time.Minute, "every task restored and running, and owned by a live instance", func() bool {
			running := map[int32]bool{}
			for _, r := range f.live {
				tr := restoreTrackOf(r)
				for p := range r.owned() {
					if n := partitionOf(p); !tr.restoring[n] {
						running[n] = true
					}
				}
			}
			return len(running) == 4
		})
		tr := restoreTrackOf(f.live["b"])
		t.Logf("round %d: b had %d partitions revoked mid-restore, %d of them assigned back to it mid-restore; %+v restored",
			round, tr.revokedMid, tr.returnedMid, f.live["b"].restores())
		target := min(e.committed()+1000, int64(e.records))
		sv.waitFor(5*time.Minute, "progress with a, b and c", func() bool { return e.committed() >= target })
		// Back to a alone for the next round.
		sv.term("b")
		sv.term("c")
		st.restarts += 4
	}
	if err := <-genDone; err != nil {
		t.Fatalf("generate: %v", err)
	}
	sv.waitFor(5*time.Minute, "all input committed", func() bool { return e.committed() >= int64(e.records) })
	st.restarts += sv.restarts
	st.rebalances = f.rebalances()
	f.stopAll()
	var revokedMid, returnedMid int
	for _, r := range f.all {
		tr := restoreTrackOf(r)
		revokedMid += tr.revokedMid
		returnedMid += tr.returnedMid
	}
	if revokedMid == 0 {
		t.Errorf("no partition was revoked while its restore was running: the case did not reach its path (restores too fast?)")
	}
	check(t, b.addr, topic)
	st.records = e.records
	st.verdict = fmt.Sprintf("%d revoked mid-restore, %d back mid-restore, %d stopped by themselves", revokedMid, returnedMid, sv.restarts)
}

// restoreTrack is what a runner's log says of its restores, in order: a
// partition is restoring from its assignment until its task runs.
type restoreTrack struct {
	restoring map[int32]bool
	// revokedMid counts partitions revoked by a rebalance while their task
	// was restoring; the revocation of a shutdown (no assignment follows it
	// in the process) does not count.
	revokedMid  int
	returnedMid int // of those, assigned back to the same process
}

func restoreTrackOf(r *runnerProc) restoreTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr := restoreTrack{restoring: map[int32]bool{}}
	cutShort := map[int32]bool{}
	unconfirmed := 0 // revoked mid-restore, no assignment logged since
	for _, l := range r.logs {
		ps, _ := l["partitions"].([]any)
		switch l["msg"] {
		case "partitions assigned":
			tr.revokedMid += unconfirmed
			unconfirmed = 0
			for _, p := range ps {
				n := partitionOf(fmt.Sprint(p))
				if cutShort[n] {
					tr.returnedMid++
					delete(cutShort, n)
				}
				tr.restoring[n] = true
			}
		case "partitions revoked":
			for _, p := range ps {
				n := partitionOf(fmt.Sprint(p))
				if tr.restoring[n] {
					unconfirmed++
					cutShort[n] = true
				}
				delete(tr.restoring, n)
			}
		case "task running":
			task, _ := l["task"].(string)
			if _, p, ok := strings.Cut(task, "_"); ok {
				n, _ := strconv.Atoi(p)
				delete(tr.restoring, int32(n))
			}
		}
	}
	return tr
}

// partitionOf reads p from "topic[p]".
func partitionOf(tp string) int32 {
	i := strings.LastIndexByte(tp, '[')
	n, _ := strconv.Atoi(strings.TrimSuffix(tp[i+1:], "]"))
	return int32(n)
}

// failNetworkPartition: instance a reaches the broker only through a proxy
// (kafkaProxy), which cuts it off, without closing a connection, until b
// owns every partition (so for longer than the session timeout) and has
// processed a's partitions; then the link heals, and a is a zombie with a
// transaction of an old generation and epoch. Whatever it does then (it
// replaces the producer it lost and rejoins, in process; its commits are
// fenced by the group; it notices it lost its partitions), the outputs must
// pass `verify check`. It may stop only when its producer stayed lost for
// more recoveries in a row than the runner allows (processor/recover.go):
// a cut that outlasts them all.
func failNetworkPartition(t *testing.T, b *brokerProc, st *faultStats) {
	records := scale(40_000, 300_000)
	cuts := scale(1, 3)
	k := newKafka(t, b.addr)
	topic := uniqueTopic("netcut")
	rng := rand.New(rand.NewPCG(seed(t), 10))
	e := &faultEnv{t: t, b: b, k: k, topic: topic, group: topic + "-verify", records: records, rng: rng}
	genDone := make(chan error, 1)
	go func() {
		_, err := verify.Generate(context.Background(), verify.GenerateConfig{Brokers: []string{b.addr}, Topic: topic,
			Records: records, Keys: scale(500, 5000), Partitions: 4, Seed: int64(rng.Uint64() >> 1), Rate: records / scale(30, 150)})
		genDone <- err
	}()
	waitFor(t, time.Minute, "input topic", func() bool { return k.endOffsets(context.Background(), topic) > 0 })
	proxy := startKafkaProxy(t, b.addr)
	// A 1s commit interval: the cut lands in an open transaction.
	f := newFleet(t, b.addr, topic, time.Second)
	sv := &supervisor{f: f, skip: map[string]bool{"a": true}}
	f.startWith("a", proxy.addr())
	f.start("b")
	signs := map[string]int{} // cuts after which a showed each sign
	for i := range cuts {
		if r := f.live["a"]; r == nil || isDone(r) {
			delete(f.live, "a")
			f.startWith("a", proxy.addr())
			st.restarts++
		}
		ra := f.live["a"]
		sv.waitFor(2*time.Minute, "a and b both processing", func() bool {
			rb := f.live["b"]
			return len(ra.find("task running")) > 0 && len(ra.owned()) > 0 && len(rb.find("task running")) > 0
		})
		if proxy.rewrites() == 0 {
			t.Fatalf("a's clients never read broker addresses through the proxy: it is not cut off by it")
		}
		sv.waitFor(5*time.Minute, fmt.Sprintf("progress before cut %d", i+1), func() bool {
			return e.committed() >= min(e.randomPoint(i, cuts+1), int64(records))
		})
		proxy.cut()
		cutAt := time.Now()
		sv.waitFor(2*time.Minute, "b to own every partition while a is cut off", func() bool { return len(f.live["b"].owned()) == 4 })
		// Heal at once, or once b has processed some of a's partitions: a
		// wakes up in different states of its lost transaction.
		target := min(e.committed()+rng.Int64N(int64(records/10)), int64(records))
		sv.waitFor(5*time.Minute, "b processing a's partitions while a is cut off", func() bool { return e.committed() >= target })
		assigned := len(ra.find("partitions assigned"))
		proxy.heal()
		t.Logf("cut %d: a cut off for %v (session timeout 6s); b took over its partitions", i+1, time.Since(cutAt).Round(100*time.Millisecond))
		// a now either stops, or rejoins as a new member and is assigned
		// partitions again.
		sv.waitFor(2*time.Minute, "a to stop or to rejoin after the heal", func() bool {
			if isDone(ra) {
				return true
			}
			for _, l := range ra.find("partitions assigned")[assigned:] {
				if ps, _ := l["partitions"].([]any); len(ps) > 0 {
					return true
				}
			}
			return false
		})
		z := zombieSignsOf(ra)
		if !z.any() {
			t.Errorf("cut %d: a neither lost its partitions, nor was fenced, nor recovered its producer, nor stopped", i+1)
		}
		if z.stopped && !z.outlasted {
			t.Errorf("cut %d: a stopped, though a lost producer is recovered in process (%s)", i+1, strings.Join(z.detail, "; "))
		}
		for _, n := range []struct {
			seen bool
			what string
		}{{z.lost > 0, "lost"}, {z.groupFenced > 0, "group-fenced"}, {z.brokerFenced > 0, "broker-fenced"},
			{z.recovered > 0, "recovered"}, {z.stopped, "stopped"}} {
			if n.seen {
				signs[n.what]++
			}
		}
		t.Logf("cut %d: a afterwards: %s", i+1, strings.Join(z.detail, "; "))
	}
	if err := <-genDone; err != nil {
		t.Fatalf("generate: %v", err)
	}
	if r := f.live["a"]; r != nil && isDone(r) {
		delete(f.live, "a") // stopped after its last cut, as checked above
	}
	sv.waitFor(5*time.Minute, "all input committed", func() bool { return e.committed() >= int64(records) })
	st.restarts += sv.restarts
	st.rebalances = f.rebalances()
	f.stopAll()
	check(t, b.addr, topic)
	st.records, st.cuts = records, cuts
	st.verdict = fmt.Sprintf("zombie after %d cut(s): lost %d, group-fenced %d, broker-fenced %d, recovered %d, stopped %d; %d others stopped by themselves",
		cuts, signs["lost"], signs["group-fenced"], signs["broker-fenced"], signs["recovered"], signs["stopped"], sv.restarts)
}

func isDone(r *runnerProc) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// zombieSigns is how the cut-off runner learned that it was no longer a
// member, by its log.
type zombieSigns struct {
	lost         int  // its assignment declared lost (partitions revoked, lost=true)
	groupFenced  int  // transactions whose offsets the group refused (KIP-447)
	brokerFenced int  // producer errors saying the broker fenced it (epoch)
	recovered    int  // in-process recoveries from the producer it lost (producerLost)
	stopped      bool // it stopped on an error
	// outlasted: it stopped because its producer stayed lost for more
	// recoveries in a row than the runner allows.
	outlasted bool
	detail    []string
}

func (z zombieSigns) any() bool {
	return z.lost+z.groupFenced+z.brokerFenced+z.recovered > 0 || z.stopped
}

func zombieSignsOf(r *runnerProc) zombieSigns {
	var z zombieSigns
	for _, l := range r.find("partitions revoked") {
		if v, _ := l["lost"].(bool); v {
			z.lost++
		}
	}
	z.groupFenced = len(r.find("transaction aborted: this member was fenced by the group; waiting for the rebalance"))
	for _, l := range r.find("producer error") {
		if strings.Contains(strings.ToLower(fmt.Sprint(l["err"])), "fenced") {
			z.brokerFenced++
		}
	}
	z.recovered = len(r.find(producerLost))
	z.detail = append(z.detail, fmt.Sprintf("%d lost-partition revocation(s), %d transaction(s) fenced by the group, %d producer error(s) fenced by the broker, %d producer recover(ies)",
		z.lost, z.groupFenced, z.brokerFenced, z.recovered))
	for _, l := range r.find("runner stopping on error") {
		z.stopped = true
		z.outlasted = strings.Contains(fmt.Sprint(l["err"]), "without a commit in between")
		z.detail = append(z.detail, "stopped: "+truncateText(fmt.Sprint(l["err"]), 160))
	}
	if isDone(r) {
		z.detail = append(z.detail, fmt.Sprintf("exit: %v", r.err))
	}
	return z
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// startWith starts instance id as fleet.start does, with its clients
// bootstrapping from brokers (a proxy, say) and more arguments.
func (f *fleet) startWith(id, brokers string, extra ...string) *runnerProc {
	if _, ok := f.states[id]; !ok {
		f.states[id] = f.t.TempDir()
	}
	args := append(processArgs(brokers, f.topic, id, f.states[id], f.commitInterval), f.args...)
	r := startRunner(f.t, append(args, extra...)...)
	f.live[id] = r
	f.all = append(f.all, r)
	f.starts++
	return r
}

// supervisor restarts the fleet's live instances that stopped by
// themselves, as a process supervisor would: a fatal error is designed to
// stop the runner and leave the restart to its supervisor. (A fenced
// producer, when a starved runner's transaction outlived
// transaction.timeout.ms, used to be one; the runner now replaces it in
// process, and stops only when it stays lost: processor/recover.go.) Each restart is logged with the exit and
// counted. Instances in skip (a case's own victim) are left alone.
type supervisor struct {
	f        *fleet
	skip     map[string]bool
	restarts int
}

// revive starts again, on its state, every live instance not in skip that
// stopped by itself.
func (s *supervisor) revive() {
	for id, r := range s.f.live {
		if s.skip[id] || !isDone(r) {
			continue
		}
		exit := slices.DeleteFunc(r.plainLines(), func(l string) bool { return !strings.HasPrefix(l, "eos-runner:") })
		s.f.t.Logf("instance %s stopped by itself (%v: %s); starting it again", id, r.err, strings.Join(exit, " "))
		s.f.start(id)
		s.restarts++
	}
}

// waitFor is waitFor, reviving instances at every poll.
func (s *supervisor) waitFor(timeout time.Duration, what string, cond func() bool) {
	s.f.t.Helper()
	waitFor(s.f.t, timeout, what, func() bool {
		s.revive()
		return cond()
	})
}

// term stops instance id with SIGTERM, as fleet.term does, unless it has
// stopped by itself meanwhile (then it only logs that).
func (s *supervisor) term(id string) {
	s.f.t.Helper()
	if r := s.f.live[id]; r != nil && isDone(r) {
		s.f.t.Logf("instance %s stopped by itself (%v) before its SIGTERM", id, r.err)
		delete(s.f.live, id)
		return
	}
	s.f.term(id)
}

// racesIn counts the race detector's reports (EOS_CHAOS) from the runners
// of every fleet test t made.
func racesIn(t *testing.T) int {
	fleetsMu.Lock()
	defer fleetsMu.Unlock()
	n := 0
	for _, f := range fleets[t] {
		for _, r := range f.all {
			n += r.raceReports()
		}
	}
	return n
}

// kafkaProxy is a TCP proxy in front of a one-broker cluster, for one
// runner to use as its bootstrap server. It rewrites the broker address in
// Metadata, FindCoordinator and DescribeCluster responses to its own, so
// every connection of that runner (consumer, producer, restore consumer,
// admin) goes through it, and no other client's does.
//
// cut stops forwarding in both directions without closing anything, so both
// ends see a blackholed link: what they send stays in flight (in socket
// buffers, as TCP would keep retransmitting it across a partition) and
// nothing comes back; new connections are accepted but get no further.
// heal forwards everything again. Why a proxy rather than a firewall rule
// matching the runner's process owner: it needs no root, no iptables and
// no second user, so the case runs everywhere `make test` does, and it cuts
// exactly one process's traffic while everything else, the test's own
// clients included, keeps talking to the broker.
type kafkaProxy struct {
	t        *testing.T
	upstream string
	ln       net.Listener
	host     string
	port     int32

	mu        sync.Mutex
	flowing   chan struct{} // closed while traffic flows; open while cut
	conns     map[net.Conn]bool
	rewritten int // responses whose broker addresses were rewritten
	closed    bool
}

func startKafkaProxy(t *testing.T, upstream string) *kafkaProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	p := &kafkaProxy{t: t, upstream: upstream, ln: ln, host: addr.IP.String(), port: int32(addr.Port),
		flowing: make(chan struct{}), conns: map[net.Conn]bool{}}
	close(p.flowing)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *kafkaProxy) addr() string { return net.JoinHostPort(p.host, strconv.Itoa(int(p.port))) }

// cut blackholes the link until heal.
func (p *kafkaProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flowing:
		p.flowing = make(chan struct{})
	default: // already cut
	}
}

// heal lets the traffic held since cut through.
func (p *kafkaProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flowing:
	default:
		close(p.flowing)
	}
}

// wait blocks while the link is cut.
func (p *kafkaProxy) wait() {
	p.mu.Lock()
	ch := p.flowing
	p.mu.Unlock()
	<-ch
}

func (p *kafkaProxy) rewrites() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rewritten
}

func (p *kafkaProxy) close() {
	p.heal()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
}

func (p *kafkaProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *kafkaProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *kafkaProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

// request is what the proxy remembers of a request until its response.
type request struct{ key, version int16 }

func (p *kafkaProxy) serve(client net.Conn) {
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	p.wait() // a connection made during a cut gets no further
	broker, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	if !p.track(broker) {
		return
	}
	defer p.untrack(broker)
	var mu sync.Mutex
	pending := map[int32]request{}
	go func() {
		// Requests: remember each one's API key and version by correlation
		// id, to decode its response.
		defer p.untrack(broker)
		defer p.untrack(client)
		r := bufio.NewReaderSize(client, 64<<10)
		for {
			frame, err := readFrame(r)
			if err != nil || len(frame) < 12 {
				return
			}
			key, version := int16(byteorder.BigEndian.Uint16(frame[4:])), int16(byteorder.BigEndian.Uint16(frame[6:]))
			mu.Lock()
			pending[int32(byteorder.BigEndian.Uint32(frame[8:]))] = request{key, version}
			mu.Unlock()
			p.wait()
			if _, err := broker.Write(frame); err != nil {
				return
			}
		}
	}()
	r := bufio.NewReaderSize(broker, 64<<10)
	for {
		frame, err := readFrame(r)
		if err != nil || len(frame) < 8 {
			return
		}
		corr := int32(byteorder.BigEndian.Uint32(frame[4:]))
		mu.Lock()
		req, ok := pending[corr]
		delete(pending, corr)
		mu.Unlock()
		if ok {
			if frame, err = p.rewrite(frame, req); err != nil {
				p.t.Errorf("proxy: response to API %d v%d: %v", req.key, req.version, err)
				return
			}
		}
		p.wait()
		if _, err := client.Write(frame); err != nil {
			return
		}
	}
}

// readFrame reads one size-prefixed Kafka request or response.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := byteorder.BigEndian.Uint32(size[:])
	if n > 1<<30 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	frame := make([]byte, 4+n)
	copy(frame, size[:])
	_, err := io.ReadFull(r, frame[4:])
	return frame, err
}

// rewrite points the broker addresses of a Metadata, FindCoordinator or
// DescribeCluster response at the proxy; other responses pass unchanged.
func (p *kafkaProxy) rewrite(frame []byte, req request) ([]byte, error) {
	switch req.key {
	case 3, 10, 60: // Metadata, FindCoordinator, DescribeCluster
	default:
		return frame, nil
	}
	kreq := kmsg.RequestForKey(req.key)
	kreq.SetVersion(req.version)
	body := frame[8:]
	var tags []byte
	if kreq.IsFlexible() {
		// Response header v1: tagged fields follow the correlation id.
		n, err := tagsLen(body)
		if err != nil {
			return nil, err
		}
		tags, body = body[:n], body[n:]
	}
	resp := kreq.ResponseKind()
	resp.SetVersion(req.version)
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	brokers := 0
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		for i := range r.Brokers {
			r.Brokers[i].Host, r.Brokers[i].Port = p.host, p.port
		}
		brokers = len(r.Brokers)
	case *kmsg.FindCoordinatorResponse:
		if r.Host != "" {
			r.Host, r.Port = p.host, p.port
		}
		for i := range r.Coordinators {
			if r.Coordinators[i].Host != "" {
				r.Coordinators[i].Host, r.Coordinators[i].Port = p.host, p.port
			}
		}
	case *kmsg.DescribeClusterResponse:
		for i := range r.Brokers {
			r.Brokers[i].Host, r.Brokers[i].Port = p.host, p.port
		}
		brokers = len(r.Brokers)
	}
	if brokers > 1 {
		return nil, fmt.Errorf("%d brokers advertised: the proxy serves a one-broker cluster", brokers)
	}
	out := append(make([]byte, 0, len(frame)+64), frame[:8]...)
	out = append(out, tags...)
	out = resp.AppendTo(out)
	byteorder.BigEndian.PutUint32(out, uint32(len(out)-4))
	p.mu.Lock()
	p.rewritten++
	p.mu.Unlock()
	return out, nil
}

// tagsLen is the length of the tagged-field section at the start of b.
func tagsLen(b []byte) (int, error) {
	count, n := byteorder.Uvarint(b)
	if n <= 0 {
		return 0, errors.New("bad tagged field count")
	}
	at := n
	for range count {
		if _, n = byteorder.Uvarint(b[at:]); n <= 0 {
			return 0, errors.New("bad tag")
		}
		at += n
		size, n := byteorder.Uvarint(b[at:])
		if n <= 0 || uint64(len(b)-at-n) < size {
			return 0, errors.New("bad tagged field size")
		}
		at += n + int(size)
	}
	return at, nil
}

// produceTimed writes records with keys k<j>, j random in [0, keys), random
// decimal values in [-1000, 1000], partitioned by murmur2 as the generator
// does, and event times step apart from from on, creating the topic if
// needed. It returns the event time after the last record's.
func produceTimed(t *testing.T, k *kafka, topic string, partitions int32, records, keys int, rng *rand.Rand, from time.Time,
	step time.Duration) time.Time {
	t.Helper()
	ctx := context.Background()
	if _, err := k.adm.CreateTopics(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.cl.OptValue(kgo.SeedBrokers).([]string)...),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range records {
		cl.Produce(ctx, &kgo.Record{Key: []byte("k" + strconv.Itoa(rng.IntN(keys))),
			Value: []byte(strconv.Itoa(rng.IntN(2001) - 1000)), Timestamp: from.Add(time.Duration(i) * step)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return from.Add(time.Duration(records) * step)
}

// committedOffsets is the group's committed offset per partition of topic
// (absent where none).
func committedOffsets(t *testing.T, k *kafka, group, topic string) map[int32]int64 {
	t.Helper()
	offs, err := k.adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// awaitSettled waits until no transaction is open on topics (the last
// stable offset reaches the high watermark everywhere): a runner that
// stopped with one open leaves it to the broker's transaction timeout.
func awaitSettled(t *testing.T, k *kafka, topics []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.cl.OptValue(kgo.SeedBrokers).([]string)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	waitFor(t, 2*time.Minute, "no open transaction on "+strings.Join(topics, ", "), func() bool {
		lso, err1 := adm.ListCommittedOffsets(ctx, topics...)
		hwm, err2 := adm.ListEndOffsets(ctx, topics...)
		if err1 != nil || err2 != nil {
			return false
		}
		settled := true
		hwm.Each(func(o kadm.ListedOffset) {
			if l, ok := lso.Lookup(o.Topic, o.Partition); o.Err != nil || !ok || l.Err != nil || l.Offset != o.Offset {
				settled = false
			}
		})
		return settled
	})
}

// checkPrefix proves, reading with read_committed, that the verification
// topology's outputs and changelogs (application app) hold exactly the
// effects of the input records below cut[p] in each input partition p: per
// key, echo and the running sum, min, max and count of those records, in
// order, and as the last changelog value the final aggregate; no loss
// before the cut, nothing after it; and, when the topology has its windowed
// output, exactly the final results of the windows those records closed.
// It reports violations with t.Errorf.
func checkPrefix(t *testing.T, k *kafka, app, input string, cut map[int32]int64) prefixReport {
	t.Helper()
	ctx := context.Background()
	outputs := verify.OutputTopics(input) // echo, sum, min, max, cnt
	stores := []string{verify.StoreSum, verify.StoreMin, verify.StoreMax, verify.StoreCnt}
	topics := slices.Clone(outputs)
	for _, s := range stores {
		topics = append(topics, topology.ChangelogTopic(app, s))
	}
	windowed := topicExists(t, k, verify.WindowedOutputTopic(input))
	if windowed {
		topics = append(topics, verify.WindowedOutputTopic(input))
	}
	awaitSettled(t, k, topics)

	// want[key][i] = echo, sum, min, max and count after the key's i-th record.
	var below, violations, windows int
	want := map[string][][5]int64{}
	byPartition := map[int32][]*kgo.Record{} // the records below the cut
	for _, rec := range k.readCommitted(t, ctx, input) {
		if rec.Offset >= cut[rec.Partition] {
			continue
		}
		byPartition[rec.Partition] = append(byPartition[rec.Partition], rec)
		v, err := strconv.ParseInt(string(rec.Value), 10, 64)
		if err != nil {
			t.Fatalf("%s[%d]@%d, below the cut, is not a decimal: %q", input, rec.Partition, rec.Offset, rec.Value)
		}
		below++
		key := string(rec.Key)
		next := [5]int64{v, v, v, v, 1}
		if seq := want[key]; len(seq) > 0 {
			prev := seq[len(seq)-1]
			next = [5]int64{v, prev[1] + v, min(prev[2], v), max(prev[3], v), prev[4] + 1}
		}
		want[key] = append(want[key], next)
	}

	violate := func(format string, args ...any) {
		t.Helper()
		if violations++; violations <= 10 {
			t.Errorf(format, args...)
		}
	}
	for i, topic := range outputs {
		got := map[string][]int64{}
		for _, rec := range k.readCommitted(t, ctx, topic) {
			v, err := strconv.ParseInt(string(rec.Value), 10, 64)
			if err != nil {
				violate("%s[%d]@%d: value %q is not a decimal", topic, rec.Partition, rec.Offset, rec.Value)
				continue
			}
			got[string(rec.Key)] = append(got[string(rec.Key)], v)
		}
		for key, seq := range want {
			exp := make([]int64, len(seq))
			for j, w := range seq {
				exp[j] = w[i]
			}
			if g := got[key]; !slices.Equal(g, exp) {
				violate("%s: key %s: %d records, want %d (the records below the cut): %s", topic, key, len(g), len(exp), firstDiff(g, exp))
			}
		}
		for key, g := range got {
			if _, ok := want[key]; !ok {
				violate("%s: key %s: %d records, but no input record of it is below the cut", topic, key, len(g))
			}
		}
	}
	for i, s := range stores {
		topic := topology.ChangelogTopic(app, s)
		last := map[string][]byte{}
		for _, rec := range k.readCommitted(t, ctx, topic) {
			last[string(rec.Key)] = rec.Value
		}
		for key, seq := range want {
			v, ok := last[key]
			if exp := seq[len(seq)-1][1+i]; !ok || len(v) != 8 || int64(byteorder.BigEndian.Uint64(v)) != exp {
				violate("%s: key %s: last value %x, want %d", topic, key, v, exp)
			}
		}
		for key := range last {
			if _, ok := want[key]; !ok {
				violate("%s: key %s has state, but no input record of it is below the cut", topic, key)
			}
		}
	}
	if windowed {
		windows = checkWindowsBelow(t, k, input, byPartition, violate)
	}
	if violations > 10 {
		t.Errorf("... %d violations in all", violations)
	}
	return prefixReport{below: below, violations: violations, windows: windows}
}

// prefixReport is what checkPrefix found.
type prefixReport struct {
	below      int // input records below the cut
	violations int
	windows    int // final windowed results due below the cut (0 without the windowed output)
}

// checkWindowsBelow checks the verification topology's windowed output
// against the records below the cut (byPartition): exactly one final result
// per window that their stream time closed, with its count and sum, and
// none for any other window. The rules are verify.Check's (internal/verify,
// windowed.go): per input partition in offset order, stream time is the
// largest timestamp so far; a record whose window's end + grace is not
// after stream time is late and changes nothing; otherwise it counts, and
// every window whose end + grace stream time has reached closes. It returns
// the number of windows closed.
func checkWindowsBelow(t *testing.T, k *kafka, input string, byPartition map[int32][]*kgo.Record, violate func(string, ...any)) int {
	t.Helper()
	size, grace := verify.WindowSize.Milliseconds(), verify.WindowGrace.Milliseconds()
	type window struct {
		key   string
		start int64
	}
	want := map[window]string{} // closed windows: "<count>,<sum>"
	for _, recs := range byPartition {
		slices.SortFunc(recs, func(a, b *kgo.Record) int { return int(a.Offset - b.Offset) })
		pending := map[window][2]int64{}
		st := int64(-1)
		for _, rec := range recs {
			v, _ := strconv.ParseInt(string(rec.Value), 10, 64) // decimal: checked by the caller
			ts := rec.Timestamp.UnixMilli()
			st = max(st, ts)
			w := window{string(rec.Key), ts - ts%size}
			if w.start+size+grace <= st {
				continue // late
			}
			agg := pending[w]
			pending[w] = [2]int64{agg[0] + 1, agg[1] + v}
			for pw, agg := range pending {
				if pw.start+size+grace <= st {
					want[pw] = fmt.Sprintf("%d,%d", agg[0], agg[1])
					delete(pending, pw)
				}
			}
		}
	}
	topic := verify.WindowedOutputTopic(input)
	got := map[window][]string{}
	for _, rec := range k.readCommitted(t, context.Background(), topic) {
		if len(rec.Key) < 8 {
			violate("%s[%d]@%d: key %q is not a time-windowed key", topic, rec.Partition, rec.Offset, rec.Key)
			continue
		}
		w := window{string(rec.Key[:len(rec.Key)-8]), int64(byteorder.BigEndian.Uint64(rec.Key[len(rec.Key)-8:]))}
		got[w] = append(got[w], string(rec.Value))
	}
	for w, v := range want {
		if g := got[w]; len(g) != 1 || g[0] != v {
			violate("%s: key %s window [%d,%d): results %q, want exactly one, %s (count,sum), closed below the cut", topic, w.key, w.start, w.start+size, g, v)
		}
	}
	for w, g := range got {
		if _, ok := want[w]; !ok {
			violate("%s: key %s window [%d,%d): results %q, want none: the records below the cut did not close it", topic, w.key, w.start, w.start+size, g)
		}
	}
	return len(want)
}

// topicExists asks a fresh client (a shared one may cache a topic as
// missing) whether topic exists.
func topicExists(t *testing.T, k *kafka, topic string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.cl.OptValue(kgo.SeedBrokers).([]string)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	details, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatalf("list topic %s: %v", topic, err)
	}
	return details.Has(topic)
}

// produceSequence writes values[i] with key k<i%keys> and event time
// from + i*step, in order, to a new one-partition topic.
func produceSequence(t *testing.T, k *kafka, topic string, keys int, values []string, from time.Time, step time.Duration) {
	t.Helper()
	ctx := context.Background()
	if _, err := k.adm.CreateTopics(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		k.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i%keys)), Value: []byte(v),
			Timestamp: from.Add(time.Duration(i) * step)}, nil)
	}
	if err := k.cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// firstDiff describes where got first departs from want.
func firstDiff(got, want []int64) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at record %d: %d, want %d", i, got[i], want[i])
		}
	}
	if len(got) > len(want) {
		return fmt.Sprintf("%d extra after the expected ones, from %d", len(got)-len(want), got[len(want)])
	}
	return fmt.Sprintf("%d missing after record %d", len(want)-len(got), len(got))
}
