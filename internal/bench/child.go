package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// kept reports the runner log messages the bench reads back; every line
// also goes to the child's log file.
func kept(msg string) bool {
	switch msg {
	case "restored store partition", "runner started", "runner stopping on error", "runner stopped", "partitions assigned":
		return true
	}
	return false
}

// child is one eos-runner process started by the bench: the broker, a
// runner or a bench worker. Its stderr (JSON logs for runners) is copied to
// a log file; the lines kept, and every ERROR line, are
// kept parsed.
type child struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	logPath string

	// done is closed when the process has exited; err and state are set
	// before.
	done  chan struct{}
	err   error
	state *os.ProcessState

	mu    sync.Mutex // guards lines and tail
	lines []map[string]any
	tail  []string // the last lines, for error messages
}

// startChild starts bin with args; its stderr goes to logPath. If stdout is
// not nil, the child's stdout is returned through it for the caller to read.
func startChild(name, bin string, args []string, logPath string, wantStdout bool) (*child, io.Reader, error) {
	cmd := exec.Command(bin, args...)
	// The children must not outlive the bench, even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %s: log file: %w", name, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	var stdout io.Reader
	if wantStdout {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			logFile.Close()
			return nil, nil, fmt.Errorf("bench: %s: %w", name, err)
		}
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	c.started = time.Now()
	go func() {
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			logFile.Write(append(line, '\n'))
			c.keep(line)
		}
		// Wait only after stderr is drained (os/exec's rule for pipes).
		c.err = cmd.Wait()
		c.state = cmd.ProcessState
		close(c.done)
	}()
	return c, stdout, nil
}

// keep parses one stderr line and keeps it if the bench needs it.
func (c *child) keep(line []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tail = append(c.tail, string(line))
	if len(c.tail) > 20 {
		c.tail = c.tail[1:]
	}
	var m map[string]any
	if json.Unmarshal(line, &m) != nil {
		return
	}
	msg, _ := m["msg"].(string)
	if kept(msg) || m["level"] == "ERROR" {
		c.lines = append(c.lines, m)
	}
}

// find returns the kept log lines with message msg.
func (c *child) find(msg string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, l := range c.lines {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// exited reports whether the process has exited, with a description naming
// its exit status and last log lines.
func (c *child) exited() (bool, error) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return true, fmt.Errorf("bench: %s exited (%v); last log lines (all in %s):\n%s", c.name, c.err, c.logPath,
			strings.Join(c.tail, "\n"))
	default:
		return false, nil
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM and waits up to timeout for the exit, then SIGKILLs.
// It returns the exit error of a process that did not exit cleanly.
func (c *child) stop(timeout time.Duration) error {
	if ok, _ := c.exited(); ok {
		return c.err
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.err
	case <-time.After(timeout):
		c.kill()
		return fmt.Errorf("bench: %s did not stop within %v of SIGTERM; killed", c.name, timeout)
	}
}

// kill sends SIGKILL and waits for the exit.
func (c *child) kill() {
	if ok, _ := c.exited(); ok {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// sample reads the running process's CPU and memory from /proc.
func (c *child) sample() (procSample, error) {
	if ok, err := c.exited(); ok {
		return procSample{}, err
	}
	return sampleProc(c.pid())
}

// startBroker starts `eos-runner broker` on a free port, in memory, and
// returns it with its bootstrap address.
func startBroker(bin string, partitions int, logPath string) (*child, string, error) {
	c, stdout, err := startChild("broker", bin, []string{"broker", "--listen", "127.0.0.1:0",
		"--partitions", fmt.Sprint(partitions), "--log-level", "warn"}, logPath, true)
	if err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		c.kill()
		_, why := c.exited()
		return nil, "", fmt.Errorf("bench: broker did not print its address: %w (%v)", err, why)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "bootstrap: ")
	if !ok {
		c.kill()
		return nil, "", fmt.Errorf("bench: broker printed %q, want \"bootstrap: ADDR\"", line)
	}
	go io.Copy(io.Discard, stdout)
	return c, addr, nil
}

// restoreSummary sums a runner's "restored store partition" log lines.
type restoreSummary struct {
	partitions int
	records    int64
	// span is from the earliest restore's start (the line's time minus its
	// elapsed) to the latest line: the wall time spent restoring, whether
	// the runner restores partitions one at a time or in parallel.
	span time.Duration
}

// restoredLines sums lines, which are "restored store partition" records
// of the runner's JSON log (time, records, elapsed).
func restoredLines(lines []map[string]any) (restoreSummary, error) {
	var (
		s          restoreSummary
		first, end time.Time
	)
	for _, l := range lines {
		n, ok := l["records"].(float64)
		if !ok {
			return s, fmt.Errorf("bench: restore line without records: %v", l)
		}
		ts, _ := l["time"].(string)
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return s, fmt.Errorf("bench: restore line time %q: %w", ts, err)
		}
		es, _ := l["elapsed"].(string)
		d, err := time.ParseDuration(es)
		if err != nil {
			return s, fmt.Errorf("bench: restore line elapsed %q: %w", es, err)
		}
		s.partitions++
		s.records += int64(n)
		if began := at.Add(-d); first.IsZero() || began.Before(first) {
			first = began
		}
		if at.After(end) {
			end = at
		}
	}
	s.span = end.Sub(first)
	return s, nil
}

// errExitedEarly is returned when a runner exits before its run is done.
var errExitedEarly = errors.New("runner exited before the run was done")
