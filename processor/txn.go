package processor

// The commit protocol.
//
// Every input record's effects travel in one Kafka transaction: its output
// and changelog records are produced into the open transaction by the task
// workers, and its offset is sent to the same transaction at commit. A commit
// runs on the poll loop, in this order:
//
//  1. barrier: wait until every task worker has drained its queue, so no record
//     is half processed and no produce is in flight from our side;
//  2. look at what the workers reported: a worker that failed in this
//     transaction decides the outcome (see failed below), whether it failed
//     before the poll loop last looked or while the barrier drained it;
//  3. flush the tasks' record caches into the transaction (recordcache.go),
//     on their workers, and wait for them; then
//     SendOffsetsToTransaction(the position of every owned input partition,
//     with its task's stream time as metadata; the consumer's group metadata)
//     — KIP-447: the group coordinator fences a zombie whose generation is
//     stale, so even a transaction that carries only punctuator output is
//     fenced;
//  4. CommitTransaction (it flushes; the delivery drainer must keep draining
//     meanwhile);
//  5. wait until the drainer has seen every delivery report of the
//     transaction, and take from them the last changelog offset per store
//     partition;
//  6. apply every task's pending store batch together with the checkpoints
//     (next changelog offset) in one Pebble batch, and make the tasks' stream
//     time and punctuation schedules their committed point; the batch is
//     built here and written in the background while the next transaction
//     runs (changelog.DB.CommitAsync: every read that reaches Pebble waits
//     for it, and the keys it carries are answered from the stores' memory);
//  7. the next transaction begins lazily, when the poll loop dispatches the next
//     record or punctuation.
//
// Invariants:
//
//   - Pebble never holds uncommitted state: step 6 follows step 4. A crash
//     between 4 and 6 leaves Pebble behind its changelog, and restore replays the
//     tail from the checkpoint; it can never leave Pebble ahead.
//   - Offsets sent are positions the workers reached, never what the poll loop
//     dispatched: last processed + 1 for a partition processed in this
//     transaction, the committed position for an owned partition that was not.
//     A record a worker skipped (because another record failed first) is never
//     covered by an offset.
//   - Nothing commits after a worker failed in the transaction, except under
//     on.error=fail with clean failures only: then the records before the
//     failing one commit, the failing record and everything after it do not,
//     and the runner stops, so a restart begins at the failing record.
//   - An abortable failure anywhere drops every pending batch, rolls every task
//     that worked in the transaction back to its committed point (stream
//     time, punctuation schedule, processor instances: Kafka Streams closes
//     and rebuilds the task), and rewinds every partition processed in it to
//     its first offset in it, which is the last committed position: the
//     records are processed again in a new transaction, see exactly what the
//     first attempt saw, and nothing of the aborted one is visible to
//     read_committed readers or to the stores.
//   - An abort always has a deadline of its own and runs even when the caller's
//     context is cancelled; if the aborted records' delivery reports do not all
//     arrive by then, the producer is lost (it could not tell them from the
//     next transaction's): under exactly_once_v2 the runner replaces it (next
//     point), whose new tracker counts only its own records.
//   - A failure that lost the producer under exactly_once_v2 (recover.go:
//     fenced or invalid epoch, a producer id the broker no longer knows, or
//     a transactional call still failing at its deadline, past which the
//     broker aborts the transaction and bumps the epoch) is recovered in
//     process, as Kafka Streams handles a TaskMigratedException: nothing of
//     the open transaction is applied; every task is closed dirty (pending
//     batches and caches dropped, stream time and punctuation back to the
//     committed point with the task); the producer is closed and a new one
//     with the same transactional.id runs InitTransactions, which bumps the
//     epoch, so the broker has aborted the old transaction (or aborts it
//     now) and rejects whatever the old producer still had in flight; the
//     new producer has its own delivery tracker, so no report of the old
//     one is counted against it; and the consumer rejoins the group, so
//     every partition it is assigned again starts at the offset the group
//     committed and its stores restore the changelog tail from their
//     checkpoints. Whether the lost transaction committed or aborted (a
//     commit that timed out may have done either), the runner goes on from
//     what Kafka holds, as a restart would: nothing is lost or applied
//     twice. More than maxProducerRecoveries recoveries without a commit in
//     between stop the runner.
//   - Any other fatal failure (an authorization or configuration error, an
//     unflagged error, a failure under at_least_once) stops at once: nothing
//     is applied and nothing more is produced.
//
// Rejected design: writing store updates to Pebble as records are processed
// and undoing them on abort. An undo log must itself be crash safe, reads
// during the transaction would see state that may never commit, and a crash
// mid-undo corrupts the store. Keeping writes in a batch that reads see and
// applying it only after the commit costs a little memory and is simple to
// reason about. Also rejected: sending the offsets the poll loop dispatched.
// A worker that fails stops its queue, so dispatched is not processed; that
// gap once committed records nobody processed.
//
// Under at_least_once the same steps run without the transaction: wait for
// every delivery, commit offsets through the group, apply state.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// partitionKey names a topic partition in maps.
type partitionKey struct {
	Topic     string
	Partition int32
}

