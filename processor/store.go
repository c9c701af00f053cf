package processor

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/topology"
)

// kvStore is a task's typed view of one store partition
// (topology.KeyValueStore). Writes of the record being processed stay in an
// overlay that reads see; when the record succeeds they move to the
// changelog.Store's pending batch and their changelog records to the
// collector, and when it fails they are dropped. Owned by its task's worker.
type kvStore struct {
	spec      topology.StoreSpec
	cs        *changelog.Store
	topic     string // changelog topic
	partition int32
	coll      *collector
	// fromSource: the changelog topic is the table's source topic, written
	// by others; the store writes no changelog records (sourcetopic.go).
	fromSource bool

	// overlay: this record's writes, one per key, in first-write order (a
	// record writes a key or two: a slice scan beats a map's hashing and
	// clearing per record).
	overlay []kvWrite

	// The record cache (recordcache.go): nil rc, or no listener, means
	// every write goes through at once.
	rc       *recordCache
	listener func(from topology.Record, newValue, oldValue any) error
	withOld  bool
	cache    map[string]*cacheEntry // dirty entries since the last flush
	order    []string               // cache keys in first-update order
}

// overlayEntry is one write of the record being processed.
type overlayEntry struct {
	value   []byte
	deleted bool
}

// kvWrite is one write of the record being processed to a kvStore.
type kvWrite struct {
	key []byte
	overlayEntry
	// cached: written by PutCached; from is the record it came from.
	cached bool
	from   cacheContext
}

// find returns the index of key's write in the overlay, or -1.
func (s *kvStore) find(key []byte) int {
	for i := range s.overlay {
		if bytes.Equal(s.overlay[i].key, key) {
			return i
		}
	}
	return -1
}

// setOverlay records this record's write w of its key.
func (s *kvStore) setOverlay(w kvWrite) {
	if i := s.find(w.key); i >= 0 {
		s.overlay[i] = w
		return
	}
	s.overlay = append(s.overlay, w)
}

func newKVStore(spec topology.StoreSpec, cs *changelog.Store, topic string, partition int32, coll *collector) *kvStore {
	return &kvStore{spec: spec, cs: cs, topic: topic, partition: partition, coll: coll}
}

func (s *kvStore) Name() string { return s.spec.Name }

func (s *kvStore) keyBytes(key any) ([]byte, error) { return storeKeyBytes(s.spec, s.topic, key) }

// storeKeyBytes serializes a store key; a key that serializes to nil is an
// error (a store entry needs a key).
func storeKeyBytes(spec topology.StoreSpec, topic string, key any) ([]byte, error) {
	kb, err := spec.KeySerde.Serialize(topic, key)
	if err != nil {
		return nil, fmt.Errorf("store %s: key: %w", spec.Name, err)
	}
	if kb == nil {
		return nil, fmt.Errorf("store %s: nil key", spec.Name)
	}
	return kb, nil
}

// Get implements topology.KeyValueStore.
func (s *kvStore) Get(key any) (any, error) {
	kb, err := s.keyBytes(key)
	if err != nil {
		return nil, err
	}
	var vb []byte
	if i := s.find(kb); i >= 0 {
		e := s.overlay[i]
		if e.deleted {
			return nil, nil
		}
		vb = bytes.Clone(e.value)
	} else if e, ok := s.cache[string(kb)]; ok {
		if e.value == nil {
			return nil, nil
		}
		vb = bytes.Clone(e.value)
	} else if vb, err = s.cs.Get(kb); err != nil {
		return nil, &runtimeError{fmt.Errorf("store %s: get: %w", s.spec.Name, err)}
	}
	if vb == nil {
		return nil, nil
	}
	v, err := s.spec.ValueSerde.Deserialize(s.topic, vb)
	if err != nil {
		return nil, fmt.Errorf("store %s: value: %w", s.spec.Name, err)
	}
	return v, nil
}

// Put implements topology.KeyValueStore. A nil value deletes.
func (s *kvStore) Put(key, value any) error {
	w, err := s.encode(key, value)
	if err != nil {
		return err
	}
	s.setOverlay(w)
	return nil
}

