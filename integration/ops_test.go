package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// freeAddr is a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// get fetches url; status 0 when nothing answered.
func get(url string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricSum sums the samples of a metric in Prometheus text whose labels
// contain every one of labels ("" matches all); ok is false without any.
func metricSum(body, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				match = false
			}
		}
		if !match {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	return sum, found
}

var rawLibrdkafkaLine = regexp.MustCompile(`^%\d\|`)

// assertNoRawLibrdkafka fails on a librdkafka line that bypassed slog.
func assertNoRawLibrdkafka(t *testing.T, r *runnerProc) {
	t.Helper()
	for _, l := range r.plainLines() {
		if rawLibrdkafkaLine.MatchString(l) {
			t.Errorf("a raw librdkafka line on stderr: %s", l)
		}
	}
}

// readiness polls /readyz every 10ms from now until stop, recording each
// change of answer.
type readinessTrace struct {
	mu      sync.Mutex
	answers []string // "503 restoring", "200", ...
	stop    chan struct{}
	done    chan struct{}
}

func traceReadiness(base string) *readinessTrace {
	tr := &readinessTrace{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		for {
			select {
			case <-tr.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			code, body := get(base + "/readyz")
			a := strconv.Itoa(code)
			var rd struct {
				Reason    string `json:"reason"`
				Restoring int    `json:"restoring"`
			}
			if json.Unmarshal([]byte(body), &rd) == nil && rd.Reason != "" {
				a += " " + rd.Reason
			}
			tr.mu.Lock()
			if n := len(tr.answers); n == 0 || tr.answers[n-1] != a {
				tr.answers = append(tr.answers, a)
			}
			tr.mu.Unlock()
		}
	}()
	return tr
}

func (tr *readinessTrace) get() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.answers...)
}

func (tr *readinessTrace) end() []string {
	close(tr.stop)
	<-tr.done
	return tr.get()
}

// TestOpsEndpoints: every HTTP endpoint of a running runner (the verify
// topology on the embedded broker): /healthz, /readyz, /topology in text and
// Mermaid, /metrics with the new metrics. Then a second instance with no
// local state restores the first's stores (400k changelog records): /readyz
// answers 503 "restoring" during the restore and 200 after it, and the
// restore gauges showed records remaining. No librdkafka line bypasses slog.
func TestOpsEndpoints(t *testing.T) {
	const records = 100_000
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("ops")
	generate(t, b.addr, topic, records, 20_000, 2)
	addr := freeAddr(t)
	base := "http://" + addr

	start := time.Now()
	r := startRunner(t, append(processArgs(b.addr, topic, "a", t.TempDir(), 100*time.Millisecond), "--set", "metrics.addr="+addr)...)
	tr := traceReadiness(base)
	waitFor(t, 3*time.Minute, "all input committed", func() bool { return k.committed(ctx, topic+"-verify", topic) == records })
	waitFor(t, 30*time.Second, "/readyz 200", func() bool { c, _ := get(base + "/readyz"); return c == 200 })
	t.Logf("first run: all %d records committed in %v; /readyz answers: %v", records, time.Since(start).Round(time.Millisecond), tr.end())

	if code, body := get(base + "/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz = %d %s", code, body)
	}
	code, body := get(base + "/readyz")
	if code != 200 || !strings.Contains(body, `"ready":true`) || !strings.Contains(body, `"tasks":2`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	t.Logf("/readyz: %s", strings.TrimSpace(body))
	if code, body := get(base + "/topology"); code != 200 || !strings.Contains(body, "Sub-topology: 0") || !strings.Contains(body, topic) {
		t.Errorf("/topology = %d %s", code, body)
	}
	if code, body := get(base + "/topology?format=mermaid"); code != 200 || !strings.HasPrefix(body, "flowchart TB") || !strings.Contains(body, topic+"-sum") {
		t.Errorf("/topology?format=mermaid = %d %s", code, body)
	}
	if code, _ := get(base + "/topology?format=svg"); code != 400 {
		t.Errorf("/topology?format=svg = %d, want 400", code)
	}
	_, metrics := get(base + "/metrics")
	for _, m := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"eos_records_consumed_total", []string{`topic="` + topic + `"`}, records},
		{"eos_records_produced_total", []string{`topic="` + topic + `-echo"`}, records},
		{"eos_records_produced_total", []string{`topic="` + topic + `-verify-sum-changelog"`}, 1},
		{"eos_process_latency_seconds_count", nil, records},
		{"eos_record_e2e_latency_seconds_count", nil, records},
		{"eos_commit_seconds_count", nil, 1},
		{"eos_commits_total", nil, 1},
		{"eos_aborts_total", nil, 0},
		{"eos_rebalances_total", nil, 1},
		{"eos_records_lag", []string{`partition="0"`}, 0},
		{"eos_records_lag", []string{`partition="1"`}, 0},
		{"eos_ready", nil, 1},
		{"eos_punctuations_total", nil, 0},
		{"eos_dropped_records_total", []string{`reason="late"`}, 1},
	} {
		v, ok := metricSum(metrics, m.name, m.labels...)
		if !ok || v < m.min {
			t.Errorf("%s%v = %v (present %v), want at least %v", m.name, m.labels, v, ok, m.min)
		}
	}
	if lag, _ := metricSum(metrics, "eos_records_lag"); lag != 0 {
		t.Errorf("eos_records_lag sums to %v with everything committed, want 0", lag)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("first runner: %v", err)
	}
	assertNoRawLibrdkafka(t, r)

	// A new instance without local state restores everything before it runs.
	start = time.Now()
	r2 := startRunner(t, append(processArgs(b.addr, topic, "b", t.TempDir(), 100*time.Millisecond), "--set", "metrics.addr="+addr)...)
	tr = traceReadiness(base)
	var sawRemaining atomic.Int64
	stopScrape := make(chan struct{})
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		for {
			select {
			case <-stopScrape:
				return
			case <-time.After(100 * time.Millisecond):
			}
			_, m := get(base + "/metrics")
			if v, ok := metricSum(m, "eos_restore_remaining_records"); ok && int64(v) > sawRemaining.Load() {
				sawRemaining.Store(int64(v))
			}
		}
	}()
	waitFor(t, 3*time.Minute, "/readyz 200 after the restore", func() bool { c, _ := get(base + "/readyz"); return c == 200 })
	close(stopScrape)
	<-scraped
	answers := tr.end()
	rep := r2.restores()
	t.Logf("second run: ready after %v; /readyz answers: %v; restored %d records in %d store partitions (%d full); most records remaining seen: %d",
		time.Since(start).Round(time.Millisecond), answers, rep.records, rep.partitions, rep.full, sawRemaining.Load())
	if rep.records == 0 {
		t.Fatal("the second instance restored nothing")
	}
	restoring, readyAfter := -1, -1
	for i, a := range answers {
		if a == "503 restoring" && restoring < 0 {
			restoring = i
		}
		if a == "200" {
			readyAfter = i
		}
	}
	if restoring < 0 || readyAfter < restoring {
		t.Errorf("/readyz answers %v: want 503 restoring, then 200", answers)
	}
	for _, a := range answers[:max(0, restoring)] {
		if a == "200" {
			t.Errorf("/readyz answered 200 before the restore: %v", answers)
		}
	}
	if err := r2.stop(); err != nil {
		t.Fatalf("second runner: %v", err)
	}
	assertNoRawLibrdkafka(t, r2)
}

