package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eos-runner/eos-runner/internal/verify"
)

// producerLost and producerRecovered are what a runner logs when it
// replaces a transactional producer it lost (processor/recover.go): once
// when it starts, with the cause, and once when the new producer is ready.
const (
	producerLost      = "transactional producer lost; recovering in process"
	producerRecovered = "transactional producer recovered"
)

// failLostProducer: one runner, alone in its group, loses its
// transactional producer twice and must recover in process both times,
// never restarted, and then commit all input exactly once (`verify check`).
//
//  1. It reaches the broker through a proxy (kafkaProxy) that cuts it off
//     while its transaction is open on the broker, until the broker has
//     aborted that transaction (transaction.timeout.ms, 5s) and the group
//     has dropped the member (session.timeout.ms, 6s). Its commit times out
//     while it is cut off (reason "unfinished"), and it replaces its
//     producer once the link heals.
//  2. It is frozen (SIGSTOP, a process starved of CPU) while its
//     transaction is open, until the broker has aborted it and the group
//     has dropped the member, then resumed: the broker has bumped the
//     epoch, so the producer is fenced (reason "fenced").
//
// Nothing of either lost transaction may be applied or committed, and
// their records must be processed again exactly once.
func failLostProducer(t *testing.T, b *brokerProc, st *faultStats) {
	const records = 20_000
	k := newKafka(t, b.addr)
	topic := uniqueTopic("lostproducer")
	group := topic + "-verify"
	txnID := group + "-a" // <application.id>-<instance.id>
	rng := rand.New(rand.NewPCG(seed(t), 11))
	e := &faultEnv{t: t, b: b, k: k, topic: topic, group: group, records: records, rng: rng}
	genDone := make(chan error, 1)
	go func() {
		// About 45s of input: it keeps coming through both faults.
		_, err := verify.Generate(context.Background(), verify.GenerateConfig{Brokers: []string{b.addr}, Topic: topic,
			Records: records, Keys: 300, Partitions: 2, Seed: int64(rng.Uint64() >> 1), Rate: records / 45})
		genDone <- err
	}()
	waitFor(t, time.Minute, "input topic", func() bool { return k.endOffsets(context.Background(), topic) > 0 })
	proxy := startKafkaProxy(t, b.addr)
	metricsAddr := freeAddr(t)
	// A 1s commit interval: a transaction is open most of the time.
	f := newFleet(t, b.addr, topic, time.Second)
	r := f.startWith("a", proxy.addr(), "--set", "metrics.addr="+metricsAddr)
	waitFor(t, time.Minute, "a processing", func() bool { return len(r.find("task running")) > 0 && len(r.owned()) == 2 })
	if proxy.rewrites() == 0 {
		t.Fatalf("a's clients never read broker addresses through the proxy: it is not cut off by it")
	}
	// fault runs one fault: start it while a's transaction is open on the
	// broker, end it once the broker is done with that transaction and the
	// group has dropped a (and once done() holds), then wait for a to
	// recover and commit again.
	fault := func(n int, what string, start, end func(), done func() bool) {
		t.Helper()
		e.progressTo(e.committed()+int64(records/10), fmt.Sprintf("progress before fault %d", n))
		var open kadm.DescribedTransaction
		waitFor(t, time.Minute, "a transaction of a open on the broker", func() bool {
			open = describeTxn(k, txnID)
			return open.State == "Ongoing"
		})
		recovered := len(r.find(producerRecovered))
		before := e.committed()
		start()
		at := time.Now()
		waitFor(t, time.Minute, "the broker to end a's open transaction and the group to drop a", func() bool {
			now := describeTxn(k, txnID)
			return (now.State != "Ongoing" || now.StartTimestamp != open.StartTimestamp) && groupMembers(k, group) == 0 && done()
		})
		if c := e.committed(); c != before {
			t.Fatalf("fault %d: the group's committed offsets moved from %d to %d while its only member was %s", n, before, c, what)
		}
		end()
		t.Logf("fault %d: a %s for %v (transaction timeout 5s, session timeout 6s)", n, what, time.Since(at).Round(100*time.Millisecond))
		waitFor(t, time.Minute, fmt.Sprintf("a to recover its producer after fault %d", n), func() bool {
			return len(r.find(producerRecovered)) > recovered || isDone(r)
		})
		if isDone(r) {
			t.Fatalf("fault %d: a exited (%v) instead of recovering: %s", n, r.err, strings.Join(zombieSignsOf(r).detail, "; "))
		}
	}
	fault(1, "cut off from the broker", proxy.cut, proxy.heal, func() bool { return len(r.find(producerLost)) > 0 || isDone(r) })
	fault(2, "frozen (SIGSTOP)", func() { signal(t, r, syscall.SIGSTOP) }, func() { signal(t, r, syscall.SIGCONT) },
		func() bool { return true })
	if err := <-genDone; err != nil {
		t.Fatalf("generate: %v", err)
	}
	waitFor(t, 2*time.Minute, "all input committed", func() bool { return e.committed() >= records || isDone(r) })
	if isDone(r) {
		t.Fatalf("a exited (%v) instead of recovering: %s", r.err, strings.Join(zombieSignsOf(r).detail, "; "))
	}
	reasons := map[string]int{}
	for _, l := range r.find(producerLost) {
		reasons[fmt.Sprint(l["reason"])]++
		t.Logf("a: %s: reason %v, cause %v", producerLost, l["reason"], l["cause"])
	}
	if len(r.find(producerLost)) != 2 {
		t.Errorf("%d recoveries, want 2 (one per fault): %v", len(r.find(producerLost)), reasons)
	}
	// Each recovery ends the runner's ownership in its log before the
	// group moves the partitions (the ownership checks of TestFaultsJoin
	// read these reports).
	lostReports := 0
	for _, l := range r.find("partitions revoked") {
		if lost, _ := l["lost"].(bool); lost && l["reason"] == "transactional producer lost" {
			lostReports++
		}
	}
	if lostReports != len(r.find(producerLost)) {
		t.Errorf("%d lost-partition reports for %d recoveries, want one each", lostReports, len(r.find(producerLost)))
	}
	if reasons["fenced"] == 0 {
		t.Errorf("no recovery from a fenced producer, after a froze past its transaction timeout: %v", reasons)
	}
	if n := len(r.find("runner stopping on error")); n > 0 {
		t.Errorf("a logged %d stop(s) on error", n)
	}
	_, metrics := get("http://" + metricsAddr + "/metrics")
	if n, ok := metricSum(metrics, "eos_producer_recoveries_total"); !ok || n != 2 {
		t.Errorf("eos_producer_recoveries_total = %v (found %v), want 2", n, ok)
	}
	if f.starts != 1 {
		t.Fatalf("%d runner starts, want 1: the process must recover, not be restarted", f.starts)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("a's SIGTERM exit: %v", err)
	}
	check(t, b.addr, topic)
	st.records, st.cuts, st.rebalances = records, 1, f.rebalances()
	st.verdict = fmt.Sprintf("cut off, then frozen, past both timeouts; recovered in process each time (%v)", reasons)
}

// describeTxn is the broker's view of a transactional id (zero if unknown).
func describeTxn(k *kafka, txnID string) kadm.DescribedTransaction {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ds, err := k.adm.DescribeTransactions(ctx, txnID)
	if err != nil {
		return kadm.DescribedTransaction{}
	}
	return ds[txnID]
}

// groupMembers is the number of members of a group, -1 when unknown.
func groupMembers(k *kafka, group string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gs, err := k.adm.DescribeGroups(ctx, group)
	if err != nil || gs[group].Err != nil {
		return -1
	}
	return len(gs[group].Members)
}

func signal(t *testing.T, r *runnerProc, sig syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}