// encode serializes a Put of key and value (a nil value deletes).
func (s *kvStore) encode(key, value any) (kvWrite, error) {
	kb, err := s.keyBytes(key)
	if err != nil {
		return kvWrite{}, err
	}
	vb, err := s.spec.ValueSerde.Serialize(s.topic, value)
	if err != nil {
		return kvWrite{}, fmt.Errorf("store %s: value: %w", s.spec.Name, err)
	}
	// Clone: serdes may return the caller's own slice (serde.Bytes), which the
	// caller may change after Put.
	return kvWrite{key: kb, overlayEntry: overlayEntry{value: bytes.Clone(vb), deleted: vb == nil}}, nil
}

// Delete implements topology.KeyValueStore.
func (s *kvStore) Delete(key any) error {
	kb, err := s.keyBytes(key)
	if err != nil {
		return err
	}
	s.setOverlay(kvWrite{key: kb, overlayEntry: overlayEntry{deleted: true}})
	return nil
}

// Range implements topology.KeyValueStore over committed, pending and this
// record's writes, in key-byte order.
func (s *kvStore) Range(from, to any, fn func(key, value any) error) error {
	var start, end []byte
	var err error
	if from != nil {
		if start, err = s.keyBytes(from); err != nil {
			return err
		}
	}
	if to != nil {
		if end, err = s.keyBytes(to); err != nil {
			return err
		}
	}
	merged := map[string][]byte{}
	if err := s.cs.Range(start, end, func(k, v []byte) error {
		merged[string(k)] = bytes.Clone(v)
		return nil
	}); err != nil {
		return &runtimeError{fmt.Errorf("store %s: range: %w", s.spec.Name, err)}
	}
	for k, e := range s.cache {
		kb := []byte(k)
		if (start != nil && bytes.Compare(kb, start) < 0) || (end != nil && bytes.Compare(kb, end) >= 0) {
			continue
		}
		if e.value == nil {
			delete(merged, k)
		} else {
			merged[k] = e.value
		}
	}
	overlay := make(map[string]overlayEntry, len(s.overlay))
	for _, w := range s.overlay {
		overlay[string(w.key)] = w.overlayEntry
	}
	return rangeMerged(s.spec, s.topic, merged, overlay, start, end, fn)
}

// rangeMerged lays a record's overlay over the entries read from the store
// (serialized keys to serialized values) within [start, end) (nil: open),
// then calls fn for each entry in key-byte order, deserialized: the tail of
// every key-value Range.
func rangeMerged(spec topology.StoreSpec, topic string, merged map[string][]byte, overlay map[string]overlayEntry,
	start, end []byte, fn func(key, value any) error) error {
	for k, e := range overlay {
		kb := []byte(k)
		if (start != nil && bytes.Compare(kb, start) < 0) || (end != nil && bytes.Compare(kb, end) >= 0) {
			continue
		}
		if e.deleted {
			delete(merged, k)
		} else {
			merged[k] = e.value
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key, err := spec.KeySerde.Deserialize(topic, []byte(k))
		if err != nil {
			return fmt.Errorf("store %s: key: %w", spec.Name, err)
		}
		val, err := spec.ValueSerde.Deserialize(topic, merged[k])
		if err != nil {
			return fmt.Errorf("store %s: value: %w", spec.Name, err)
		}
		if err := fn(key, val); err != nil {
			return err
		}
	}
	return nil
}

// flush moves this record's writes to the pending batch and queues their
// changelog records in the collector.
func (s *kvStore) flush() error {
	for i := range s.overlay {
		e := &s.overlay[i]
		if s.cacheWrite(e) {
			continue
		}
		value := e.value
		if e.deleted {
			value = nil
		}
		if err := s.write(e.key, value); err != nil {
			return err
		}
	}
	s.discard()
	return nil
}

// discard drops this record's writes.
func (s *kvStore) discard() {
	clear(s.overlay) // the slices go to the collector: not reused
	s.overlay = s.overlay[:0]
}

// write writes one entry through: to the pending batch, and its changelog
// record to the collector.
func (s *kvStore) write(kb, value []byte) error {
	var err error
	if value == nil {
		err = s.cs.Delete(kb)
	} else {
		err = s.cs.Put(kb, value)
	}
	if err != nil {
		return &runtimeError{fmt.Errorf("store %s: write: %w", s.spec.Name, err)}
	}
	if !s.fromSource {
		m := s.coll.message()
		m.TopicPartition = kafka.TopicPartition{Topic: &s.topic, Partition: s.partition}
		m.Key, m.Value = kb, value // nil value for a delete: a tombstone for compaction
		s.coll.send(m)
	}
	return nil
}
