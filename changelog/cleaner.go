package changelog

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// State of store partitions this instance no longer owns is kept for
// state.cleanup.delay.ms, so that a partition coming back soon (a rolling
// restart, a short-lived rebalance) restores only its changelog tail, and is
// deleted after that.
//
// "Last owned at" is tracked in memory only. State found on disk with no
// record (left by an earlier run of the process) counts as last owned when
// DropUnowned first sees it, so it gets the full delay too.

// MarkOwned records that this instance owned sp at t (call it on assignment).
func (db *DB) MarkOwned(sp StorePartition, t time.Time) { db.stamp(sp, t) }

// MarkUnowned records that this instance stopped owning sp at t (call it on
// revocation or loss): the cleanup delay runs from t.
func (db *DB) MarkUnowned(sp StorePartition, t time.Time) { db.stamp(sp, t) }

// stamp moves sp's "last owned at" to t, never backwards.
func (db *DB) stamp(sp StorePartition, t time.Time) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if last, ok := db.lastOwned[sp]; !ok || t.After(last) {
		db.lastOwned[sp] = t
	}
}

// DropUnowned deletes (DB.Drop) the state and checkpoint of every store
// partition on disk that is not in owned and was last owned at least
// olderThan before now, and returns them sorted. owned is the authority on
// what is owned now: its entries are stamped as owned at now and never
// dropped. The caller must not hold a Store handle of a dropped partition
// in use; store partitions of assigned tasks belong in owned, including
// those still restoring. Call it from the goroutine that handles
// assignments (the poll loop), so that owned cannot go stale meanwhile.
func (db *DB) DropUnowned(owned map[StorePartition]bool, olderThan time.Duration, now time.Time) ([]StorePartition, error) {
	onDisk, err := db.Partitions()
	if err != nil {
		return nil, fmt.Errorf("changelog: drop unowned: %w", err)
	}
	type dueSP struct {
		sp      StorePartition
		unowned time.Duration
	}
	var due []dueSP
	db.mu.Lock()
	for sp := range owned {
		if owned[sp] {
			db.lastOwned[sp] = now
		}
	}
	for _, sp := range onDisk {
		if owned[sp] {
			continue
		}
		last, ok := db.lastOwned[sp]
		if !ok {
			db.lastOwned[sp] = now
			last = now
		}
		if now.Sub(last) >= olderThan {
			due = append(due, dueSP{sp, now.Sub(last)})
		}
	}
	db.mu.Unlock()

	var dropped []StorePartition
	var errs []error
	for _, d := range due {
		sp := d.sp
		if err := db.Drop(sp.Store, sp.Partition); err != nil {
			errs = append(errs, err)
			continue
		}
		dropped = append(dropped, sp)
		db.logger.Info("dropped state of unowned store partition",
			"store", sp.Store, "partition", sp.Partition, "unowned_for", d.unowned.String())
		db.mu.Lock()
		delete(db.lastOwned, sp)
		db.mu.Unlock()
	}
	if len(errs) > 0 {
		return dropped, fmt.Errorf("changelog: drop unowned: %w", errors.Join(errs...))
	}
	return dropped, nil
}

// sortStorePartitions sorts by store, then partition.
func sortStorePartitions(sps []StorePartition) {
	slices.SortFunc(sps, func(a, b StorePartition) int {
		if c := cmp.Compare(a.Store, b.Store); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
}
