package changelog

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// Reader reads the committed state of one store partition, for readers
// other than the partition's owner: the tasks that look up a global table
// while its updater writes it through a Store of its own. Unlike a Store, a
// Reader is safe for concurrent use, and it never sees pending writes: it
// reads what DB.Commit applied, nothing else.
type Reader struct {
	db        *DB
	sp        StorePartition
	prefix    []byte
	prefixEnd []byte
}

// Reader returns a reader of a store partition's committed state.
func (db *DB) Reader(name string, partition int32) *Reader {
	p := dataPrefix(name, partition)
	return &Reader{db: db, sp: StorePartition{Store: name, Partition: partition}, prefix: p, prefixEnd: prefixEnd(p)}
}

// Get returns the committed value of key; nil, nil when absent. The
// returned slice is a copy the caller owns.
func (r *Reader) Get(key []byte) ([]byte, error) {
	if r.db.closed.Load() {
		return nil, ErrClosed
	}
	if err := r.db.settled(); err != nil {
		return nil, err
	}
	v, closer, err := r.db.pdb.Get(dataKey(r.prefix, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("changelog: get %s key %q: %w", r.sp, key, err)
	}
	out := append(make([]byte, 0, len(v)), v...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("changelog: get %s key %q: %w", r.sp, key, err)
	}
	return out, nil
}

// Range calls fn for every committed entry with start <= key < end, in key
// order, as Store.Range does (nil bounds are open; the slices are valid only
// during the call).
func (r *Reader) Range(start, end []byte, fn func(key, value []byte) error) error {
	if r.db.closed.Load() {
		return ErrClosed
	}
	if start != nil && end != nil && bytes.Compare(start, end) >= 0 {
		return nil
	}
	opts := &pebble.IterOptions{LowerBound: dataKey(r.prefix, start), UpperBound: r.prefixEnd}
	if end != nil {
		opts.UpperBound = dataKey(r.prefix, end)
	}
	if err := r.db.settled(); err != nil {
		return err
	}
	it, err := r.db.pdb.NewIter(opts)
	if err != nil {
		return fmt.Errorf("changelog: range %s: %w", r.sp, err)
	}
	n := len(r.prefix)
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key()[n:], it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("changelog: range %s: %w", r.sp, err)
	}
	return nil
}
