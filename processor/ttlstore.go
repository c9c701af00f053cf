package processor

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/topology"
)

// ttlStore is a key-value store whose entries expire once stream time has
// passed their last update by the store's TTL (topology.StoreSpec.TTL).
// Expiry is a store write like any other: the entry is deleted, with a
// tombstone on the changelog, in the open transaction, under the same
// checkpoint protocol; stream time decides, so a replay expires exactly what
// the first attempt did.
//
// Layout inside its store partition, and on its changelog (so a restore
// brings both back with nothing to rebuild):
//
//	'd' | key            -> update time (8 bytes, big-endian ms) | value
//	't' | update time | key -> 0x01   (the time index)
//
// The time index makes expiry a range scan over what is due, never a scan
// of every key. An index entry whose data entry was updated since is stale
// and goes with the next expiry. Reads hide an entry already due even before
// expiry has run. Owned by its task's worker, with the overlay discipline of
// statestore.go.
type ttlStore struct {
	spec       topology.StoreSpec
	cs         *changelog.Store
	topic      string
	partition  int32
	coll       *collector
	streamTime func() time.Time

	overlay map[string]overlayEntry // by serialized user key; values serialized, without the time
	// expiredThrough: every index entry at or before it has been deleted
	// (pending or committed), so expiry scans from just after it, not over
	// the deleted entries of every expiry before. -1: unknown (scan from the
	// start); reset by abort, which brings deleted entries back.
	expiredThrough int64
}

const (
	ttlData  = 'd'
	ttlIndex = 't'
)

func newTTLStore(spec topology.StoreSpec, cs *changelog.Store, topic string, partition int32, coll *collector, streamTime func() time.Time) *ttlStore {
	return &ttlStore{spec: spec, cs: cs, topic: topic, partition: partition, coll: coll, streamTime: streamTime,
		overlay: map[string]overlayEntry{}, expiredThrough: -1}
}

func ttlDataKey(kb []byte) []byte { return append([]byte{ttlData}, kb...) }

func ttlIndexKey(ts int64, kb []byte) []byte {
	k := make([]byte, 9, 9+len(kb))
	k[0] = ttlIndex
	binary.BigEndian.PutUint64(k[1:], uint64(ts))
	return append(k, kb...)
}

// now is stream time in milliseconds (0 before any record).
func (s *ttlStore) now() int64 {
	st := s.streamTime()
	if st.IsZero() {
		return 0
	}
	return st.UnixMilli()
}

// live reports whether an entry updated at ts is still visible at stream time.
func (s *ttlStore) live(ts int64) bool { return ts > s.now()-s.spec.TTL.Milliseconds() }

func (s *ttlStore) Name() string { return s.spec.Name }

// committed reads key's data entry from the store (pending writes included):
// its update time and value, ok false if absent.
func (s *ttlStore) committed(kb []byte) (ts int64, value []byte, ok bool, err error) {
	b, err := s.cs.Get(ttlDataKey(kb))
	if err != nil {
		return 0, nil, false, &runtimeError{fmt.Errorf("store %s: get: %w", s.spec.Name, err)}
	}
	if len(b) < 8 {
		return 0, nil, false, nil
	}
	return int64(binary.BigEndian.Uint64(b)), b[8:], true, nil
}

// Get implements topology.KeyValueStore.
func (s *ttlStore) Get(key any) (any, error) {
	kb, err := storeKeyBytes(s.spec, s.topic, key)
	if err != nil {
		return nil, err
	}
	var vb []byte
	if e, ok := s.overlay[string(kb)]; ok {
		if e.deleted {
			return nil, nil
		}
		vb = bytes.Clone(e.value)
	} else {
		ts, v, ok, err := s.committed(kb)
		if err != nil || !ok || !s.live(ts) {
			return nil, err
		}
		vb = bytes.Clone(v)
	}
	return s.spec.ValueSerde.Deserialize(s.topic, vb)
}

// Put implements topology.KeyValueStore. A nil value deletes.
func (s *ttlStore) Put(key, value any) error {
	kb, err := storeKeyBytes(s.spec, s.topic, key)
	if err != nil {
		return err
	}
	if value == nil {
		s.overlay[string(kb)] = overlayEntry{deleted: true}
		return nil
	}
	vb, err := s.spec.ValueSerde.Serialize(s.topic, value)
	if err != nil {
		return fmt.Errorf("store %s: value: %w", s.spec.Name, err)
	}
	s.overlay[string(kb)] = overlayEntry{value: bytes.Clone(vb), deleted: vb == nil}
	return nil
}

// Delete implements topology.KeyValueStore.
func (s *ttlStore) Delete(key any) error { return s.Put(key, nil) }

