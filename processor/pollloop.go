package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/topology"
)

// The poll loop (docs/architecture.md, section 3): it polls records and
// hands them to the task workers (through a task's partition group when it
// has several inputs), commits when due or when a worker failed, acts on
// the commit's outcome, and fires wall-clock punctuation. It owns the
// consumer, the transaction's bookkeeping and the task manager; the workers
// own their tasks' processors and stores.

// runWork runs a batch of tasks' work on its worker, in order
// (dispatch.go). The processed counter moves once per batch, and each
// record's process latency starts where the last one's ended: per record,
// the metrics' atomic updates and clock reads were a measurable share of a
// record's cost.
func (r *Runner) runWork(ctx context.Context, batch []work) {
	processed := 0
	last := time.Now()
	for _, w := range batch {
		switch {
		case w.fn != nil:
			w.fn(ctx)
			last = time.Now()
		case r.failures.any():
		default:
			var err error
			if w.msg != nil {
				err = w.t.process(ctx, w.msg)
				now := time.Now()
				r.m.processLatency.Observe(now.Sub(last).Seconds())
				last = now
				processed++
			} else {
				err = w.t.punctuate(ctx, topology.WallClockTime, w.wall)
				last = time.Now()
			}
			if err != nil {
				r.failures.add(err)
			}
		}
	}
	if processed > 0 {
		r.m.processed.Add(float64(processed))
	}
}

// loop is the poll loop.
func (r *Runner) loop(ctx context.Context) error {
	lastCleanup, lastReport, lastPunctuate := time.Now(), time.Now(), time.Now()
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now() // one clock read per pass: the loop passes once per record
		r.health.loopTick(now, r.tm)
		if r.fatal != nil {
			return r.fatal
		}
		if p := r.producerFatal.Load(); p != nil {
			if isAuthorization(*p) {
				return *p
			}
			return fmt.Errorf("%w: producer: %w", ErrFatal, *p)
		}
		if p := r.globalFatal.Load(); p != nil {
			return fmt.Errorf("%w: global tables: %w", ErrFatal, *p)
		}
		if err := r.tm.handleRestores(r.consumer); err != nil {
			return err
		}
		r.tm.reconcileStandbys(r.groupView()) // standby.go
		// A worker's failure settles the transaction at once (txn.go:
		// committer.failed), as a commit does.
		if r.failures.any() || r.com.due(now, r.cfg.CommitInterval, r.cfg.CommitMaxRecords) {
			if err := r.commit(ctx); err != nil {
				return err
			}
		}
		if err := r.dispatchBuffered(now); err != nil {
			return err
		}
		if now.Sub(lastPunctuate) >= 10*time.Millisecond {
			lastPunctuate = now
			r.punctuateWallClock(now)
		}
		if now.Sub(lastReport) >= 10*time.Second {
			lastReport = now
			r.reportProgress()
		}
		if now.Sub(lastCleanup) > time.Minute {
			lastCleanup = now
			r.tm.cleanup(now)
		}
		timeout := 100
		if r.com.state.open {
			timeout = int(max(1, min(100, (r.cfg.CommitInterval-now.Sub(r.com.state.started)).Milliseconds())))
		}
		r.disp.flushIfOld(now)
		if r.disp.pending() {
			timeout = 0 // never wait while holding work the workers could run
		}
		e := r.consumer.Poll(timeout)
		if _, ok := e.(*kafka.Message); !ok {
			r.disp.flush() // nothing more ready: hand over what was collected
		}
		switch e := e.(type) {
		case *kafka.Message:
			if err := r.onMessage(e); err != nil {
				return err
			}
		case kafka.Error:
			if ae := r.groupAuthorization(e); isAuthorization(ae) {
				return ae
			}
			if e.IsFatal() {
				return fmt.Errorf("%w: consumer: %w", ErrFatal, e)
			}
			r.log.Warn("consumer error", "err", e)
		}
	}
}

