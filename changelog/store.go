package changelog

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/cockroachdb/pebble"
)

// Store is one store partition: a key-value store of the topology on one
// partition, inside the shared DB. Keys and values are opaque bytes, ordered
// bytewise.
//
// Writes (Put, Delete) go only to the pending writes (the last per key, in
// the key's slot). Reads (Get, Range) see them over the committed state:
// read-your-writes. The pending writes reach Pebble only through DB.Commit, which the runner calls after
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

	// pending: a segmented store's (window, session) writes since the last
	// commit, an indexed batch its reads and iterators see. Its task's
	// worker only (and DB.Commit at the barrier). Created on the first
	// write; applied by DB.Commit after CommitTransaction returns, dropped
	// by Abort. Never committed by itself. A plain key-value store has
	// none: its pending writes are its dirty slots (below), which DB.Commit
	// writes into its batch, the last write per key only.
	pending *pebble.Batch
	indexed bool
	// writes and writeBytes count a plain store's pending writes (repeats
	// included) and their keys' and values' bytes.
	writes, writeBytes int
	// slots is what this handle knows of each key it has read or written:
	// the committed value (a cache: nil map entries mean nothing is known)
	// and the pending write. Get answers from the key's slot (pending
	// first), or from Pebble directly; never by merging the batch over the
	// DB, which profiled as the hottest path of a stateful task. dirty lists
	// the slots with a pending write, in first-write order. Same owner as
	// pending. A read adds a slot while there are fewer than slotsMax; after
	// a commit that leaves more, the map is emptied. Restore, which writes
	// Pebble directly, empties it too.
	slots    map[string]*slot
	dirty    []*slot
	slotsMax int
	// last is the slot of the last Get or write: an aggregation writes the
	// key it has just read, which then costs no map lookup.
	last *slot

	// afterReset, if set, is called whenever the pending batch is reset:
	// committed true after DB.Commit applied it, false after Abort. A
	// window or session store keeps its expiry point in step with it. Set
	// once, by the window or session store that owns this Store.
	afterReset func(committed bool)
}

// slot is one key's committed value (if known) and pending write (if any).
// The two value buffers swap at commit, so that a key written in every
// transaction allocates nothing.
type slot struct {
	key string
	// known: val and absent hold the committed state.
	known  bool
	absent bool
	val    []byte
	// pending: pval and pdel hold the pending write.
	pending bool
	pdel    bool
	pval    []byte
	// kbuf holds a short key and vbuf short values inside the slot itself
	// (key points into kbuf; val and pval start in vbuf): a lookup then
	// compares the key and reads the value in the memory it loaded for the
	// slot, instead of following two more pointers to cold memory, which
	// profiled as most of Get's cost.
	kbuf [16]byte
	vbuf [2][16]byte
}

// newSlot returns a slot for key.
func newSlot(key []byte) *slot {
	sl := &slot{}
	if len(key) <= len(sl.kbuf) {
		n := copy(sl.kbuf[:], key)
		sl.key = unsafe.String(&sl.kbuf[0], n) // never written again
	} else {
		sl.key = string(key)
	}
	sl.val, sl.pval = sl.vbuf[0][:0], sl.vbuf[1][:0]
	return sl
}

// slotFor returns key's slot, creating it if create (else nil when there is
// none).
func (s *Store) slotFor(key []byte, create bool) *slot {
	if l := s.last; l != nil && l.key == string(key) {
		return l
	}
	sl := s.slots[string(key)]
	if sl == nil && create {
		if s.slots == nil {
			s.slots = make(map[string]*slot, min(max(s.slotsMax, 0), 1024))
		}
		sl = newSlot(key)
		s.slots[sl.key] = sl
	}
	if sl != nil {
		s.last = sl
	}
	return sl
}

// setPending records a pending write of key (nil value: a delete).
func (s *Store) setPending(key, value []byte) {
	sl := s.slotFor(key, true)
	if !sl.pending {
		sl.pending = true
		s.dirty = append(s.dirty, sl)
	}
	sl.pdel = value == nil
	sl.pval = append(sl.pval[:0], value...)
	s.writes++
	s.writeBytes += len(key) + len(value)
}

