package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// binary is the eos-runner built once by TestMain; runners run it.
// brokerBinary runs the embedded broker: the same build, except under
// EOS_CHAOS, where binary is built with -race (each runner's log is searched
// for the race detector's reports) and the broker keeps a normal build, so
// that its timing stays what the fault cases are tuned for.
var binary, brokerBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eos-it-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := func(out string, flags ...string) string {
		path := filepath.Join(dir, out)
		cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", path, "../cmd/eos-runner")...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build eos-runner:", err)
			os.Exit(1)
		}
		return path
	}
	binary = build("eos-runner")
	brokerBinary = binary
	if os.Getenv("EOS_CHAOS") != "" {
		binary = build("eos-runner-race", "-race")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// externalBrokers is KAFKA_BOOTSTRAP_SERVERS when the tests run against a
// real cluster (e.g. docker-compose's Redpanda) instead of the embedded broker.
func externalBrokers() string { return os.Getenv("KAFKA_BOOTSTRAP_SERVERS") }

// brokerProc is the embedded broker running as its own process.
type brokerProc struct {
	t       *testing.T
	dataDir string
	addr    string
	cmd     *exec.Cmd
}

// startBroker starts `eos-runner broker` (or returns the external cluster).
func startBroker(t *testing.T) *brokerProc {
	t.Helper()
	if ext := externalBrokers(); ext != "" {
		return &brokerProc{t: t, addr: ext}
	}
	b := &brokerProc{t: t, dataDir: t.TempDir(), addr: "127.0.0.1:0"}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *brokerProc) external() bool { return b.cmd == nil && b.dataDir == "" }

func (b *brokerProc) start() {
	t := b.t
	t.Helper()
	cmd := exec.Command(brokerBinary, "broker", "--listen", b.addr, "--data-dir", b.dataDir, "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile(t, "broker")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("broker did not print its address: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "bootstrap: ")
	if !ok {
		t.Fatalf("broker printed %q", line)
	}
	go io.Copy(io.Discard, stdout)
	b.addr, b.cmd = addr, cmd
}

// restart stops the broker (SIGTERM, persisting) and starts it again on the
// same data dir and port.
func (b *brokerProc) restart() {
	b.stop()
	b.start()
}

func (b *brokerProc) stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	_ = b.cmd.Wait()
	b.cmd = nil
}

func logFile(t *testing.T, name string) *os.File {
	dir := os.Getenv("EOS_IT_LOGS")
	if dir == "" {
		dir = t.TempDir()
	}
	f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// runnerProc is one `eos-runner` process whose JSON logs are parsed.
type runnerProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []map[string]any
	// plain are the stderr lines that are not JSON log records: the CLI's
	// final error line, the race detector's reports, goroutine dumps.
	plain []string
	races int // race detector reports ("WARNING: DATA RACE") seen
	done  chan struct{}
	err   error
	// exited is when the process was seen to exit (under mu).
	exited time.Time
}

func startRunner(t *testing.T, args ...string) *runnerProc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--log-format", "json"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	raw := logFile(t, fmt.Sprintf("runner-%d", time.Now().UnixNano()))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &runnerProc{t: t, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			raw.Write(append(sc.Bytes(), '\n'))
			var m map[string]any
			r.mu.Lock()
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				r.logs = append(r.logs, m)
			} else {
				line := sc.Text()
				if len(r.plain) < 10_000 {
					r.plain = append(r.plain, line)
				}
				if strings.Contains(line, "WARNING: DATA RACE") {
					r.races++
				}
			}
			r.mu.Unlock()
		}
		r.err = cmd.Wait()
		r.mu.Lock()
		r.exited = time.Now()
		r.mu.Unlock()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.kill()
		// A runner built with -race (EOS_CHAOS) reports each race on stderr
		// and goes on; any report fails the test that ran it.
		if n := r.raceReports(); n > 0 {
			// The log file goes with the test's temporary directory: the
			// first report goes into the failure itself.
			t.Errorf("runner pid %d: %d data race report(s) from the race detector; see %s; the first:\n%s",
				cmd.Process.Pid, n, raw.Name(), r.firstRaceReport())
		}
	})
	return r
}