// position is an input partition's offset to send with a transaction: the
// next offset to read, and the stream time of its task at that point (kept in
// the committed offset's metadata, as Kafka Streams keeps partition time).
type position struct {
	Next       int64
	StreamTime time.Time // zero: unknown (no record seen yet)
}

// txnEnv is everything the commit protocol touches, so that txn_test.go can
// script failures (fenced on commit, abortable produce, a worker failing
// during the barrier) without a broker.
type txnEnv interface {
	barrier()
	// flushCaches flushes every task's record cache into the open
	// transaction on the task's worker, waits until done, and returns what
	// failed. Called after barrier.
	flushCaches() error
	// failure returns what the task workers reported failing in the open
	// transaction (nil if nothing); read after barrier.
	failure() error
	// clearFailure forgets the failures, once the transaction was aborted.
	clearFailure()
	begin() error
	// positions returns the offsets to send with the transaction: for every
	// owned input partition, last processed + 1 if its task processed a
	// record of it in this transaction, else its committed position if one
	// is known. Read after barrier.
	positions() map[partitionKey]position
	sendOffsets(ctx context.Context, pos map[partitionKey]position) error
	commit(ctx context.Context) error
	abort(ctx context.Context) error
	commitOffsets(ctx context.Context, pos map[partitionKey]position) error // at_least_once
	// awaitDeliveries waits for every delivery report of the produces so far
	// and returns the next changelog offset (last delivered + 1) per changelog
	// partition, and the first delivery error. A report still missing when
	// ctx ends is an error wrapping errDeliveriesPending.
	awaitDeliveries(ctx context.Context) (map[partitionKey]int64, error)
	// applyState applies the pending batches with the checkpoints and makes
	// pos the tasks' committed point.
	applyState(changelogNext map[partitionKey]int64, pos map[partitionKey]position) error
	// dropState drops pending batches and rolls every task that worked in
	// the transaction back to its committed point.
	dropState() error
	rewind(first map[partitionKey]int64) error

	// The recovery from a lost producer (recover.go), workers drained.
	//
	// producerFatal is the producer's own fatal error, nil if none.
	producerFatal() error
	// loseTasks closes every active task dirty, dropping its pending writes
	// and caches, and forgets every owned partition, as when the group
	// declares the assignment lost.
	loseTasks() error
	// resetProducer closes the producer (bounded) and builds and
	// initializes a new one with the same configuration and
	// transactional.id. An error wrapping errUnfinished may go away on
	// another attempt (the broker still unreachable).
	resetProducer(ctx context.Context) error
	// rejoin makes the consumer leave and join the group again, so that it
	// is assigned partitions afresh, at their committed offsets.
	rejoin() error
}

// errDeliveriesPending: delivery reports were still missing at a deadline.
var errDeliveriesPending = errors.New("delivery reports still pending")

// txnState is the open transaction's bookkeeping. Owned by the poll loop.
type txnState struct {
	open    bool
	started time.Time
	records int
	first   map[partitionKey]int64 // first offset dispatched in this transaction
}

func newTxnState() txnState {
	return txnState{first: map[partitionKey]int64{}}
}

// track records that the record at offset of p was dispatched in this transaction.
func (s *txnState) track(p partitionKey, offset int64) {
	if _, ok := s.first[p]; !ok {
		s.first[p] = offset
	}
	s.records++
}

// untrack forgets partitions (revoked or lost) so that an abort does not
// rewind them.
func (s *txnState) untrack(p partitionKey) {
	delete(s.first, p)
}

