package changelog

import (
	"context"
	"fmt"
	"time"
)

// WindowOptions configures a window store partition (DB.WindowStore).
type WindowOptions struct {
	// Retention is how long a window is kept: WindowStore.Expire(streamTime)
	// removes each segment whose windows all start before streamTime -
	// Retention. At least the window size plus grace, so that no window goes
	// before it closes (Kafka Streams' window store retention period); the
	// changelog topic's retention.ms is this plus a margin. Required, whole
	// milliseconds.
	Retention time.Duration
	// SegmentInterval is the time span of one segment, the unit of expiry:
	// a window is kept between Retention and Retention + SegmentInterval.
	// Part of the on-disk layout: changing it makes the next Restore wipe
	// and restore in full. Default (0) max(Retention/2, 1 minute), Kafka
	// Streams' default; whole milliseconds.
	SegmentInterval time.Duration
}

// WindowStore is one window store partition: a store of the topology on one
// partition that maps (key, window start) to a value, inside the shared DB.
// Keys and values are opaque bytes; times are Unix epoch milliseconds.
//
// It follows Store's checkpoint protocol exactly (and is a Store
// underneath, sharing its pending batch and checkpoint): writes and expiry
// go only to the pending batch; reads (Get, Fetch, FetchAll) see them over
// the committed state; DB.Commit (with CommitAt) applies them with the
// checkpoint in one batch after the Kafka commit, and Abort drops
// them.
//
// Windows live in segments of WindowOptions.SegmentInterval by start, laid
// out (keys.go) so that one key's windows over a time range (Fetch) and all
// keys' windows over a time range (FetchAll) are range scans, and so that
// Expire removes whole segments by range deletes, never key by key.
//
// A WindowStore is not safe for concurrent use. It belongs to its task's
// worker, except that DB.Commit (at the commit barrier, workers idle) reads
// and resets its pending batch. Give each store partition one handle.
type WindowStore struct {
	// g: set by DB.WindowStore; its pending state has the same owner.
	g *segmented
}

// WindowStore returns the handle of one window store partition. It does no
// I/O. name must not be the name of a key-value or session store of the
// same DB: they would share one key space.
func (db *DB) WindowStore(name string, partition int32, opts WindowOptions) (*WindowStore, error) {
	so, err := newSegmentOptions(opts.Retention, opts.SegmentInterval)
	if err != nil {
		return nil, fmt.Errorf("changelog: window store %s/%d: %w", name, partition, err)
	}
	return &WindowStore{g: newSegmented(db, name, partition, layoutWindow, so)}, nil
}

// Name returns the store's name.
func (w *WindowStore) Name() string { return w.g.s.sp.Store }

// Partition returns the store's partition.
func (w *WindowStore) Partition() int32 { return w.g.s.sp.Partition }

// StorePartition returns the store's name and partition.
func (w *WindowStore) StorePartition() StorePartition { return w.g.s.sp }

// Retention returns the retention in milliseconds.
func (w *WindowStore) Retention() int64 { return w.g.opts.retention }

// SegmentInterval returns the segment interval in milliseconds.
func (w *WindowStore) SegmentInterval() int64 { return w.g.opts.interval }

// windowKeys returns the by-key and by-time index keys of window (key, start).
func (w *WindowStore) windowKeys(key []byte, start int64) (byKey, byTime []byte) {
	g := w.g
	byKey = make([]byte, 0, len(g.byKey)+2*timeLen+len(key)+2)
	byKey = appendTime(appendByKeyPrefix(append(byKey, g.byKey...), g.segment(start), key), start)
	byTime = make([]byte, 0, len(g.byTime)+timeLen+len(key))
	byTime = append(appendTime(append(byTime, g.byTime...), start), key...)
	return byKey, byTime
}

// Put sets window (key, start) to value in the pending batch; a nil value
// deletes it. A window in a segment this handle has expired is refused
// (ErrExpired), and nothing is written. The arguments may be modified after
// Put returns.
func (w *WindowStore) Put(key []byte, start int64, value []byte) error {
	if w.g.segment(start) < w.g.liveFrom {
		return fmt.Errorf("changelog: put %s key %q window %d: %w", w.g.s.sp, key, start, ErrExpired)
	}
	byKey, byTime := w.windowKeys(key, start)
	if err := w.g.write(byKey, byTime, value); err != nil {
		return fmt.Errorf("changelog: put %s key %q window %d: %w", w.g.s.sp, key, start, err)
	}
	return nil
}

// Get returns the value of window (key, start), pending writes and expiry
// first, then committed state; nil, nil when absent. The returned slice is
// a copy the caller owns.
func (w *WindowStore) Get(key []byte, start int64) ([]byte, error) {
	byKey, _ := w.windowKeys(key, start)
	v, err := w.g.get(byKey)
	if err != nil {
		return nil, fmt.Errorf("changelog: get %s key %q window %d: %w", w.g.s.sp, key, start, err)
	}
	return v, nil
}

