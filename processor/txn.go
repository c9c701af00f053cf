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
//  2. SendOffsetsToTransaction(next offset per processed partition, the
//     consumer's group metadata) — KIP-447: the group coordinator fences a
//     zombie whose generation is stale;
//  3. CommitTransaction (it flushes; the delivery drainer must keep draining
//     meanwhile);
//  4. wait until the drainer has seen every delivery report of the
//     transaction, and take from them the last changelog offset per store
//     partition;
//  5. apply every task's pending store batch together with the checkpoints
//     (next changelog offset) in one synced Pebble batch;
//  6. the next transaction begins lazily, when the poll loop dispatches the next
//     record or punctuation.
//
// Invariants:
//
//   - Pebble never holds uncommitted state: step 5 follows step 3. A crash
//     between 3 and 5 leaves Pebble behind its changelog, and restore replays the
//     tail from the checkpoint; it can never leave Pebble ahead.
//   - Offsets sent are the next offset to read, last processed + 1, and only
//     for partitions processed in this transaction.
//   - An abortable failure anywhere drops every pending batch and rewinds every
//     partition processed in the transaction to its first offset in it, which
//     is the last committed position: the records are processed again in a new
//     transaction and nothing of the aborted one is visible to read_committed
//     readers or to the stores.
//   - A fatal failure (fenced, invalid epoch, unflagged error) stops at once:
//     nothing is applied and nothing more is produced.
//
// Rejected design: writing store updates to Pebble as records are processed
// and undoing them on abort. An undo log must itself be crash safe, reads
// during the transaction would see state that may never commit, and a crash
// mid-undo corrupts the store. Keeping writes in a batch that reads see and
// applying it only after the commit costs a little memory and is simple to
// reason about.
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

// txnEnv is everything the commit protocol touches, so that txn_test.go can
// script failures (fenced on commit, abortable produce) without a broker.
type txnEnv interface {
	barrier()
	begin() error
	sendOffsets(ctx context.Context, next map[partitionKey]int64) error
	commit(ctx context.Context) error
	abort(ctx context.Context) error
	commitOffsets(ctx context.Context, next map[partitionKey]int64) error // at_least_once
	// awaitDeliveries waits for every delivery report of the produces so far
	// and returns the next changelog offset (last delivered + 1) per changelog
	// partition, and the first delivery error.
	awaitDeliveries(ctx context.Context) (map[partitionKey]int64, error)
	applyState(changelogNext map[partitionKey]int64) error
	dropState()
	rewind(first map[partitionKey]int64) error
}

// txnState is the open transaction's bookkeeping. Owned by the poll loop.
type txnState struct {
	open    bool
	started time.Time
	records int
	first   map[partitionKey]int64 // first offset processed in this transaction
	next    map[partitionKey]int64 // last offset processed + 1
}

func newTxnState() txnState {
	return txnState{first: map[partitionKey]int64{}, next: map[partitionKey]int64{}}
}

// track records that the record at offset of p was dispatched in this transaction.
func (s *txnState) track(p partitionKey, offset int64) {
	if _, ok := s.first[p]; !ok {
		s.first[p] = offset
	}
	s.next[p] = offset + 1
	s.records++
}

// untrack forgets partitions (revoked or lost) so no offset is sent for them.
func (s *txnState) untrack(p partitionKey) {
	delete(s.first, p)
	delete(s.next, p)
}

// committer runs the protocol above over a txnEnv.
type committer struct {
	env           txnEnv
	transactional bool
	retries       int
	retryBackoff  time.Duration
	state         txnState
}

func newCommitter(env txnEnv, transactional bool) *committer {
	return &committer{env: env, transactional: transactional, retries: 5, retryBackoff: 100 * time.Millisecond, state: newTxnState()}
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
// retries run out (then the error counts as fatal: the transaction timeout
// will abort it on the broker anyway).
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
			return Fatal, fmt.Errorf("%s: %w (after %v)", what, ctx.Err(), err)
		case <-time.After(c.retryBackoff << i):
		}
	}
	return Fatal, fmt.Errorf("%s: still failing after %d retries: %w", what, c.retries, err)
}

// ErrAborted is returned by commit when the transaction was aborted and its
// records will be processed again; the runner goes on.
var ErrAborted = errors.New("transaction aborted")

// commitTxn runs the protocol. It returns nil on success, an error wrapping
// ErrAborted after a successful abort, or an error wrapping ErrFatal.
func (c *committer) commitTxn(ctx context.Context) error {
	c.env.barrier()
	if !c.state.open {
		return nil
	}
	if c.transactional {
		if class, err := c.retry(ctx, "send offsets to transaction", func(ctx context.Context) error {
			return c.env.sendOffsets(ctx, c.state.next)
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
			return c.env.commitOffsets(ctx, c.state.next)
		}); err != nil {
			return c.fail(ctx, class, err)
		}
	}
	if err := c.env.applyState(ends); err != nil {
		// Kafka has the transaction; Pebble stays at its previous checkpoint
		// and restore replays the tail on restart. Going on would let Pebble
		// fall further behind what tasks read, so stop.
		return fmt.Errorf("%w: apply committed state: %w", ErrFatal, err)
	}
	c.state = newTxnState()
	return nil
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

// abortTxn aborts the open transaction: drop pending state and rewind every
// partition processed in it to its first offset in it.
func (c *committer) abortTxn(ctx context.Context) error {
	c.env.barrier()
	if !c.state.open {
		return nil
	}
	if c.transactional {
		if _, err := c.retry(ctx, "abort transaction", c.env.abort); err != nil {
			return fmt.Errorf("%w: %w", ErrFatal, err)
		}
	}
	_, _ = c.env.awaitDeliveries(ctx) // aborted records report errors; nothing to keep
	c.env.dropState()
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
