package changelog

import (
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
// store's new checkpoint in ONE synced Pebble batch, then resets those
// pending batches. Each new checkpoint gets the time of the commit as its
// checkpoint time: the records after the checkpoint were appended after the
// transaction's own records, so at most one transaction (transaction.timeout.ms)
// before it (see RestoreOptions.MaxStateAge).
//
// The runner calls it only after the Kafka transaction that carried the
// matching changelog records committed, at the commit barrier (no worker is
// touching the stores). Either everything lands or nothing does: after a
// crash, each store partition's state and checkpoint describe the same
// committed point. On error nothing was applied and the pending batches are
// kept; a failed synced write means the disk is in trouble, so the runner
// should stop rather than retry (the changelogs still hold the transaction).
//
// The arguments are checked before anything is written: a store of another
// DB, the same store twice, or a checkpoint below -1 is an error.
func (db *DB) Commit(commits []Commit) error {
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
	b := db.pdb.NewBatch()
	defer b.Close()
	now := encodeCheckpointTime(db.now())
	for _, c := range commits {
		if c.Store.hasPending() {
			apply := func() error { return c.Store.appendPending(b) }
			if c.Store.indexed {
				apply = func() error { return b.Apply(c.Store.pending, nil) }
			}
			if err := apply(); err != nil {
				return fmt.Errorf("changelog: commit: store %s: %w", c.Store.sp, err)
			}
		}
		if c.Checkpoint >= 0 {
			if err := b.Set(c.Store.cpKey, encodeCheckpoint(c.Checkpoint), nil); err != nil {
				return fmt.Errorf("changelog: commit: store %s: %w", c.Store.sp, err)
			}
			if err := b.Set(c.Store.cpTimeKey, now, nil); err != nil {
				return fmt.Errorf("changelog: commit: store %s: %w", c.Store.sp, err)
			}
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("changelog: commit %d stores: %w", len(commits), err)
	}
	for _, c := range commits {
		// What was pending is committed now: reset makes it the slots'
		// committed values.
		c.Store.reset(true)
	}
	return nil
}