// gate blocks the records a test chooses.
type gate struct {
	closed  atomic.Bool
	release chan struct{}
	blocked atomic.Int64
}

type gatedEcho struct {
	ctx topology.ProcessorContext
	g   *gate
}

func (p *gatedEcho) Init(ctx topology.ProcessorContext) error { p.ctx = ctx; return nil }
func (p *gatedEcho) Process(r topology.Record) error {
	if p.g.closed.Load() {
		p.g.blocked.Add(1)
		<-p.g.release
	}
	return p.ctx.Forward(r)
}
func (p *gatedEcho) Close() error { return nil }

// TestOpsLagMetricEqualsTrueLag: a runner whose processing is blocked (its
// workers wait on a gate, so nothing commits) shows, per partition,
// eos_records_lag equal to the true lag: the log end minus the group's
// committed offset, both read from the broker with another client.
func TestOpsLagMetricEqualsTrueLag(t *testing.T) {
	const partitions, first, second = 3, 3000, 1700
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("lag")
	app := topic + "-app"
	produceInput(t, k, topic, partitions, 97, seqValues(first))

	g := &gate{release: make(chan struct{})}
	bld := topology.NewBuilder()
	bld.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		Process(func() topology.Processor { return &gatedEcho{g: g} }).
		To(topic+"-out", topology.Produced{Key: serde.String{}, Value: serde.String{}})
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(b.addr, app, t)
	cfg.SessionTimeoutMs, cfg.TransactionTimeoutMs = 30000, 20000
	r, stop := runInProcess(t, cfg, topo)
	waitFor(t, time.Minute, "the first records committed", func() bool { return k.committed(ctx, app, topic) == first })

	g.closed.Store(true)
	defer func() {
		if g.closed.CompareAndSwap(true, false) {
			close(g.release)
		}
	}()
	for i := 0; i < second; i++ {
		k.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i%97)), Value: []byte(strconv.Itoa(first + i))}, nil)
	}
	if err := k.cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a record blocked", func() bool { return g.blocked.Load() > 0 })

	trueLag := func() map[int32]int64 {
		ends, err := k.adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		offs, err := k.adm.FetchOffsets(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		ends.Each(func(e kadm.ListedOffset) {
			c, _ := offs.Lookup(topic, e.Partition)
			out[e.Partition] = e.Offset - max(0, c.At)
		})
		return out
	}
	metricLag := func() map[int32]int64 {
		mfs, err := r.Metrics().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		for _, mf := range mfs {
			if mf.GetName() != "eos_records_lag" {
				continue
			}
			for _, m := range mf.GetMetric() {
				var p int
				for _, l := range m.GetLabel() {
					if l.GetName() == "partition" {
						p, _ = strconv.Atoi(l.GetValue())
					}
				}
				out[int32(p)] = int64(m.GetGauge().GetValue())
			}
		}
		return out
	}
	var want, got map[int32]int64
	waitFor(t, 30*time.Second, "eos_records_lag to equal the true lag", func() bool {
		want, got = trueLag(), metricLag()
		return fmt.Sprint(want) == fmt.Sprint(got)
	})
	var total int64
	for _, v := range want {
		total += v
	}
	t.Logf("blocked runner: true lag %v, eos_records_lag %v (total %d of the %d records produced after the gate closed)", want, got, total, second)
	if total != second {
		t.Errorf("true lag totals %d, want %d: the gate let records commit", total, second)
	}
	g.closed.Store(false)
	close(g.release)
	waitFor(t, time.Minute, "everything committed after the gate opened", func() bool { return k.committed(ctx, app, topic) == first+second })
	waitFor(t, 30*time.Second, "the lag metric back to zero", func() bool {
		for _, v := range metricLag() {
			if v != 0 {
				return false
			}
		}
		return true
	})
	_ = stop()
}

