package topology

import (
	"errors"
	"fmt"
	"time"

	"github.com/eos-runner/eos-runner/serde"
)

// IdempotencyKey returns the key a record is deduplicated by (Dedup). An
// error sends the record to the error policy; an empty key passes the
// record through undeduplicated.
type IdempotencyKey func(rec Record) (string, error)

// ByRecordKey deduplicates by the record key, as formatted with %v.
func ByRecordKey() IdempotencyKey {
	return func(rec Record) (string, error) {
		if rec.Key == nil {
			return "", nil
		}
		if b, ok := rec.Key.([]byte); ok {
			return string(b), nil
		}
		return fmt.Sprint(rec.Key), nil
	}
}

// ByHeader deduplicates by the value of a record header; a record without
// the header passes through.
func ByHeader(name string) IdempotencyKey {
	return func(rec Record) (string, error) { return string(rec.Header(name)), nil }
}

// ByField deduplicates by a field of the record's value (a map, as JSON and
// Avro values decode; a dotted name reads a nested map), as formatted with %v.
func ByField(field string) IdempotencyKey {
	return func(rec Record) (string, error) {
		v, err := lookupField(rec.Value, field)
		if err != nil {
			return "", fmt.Errorf("idempotency key: %w", err)
		}
		return fmt.Sprint(v), nil
	}
}

// ErrDuplicate marks a record Dedup dropped; the runner counts it in
// eos_dropped_records_total{reason="duplicate"}.
var ErrDuplicate = errors.New("duplicate record")

// DropRecorder is implemented by processor contexts that count records a
// node drops on purpose (a duplicate, say), by reason, and log why at debug.
// Nodes check for it with a type assertion, so contexts without it still
// work.
type DropRecorder interface {
	RecordDropped(reason string, why error)
}

// DuplicateError says which earlier record a dropped one duplicates.
type DuplicateError struct {
	Key string
	// Timestamp is the dropped record's event time; Seen the earlier one's.
	Timestamp, Seen time.Time
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("duplicate record: idempotency key %q at %d seen at %d", e.Key, e.Timestamp.UnixMilli(), e.Seen.UnixMilli())
}

// Unwrap makes errors.Is(err, ErrDuplicate) hold.
func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// Dedup drops a record whose idempotency key was seen within ttl of its event
// time, before or after (so out-of-order duplicates are caught too): the
// first occurrence passes, later ones within the TTL are dropped and
// counted. The keys seen live in a window store (named <node name>-store
// when the node is Named, so its changelog topic stays put as the topology
// grows; generated otherwise), by key and event time, that expires by
// stream time after 2 * ttl, with a compact,delete changelog, so
// deduplication is exactly once across crashes
// and rebalances: a replay neither lets a duplicate through nor drops a first
// occurrence.
//
// Deduplication is per task (per input partition): records with one
// idempotency key must reach the same partition, which holds when the key is
// the record key and producers partition by it; otherwise SelectKey and
// Repartition first.
func (s *Stream) Dedup(key IdempotencyKey, ttl time.Duration, opts ...Option) *Stream {
	b := s.b
	if ttl <= 0 {
		b.errorf("dedup: ttl %v must be positive", ttl)
		ttl = time.Millisecond
	}
	if key == nil {
		b.errorf("dedup: no idempotency key")
	}
	// A named node names its store, so the changelog topic does not change
	// when other nodes are added; otherwise a generated name.
	var o nodeOptions
	for _, opt := range opts {
		opt(&o)
	}
	name := o.name + "-store"
	if o.name == "" {
		name = fmt.Sprintf("KSTREAM-DEDUP-STATE-STORE-%010d", b.seq)
		b.seq++
	}
	b.AddStore(StoreSpec{Name: name, KeySerde: serde.String{}, ValueSerde: serde.Int64{},
		Kind: WindowStoreKind, Retention: 2 * ttl, WindowSize: time.Millisecond})
	return s.add("DEDUP", func() Processor { return &dedupProcessor{key: key, ttl: ttl, store: name} },
		false, append(opts, WithStores(name)))
}

// dedupProcessor is Dedup's node.
type dedupProcessor struct {
	key   IdempotencyKey
	ttl   time.Duration
	store string
	ctx   ProcessorContext
	seen  WindowStore
}

func (p *dedupProcessor) Init(ctx ProcessorContext) error {
	p.ctx, p.seen = ctx, ctx.WindowStore(p.store)
	return nil
}

func (p *dedupProcessor) Process(r Record) error {
	id, err := p.key(r)
	if err != nil {
		return err
	}
	if id == "" {
		return p.ctx.Forward(r)
	}
	var first time.Time
	found := false
	if err := p.seen.Fetch(id, r.Timestamp.Add(-p.ttl), r.Timestamp.Add(p.ttl), func(at time.Time, _ any) error {
		if !found {
			first, found = at, true
		}
		return nil
	}); err != nil {
		return err
	}
	if found {
		// Dropped, not failed: an error would drop the record's effects on
		// every other branch too.
		if d, ok := p.ctx.(DropRecorder); ok {
			d.RecordDropped("duplicate", &DuplicateError{Key: id, Timestamp: r.Timestamp, Seen: first})
		}
		return nil
	}
	if err := p.seen.Put(id, r.Timestamp, r.Timestamp.UnixMilli()); err != nil {
		return err
	}
	return p.ctx.Forward(r)
}

func (p *dedupProcessor) Close() error { return nil }
