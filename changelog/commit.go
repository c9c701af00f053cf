package changelog

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// Commit is one store partition's part of DB.Commit.
type Commit struct {
	// Store whose pending batch is applied.
	Store *Store
	// Checkpoint is the store's new checkpoint: the next offset to read in
	// its changelog partition once the transaction is committed (the offset
	// after the last changelog record the store wrote). -1 leaves the
	// checkpoint (and its time) unchanged.
	Checkpoint int64
}

// Commit applies every given store's pending batch together with each
// store's new checkpoint in one Pebble batch and waits until it is written:
// CommitAsync, then the wait every path to Pebble makes.
func (db *DB) Commit(commits []Commit) error {
	if err := db.CommitAsync(commits); err != nil {
		return err
	}
	return db.settled()
}

// CommitAsync applies every given store's pending batch together with each
// store's new checkpoint in ONE Pebble batch, and resets those pending
// batches. The batch is built and the stores reset before it returns; the
// write itself runs in the background, so that the runner's next
// transaction does not wait for Pebble's memtable inserts. Each new
// checkpoint gets the time of the commit as its checkpoint time: the records
// after the checkpoint were appended after the transaction's own records, so
// at most one transaction (transaction.timeout.ms) before it (see
// RestoreOptions.MaxStateAge).
//
// The runner calls it only after the Kafka transaction that carried the
// matching changelog records committed, at the commit barrier (no worker is
// touching the stores). Either everything lands or nothing does: after a
// crash, each store partition's state and checkpoint describe the same
// committed point.
//
// Invariants of the background write (a change must keep them):
//   - At most one write is in flight. CommitAsync first waits for the
//     previous one, and returns its error: a failed write means the disk is
//     in trouble, so the runner stops rather than retry (the changelogs still
//     hold the transactions), and every later call returns the same error.
//   - Nothing reads or writes Pebble while it is in flight, except through
//     the stores' committed values: every path to Pebble (a read that misses
//     a store's slots, a range, a window or session fetch, a restore, a
//     drop, a checkpoint read, a Reader, Close) calls settled first. The
//     keys the write carries are in their stores' slots as committed values
//     (settleSlots keeps them until the next commit), so most reads of the
//     next transaction do not wait.
//   - The write is not synced (pebble.NoSync). Nothing outside Pebble
//     depends on it reaching the disk: Kafka has the transaction already,
//     and a write lost with the machine (a process crash loses nothing: it
//     is in the operating system's page cache) leaves the store at an
//     earlier committed point, whose checkpoint the restore replays from.
//     Pebble recovers its log to a prefix of whole batches, so state and
//     checkpoint never part. Kafka Streams does not even keep RocksDB's log.
//
// The arguments are checked before anything is written: a store of another
// DB, the same store twice, or a checkpoint below -1 is an error; on such an
// error nothing was applied and the pending batches are kept.
func (db *DB) CommitAsync(commits []Commit) error {
	if db.closed.Load() {
		return ErrClosed
	}
	seen := make(map[*Store]bool, len(commits))
	for _, c := range commits {
		switch {
		case c.Store == nil:
			return fmt.Errorf("changelog: commit: nil store")
		case c.Store.db != db:
			return fmt.Errorf("changelog: commit: store %s belongs to another db", c.Store.sp)
		case seen[c.Store]:
			return fmt.Errorf("changelog: commit: store %s given twice", c.Store.sp)
		case c.Checkpoint < -1:
			return fmt.Errorf("changelog: commit: store %s: invalid checkpoint %d", c.Store.sp, c.Checkpoint)
		}
		seen[c.Store] = true
	}
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	if err := db.settled(); err != nil {
		return err
	}
	b := db.pdb.NewBatch()
	now := encodeCheckpointTime(db.now())
	for _, c := range commits {
		if c.Store.hasPending() {
			apply := func() error { return c.Store.appendPending(b) }
			if c.Store.indexed {
				apply = func() error { return b.Apply(c.Store.pending, nil) }
			}
			if err := apply(); err != nil {
				return errors.Join(fmt.Errorf("changelog: commit: store %s: %w", c.Store.sp, err), b.Close())
			}
		}
		if c.Checkpoint >= 0 {
			if err := b.Set(c.Store.cpKey, encodeCheckpoint(c.Checkpoint), nil); err != nil {
				return errors.Join(fmt.Errorf("changelog: commit: store %s: %w", c.Store.sp, err), b.Close())
			}
			if err := b.Set(c.Store.cpTimeKey, now, nil); err != nil {
				return errors.Join(fmt.Errorf("changelog: commit: store %s: %w", c.Store.sp, err), b.Close())
			}
		}
	}
	if b.Empty() {
		return b.Close()
	}
	op := &applyOp{done: make(chan struct{})}
	db.inflight.Store(op)
	stores := len(commits)
	go func() {
		defer close(op.done)
		if err := b.Commit(pebble.NoSync); err != nil {
			op.err = fmt.Errorf("changelog: commit %d stores: %w", stores, err)
		}
		if err := b.Close(); err != nil && op.err == nil {
			op.err = fmt.Errorf("changelog: commit %d stores: %w", stores, err)
		}
	}()
	for _, c := range commits {
		// What was pending is committed now (in flight to Pebble): reset
		// makes it the slots' committed values.
		c.Store.reset(true)
	}
	return nil
}

// applyOp is one CommitAsync's background write.
type applyOp struct {
	done chan struct{}
	err  error // set before done is closed
}

// settled waits for the write in flight, if any; see CommitAsync. Its error
// stays: once a write failed, every path to Pebble fails with it.
func (db *DB) settled() error {
	op := db.inflight.Load()
	if op == nil {
		return nil
	}
	<-op.done
	return op.err
}
