package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PhaseFailover measures failover with and without a standby replica.
const PhaseFailover = "failover"

// FailoverResult is the failover phase: the same run without standby
// replicas and with one.
type FailoverResult struct {
	// Keys is the number of keys in the store (half of them move).
	Keys           int         `json:"keys"`
	WithoutStandby FailoverRun `json:"without_standby"`
	WithStandby    FailoverRun `json:"with_standby"`
}

// FailoverRun is one failover.
type FailoverRun struct {
	// Seconds is from the SIGKILL of the active instance to the first
	// committed output record of the last of its partitions to produce one
	// on the survivor. It includes the group's detection of the dead
	// member: session.timeout.ms (SessionTimeoutMs).
	Seconds          float64 `json:"seconds"`
	SessionTimeoutMs int     `json:"session_timeout_ms"`
	// Restored is what the survivor restored of the moved partitions.
	Restored int64 `json:"restored"`
	// MovedPartitions is how many input partitions moved.
	MovedPartitions int `json:"moved_partitions"`
}

// failover runs failoverRun without and then with a standby.
func (b *bench) failover(ctx context.Context) (FailoverResult, error) {
	fr := FailoverResult{Keys: b.cfg.RestoreKeys}
	var err error
	if fr.WithoutStandby, err = b.failoverRun(ctx, 0); err != nil {
		return fr, err
	}
	fr.WithStandby, err = b.failoverRun(ctx, 1)
	return fr, err
}

// failoverRun: two instances (a, b) of the stateful topology count
// RestoreKeys distinct keys (one changelog record each), with standbys
// replicas each. Once everything is committed (and, with standbys, every
// standby's lag is 0), input keeps arriving at a low rate on every
// partition; a is SIGKILLed, and the run measures until every partition of
// the output has a committed record written after the kill: b's own at
// once, a's once b has taken them over and restored them.
func (b *bench) failoverRun(ctx context.Context, standbys int) (FailoverRun, error) {
	run := FailoverRun{SessionTimeoutMs: 6000} // quickFailover
	input := fmt.Sprintf("%s-failover-%d", b.prefix, standbys)
	app := input
	step := fmt.Sprintf("failover-%d-standby", standbys)
	if err := b.writeInput(ctx, input, b.cfg.RestoreKeys, uniqueKeys(0)); err != nil {
		return run, err
	}
	output := StatefulOutput(input)
	if err := b.k.createTopic(ctx, output, b.cfg.Partitions); err != nil {
		return run, err
	}
	defer func() {
		if err := b.k.deleteTopics(context.WithoutCancel(ctx), input, output, ChangelogTopic(app), app+"-dlq"); err != nil {
			b.log.Warn("bench: cleanup", "err", err)
		}
	}()
	metrics := map[string]string{}
	start := func(id string) (*child, error) {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		metrics[id] = addr
		extra := append(quickFailover(), "instance.id="+id, "num.standby.replicas="+strconv.Itoa(standbys), "metrics.addr="+addr)
		c, _, err := startChild(step+"-"+id, b.cfg.Binary,
			b.runnerArgs("bench-stateful", input, app, "exactly_once_v2", filepath.Join(b.work, step+"-"+id), extra...),
			filepath.Join(b.work, step+"-"+id+".log"), false)
		return c, err
	}
	b.log.Info("bench: failover step start", "step", step)
	a, err := start("a")
	if err != nil {
		return run, err
	}
	defer a.kill()
	bb, err := start("b")
	if err != nil {
		return run, err
	}
	defer bb.kill()
	if _, _, _, err := b.watch(ctx, step, bb, app, input, int64(b.cfg.RestoreKeys)); err != nil {
		return run, fmt.Errorf("bench: %s: build: %w", step, err)
	}
	if standbys > 0 {
		if err := b.awaitStandbyLagZero(ctx, metrics["a"], metrics["b"]); err != nil {
			return run, fmt.Errorf("bench: %s: %w", step, err)
		}
	}
	// Input on every partition from here on, at a low rate.
	tctx, stopTrickle := context.WithCancel(ctx)
	trickled := make(chan error, 1)
	go func() {
		_, err := b.k.produceAtRate(tctx, input, 200, 10*time.Minute, b.cfg.ValueBytes, uniqueKeys(b.cfg.RestoreKeys))
		trickled <- err
	}()
	defer func() { stopTrickle(); <-trickled }()
	time.Sleep(2 * time.Second)

	restoredBefore := len(bb.find("restored store partition"))
	killed := time.Now()
	a.kill()
	b.log.Info("bench: failover: instance a killed (SIGKILL)", "step", step)
	// The last stable offsets after the kill: a's open transaction, if
	// any, holds its partitions' below its records, which read_committed
	// then skips once aborted; so every record read from here on was
	// committed after the kill.
	ends, err := b.k.adm.ListCommittedOffsets(ctx, output)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return run, fmt.Errorf("bench: %s: output offsets: %w", step, err)
	}
	last, err := b.firstOutputs(ctx, output, ends)
	if err != nil {
		return run, fmt.Errorf("bench: %s: %w", step, err)
	}
	run.Seconds = round(last.Sub(killed).Seconds(), 3)
	lines := bb.find("restored store partition")
	sum, err := restoredLines(lines[min(restoredBefore, len(lines)):])
	if err != nil {
		return run, err
	}
	run.Restored, run.MovedPartitions = sum.records, len(lines)-restoredBefore
	b.log.Info("bench: failover step end", "step", step, "seconds", run.Seconds, "restored", run.Restored,
		"moved_partitions", run.MovedPartitions)
	if err := bb.stop(60 * time.Second); err != nil {
		return run, fmt.Errorf("bench: %s: stop: %w", step, err)
	}
	return run, nil
}

// firstOutputs reads topic from ends (read_committed) until every partition
// has a record, and returns when the last of them was received.
func (b *bench) firstOutputs(ctx context.Context, topic string, ends kadm.ListedOffsets) (time.Time, error) {
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { parts[o.Partition] = kgo.NewOffset().At(o.Offset) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(b.brokers, ",")...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return time.Time{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, b.cfg.RunTimeout)
	defer cancel()
	seen := map[int32]bool{}
	var last time.Time
	for len(seen) < len(parts) {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		if err := ctx.Err(); err != nil {
			return last, fmt.Errorf("%d of %d output partitions had a record after the kill: %w", len(seen), len(parts), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !seen[r.Partition] {
				seen[r.Partition] = true
				last = now
			}
		})
	}
	return last, nil
}

// awaitStandbyLagZero waits until the runners at addrs report standby lag
// series, all at zero.
func (b *bench) awaitStandbyLagZero(ctx context.Context, addrs ...string) error {
	deadline := time.Now().Add(b.cfg.RunTimeout)
	for {
		ok := true
		for _, addr := range addrs {
			lags, err := scrapeStandbyLag(addr)
			if err != nil || len(lags) == 0 {
				ok = false
				break
			}
			for _, v := range lags {
				if v != 0 {
					ok = false
				}
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("standby lag not 0 in time")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// scrapeStandbyLag reads eos_standby_lag_records from a runner's /metrics.
func scrapeStandbyLag(addr string) ([]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "eos_standby_lag_records{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// freeLoopbackAddr returns a loopback address whose port was free a moment
// ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
