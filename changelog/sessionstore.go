package changelog

import (
	"context"
	"fmt"
	"time"
)

// SessionOptions configures a session store partition (DB.SessionStore).
type SessionOptions struct {
	// Retention is how long a session is kept after it ends:
	// SessionStore.Expire(streamTime) removes each segment whose sessions
	// all end before streamTime - Retention. At least the inactivity gap
	// plus grace, so that no session goes while a record may still extend
	// or merge it (Kafka Streams' session store retention period); the
	// changelog topic's retention.ms is this plus a margin. Required, whole
	// milliseconds.
	Retention time.Duration
	// SegmentInterval is the time span of one segment (by session end),
	// the unit of expiry. Part of the on-disk layout: changing it makes the
	// next Restore wipe and restore in full. Default (0) max(Retention/2,
	// 1 minute), Kafka Streams' default; whole milliseconds.
	SegmentInterval time.Duration
}

// SessionStore is one session store partition: a store of the topology on
// one partition that maps sessions (key, start, end), start <= end, to a
// value, inside the shared DB. Keys and values are opaque bytes; times are
// Unix epoch milliseconds, both ends inclusive (Kafka Streams'
// SessionWindow).
//
// It follows Store's checkpoint protocol exactly, as WindowStore does:
// writes and expiry go only to the pending batch, reads see them, DB.Commit
// (with CommitAt) applies them with the checkpoint after the Kafka commit,
// Abort drops them.
//
// Sessions live in segments by end, laid out (keys.go) so that one key's
// sessions (FindSessions) and all sessions ending in a time range
// (FetchAll) are range scans, and so that Expire removes whole segments by
// range deletes.
//
// A SessionStore is not safe for concurrent use. It belongs to its task's
// worker, except that DB.Commit (at the commit barrier, workers idle) reads
// and resets its pending batch. Give each store partition one handle.
type SessionStore struct {
	// g: set by DB.SessionStore; its pending state has the same owner.
	g *segmented
}

// SessionStore returns the handle of one session store partition. It does
// no I/O. name must not be the name of a key-value or window store of the
// same DB: they would share one key space.
func (db *DB) SessionStore(name string, partition int32, opts SessionOptions) (*SessionStore, error) {
	so, err := newSegmentOptions(opts.Retention, opts.SegmentInterval)
	if err != nil {
		return nil, fmt.Errorf("changelog: session store %s/%d: %w", name, partition, err)
	}
	return &SessionStore{g: newSegmented(db, name, partition, layoutSession, so)}, nil
}

// Name returns the store's name.
func (s *SessionStore) Name() string { return s.g.s.sp.Store }

// Partition returns the store's partition.
func (s *SessionStore) Partition() int32 { return s.g.s.sp.Partition }

// StorePartition returns the store's name and partition.
func (s *SessionStore) StorePartition() StorePartition { return s.g.s.sp }

// Retention returns the retention in milliseconds.
func (s *SessionStore) Retention() int64 { return s.g.opts.retention }

// SegmentInterval returns the segment interval in milliseconds.
func (s *SessionStore) SegmentInterval() int64 { return s.g.opts.interval }

// sessionKeys returns the by-key and by-time index keys of session (key,
// start, end).
func (s *SessionStore) sessionKeys(key []byte, start, end int64) (byKey, byTime []byte) {
	g := s.g
	byKey = make([]byte, 0, len(g.byKey)+3*timeLen+len(key)+2)
	byKey = appendTime(appendTime(appendByKeyPrefix(append(byKey, g.byKey...), g.segment(end), key), end), start)
	byTime = make([]byte, 0, len(g.byTime)+2*timeLen+len(key))
	byTime = append(appendTime(appendTime(append(byTime, g.byTime...), end), start), key...)
	return byKey, byTime
}

// checkSession refuses a session that ends before it starts, or in a
// segment this handle has expired.
func (s *SessionStore) checkSession(start, end int64) error {
	switch {
	case end < start:
		return fmt.Errorf("session ends (%d) before it starts (%d)", end, start)
	case s.g.segment(end) < s.g.liveFrom:
		return ErrExpired
	}
	return nil
}

// Put sets session (key, start, end) to value in the pending batch. value
// must not be nil (ErrNilValue; use Remove). A session that ends before it
// starts is refused, and so is one in a segment this handle has expired
// (ErrExpired); nothing is written then. The arguments may be modified
// after Put returns.
func (s *SessionStore) Put(key []byte, start, end int64, value []byte) error {
	if value == nil {
		return fmt.Errorf("changelog: put %s key %q session [%d, %d]: %w", s.g.s.sp, key, start, end, ErrNilValue)
	}
	return s.write(key, start, end, value)
}

// Remove deletes session (key, start, end) in the pending batch, as Put
// does (removing an absent session is not an error). Merging sessions
// removes the merged ones and puts the new one; each is its own changelog
// record.
func (s *SessionStore) Remove(key []byte, start, end int64) error {
	return s.write(key, start, end, nil)
}

func (s *SessionStore) write(key []byte, start, end int64, value []byte) error {
	if err := s.checkSession(start, end); err != nil {
		return fmt.Errorf("changelog: write %s key %q session [%d, %d]: %w", s.g.s.sp, key, start, end, err)
	}
	byKey, byTime := s.sessionKeys(key, start, end)
	if err := s.g.write(byKey, byTime, value); err != nil {
		return fmt.Errorf("changelog: write %s key %q session [%d, %d]: %w", s.g.s.sp, key, start, end, err)
	}
	return nil
}