// reportProgress logs the runner's counters and tasks, for operators and
// for tests that watch a running process.
func (r *Runner) reportProgress() {
	tasks, running, restoring := r.tm.counts()
	r.m.restore.keepOnly(restoringStores(r.tm))
	r.log.Info("progress", "processed", int64(counterValue(r.m.processed)), "commits", int64(counterValue(r.m.commits)),
		"aborts", int64(counterValue(r.m.aborts)), "tasks", tasks, "running", running, "restoring", restoring)
}

// onMessage hands a polled record to its task's worker.
func (r *Runner) onMessage(m *kafka.Message) error {
	tp := partitionKey{*m.TopicPartition.Topic, m.TopicPartition.Partition}
	if m.TopicPartition.Error != nil {
		if ae := r.authorization(m.TopicPartition.Error, "topic", tp.Topic, "READ"); isAuthorization(ae) {
			return ae
		}
		r.log.Warn("consume error", "topic", tp.Topic, "partition", tp.Partition, "err", m.TopicPartition.Error)
		return nil
	}
	c, ok := r.consumedBy[tp.Topic]
	if !ok {
		c = r.m.consumed.WithLabelValues(tp.Topic)
		r.consumedBy[tp.Topic] = c
	}
	c.Inc()
	t := r.tm.taskOf[tp]
	if t == nil {
		return nil // revoked meanwhile
	}
	off := int64(m.TopicPartition.Offset)
	if !r.tm.ready[t.id] {
		// Fetched before the pause took effect: process it after restore.
		if prev, ok := r.tm.resumeAt[tp]; !ok || off < prev {
			r.tm.resumeAt[tp] = off
		}
		return nil
	}
	if next, ok := r.tm.position[tp]; ok && off < next {
		// librdkafka delivered a record again that this assignment already
		// processed; processing it twice would break exactly-once.
		r.m.redelivered.Inc()
		r.log.Warn("dropping a record delivered again", "topic", tp.Topic, "partition", tp.Partition, "offset", off, "next", next)
		return nil
	}
	r.tm.position[tp] = off + 1
	if t.inputs != nil {
		// Several input partitions: the task takes them in timestamp
		// order (partitiongroup.go); dispatchBuffered hands them on.
		t.inputs.add(tp, m)
		r.buffered[t] = true
		return nil
	}
	return r.dispatchRecord(t, tp, m)
}

// dispatchRecord makes a record part of the open transaction and hands it to
// its task's worker.
func (r *Runner) dispatchRecord(t *task, tp partitionKey, m *kafka.Message) error {
	if err := r.com.ensureOpen(); err != nil {
		return err
	}
	if r.com.state.started != r.e2eTxn {
		r.e2eTxn, r.e2eTimestamps = r.com.state.started, r.e2eTimestamps[:0]
	}
	r.e2eTimestamps = append(r.e2eTimestamps, m.Timestamp.UnixMilli())
	r.com.state.track(tp, int64(m.TopicPartition.Offset))
	r.disp.dispatch(work{t: t, msg: m})
	return nil
}

// dispatchBuffered dispatches, for every task with buffered records, those
// its partition group lets go now.
func (r *Runner) dispatchBuffered(now time.Time) error {
	if len(r.buffered) == 0 {
		return nil
	}
	lags := map[partitionKey]int64{}
	lag := func(tp partitionKey) int64 {
		l, ok := lags[tp]
		if !ok {
			l = r.knownLag(tp)
			lags[tp] = l
		}
		return l
	}
	for t := range r.buffered {
		if r.tm.tasks[t.id] != t {
			delete(r.buffered, t) // closed
			continue
		}
		for {
			m := t.inputs.next(now, lag)
			if m == nil {
				break
			}
			tp := partitionKey{*m.TopicPartition.Topic, m.TopicPartition.Partition}
			if err := r.dispatchRecord(t, tp, m); err != nil {
				return err
			}
		}
		if t.inputs.buffered == 0 {
			delete(r.buffered, t)
		}
	}
	return nil
}