// committer runs the protocol above over a txnEnv.
type committer struct {
	env           txnEnv
	transactional bool
	retries       int
	retryBackoff  time.Duration
	// abortTimeout bounds an abort and the wait for its delivery reports;
	// the runner sets it to transaction.timeout.ms (the broker aborts a
	// transaction by then anyway).
	abortTimeout time.Duration
	state        txnState
	// recoveries counts the recoveries from a lost producer (recover.go)
	// since the last commit; maxRecoveries bounds them.
	recoveries    int
	maxRecoveries int
}

func newCommitter(env txnEnv, transactional bool) *committer {
	return &committer{env: env, transactional: transactional, retries: 5, retryBackoff: 100 * time.Millisecond,
		abortTimeout: 30 * time.Second, state: newTxnState(), maxRecoveries: maxProducerRecoveries}
}

// ensureOpen begins a transaction if none is open. Called by the poll loop
// before it dispatches work that may produce.
func (c *committer) ensureOpen() error {
	if c.state.open {
		return nil
	}
	if c.transactional {
		if err := c.env.begin(); err != nil {
			return fmt.Errorf("begin transaction: %w: %w", ErrFatal, err)
		}
	}
	c.state.open, c.state.started = true, time.Now()
	return nil
}

// retry calls fn until it succeeds, fails with a non-retriable error, or the
// retries run out or its deadline passes (then the error counts as fatal and
// is marked errUnfinished: the transaction timeout aborts it on the broker
// anyway, and under exactly_once_v2 the runner recovers, recover.go).
func (c *committer) retry(ctx context.Context, what string, fn func(context.Context) error) (ErrorClass, error) {
	return c.retryWith(ctx, what, Classify, fn)
}

// retryWith is retry with a given classification.
func (c *committer) retryWith(ctx context.Context, what string, classify func(error) ErrorClass, fn func(context.Context) error) (ErrorClass, error) {
	var err error
	for i := 0; i <= c.retries; i++ {
		if err = fn(ctx); err == nil {
			return 0, nil
		}
		class := classify(err)
		if class != Retriable {
			return class, fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			err = fmt.Errorf("%s: %w (after %v)", what, ctx.Err(), err)
			if errors.Is(err, context.DeadlineExceeded) {
				err = unfinished(err) // not a shutdown (cancelled)
			}
			return Fatal, err
		case <-time.After(c.retryBackoff << i):
		}
	}
	return Fatal, unfinished(fmt.Errorf("%s: still failing after %d retries: %w", what, c.retries, err))
}

// ErrAborted is returned by commit when the transaction was aborted and its
// records will be processed again; the runner goes on.
var ErrAborted = errors.New("transaction aborted")

// commitTxn runs the protocol. It returns nil on success; an error wrapping
// ErrAborted after a successful abort (the records are processed again); the
// workers' *ProcessingError under on.error=fail, after committing what came
// before it (the runner stops); or an error wrapping ErrFatal.
func (c *committer) commitTxn(ctx context.Context) error {
	c.env.barrier()
	if f := c.env.failure(); f != nil {
		return c.failed(ctx, f)
	}
	if !c.state.open {
		return nil
	}
	return c.commitOpen(ctx)
}

// commitOpen runs steps 3 to 6 on the open transaction, workers drained.
func (c *committer) commitOpen(ctx context.Context) error {
	if err := c.env.flushCaches(); err != nil {
		// Never a record's own failure (recordcache.go), so failed aborts:
		// and retries after a runtime error, else stops.
		return c.failed(ctx, err)
	}
	pos := c.env.positions()
	if c.transactional {
		// SendOffsetsToTransaction is retriable but not resumable: a retry
		// sends the same offsets with the same group metadata.
		if class, err := c.retry(ctx, "send offsets to transaction", func(ctx context.Context) error {
			return c.env.sendOffsets(ctx, pos)
		}); err != nil {
			return c.fail(ctx, class, err)
		}
		if class, err := c.retry(ctx, "commit transaction", c.env.commit); err != nil {
			return c.fail(ctx, class, err)
		}
	}
	ends, err := c.env.awaitDeliveries(ctx)
	if err != nil {
		if c.transactional {
			// The broker committed the transaction, so every record in it was
			// delivered; a report error here means our bookkeeping broke.
			return fmt.Errorf("%w: deliveries after commit: %w", ErrFatal, err)
		}
		return c.fail(ctx, Abortable, fmt.Errorf("delivery: %w", err))
	}
	if !c.transactional {
		if class, err := c.retryWith(ctx, "commit offsets", classifyOffsetCommit, func(ctx context.Context) error {
			return c.env.commitOffsets(ctx, pos)
		}); err != nil {
			return c.fail(ctx, class, err)
		}
	}
	if err := c.env.applyState(ends, pos); err != nil {
		// Kafka has the transaction; Pebble stays at its previous checkpoint
		// and restore replays the tail on restart. Going on would let Pebble
		// fall further behind what tasks read, so stop.
		return fmt.Errorf("%w: apply committed state: %w", ErrFatal, err)
	}
	c.state = newTxnState()
	c.recoveries = 0
	return nil
}