// Get returns the value of session (key, start, end) (Kafka Streams'
// fetchSession), pending writes and expiry first; nil, nil when absent. The
// returned slice is a copy the caller owns.
func (s *SessionStore) Get(key []byte, start, end int64) ([]byte, error) {
	byKey, _ := s.sessionKeys(key, start, end)
	v, err := s.g.get(byKey)
	if err != nil {
		return nil, fmt.Errorf("changelog: get %s key %q session [%d, %d]: %w", s.g.s.sp, key, start, end, err)
	}
	return v, nil
}

// FindSessions calls fn for each session of key that ends at or after
// earliestSessionEnd and starts at or before latestSessionStart (both
// inclusive: the sessions a record at time t with inactivity gap g merges
// with are FindSessions(key, t-g, t+g)), ascending by end, then start,
// pending writes and expiry merged over committed state (Kafka Streams'
// SessionStore.findSessions(key, earliestSessionEndTime,
// latestSessionStartTime)). It scans key's entries in each segment from
// earliestSessionEnd's on: a session's end has no upper bound. The value
// passed to fn is valid only during the call. An error from fn stops the
// iteration and is returned as is; fn may write to this store (Remove a
// session it merges), and the iteration does not see those writes.
func (s *SessionStore) FindSessions(key []byte, earliestSessionEnd, latestSessionStart int64,
	fn func(start, end int64, value []byte) error) error {
	var fnErr error
	err := s.g.scanKey(key, s.g.segment(earliestSessionEnd), appendTime(nil, earliestSessionEnd), func(suffix, value []byte) error {
		if len(suffix) != 2*timeLen {
			return fmt.Errorf("%w: session entry suffix %x", ErrCorrupt, suffix)
		}
		end, start := decodeTime(suffix), decodeTime(suffix[timeLen:])
		if start > latestSessionStart {
			return nil
		}
		if err := fn(start, end, value); err != nil {
			fnErr = err
			return errStopScan
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("changelog: find sessions %s key %q [%d, %d]: %w", s.g.s.sp, key, earliestSessionEnd, latestSessionStart, err)
	}
	return fnErr
}

// FetchAll calls fn for each session of every key that ends in
// [earliestSessionEnd, latestSessionEnd], ascending by end, then start,
// then key bytes, pending writes and expiry merged over committed state:
// one range scan (Kafka Streams' findSessions(earliestSessionEndTime,
// latestSessionEndTime) of its time-ordered session store). The slices
// passed to fn are valid only during the call. An error from fn stops the
// iteration and is returned as is.
func (s *SessionStore) FetchAll(earliestSessionEnd, latestSessionEnd int64, fn func(key []byte, start, end int64, value []byte) error) error {
	var fnErr error
	err := s.g.scanByTime(earliestSessionEnd, latestSessionEnd, func(rest, value []byte) error {
		if len(rest) < 2*timeLen {
			return fmt.Errorf("%w: by-time index entry %x too short", ErrCorrupt, rest)
		}
		if err := fn(rest[2*timeLen:], decodeTime(rest[timeLen:]), decodeTime(rest), value); err != nil {
			fnErr = err
			return errStopScan
		}
		return nil
	})
	switch {
	case fnErr != nil:
		return fnErr
	case err != nil:
		return fmt.Errorf("changelog: fetch all %s [%d, %d]: %w", s.g.s.sp, earliestSessionEnd, latestSessionEnd, err)
	}
	return nil
}

// Expire removes, in the pending batch, every segment whose sessions all
// end before streamTime - Retention, by range deletes, as
// WindowStore.Expire does.
func (s *SessionStore) Expire(streamTime int64) error { return s.g.expire(streamTime) }

// PendingCount returns the number of pending writes (see
// WindowStore.PendingCount).
func (s *SessionStore) PendingCount() int { return s.g.s.PendingCount() }

// PendingBytes returns the approximate size in bytes of the pending writes.
func (s *SessionStore) PendingBytes() int { return s.g.s.PendingBytes() }

// Abort drops the pending writes and expiry.
func (s *SessionStore) Abort() { s.g.s.Abort() }

// Checkpoint returns the committed checkpoint (see Store.Checkpoint).
func (s *SessionStore) Checkpoint() (offset int64, ok bool, err error) { return s.g.s.Checkpoint() }

// CommitAt returns this store partition's part of DB.Commit: its pending
// writes and expiry with the new checkpoint (-1: unchanged).
func (s *SessionStore) CommitAt(checkpoint int64) Commit { return s.g.s.CommitAt(checkpoint) }

// RestoreSessions is RestoreWindows for a session store partition: record
// keys decoded by DecodeSessionKey, expiry by session end.
func RestoreSessions(ctx context.Context, s *SessionStore, src Source, opts RestoreOptions) (RestoreResult, error) {
	return restoreSegmented(ctx, s.g, s.restoredEntry, src, opts, defaultRestoreConfig(s.g.s, opts))
}

// restoredEntry decodes a session changelog key for restore.
func (s *SessionStore) restoredEntry(changelogKey []byte) (int64, []byte, []byte, error) {
	key, start, end, err := DecodeSessionKey(changelogKey)
	if err != nil {
		return 0, nil, nil, err
	}
	byKey, byTime := s.sessionKeys(key, start, end)
	return end, byKey, byTime, nil
}
