package processor

// The record cache: Kafka Streams' caching key-value store, sized by
// statestore.cache.max.bytes.
//
// A stream aggregation (Count, Reduce, Aggregate) whose store caches writes
// its updates with PutCached instead of Put and forwards nothing itself.
// Within a transaction, repeated updates of a key are merged in the cache;
// only the last one per key is written to the pending batch, sent to the
// changelog and forwarded downstream (as Change(new, old as of the previous
// flush), KS's TimestampedCacheFlushListener), when the cache flushes:
//
//   - at every commit, after the barrier and before the offsets are sent
//     (committer.commitOpen, kafkaTxn.flushCaches), so the flushed records
//     travel in the transaction whose offsets cover the inputs that made
//     them;
//   - when the task's share of the budget is used up, after the record
//     that filled it has been processed without error (task.maybeEvict):
//     then every dirty entry of the task flushes, as KS's NamedCache
//     flushes every dirty entry when it evicts a dirty one.
//
// Invariants:
//
//   - The cache holds only uncommitted updates of records processed in the
//     open transaction: an abort (or a task closed without a commit) drops
//     it with the pending batches (kvStore.abort), and the records are
//     processed again, filling it again.
//   - Reads see it: overlay (this record), then cache, then the pending
//     batch and committed state.
//   - A key's flushed update carries the timestamp, headers and record
//     metadata of the record that made its last update.
//
// The application's budget is split evenly over the instance's active tasks
// (taskManager.resizeCaches); a task's cached stores share its part. An
// entry counts its key, value and headers plus cacheEntryOverhead.
//
// A Put or Delete (not PutCached) of a key that has a cached update writes
// through and drops the cached update unforwarded: the DSL never mixes them
// on one store, and a processor that does gets write-through semantics.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/eos-runner/eos-runner/topology"
)

// cacheEntryOverhead is what an entry counts beyond its key, value and
// headers: the map slot, the entry and its record context.
const cacheEntryOverhead = 96

// recordCache is one task's share of the record cache. enabled and the
// stores list are set before the task runs (stores also at Init, by the
// task's worker); max is set by the poll loop (on rebalance) and read by
// the worker; used is the worker's.
type recordCache struct {
	enabled bool
	max     atomic.Int64
	used    int64
	stores  []*kvStore // stores with a flush listener, in registration order
	// current points at the task's current record metadata, which a flush
	// sets to each entry's while forwarding it.
	current **topology.RecordMetadata
}

// cacheContext is the record an update came from.
type cacheContext struct {
	ts      time.Time
	headers []topology.Header
	md      topology.RecordMetadata
	hasMD   bool
}

// cacheEntry is a key's last cached update (value nil: deleted).
type cacheEntry struct {
	value []byte
	from  cacheContext
	size  int64
}

// SetFlushListener implements topology.CachingKeyValueStore.
func (s *kvStore) SetFlushListener(fn func(from topology.Record, newValue, oldValue any) error, withOld bool) bool {
	if s.rc == nil || !s.rc.enabled || s.fromSource {
		return false
	}
	s.listener, s.withOld = fn, withOld
	if !slices.Contains(s.rc.stores, s) {
		s.rc.stores = append(s.rc.stores, s)
	}
	if s.cache == nil {
		s.cache = map[string]*cacheEntry{}
	}
	return true
}

// PutCached implements topology.CachingKeyValueStore.
func (s *kvStore) PutCached(key, value any, from topology.Record) error {
	if s.listener == nil {
		return s.Put(key, value)
	}
	e, err := s.encode(key, value)
	if err != nil {
		return err
	}
	e.cached, e.from = true, cacheContext{ts: from.Timestamp, headers: from.Headers}
	if md := *s.rc.current; md != nil {
		e.from.md, e.from.hasMD = *md, true
	}
	s.setOverlay(e)
	return nil
}

// cacheWrite moves one overlay entry of a record that succeeded into the
// cache, and reports whether it did; a write-through entry drops the key's
// cached update.
func (s *kvStore) cacheWrite(e *kvWrite) bool {
	if s.listener == nil {
		return false
	}
	ce, ok := s.cache[string(e.key)]
	if !e.cached {
		if ok {
			s.rc.used -= ce.size
			delete(s.cache, string(e.key))
		}
		return false
	}
	if !ok {
		ce = &cacheEntry{}
		k := string(e.key)
		s.cache[k] = ce
		s.order = append(s.order, k)
	}
	s.rc.used -= ce.size
	ce.value = nil
	if !e.deleted {
		ce.value = e.value
	}
	ce.from = e.from
	ce.size = int64(len(e.key)+len(ce.value)) + cacheEntryOverhead
	for _, h := range e.from.headers {
		ce.size += int64(len(h.Key) + len(h.Value))
	}
	s.rc.used += ce.size
	return true
}