// appendPending writes a plain store's pending writes, the last per key,
// into b.
func (s *Store) appendPending(b *pebble.Batch) error {
	for _, sl := range s.dirty {
		var err error
		if sl.pdel {
			err = b.Delete(dataKey(s.prefix, []byte(sl.key)), nil)
		} else {
			// The data key without allocating it: straight into the batch.
			op := b.SetDeferred(len(s.prefix)+len(sl.key), len(sl.pval))
			copy(op.Key[copy(op.Key, s.prefix):], sl.key)
			copy(op.Value, sl.pval)
			err = op.Finish()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// settleSlots ends the pending writes: committed, they become the known
// committed values; aborted, they are forgotten.
func (s *Store) settleSlots(committed bool) {
	for _, sl := range s.dirty {
		if committed {
			sl.known, sl.absent = true, sl.pdel
			if !sl.pdel {
				sl.val, sl.pval = sl.pval, sl.val
			}
		}
		sl.pending, sl.pdel, sl.pval = false, false, sl.pval[:0]
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	if committed && len(s.slots) > s.slotsMax {
		s.slots, s.last = nil, nil
	}
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
	sl := s.slotFor(key, false)
	if sl != nil {
		switch {
		case sl.pending && sl.pdel, !sl.pending && sl.known && sl.absent:
			return nil, nil
		case sl.pending:
			return append(make([]byte, 0, len(sl.pval)), sl.pval...), nil
		case sl.known:
			return append(make([]byte, 0, len(sl.val)), sl.val...), nil
		}
	}
	if err := s.db.settled(); err != nil {
		return nil, fmt.Errorf("changelog: get %s key %q: %w", s.sp, key, err)
	}
	if sl == nil && len(s.slots) < s.slotsMax {
		sl = s.slotFor(key, true)
	}
	v, closer, err := s.db.pdb.Get(dataKey(s.prefix, key))
	if errors.Is(err, pebble.ErrNotFound) {
		if sl != nil {
			sl.known, sl.absent = true, true
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("changelog: get %s key %q: %w", s.sp, key, err)
	}
	out := append(make([]byte, 0, len(v)), v...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("changelog: get %s key %q: %w", s.sp, key, err)
	}
	if sl != nil {
		sl.known, sl.absent = true, false
		sl.val = append(sl.val[:0], out...)
	}
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
	if s.indexed {
		if err := s.pending.Set(dataKey(s.prefix, key), value, nil); err != nil {
			return fmt.Errorf("changelog: put %s key %q: %w", s.sp, key, err)
		}
	}
	s.setPending(key, value)
	return nil
}

// Delete deletes key in the pending batch. Deleting an absent key is not an
// error. The argument may be modified after Delete returns.
func (s *Store) Delete(key []byte) error {
	if err := s.ensurePending(); err != nil {
		return err
	}
	if s.indexed {
		if err := s.pending.Delete(dataKey(s.prefix, key), nil); err != nil {
			return fmt.Errorf("changelog: delete %s key %q: %w", s.sp, key, err)
		}
	}
	s.setPending(key, nil)
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
	if err := s.db.settled(); err != nil {
		return fmt.Errorf("changelog: range %s: %w", s.sp, err)
	}
	var (
		it  *pebble.Iterator
		err error
	)
	if s.indexed && s.hasPending() {
		it, err = s.pending.NewIter(opts)
	} else {
		it, err = s.db.pdb.NewIter(opts)
	}
	if err != nil {
		return fmt.Errorf("changelog: range %s: %w", s.sp, err)
	}
	var pend []*slot // the unindexed batch's writes in range, by key
	if !s.indexed {
		for _, sl := range s.dirty {
			k := []byte(sl.key)
			if (start == nil || bytes.Compare(k, start) >= 0) && (end == nil || bytes.Compare(k, end) < 0) {
				pend = append(pend, sl)
			}
		}
		slices.SortFunc(pend, func(a, b *slot) int { return strings.Compare(a.key, b.key) })
	}
	// Pending writes are copied first: fn may write to this store.
	pw := make([]pendingWrite, len(pend))
	for i, sl := range pend {
		pw[i] = pendingWrite{[]byte(sl.key), append([]byte{}, sl.pval...), sl.pdel} // empty, not nil
	}
	n := len(s.prefix)
	ok := it.First()
	for ok || len(pw) > 0 {
		// fn runs before the iterator moves: its key and value are valid
		// until then.
		var err error
		switch c := cmpNext(ok, it, n, pw); {
		case c < 0: // the committed entry comes first
			err = fn(it.Key()[n:], it.Value())
			ok = it.Next()
		default: // a pending write (c == 0: over the committed entry)
			p := pw[0]
			pw = pw[1:]
			if !p.del {
				err = fn(p.key, p.val)
			}
			if c == 0 {
				ok = it.Next()
			}
		}
		if err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("changelog: range %s: %w", s.sp, err)
	}
	return nil
}

// cmpNext compares the iterator's key (without the n-byte prefix; none
// left if !ok) with the first pending write's: <0 the iterator's comes
// first, 0 the same key, >0 the pending one first.
func cmpNext(ok bool, it *pebble.Iterator, n int, pw []pendingWrite) int {
	switch {
	case !ok:
		return 1
	case len(pw) == 0:
		return -1
	}
	return bytes.Compare(it.Key()[n:], pw[0].key)
}

// pendingWrite is a copy of a pending write, for Range.
type pendingWrite struct {
	key, val []byte
	del      bool
}

// PendingCount returns the number of pending writes (each Put and Delete
// counts, repeats included), for the runner's "pending work is large" check.
func (s *Store) PendingCount() int {
	if !s.indexed {
		return s.writes
	}
	if s.pending == nil {
		return 0
	}
	return int(s.pending.Count())
}

// PendingBytes returns the approximate size in bytes of the pending writes.
func (s *Store) PendingBytes() int {
	if !s.indexed {
		return s.writeBytes
	}
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
	s.settleSlots(committed)
	s.writes, s.writeBytes = 0, 0
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
	if err := s.db.settled(); err != nil {
		return 0, false, fmt.Errorf("changelog: checkpoint %s: %w", s.sp, err)
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
	if err := s.db.settled(); err != nil {
		return time.Time{}, false, fmt.Errorf("changelog: checkpoint time %s: %w", s.sp, err)
	}
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
func (s *Store) hasPending() bool {
	if !s.indexed {
		return len(s.dirty) > 0
	}
	return s.pending != nil && !s.pending.Empty()
}

// ensurePending creates the pending batch on the first write.
func (s *Store) ensurePending() error {
	if s.db.closed.Load() {
		return ErrClosed
	}
	if s.pending == nil && s.indexed {
		s.pending = s.db.pdb.NewIndexedBatch()
	}
	return nil
}