// failed settles the open transaction after task workers reported failures
// in it, by what the failures allow (failureOutcome):
//
//   - every failure a record's own, under on.error=fail: the failing records
//     left nothing behind and their tasks stopped at them, so commit what the
//     workers processed and return the first failure: the runner stops, and a
//     restart begins at the failing record;
//   - a runtime failure (a produce or store error, the record not at fault):
//     abort; the records are processed again;
//   - anything else (a punctuator's error, a fatal producer error): abort
//     what can be aborted and stop.
func (c *committer) failed(ctx context.Context, f error) error {
	switch failureOutcome(f) {
	case stopAfterCommit:
		if c.state.open {
			if err := c.commitOpen(ctx); err != nil {
				return fmt.Errorf("%w (committing the records before it: %w)", f, err)
			}
		}
		return f
	case abortAndRetry:
		if err := c.abortTxn(ctx); err != nil {
			return fmt.Errorf("%w (aborting after: %v)", err, f)
		}
		c.env.clearFailure()
		return fmt.Errorf("%w: %w", ErrAborted, f)
	}
	if err := c.abortTxn(ctx); err != nil {
		return fmt.Errorf("%w: %w (abort: %v)", ErrFatal, f, err)
	}
	return fmt.Errorf("%w: %w", ErrFatal, f)
}

// fail handles a failed commit step by its class.
func (c *committer) fail(ctx context.Context, class ErrorClass, err error) error {
	if class == Fatal {
		return fmt.Errorf("%w: %w", ErrFatal, err)
	}
	if aerr := c.abortTxn(ctx); aerr != nil {
		return fmt.Errorf("%w (aborting after: %v)", aerr, err)
	}
	return fmt.Errorf("%w: %w", ErrAborted, err)
}

// abortTxn aborts the open transaction: drop pending state, roll the tasks
// back and rewind every partition processed in it to its first offset in it.
// It has its own deadline and is not cut short by ctx's cancellation (a
// shutdown): an abort left half done would hold read_committed readers back
// until the transaction timeout.
func (c *committer) abortTxn(ctx context.Context) error {
	c.env.barrier()
	if !c.state.open {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.abortTimeout)
	defer cancel()
	if c.transactional {
		if _, err := c.retry(actx, "abort transaction", c.env.abort); err != nil {
			return fmt.Errorf("%w: %w", ErrFatal, err)
		}
	}
	// Aborted records report errors: nothing to keep. But every report must
	// arrive, or it would be counted against the next transaction.
	if _, err := c.env.awaitDeliveries(actx); errors.Is(err, errDeliveriesPending) {
		// A new producer, with a tracker of its own, could tell them apart.
		return unfinished(fmt.Errorf("%w: after abort: %w", ErrFatal, err))
	}
	if err := c.env.dropState(); err != nil {
		return fmt.Errorf("%w: roll tasks back after abort: %w", ErrFatal, err)
	}
	first := c.state.first
	c.state = newTxnState()
	if err := c.env.rewind(first); err != nil {
		return fmt.Errorf("%w: rewind after abort: %w", ErrFatal, err)
	}
	return nil
}

// due reports whether the open transaction should commit now.
func (c *committer) due(now time.Time, interval time.Duration, maxRecords int) bool {
	if !c.state.open {
		return false
	}
	return now.Sub(c.state.started) >= interval || (maxRecords > 0 && c.state.records >= maxRecords)
}