// knownLag is how many records of a partition the broker has past what this
// runner received, -1 when unknown (no fetch answered yet): the high
// watermark of the last fetch less the larger of the received position and
// librdkafka's application position (which moves past transaction markers,
// never delivered).
func (r *Runner) knownLag(tp partitionKey) int64 {
	_, hi, err := r.consumer.GetWatermarkOffsets(tp.Topic, tp.Partition)
	if err != nil || hi < 0 {
		return -1
	}
	pos := r.tm.position[tp]
	topic := tp.Topic
	if ps, err := r.consumer.Position([]kafka.TopicPartition{{Topic: &topic, Partition: tp.Partition}}); err == nil && len(ps) == 1 && ps[0].Offset >= 0 {
		pos = max(pos, int64(ps[0].Offset))
	}
	return max(0, hi-pos)
}

// commit runs the commit protocol and acts on its outcome.
func (r *Runner) commit(ctx context.Context) error {
	start := time.Now()
	// librdkafka's transactional calls block without a deadline when the
	// context has none; past the transaction timeout the broker aborts the
	// transaction anyway, so waiting longer only hides a stuck commit.
	ctx, cancel := context.WithTimeout(ctx, r.cfg.TransactionTimeout)
	defer cancel()
	err := r.com.commitTxn(ctx)
	// A topic the runner may not write surfaces as an abort naming the
	// refusal, or as an abort that failed in turn (the cause then is
	// "Erroneous state"): a fatal stop is worth one DescribeTopics. A lost
	// producer is not (recover.go): its broker is likely out of reach.
	if (hasAuthorizationCode(err) || errors.Is(err, ErrFatal)) && lostProducer(err, nil) == "" {
		if ae := r.missingTopicACLs(context.WithoutCancel(ctx)); ae != nil {
			return ae
		}
	}
	var pe *ProcessingError
	switch {
	case err == nil:
		r.consecutiveAborts = 0
		r.m.commits.Inc()
		done := time.Now()
		r.m.commitSeconds.Observe(done.Sub(start).Seconds())
		for _, ts := range r.e2eTimestamps {
			r.m.e2eLatency.Observe(max(0, float64(done.UnixMilli()-ts)/1000))
		}
		r.e2eTimestamps = r.e2eTimestamps[:0]
		r.health.publishOwned(r.tm)
		r.purge.afterCommit(context.WithoutCancel(ctx), start, r.tm.committed)
		return nil
	case errors.As(err, &pe) && !errors.Is(err, ErrFatal):
		// on.error=fail: what came before the record committed (unless that
		// commit aborted); stop at the record.
		return fmt.Errorf("on.error=fail: %w", err)
	case errors.Is(err, ErrAborted) && IsMigrated(err):
		// The group coordinator no longer knows this member (its session
		// ran out, e.g. a long pause): its partitions may belong to another
		// member now. The consumer rejoins in the background; until the
		// rebalance tells us what we own, aborts are expected, not a sign of
		// a broken producer, so they do not count toward the limit.
		r.m.aborts.Inc()
		r.log.Warn("transaction aborted: this member was fenced by the group; waiting for the rebalance", "err", err)
		return nil
	case errors.Is(err, ErrAborted):
		r.consecutiveAborts++
		if r.consecutiveAborts > maxConsecutiveAborts {
			if ae := r.missingTopicACLs(context.WithoutCancel(ctx)); ae != nil {
				return ae
			}
			return fmt.Errorf("%w: %d aborts in a row, last: %w", ErrFatal, r.consecutiveAborts-1, err)
		}
		r.m.aborts.Inc()
		r.log.Warn("transaction aborted; records will be processed again", "err", err)
		return nil
	}
	return err
}

// maxConsecutiveAborts stops a runner whose transactions keep failing.
const maxConsecutiveAborts = 5

// punctuateWallClock dispatches wall-clock punctuation to the tasks due.
func (r *Runner) punctuateWallClock(now time.Time) {
	for _, t := range r.tm.wallClockDue(now) {
		if err := r.com.ensureOpen(); err != nil {
			r.fatal = err
			return
		}
		r.disp.dispatch(work{t: t, wall: now})
	}
}
