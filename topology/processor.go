package topology

import (
	"time"
)

// Processor is a node of the Processor API. The runner creates one instance
// per task with its ProcessorSupplier, calls Init once before the first
// record (after the task's stores are restored), Process for every record in
// partition order, and Close when the task is closed.
//
// Process runs on its task's worker goroutine inside the open transaction:
// records it forwards and store writes it makes become visible together with
// the input offset's advance, or not at all. An error returned by Process (or
// a panic) hands the input record to the topology's error policy; effects of
// that record are then discarded.
type Processor interface {
	Init(ctx ProcessorContext) error
	Process(rec Record) error
	Close() error
}

// ProcessorSupplier returns a new Processor; it is called once per task.
type ProcessorSupplier func() Processor

// PunctuationType says which clock drives a punctuator.
type PunctuationType int

const (
	// StreamTime punctuators fire as the task's stream time (the largest
	// record timestamp seen) advances; they never fire while no records come.
	StreamTime PunctuationType = iota
	// WallClockTime punctuators fire on the system clock, checked by the runner's
	// poll loop, even when no records come.
	WallClockTime
)

func (t PunctuationType) String() string {
	if t == WallClockTime {
		return "wall-clock"
	}
	return "stream-time"
}

// Punctuator is called with the time (stream or wall-clock) at which it fires.
type Punctuator func(ts time.Time) error

// Cancellable stops a scheduled punctuator.
type Cancellable interface{ Cancel() }

// RecordMetadata locates the input record being processed.
type RecordMetadata struct {
	Topic     string
	Partition int32
	Offset    int64
}

// ProcessorContext is the runtime a Processor talks to. It belongs to one
// task and must be used only from the Processor's own methods and punctuators.
type ProcessorContext interface {
	// TaskID is the task's id, `<subtopology>_<partition>`.
	TaskID() string
	// Partition is the task's partition number.
	Partition() int32
	// ApplicationID is the application.id the runner runs under.
	ApplicationID() string
	// Forward sends rec to every child of this node, depth first.
	Forward(rec Record) error
	// ForwardTo sends rec to the named child only.
	ForwardTo(child string, rec Record) error
	// Store returns a state store connected to this node (StoreNames of the
	// node's definition); it panics for a store that was not connected,
	// which Build reports before anything runs.
	Store(name string) KeyValueStore
	// WindowStore returns a window store connected to this node
	// (StoreSpec.Kind WindowStoreKind); it panics as Store does.
	WindowStore(name string) WindowStore
	// SessionStore returns a session store connected to this node
	// (StoreSpec.Kind SessionStoreKind); it panics as Store does.
	SessionStore(name string) SessionStore
	// Schedule calls fn every interval of the given clock.
	Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) Cancellable
	// RecordMetadata is the input record being processed; ok is false inside a
	// punctuator.
	RecordMetadata() (md RecordMetadata, ok bool)
	// StreamTime is the task's stream time.
	StreamTime() time.Time
}

// KeyValueStore is a task's view of a state store partition. Reads see the
// task's own uncommitted writes; writes become durable when the transaction
// that carries their changelog records commits.
type KeyValueStore interface {
	Name() string
	Get(key any) (any, error)
	Put(key, value any) error
	Delete(key any) error
	// Range calls fn for every entry in key-byte order (after serialization)
	// from from (inclusive) to to (exclusive); nil bounds are open.
	Range(from, to any, fn func(key, value any) error) error
}

// CachingKeyValueStore is a KeyValueStore that can hold a record cache
// (Kafka Streams' caching store, statestore.cache.max.bytes): updates
// written with PutCached are merged per key and reach the store, its
// changelog and the node's children only when the cache flushes: at every
// commit, inside the transaction, and when the task's share of the cache is
// full. A node that forwards its updates this way (the stream aggregations:
// Count, Reduce, Aggregate) registers a flush listener at Init; if
// SetFlushListener returns false the runner has no cache, and the node
// writes with Put and forwards itself, once per update.
type CachingKeyValueStore interface {
	KeyValueStore
	// SetFlushListener registers fn, called once per flushed key, in the
	// order the keys were first updated since the last flush, with the
	// key's last cached value (nil: deleted) and, if withOld, the value the
	// store held before the flush (as of the previous flush: Kafka Streams'
	// TimestampedCacheFlushListener). from carries the key and the
	// timestamp and headers of the record that made the last update; the
	// record metadata during the call is that record's. It replaces an
	// earlier listener, and reports whether the store caches.
	SetFlushListener(fn func(from Record, newValue, oldValue any) error, withOld bool) bool
	// PutCached is Put into the cache, remembering from (the record being
	// processed) for the flush. A nil value deletes.
	PutCached(key, value any, from Record) error
}
