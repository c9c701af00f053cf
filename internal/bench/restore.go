package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// restore builds a store of RestoreKeys keys, then restarts its runner three
// ways and reads what each restart restored from the runner's logs:
//
//  1. build: the stateful topology under exactly_once_v2 counts RestoreKeys
//     records with distinct keys (one changelog record each); SIGTERM.
//  2. clean restart on the same state dir: expected to restore 0 records.
//  3. empty state dir: restores the whole changelog; this is the rate.
//  4. that runner gets RestoreKeys/10 more records (at least 3s of them at
//     LatencyRate) and is killed (SIGKILL)
//     once about half of them are committed; a restart on its state dir
//     restores only what was committed to Kafka and not yet applied to
//     Pebble, at most one transaction's worth.
func (b *bench) restore(ctx context.Context) (RestoreResult, error) {
	rr := RestoreResult{Keys: b.cfg.RestoreKeys}
	input := b.prefix + "-restore"
	app := input
	if err := b.writeInput(ctx, input, b.cfg.RestoreKeys, uniqueKeys(0)); err != nil {
		return rr, err
	}
	if err := b.k.createTopic(ctx, StatefulOutput(input), b.cfg.Partitions); err != nil {
		return rr, err
	}
	defer func() {
		if err := b.k.deleteTopics(context.WithoutCancel(ctx), input, StatefulOutput(input), ChangelogTopic(app), app+"-dlq"); err != nil {
			b.log.Warn("bench: cleanup", "err", err)
		}
	}()
	dirA, dirB := filepath.Join(b.work, "restore-a"), filepath.Join(b.work, "restore-b")
	start := func(step, dir string) (*child, error) {
		b.log.Info("bench: restore step start", "step", step)
		c, _, err := startChild("restore-"+step, b.cfg.Binary,
			b.runnerArgs("bench-stateful", input, app, "exactly_once_v2", dir, quickFailover()...),
			filepath.Join(b.work, "restore-"+step+".log"), false)
		return c, err
	}

	// 1. Build the store.
	c, err := start("build", dirA)
	if err != nil {
		return rr, err
	}
	defer func() { c.kill() }()
	w, peak, _, err := b.watch(ctx, "restore-build", c, app, input, int64(b.cfg.RestoreKeys))
	if err != nil {
		return rr, fmt.Errorf("bench: restore build: %w", err)
	}
	rr.BuildRecordsPerSec, rr.BuildPeakRSSBytes = round(w.recordsPerSec(), 0), peak
	b.log.Info("bench: restore step end", "step", "build", "records_per_sec", rr.BuildRecordsPerSec, "peak_rss_mib", peak>>20)
	if err := c.stop(60 * time.Second); err != nil {
		return rr, fmt.Errorf("bench: restore build: stop: %w", err)
	}

	// 2. Clean restart on the same state dir.
	if c, err = start("clean-restart", dirA); err != nil {
		return rr, err
	}
	sum, err := b.awaitRestores(ctx, c)
	if err != nil {
		return rr, fmt.Errorf("bench: restore clean restart: %w", err)
	}
	rr.CleanRestartRestored = sum.records
	if err := c.stop(60 * time.Second); err != nil {
		return rr, fmt.Errorf("bench: restore clean restart: stop: %w", err)
	}
	b.log.Info("bench: restore step end", "step", "clean-restart", "restored", sum.records)

	// 3. Empty state dir.
	if c, err = start("empty-dir", dirB); err != nil {
		return rr, err
	}
	if sum, err = b.awaitRestores(ctx, c); err != nil {
		return rr, fmt.Errorf("bench: restore into an empty state dir: %w", err)
	}
	if s, err := c.sample(); err == nil {
		rr.RestorePeakRSSBytes = s.PeakRSS
	}
	rr.Records, rr.Seconds = sum.records, round(sum.span.Seconds(), 3)
	if sum.span > 0 {
		rr.RecordsPerSec = round(float64(sum.records)/sum.span.Seconds(), 0)
	}
	b.log.Info("bench: restore step end", "step", "empty-dir", "restored", sum.records, "seconds", rr.Seconds,
		"records_per_sec", rr.RecordsPerSec)

	// 4. More input at the latency phase's rate (so that the runner is
	// mid-stream, not done, when it is killed), SIGKILL halfway, restart.
	rate := b.cfg.LatencyRate
	extra := max(b.cfg.RestoreKeys/10, 3*rate) // at least 3s of input
	wrote := make(chan error, 1)
	go func() {
		_, err := b.k.produceAtRate(ctx, input, rate, time.Duration(float64(extra)/float64(rate)*float64(time.Second)),
			b.cfg.ValueBytes, uniqueKeys(b.cfg.RestoreKeys))
		wrote <- err
	}()
	half := int64(b.cfg.RestoreKeys + extra/2)
	for {
		n, err := b.k.committed(ctx, app, input)
		if err != nil {
			return rr, err
		}
		if n >= half {
			c.kill()
			rr.CrashCommittedBeforeKill = n
			break
		}
		if ok, why := c.exited(); ok {
			return rr, fmt.Errorf("bench: restore crash step: %w: %w", errExitedEarly, why)
		}
		time.Sleep(b.cfg.PollInterval / 5)
	}
	if err := <-wrote; err != nil {
		return rr, err
	}
	total, err := b.k.endOffsets(ctx, input)
	if err != nil {
		return rr, err
	}
	b.log.Info("bench: restore step: runner killed (SIGKILL)", "committed", rr.CrashCommittedBeforeKill, "of", total)
	if c, err = start("crash-restart", dirB); err != nil {
		return rr, err
	}
	if sum, err = b.awaitRestores(ctx, c); err != nil {
		return rr, fmt.Errorf("bench: restore after SIGKILL: %w", err)
	}
	rr.CrashRestartRestored = sum.records
	b.log.Info("bench: restore step end", "step", "crash-restart", "restored", sum.records)
	// The restarted runner must finish the input: the kill lost nothing.
	if _, _, _, err := b.watch(ctx, "restore-crash-restart", c, app, input, total); err != nil {
		return rr, fmt.Errorf("bench: restore after SIGKILL: finishing the input: %w", err)
	}
	if err := c.stop(60 * time.Second); err != nil {
		return rr, fmt.Errorf("bench: restore after SIGKILL: stop: %w", err)
	}
	return rr, nil
}

// awaitRestores waits until the runner has logged a "restored store
// partition" line for every partition, and sums them.
func (b *bench) awaitRestores(ctx context.Context, c *child) (restoreSummary, error) {
	deadline := time.Now().Add(b.cfg.RunTimeout)
	last := time.Now()
	for {
		lines := c.find("restored store partition")
		if len(lines) >= b.cfg.Partitions {
			return restoredLines(lines)
		}
		if ok, why := c.exited(); ok {
			return restoreSummary{}, fmt.Errorf("%w: %w", errExitedEarly, why)
		}
		if time.Now().After(deadline) {
			return restoreSummary{}, fmt.Errorf("%d of %d partitions restored after %v", len(lines), b.cfg.Partitions, b.cfg.RunTimeout)
		}
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			b.log.Info("bench: restore progress", "step", c.name, "partitions_restored", len(lines), "of", b.cfg.Partitions)
		}
		select {
		case <-ctx.Done():
			return restoreSummary{}, ctx.Err()
		case <-time.After(b.cfg.PollInterval):
		}
	}
}