// flushChunk is how many cached updates flushCache writes through before
// the task moves what they produced on (flushCaches): the collector then
// holds a chunk's records, not a whole cache's, whose buffers it keeps.
const flushChunk = 512

// flushCache writes up to limit cached updates through (pending batch,
// changelog) and hands them to the listener, in first-update order,
// removing them from the cache; it reports whether the cache is empty.
// Forwarded records land in the collector and in downstream stores'
// overlays; the caller moves them on.
func (s *kvStore) flushCache(limit int) (empty bool, err error) {
	order := s.order
	s.order = nil
	defer func() { *s.rc.current = nil }()
	for i, k := range order {
		if i == limit {
			s.order = append(order[i:], s.order...)
			return false, nil
		}
		e, ok := s.cache[k]
		if !ok {
			continue // dropped by a write-through
		}
		delete(s.cache, k)
		s.rc.used -= e.size
		kb := []byte(k)
		var oldV any
		if s.withOld {
			ob, err := s.cs.Get(kb)
			if err != nil {
				return false, &runtimeError{fmt.Errorf("store %s: get: %w", s.spec.Name, err)}
			}
			if ob != nil {
				if oldV, err = s.spec.ValueSerde.Deserialize(s.topic, ob); err != nil {
					return false, fmt.Errorf("store %s: value: %w", s.spec.Name, err)
				}
			}
		}
		if err := s.write(kb, e.value); err != nil {
			return false, err
		}
		var newV any
		if e.value != nil {
			var err error
			if newV, err = s.spec.ValueSerde.Deserialize(s.topic, e.value); err != nil {
				return false, fmt.Errorf("store %s: value: %w", s.spec.Name, err)
			}
		} else if oldV == nil && s.withOld {
			continue // a delete of an absent key: nothing to tell (as KS)
		}
		key, err := s.spec.KeySerde.Deserialize(s.topic, kb)
		if err != nil {
			return false, fmt.Errorf("store %s: key: %w", s.spec.Name, err)
		}
		*s.rc.current = nil
		if e.from.hasMD {
			md := e.from.md
			*s.rc.current = &md
		}
		if err := s.listener(topology.Record{Key: key, Timestamp: e.from.ts, Headers: e.from.headers}, newV, oldV); err != nil {
			// Put back what is not flushed yet, for a consistent view until
			// the abort drops it all.
			s.order = append(order[i+1:], s.order...)
			return false, err
		}
	}
	return len(s.cache) == 0, nil
}

// dropCache empties the cache unflushed: the transaction is aborted.
func (s *kvStore) dropCache() {
	if s.rc != nil {
		for _, e := range s.cache {
			s.rc.used -= e.size
		}
	}
	clear(s.cache)
	s.order = nil
}

// cacheDirty reports whether any of the task's cached stores holds updates.
func (t *task) cacheDirty() bool {
	for _, s := range t.rc.stores {
		if len(s.cache) > 0 {
			return true
		}
	}
	return false
}

// maybeEvict flushes the task's caches when they hold more than its share.
// Called after a record (or punctuation) succeeded.
func (t *task) maybeEvict(ctx context.Context) error {
	if !t.rc.enabled || t.rc.used <= t.rc.max.Load() {
		return nil
	}
	t.metrics.cacheEvictions.Inc()
	return t.flushCaches(ctx)
}

// errCacheFlush marks a failure while a cache flushed: no record is at
// fault, so it never goes to the error policy.
var errCacheFlush = errors.New("record cache flush")

// flushCaches flushes every cached store of the task, and again while a
// flush's forwarded records fill another (a cached store downstream),
// producing what they forwarded every flushChunk updates. A failure that is not the runtime's (a
// downstream processor's error) stops the runner after an abort, since no
// single input record can be dead-lettered for it.
func (t *task) flushCaches(ctx context.Context) error {
	for pass := 0; t.cacheDirty(); pass++ {
		if pass == 16 {
			return fmt.Errorf("task %s: %w: caches still dirty after %d passes", t.id, errCacheFlush, pass)
		}
		for _, s := range t.rc.stores {
			for empty := len(s.cache) == 0; !empty; {
				var err error
				if empty, err = s.flushCache(flushChunk); err != nil {
					t.discard()
					var rte *runtimeError
					if errors.As(err, &rte) {
						return err
					}
					// %v: whatever the error wraps (a processing error of
					// a node), it is not a record's to dead-letter.
					return fmt.Errorf("task %s: %w of store %s: %v", t.id, errCacheFlush, s.spec.Name, err)
				}
				if err := t.commitRecord(); err != nil {
					return err
				}
				if err := t.coll.flush(ctx); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