// Fetch calls fn for each window of key with a start in [fromStart,
// toStart], ascending by start, pending writes and expiry merged over
// committed state. It seeks once or twice per segment holding windows
// (Kafka Streams' WindowStore.fetch(key, timeFrom, timeTo)). The value
// passed to fn is valid only during the call. An error from fn stops the
// iteration and is returned as is; fn may write to this store, and the
// iteration does not see those writes.
func (w *WindowStore) Fetch(key []byte, fromStart, toStart int64, fn func(start int64, value []byte) error) error {
	if fromStart > toStart {
		return nil
	}
	var fnErr error
	err := w.g.scanKey(key, w.g.segment(fromStart), appendTime(nil, fromStart), func(suffix, value []byte) error {
		if len(suffix) != timeLen {
			return fmt.Errorf("%w: window entry suffix %x", ErrCorrupt, suffix)
		}
		start := decodeTime(suffix)
		if start > toStart {
			return errStopScan
		}
		if err := fn(start, value); err != nil {
			fnErr = err
			return errStopScan
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("changelog: fetch %s key %q [%d, %d]: %w", w.g.s.sp, key, fromStart, toStart, err)
	}
	return fnErr
}

// FetchAll calls fn for each window of every key with a start in
// [fromStart, toStart], ascending by start, then by key bytes, pending
// writes and expiry merged over committed state: one range scan (Kafka
// Streams' WindowStore.fetchAll(timeFrom, timeTo)). The slices passed to fn
// are valid only during the call. An error from fn stops the iteration and
// is returned as is; fn may write to this store, and the iteration does not
// see those writes.
func (w *WindowStore) FetchAll(fromStart, toStart int64, fn func(key []byte, start int64, value []byte) error) error {
	var fnErr error
	err := w.g.scanByTime(fromStart, toStart, func(rest, value []byte) error {
		if len(rest) < timeLen {
			return fmt.Errorf("%w: by-time index entry %x too short", ErrCorrupt, rest)
		}
		if err := fn(rest[timeLen:], decodeTime(rest), value); err != nil {
			fnErr = err
			return errStopScan
		}
		return nil
	})
	switch {
	case fnErr != nil:
		return fnErr
	case err != nil:
		return fmt.Errorf("changelog: fetch all %s [%d, %d]: %w", w.g.s.sp, fromStart, toStart, err)
	}
	return nil
}

// Expire removes, in the pending batch, every segment whose windows all
// start before streamTime - Retention: two range deletes, whatever the
// number of windows. It writes nothing unless that moves the expiry point,
// so calling it for every record is cheap. Stream time is the caller's
// (the task's; never the wall clock); a stream time that goes back expires
// nothing. Changelog records are not needed: the changelog topic's own
// retention (compact,delete) removes old windows, and Restore leaves out
// expired ones.
func (w *WindowStore) Expire(streamTime int64) error { return w.g.expire(streamTime) }

// PendingCount returns the number of pending writes (each Put counts twice,
// once per index; an expiry twice; the layout key once per batch), for the
// runner's "pending work is large" check.
func (w *WindowStore) PendingCount() int { return w.g.s.PendingCount() }

// PendingBytes returns the approximate size in bytes of the pending writes.
func (w *WindowStore) PendingBytes() int { return w.g.s.PendingBytes() }

// Abort drops the pending writes and expiry: the Kafka transaction that
// carried them was aborted (or the task is closing without a commit).
func (w *WindowStore) Abort() { w.g.s.Abort() }

// Checkpoint returns the committed checkpoint (see Store.Checkpoint).
func (w *WindowStore) Checkpoint() (offset int64, ok bool, err error) { return w.g.s.Checkpoint() }

// CommitAt returns this store partition's part of DB.Commit: its pending
// writes and expiry with the new checkpoint (-1: unchanged).
func (w *WindowStore) CommitAt(checkpoint int64) Commit { return w.g.s.CommitAt(checkpoint) }

// RestoreWindows is Restore for a window store partition: the same
// protocol (where to start and stop, wipes, checkpoints, progress), with
// each record's key decoded by DecodeWindowKey into both indexes. Records
// of windows in segments already expired, relative to the largest window
// start on disk or restored so far or to opts.StreamTime, are left out
// (RestoreResult.Expired), and segments are expired as restoring moves
// that time on, so expired windows never come back. A change of segment
// interval since the state was written wipes it for a full restore.
// Afterwards the handle's expiry point is where the restore left it.
func RestoreWindows(ctx context.Context, w *WindowStore, src Source, opts RestoreOptions) (RestoreResult, error) {
	return restoreSegmented(ctx, w.g, w.restoredEntry, src, opts, defaultRestoreConfig(w.g.s, opts))
}

// restoredEntry decodes a window changelog key for restore.
func (w *WindowStore) restoredEntry(changelogKey []byte) (int64, []byte, []byte, error) {
	key, start, err := DecodeWindowKey(changelogKey)
	if err != nil {
		return 0, nil, nil, err
	}
	byKey, byTime := w.windowKeys(key, start)
	return start, byKey, byTime, nil
}
