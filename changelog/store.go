package changelog

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
)

// Store is one store partition: a key-value store of the topology on one
// partition, inside the shared DB. Keys and values are opaque bytes, ordered
// bytewise.
//
// Writes (Put, Delete) go only to the pending batch. Reads (Get, Range) see
// the pending batch over the committed state: read-your-writes. The pending
// batch reaches Pebble only through DB.Commit, which the runner calls after
// the Kafka transaction that carried the matching changelog records has
// committed; Abort drops it. So Pebble never holds uncommitted state.
//
// A Store is not safe for concurrent use. It belongs to its task's worker
// goroutine, except that DB.Commit reads and resets its pending batch: the
// runner calls Commit at the commit barrier, when the worker is idle.
type Store struct {
	// db, sp, prefix, cpKey, cpTimeKey, prefixEnd: set by DB.Store,
	// read-only afterwards.
	db        *DB
	sp        StorePartition
	prefix    []byte // 0x01|sp: every state key of this store partition
	prefixEnd []byte // exclusive upper bound of prefix
	cpKey     []byte // 0x00|sp
	cpTimeKey []byte // 0x02|sp

	// pending: this store's writes since the last commit; reads see them.
	// Its task's worker only (and DB.Commit at the barrier). Created on the
	// first write; applied by DB.Commit after CommitTransaction returns,
	// dropped by Abort. Never committed by itself.
	pending *pebble.Batch
	// pendingKV mirrors the pending batch's latest write per key (nil value:
	// deleted), so that Get answers from it or from Pebble directly instead
	// of merging the indexed batch over the DB on every read, which profiled
	// as the hottest path of a stateful task. Same owner as pending; reset
	// with it.
	pendingKV map[string][]byte
	// committed caches committed values by key (nil: known absent), filled
	// by reads that reach Pebble and by DB.Commit from pendingKV, so that an
	// aggregation's read of a hot key skips Pebble's memtable and block
	// search. Emptied when it would pass committedMax entries, and by
	// Restore, which writes Pebble directly. Same owner as pending.
	committed    map[string][]byte
	committedMax int

	// afterReset, if set, is called whenever the pending batch is reset:
	// committed true after DB.Commit applied it, false after Abort. A
	// window or session store keeps its expiry point in step with it. Set
	// once, by the window or session store that owns this Store.
	afterReset func(committed bool)
}

// cacheCommitted records the committed value of key (nil: absent).
func (s *Store) cacheCommitted(key string, v []byte) {
	if s.committedMax <= 0 {
		return
	}
	if s.committed == nil || len(s.committed) >= s.committedMax {
		s.committed = make(map[string][]byte, min(s.committedMax, 1024))
	}
	s.committed[key] = v
}

// Name returns the store's name.
func (s *Store) Name() string { return s.sp.Store }

// Partition returns the store's partition.
func (s *Store) Partition() int32 { return s.sp.Partition }

// StorePartition returns the store's name and partition.
func (s *Store) StorePartition() StorePartition { return s.sp }

// Get returns the value of key, pending writes first, then committed state;
// nil, nil when absent. The returned slice is a copy the caller owns. An
// empty value is returned as a non-nil empty slice.
func (s *Store) Get(key []byte) ([]byte, error) {
	if s.db.closed.Load() {
		return nil, ErrClosed
	}
	if v, ok := s.pendingKV[string(key)]; ok {
		if v == nil {
			return nil, nil
		}
		return append(make([]byte, 0, len(v)), v...), nil
	}
	if v, ok := s.committed[string(key)]; ok {
		if v == nil {
			return nil, nil
		}
		return append(make([]byte, 0, len(v)), v...), nil
	}
	v, closer, err := s.db.pdb.Get(dataKey(s.prefix, key))
	if errors.Is(err, pebble.ErrNotFound) {
		s.cacheCommitted(string(key), nil)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("changelog: get %s key %q: %w", s.sp, key, err)
	}
	out := append(make([]byte, 0, len(v)), v...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("changelog: get %s key %q: %w", s.sp, key, err)
	}
	s.cacheCommitted(string(key), append([]byte(nil), out...))
	return out, nil
}

// Put sets key to value in the pending batch. value must not be nil
// (ErrNilValue): nil is the changelog's tombstone. The arguments may be
// modified after Put returns.
func (s *Store) Put(key, value []byte) error {
	if value == nil {
		return fmt.Errorf("changelog: put %s key %q: %w", s.sp, key, ErrNilValue)
	}
	if err := s.ensurePending(); err != nil {
		return err
	}
	if err := s.pending.Set(dataKey(s.prefix, key), value, nil); err != nil {
		return fmt.Errorf("changelog: put %s key %q: %w", s.sp, key, err)
	}
	s.pendingKV[string(key)] = append(make([]byte, 0, len(value)), value...)
	return nil
}