// Range implements topology.KeyValueStore over live entries, in key-byte order.
func (s *ttlStore) Range(from, to any, fn func(key, value any) error) error {
	var start, end []byte
	var err error
	if from != nil {
		if start, err = storeKeyBytes(s.spec, s.topic, from); err != nil {
			return err
		}
	}
	if to != nil {
		if end, err = storeKeyBytes(s.spec, s.topic, to); err != nil {
			return err
		}
	}
	lo, hi := []byte{ttlData}, []byte{ttlData + 1}
	if start != nil {
		lo = ttlDataKey(start)
	}
	if end != nil {
		hi = ttlDataKey(end)
	}
	merged := map[string][]byte{}
	if err := s.cs.Range(lo, hi, func(k, v []byte) error {
		if len(v) >= 8 && s.live(int64(binary.BigEndian.Uint64(v))) {
			merged[string(k[1:])] = bytes.Clone(v[8:])
		}
		return nil
	}); err != nil {
		return &runtimeError{fmt.Errorf("store %s: range: %w", s.spec.Name, err)}
	}
	return rangeMerged(s.spec, s.topic, merged, s.overlay, start, end, fn)
}

// write puts (or, value nil, deletes) one raw entry, pending and on the changelog.
func (s *ttlStore) write(key, value []byte) error {
	var err error
	if value == nil {
		err = s.cs.Delete(key)
	} else {
		err = s.cs.Put(key, value)
	}
	if err != nil {
		return &runtimeError{fmt.Errorf("store %s: write: %w", s.spec.Name, err)}
	}
	s.coll.send(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &s.topic, Partition: s.partition},
		Key:            key,
		Value:          value,
	})
	return nil
}

// flush implements stateStore: this record's writes, each stamped with the
// current stream time and indexed by it, then the expiry of what is due.
func (s *ttlStore) flush() error {
	now := s.now()
	for k, e := range s.overlay {
		kb := []byte(k)
		old, _, had, err := s.committed(kb)
		if err != nil {
			return err
		}
		if had {
			if err := s.write(ttlIndexKey(old, kb), nil); err != nil {
				return err
			}
		}
		if e.deleted {
			if had {
				if err := s.write(ttlDataKey(kb), nil); err != nil {
					return err
				}
			}
			continue
		}
		v := make([]byte, 8, 8+len(e.value))
		binary.BigEndian.PutUint64(v, uint64(now))
		if err := s.write(ttlDataKey(kb), append(v, e.value...)); err != nil {
			return err
		}
		if err := s.write(ttlIndexKey(now, kb), []byte{1}); err != nil {
			return err
		}
	}
	clear(s.overlay)
	return s.expire(now)
}

// expire deletes every entry last updated at or before now - TTL.
func (s *ttlStore) expire(now int64) error {
	due := now - s.spec.TTL.Milliseconds()
	if due < 0 || due <= s.expiredThrough {
		return nil
	}
	from := []byte{ttlIndex}
	if s.expiredThrough >= 0 {
		from = ttlIndexKey(s.expiredThrough+1, nil)
	}
	type item struct {
		ts int64
		kb []byte
	}
	var items []item
	if err := s.cs.Range(from, ttlIndexKey(due+1, nil), func(k, _ []byte) error {
		if len(k) >= 9 {
			items = append(items, item{int64(binary.BigEndian.Uint64(k[1:9])), bytes.Clone(k[9:])})
		}
		return nil
	}); err != nil {
		return &runtimeError{fmt.Errorf("store %s: expire: %w", s.spec.Name, err)}
	}
	for _, it := range items {
		if err := s.write(ttlIndexKey(it.ts, it.kb), nil); err != nil {
			return err
		}
		ts, _, ok, err := s.committed(it.kb)
		if err != nil {
			return err
		}
		if ok && ts == it.ts { // not updated since: expired
			if err := s.write(ttlDataKey(it.kb), nil); err != nil {
				return err
			}
		}
	}
	s.expiredThrough = due
	return nil
}

func (s *ttlStore) keyBytes(key any) ([]byte, error)           { return storeKeyBytes(s.spec, s.topic, key) }
func (s *ttlStore) collector() *collector                      { return s.coll }
func (s *ttlStore) discard()                                   { clear(s.overlay) }
func (s *ttlStore) storeSpec() topology.StoreSpec              { return s.spec }
func (s *ttlStore) changelogTopic() string                     { return s.topic }
func (s *ttlStore) changelogPartition() int32                  { return s.partition }
func (s *ttlStore) pendingCount() int                          { return s.cs.PendingCount() }
func (s *ttlStore) commitAt(checkpoint int64) changelog.Commit { return s.cs.CommitAt(checkpoint) }
func (s *ttlStore) abort() {
	s.discard()
	s.cs.Abort()
	s.expiredThrough = -1
}
func (s *ttlStore) restore(ctx context.Context, src changelog.Source, opts changelog.RestoreOptions) (changelog.RestoreResult, error) {
	return changelog.Restore(ctx, s.cs, src, opts)
}