// cliRun runs the eos-runner binary and returns its stdout and stderr.
func cliRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// outputsByPartition reads a topic with read_committed: its key=value
// records per partition, in order.
func outputsByPartition(t *testing.T, k *kafka, topic string) map[int32][]string {
	out := map[int32][]string{}
	for _, r := range k.readCommitted(t, context.Background(), topic) {
		out[r.Partition] = append(out[r.Partition], string(r.Key)+"="+string(r.Value))
	}
	return out
}

// TestOpsResetRerunSameOutputs: the verify topology processes its input; a
// reset while it runs is refused, naming the member; after it stops,
// `eos-runner reset` (dry run first) moves the input offsets to the start,
// deletes the changelogs and removes the local state; the rerun then
// appends to every output topic exactly what the first run wrote, per
// partition in order, windowed results included.
func TestOpsResetRerunSameOutputs(t *testing.T) {
	const records = 20_000
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	topic := uniqueTopic("reset")
	app := topic + "-verify"
	generate(t, b.addr, topic, records, 500, 2)
	stateDir := t.TempDir()
	outputs := []string{topic + "-echo", topic + "-sum", topic + "-cnt", topic + "-win"}

	r := startRunner(t, processArgs(b.addr, topic, "a", stateDir, 100*time.Millisecond)...)
	waitFor(t, 2*time.Minute, "all input committed", func() bool { return k.committed(ctx, app, topic) == records })
	_, stderr, err := cliRun(t, "reset", "--application-id", app, "--brokers", b.addr, "--state-dir", stateDir)
	if err == nil || !strings.Contains(stderr, "active member") || !strings.Contains(stderr, "client a@") {
		t.Errorf("reset while the runner runs: err %v, stderr %s; want a refusal naming the member", err, stderr)
	}
	t.Logf("reset refused while running:\n%s", stderr)
	if err := r.stop(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	first := map[string]map[int32][]string{}
	for _, o := range outputs {
		first[o] = outputsByPartition(t, k, o)
	}

	start := time.Now()
	var plan string
	waitFor(t, time.Minute, "reset to be allowed once the group is empty", func() bool {
		out, _, err := cliRun(t, "reset", "--application-id", app, "--brokers", b.addr, "--state-dir", stateDir, "--dry-run")
		plan = out
		return err == nil
	})
	t.Logf("reset --dry-run:\n%s", plan)
	for _, want := range []string{"[0]: ", " -> 0", "delete internal topic " + app + "-sum-changelog", "remove local state", "dry run: nothing changed"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the plan lacks %q", want)
		}
	}
	if k.committed(ctx, app, topic) != records {
		t.Fatal("the dry run changed the offsets")
	}
	out, stderr, err := cliRun(t, "reset", "--application-id", app, "--brokers", b.addr, "--state-dir", stateDir)
	if err != nil {
		t.Fatalf("reset: %v\n%s%s", err, out, stderr)
	}
	t.Logf("reset in %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	if c := k.committed(ctx, app, topic); c != 0 {
		t.Fatalf("committed offsets after the reset sum to %d, want 0", c)
	}

	r = startRunner(t, processArgs(b.addr, topic, "a", stateDir, 100*time.Millisecond)...)
	waitFor(t, 2*time.Minute, "all input committed again", func() bool { return k.committed(ctx, app, topic) == records })
	if err := r.stop(); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if rep := r.restores(); rep.records != 0 {
		t.Errorf("the rerun restored %d records; the reset should have left nothing to restore", rep.records)
	}
	for _, o := range outputs {
		both := outputsByPartition(t, k, o)
		n := 0
		for p, firstRun := range first[o] {
			n += len(firstRun)
			all := both[p]
			if len(all) != 2*len(firstRun) {
				t.Errorf("%s[%d]: %d records after the rerun, want twice the first run's %d", o, p, len(all), len(firstRun))
				continue
			}
			for i := range firstRun {
				if all[len(firstRun)+i] != firstRun[i] {
					t.Errorf("%s[%d]: rerun record %d is %s, the first run wrote %s", o, p, i, all[len(firstRun)+i], firstRun[i])
					break
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: the first run wrote nothing", o)
		}
		t.Logf("%s: %d records, the same again after the reset", o, n)
	}
}

// rebalanceLines counts a runner's rebalance callbacks by its log.
func rebalanceLines(r *runnerProc) int {
	return len(r.find("partitions assigned")) + len(r.find("partitions revoked"))
}

// TestStaticMembershipRestartNoRebalance: two instances of the verify-join
// topology (a stream-table join: the table's partitions follow the
// stream's, copartition.go) share the input. Instance b is stopped and
// started again within the session timeout. Under static.membership=true,
// a sees no rebalance at all and b gets back the same leader and follower
// partitions; without it (the control), a is handed b's partitions and
// gives them back, which the same count sees.
func TestStaticMembershipRestartNoRebalance(t *testing.T) {
	b := startBroker(t)
	k := newKafka(t, b.addr)
	ctx := context.Background()
	for _, static := range []bool{true, false} {
		t.Run(fmt.Sprintf("static=%v", static), func(t *testing.T) {
			topic := uniqueTopic("static")
			app := topic + "-verify"
			if _, _, err := cliRun(t, "verify", "generate", "--brokers", b.addr, "--topic", topic, "--records", "5000",
				"--keys", "200", "--partitions", "4", "--joins"); err != nil {
				t.Fatal(err)
			}
			args := func(id, dir string) []string {
				return []string{"verify", "process", "--joins", "--brokers", b.addr, "--input", topic, "--instance-id", id, "--state-dir", dir,
					"--set", "session.timeout.ms=20000", "--set", "transaction.timeout.ms=10000",
					"--set", "kafka.consumer.heartbeat.interval.ms=500", "--set", "static.membership=" + strconv.FormatBool(static)}
			}
			dirA, dirB := t.TempDir(), t.TempDir()
			ra := startRunner(t, args("a", dirA)...)
			waitFor(t, time.Minute, "a to run its tasks", func() bool { return len(ra.find("task running")) >= 4 })
			total := len(ra.owned())
			rb := startRunner(t, args("b", dirB)...)
			waitFor(t, time.Minute, "a and b to share the partitions", func() bool {
				return len(rb.owned()) > 0 && len(ra.owned())+len(rb.owned()) == total
			})
			waitFor(t, 2*time.Minute, "all input committed", func() bool { return k.committed(ctx, app, topic) == 5000 })
			ownedB := rb.owned()
			before := rebalanceLines(ra)
			start := time.Now()
			if err := rb.stop(); err != nil {
				t.Fatalf("b: %v", err)
			}
			rb = startRunner(t, args("b", dirB)...)
			waitFor(t, time.Minute, "b to own partitions again", func() bool { return len(rb.owned()) > 0 && len(rb.find("task running")) >= 2 })
			back := time.Since(start)
			time.Sleep(5 * time.Second) // a rebalance, if any, would reach a by now
			after := rebalanceLines(ra)
			t.Logf("static=%v: b back and running %v after its SIGTERM; a's rebalance callbacks %d -> %d; b owned %v, owns %v",
				static, back.Round(time.Millisecond), before, after, keys(ownedB), keys(rb.owned()))
			if static {
				if after != before {
					t.Errorf("a saw %d rebalance callbacks during b's restart, want none", after-before)
				}
				if fmt.Sprint(keys(rb.owned())) != fmt.Sprint(keys(ownedB)) {
					t.Errorf("b owns %v after the restart, %v before", keys(rb.owned()), keys(ownedB))
				}
			} else if after == before {
				t.Errorf("control: a saw no rebalance when dynamic member b restarted; the count proves nothing")
			}
			for _, r := range []*runnerProc{ra, rb} {
				if err := r.stop(); err != nil {
					t.Errorf("stop: %v", err)
				}
			}
		})
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