// Delete deletes key in the pending batch. Deleting an absent key is not an
// error. The argument may be modified after Delete returns.
func (s *Store) Delete(key []byte) error {
	if err := s.ensurePending(); err != nil {
		return err
	}
	if err := s.pending.Delete(dataKey(s.prefix, key), nil); err != nil {
		return fmt.Errorf("changelog: delete %s key %q: %w", s.sp, key, err)
	}
	s.pendingKV[string(key)] = nil
	return nil
}

// Range calls fn for each key in [start, end) in key order, pending writes
// merged over committed state (pending deletes hide committed keys). A nil
// start means from the first key, a nil end means to the last. The slices
// passed to fn are valid only during the call: copy them to keep them. fn may
// call Put and Delete on this store; the iteration does not see those writes.
// An error from fn stops the iteration and is returned as is.
func (s *Store) Range(start, end []byte, fn func(key, value []byte) error) error {
	if s.db.closed.Load() {
		return ErrClosed
	}
	if start != nil && end != nil && bytes.Compare(start, end) >= 0 {
		return nil
	}
	opts := &pebble.IterOptions{LowerBound: dataKey(s.prefix, start), UpperBound: s.prefixEnd}
	if end != nil {
		opts.UpperBound = dataKey(s.prefix, end)
	}
	var (
		it  *pebble.Iterator
		err error
	)
	if s.hasPending() {
		it, err = s.pending.NewIter(opts)
	} else {
		it, err = s.db.pdb.NewIter(opts)
	}
	if err != nil {
		return fmt.Errorf("changelog: range %s: %w", s.sp, err)
	}
	n := len(s.prefix)
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key()[n:], it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("changelog: range %s: %w", s.sp, err)
	}
	return nil
}

// PendingCount returns the number of pending writes (each Put and Delete
// counts, repeats included), for the runner's "pending work is large" check.
func (s *Store) PendingCount() int {
	if s.pending == nil {
		return 0
	}
	return int(s.pending.Count())
}

// PendingBytes returns the approximate size in bytes of the pending writes.
func (s *Store) PendingBytes() int {
	if !s.hasPending() {
		return 0
	}
	return s.pending.Len()
}

// Abort drops the pending writes: the Kafka transaction that carried them
// was aborted (or the task is closing without a commit).
func (s *Store) Abort() { s.reset(false) }

// reset empties the pending batch: committed by DB.Commit, or aborted.
func (s *Store) reset(committed bool) {
	if s.pending != nil {
		s.pending.Reset()
	}
	clear(s.pendingKV)
	if s.afterReset != nil {
		s.afterReset(committed)
	}
}

// CommitAt returns this store partition's part of DB.Commit: its pending
// writes with the new checkpoint (-1: unchanged).
func (s *Store) CommitAt(checkpoint int64) Commit { return Commit{Store: s, Checkpoint: checkpoint} }

// Checkpoint returns the committed checkpoint: the next changelog offset to
// read, written together with the state it describes. ok is false when the
// store partition has none (never committed, or dropped). Pending writes
// have no checkpoint: they are not committed.
func (s *Store) Checkpoint() (offset int64, ok bool, err error) {
	if s.db.closed.Load() {
		return 0, false, ErrClosed
	}
	v, closer, err := s.db.pdb.Get(s.cpKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("changelog: checkpoint %s: %w", s.sp, err)
	}
	offset, err = decodeCheckpoint(v)
	closer.Close()
	if err != nil {
		return 0, false, fmt.Errorf("changelog: checkpoint %s: %w", s.sp, err)
	}
	return offset, true, nil
}

// checkpointTime returns the committed checkpoint time (see keys.go and
// Restore); ok is false when there is none (no checkpoint, or one written by
// a binary that did not record checkpoint times).
func (s *Store) checkpointTime() (t time.Time, ok bool, err error) {
	v, closer, err := s.db.pdb.Get(s.cpTimeKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("changelog: checkpoint time %s: %w", s.sp, err)
	}
	t, err = decodeCheckpointTime(v)
	closer.Close()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("changelog: checkpoint time %s: %w", s.sp, err)
	}
	return t, true, nil
}

// hasPending reports whether there are pending writes; reads skip the batch
// (and its merge cost) when there are none.
func (s *Store) hasPending() bool { return s.pending != nil && !s.pending.Empty() }

// ensurePending creates the pending batch on the first write.
func (s *Store) ensurePending() error {
	if s.db.closed.Load() {
		return ErrClosed
	}
	if s.pending == nil {
		s.pending = s.db.pdb.NewIndexedBatch()
		s.pendingKV = map[string][]byte{}
	}
	return nil
}
