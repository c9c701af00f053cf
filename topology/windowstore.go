package topology

import (
	"math"
	"time"
)

// WindowStore is a task's view of a window store partition (Kafka Streams'
// WindowStore): entries keyed by a record key and a window start. Like
// KeyValueStore, reads see the task's own uncommitted writes, and writes
// become durable with the transaction that carries their changelog records.
//
// The runner lays entries out for both access paths (one key over a time
// range; all keys over a time range) and expires them by segment once they
// are older than the store's retention (StoreSpec.Retention) behind stream
// time; the changelog topic is compact,delete.
type WindowStore interface {
	Name() string
	// Get returns the value of key's window starting at start, or nil.
	Get(key any, start time.Time) (any, error)
	// Put writes the value of key's window starting at start; nil deletes it.
	Put(key any, start time.Time, value any) error
	// Fetch calls fn for key's windows whose start is in [from, to], both
	// inclusive, by ascending start.
	Fetch(key any, from, to time.Time, fn func(start time.Time, value any) error) error
	// FetchAll calls fn for every key's windows whose start is in [from, to],
	// both inclusive, by ascending start, then by the store's key order
	// (serialized key bytes).
	FetchAll(from, to time.Time, fn func(key any, start time.Time, value any) error) error
}

// SessionStore is a task's view of a session store partition (Kafka Streams'
// SessionStore): a key's sessions, each a window [start, end] and its
// aggregate. A key's sessions never overlap. Reads see the task's own
// uncommitted writes.
type SessionStore interface {
	Name() string
	// FindSessions calls fn for key's sessions that end at or after
	// earliestEnd and start at or before latestStart, by ascending end (KS's
	// findSessions(key, earliestSessionEndTime, latestSessionStartTime)).
	FindSessions(key any, earliestEnd, latestStart time.Time, fn func(w Window, value any) error) error
	// Put writes the aggregate of key's session w.
	Put(key any, w Window, value any) error
	// Remove deletes key's session w.
	Remove(key any, w Window) error
}

// RetainForever as a window or session store's Retention keeps its entries
// until they are deleted: none expires by stream time, and its changelog is
// compacted only.
// (The largest duration that is a whole, even number of milliseconds, as
// store options require.)
const RetainForever = time.Duration(math.MaxInt64 / int64(2*time.Millisecond) * int64(2*time.Millisecond))

// StoreKind says which kind of state store a StoreSpec declares.
type StoreKind int

const (
	// KeyValueStoreKind is a key-value store (KeyValueStore), the default.
	KeyValueStoreKind StoreKind = iota
	// WindowStoreKind is a window store (WindowStore).
	WindowStoreKind
	// SessionStoreKind is a session store (SessionStore).
	SessionStoreKind
)

func (k StoreKind) String() string {
	switch k {
	case WindowStoreKind:
		return "window"
	case SessionStoreKind:
		return "session"
	}
	return "key-value"
}