// firstRaceReport is the text of the first race detector report the runner
// printed, up to its closing line of '='.
func (r *runnerProc) firstRaceReport() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.plain {
		if len(out) == 0 && !strings.Contains(l, "WARNING: DATA RACE") {
			continue
		}
		out = append(out, l)
		if len(out) > 1 && strings.HasPrefix(l, "==================") {
			break
		}
	}
	return strings.Join(out, "\n")
}

// raceReports is the number of race detector reports the runner printed.
func (r *runnerProc) raceReports() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.races
}

// plainLines returns the stderr lines that were not JSON log records.
func (r *runnerProc) plainLines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.plain...)
}

// kill sends SIGKILL and waits.
func (r *runnerProc) kill() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// stop sends SIGTERM and waits for a clean exit. A runner that has not
// logged yet may not have installed its signal handler (the CLI installs it
// before it sets up logging), so stop first waits for its first log line or
// its exit: a SIGTERM that lands earlier kills the process outright and
// reads as a failed shutdown.
func (r *runnerProc) stop() error {
	waitFor(r.t, time.Minute, "the runner's first log line", func() bool {
		select {
		case <-r.done:
			return true
		default:
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.logs) > 0 || len(r.plain) > 0
	})
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		return r.err
	case <-time.After(90 * time.Second):
		// SIGQUIT makes the Go runtime print every goroutine's stack to the
		// runner's log before it exits: the diagnosis of a stuck shutdown.
		_ = r.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			r.kill()
		}
		return fmt.Errorf("runner did not stop within 90s of SIGTERM (goroutine dump in its log)")
	}
}

// find returns the log records with the given message.
func (r *runnerProc) find(msg string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, l := range r.logs {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// owned returns the partitions the runner owns by its own log: assigned
// minus revoked.
func (r *runnerProc) owned() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	own := map[string]bool{}
	for _, l := range r.logs {
		ps, _ := l["partitions"].([]any)
		for _, p := range ps {
			switch l["msg"] {
			case "partitions assigned":
				own[fmt.Sprint(p)] = true
			case "partitions revoked":
				delete(own, fmt.Sprint(p))
			}
		}
	}
	return own
}

// restoreReport sums the "restored store partition" lines of a run.
type restoreReport struct {
	partitions int
	records    int64
	full       int
}

func (r *runnerProc) restores() restoreReport {
	var rep restoreReport
	for _, l := range r.find("restored store partition") {
		rep.partitions++
		if n, ok := l["records"].(float64); ok {
			rep.records += int64(n)
		}
		if f, _ := l["full"].(bool); f {
			rep.full++
		}
	}
	return rep
}

// waitFor polls cond every 50ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kafka is a franz-go client for test setup and checks, independent of the
// runner's librdkafka.
type kafka struct {
	cl  *kgo.Client
	adm *kadm.Client
}

func newKafka(t *testing.T, brokers string) *kafka {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &kafka{cl: cl, adm: kadm.NewClient(cl)}
}

// committed sums the group's committed offsets on topic (0 where none).
func (k *kafka) committed(ctx context.Context, group, topic string) int64 {
	offs, err := k.adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At > 0 {
			sum += o.At
		}
	})
	return sum
}

// endOffsets sums the end offsets (high watermarks) of topic.
func (k *kafka) endOffsets(ctx context.Context, topic string) int64 {
	ends, err := k.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return -1
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum
}

// readCommitted reads every record of a topic that no longer changes, with
// read_committed. It keeps control records (transaction markers) so that it
// knows its position: a partition is read once a record or marker reaches
// the last stable offset, since markers take offsets too.
func (k *kafka) readCommitted(t *testing.T, ctx context.Context, topic string) []*kgo.Record {
	t.Helper()
	// A fresh client: a shared one may still cache the topic as missing
	// from a look-up made before the topic was created.
	lc, err := kgo.NewClient(kgo.SeedBrokers(k.cl.OptValue(kgo.SeedBrokers).([]string)...))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(lc).ListCommittedOffsets(ctx, topic)
	lc.Close()
	if err != nil {
		t.Fatal(err)
	}
	pending := map[int32]int64{}
	parts := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
			parts[topic][o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(pending) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.cl.OptValue(kgo.SeedBrokers).([]string)...), kgo.ConsumePartitions(parts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("reading %s: partitions %v never reached their end", topic, pending)
		}
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(fctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if end, ok := pending[r.Partition]; ok && r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
		})
	}
	return out
}
