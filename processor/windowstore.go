package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/topology"
)

// windowStore is a task's typed view of a window store partition
// (topology.WindowStore) over changelog.WindowStore, with the same overlay
// discipline as kvStore (statestore.go). Its changelog records carry Kafka
// Streams' time-windowed key layout (changelog.EncodeWindowKey).
//
// Windows that stream time has expired (start at or before stream time -
// retention) are invisible to reads even before their segment is dropped,
// as in Kafka Streams; a write to an expired window is dropped, with no
// changelog record, and counted. Segments expire as stream time advances, at
// each flush. Owned by its task's worker.
type windowStore struct {
	windowed
	ws      *changelog.WindowStore
	overlay map[windowSlot]overlayEntry
}

// windowed is what window and session store views share: the spec, the
// changelog partition, and the task's stream time that expires entries.
type windowed struct {
	spec       topology.StoreSpec
	topic      string // changelog topic
	partition  int32
	coll       *collector
	streamTime func() time.Time // the task's; expires segments
	visible    func() time.Time // expires reads: see task.newStore
	dropped    func(reason string)
}

func (s *windowed) Name() string                  { return s.spec.Name }
func (s *windowed) storeSpec() topology.StoreSpec { return s.spec }
func (s *windowed) changelogTopic() string        { return s.topic }
func (s *windowed) changelogPartition() int32     { return s.partition }
func (s *windowed) collector() *collector         { return s.coll }

// expiredBefore is the first window start (session end) still visible:
// Kafka Streams' observedStreamTime - retentionPeriod + 1.
func (s *windowed) expiredBefore() int64 {
	st := s.visible()
	if st.IsZero() || s.spec.Retention == topology.RetainForever {
		return -1 << 63
	}
	return st.UnixMilli() - s.spec.Retention.Milliseconds() + 1
}

func (s *windowed) keyBytes(key any) ([]byte, error) { return storeKeyBytes(s.spec, s.topic, key) }

// changelog queues one changelog record of this store partition.
func (s *windowed) changelog(key, value []byte) {
	s.coll.send(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &s.topic, Partition: s.partition},
		Key:            key,
		Value:          value,
	})
}

type windowSlot struct {
	key   string
	start int64
}

func newWindowStore(spec topology.StoreSpec, ws *changelog.WindowStore, topic string, partition int32, coll *collector,
	streamTime, visible func() time.Time, dropped func(string)) *windowStore {
	return &windowStore{windowed: windowed{spec: spec, topic: topic, partition: partition, coll: coll, streamTime: streamTime, visible: visible,
		dropped: dropped}, ws: ws, overlay: map[windowSlot]overlayEntry{}}
}

func (s *windowStore) value(vb []byte) (any, error) {
	if vb == nil {
		return nil, nil
	}
	v, err := s.spec.ValueSerde.Deserialize(s.topic, vb)
	if err != nil {
		return nil, fmt.Errorf("store %s: value: %w", s.spec.Name, err)
	}
	return v, nil
}

// Get implements topology.WindowStore.
func (s *windowStore) Get(key any, start time.Time) (any, error) {
	kb, err := s.keyBytes(key)
	if err != nil {
		return nil, err
	}
	ms := start.UnixMilli()
	if ms < s.expiredBefore() {
		return nil, nil
	}
	if e, ok := s.overlay[windowSlot{string(kb), ms}]; ok {
		if e.deleted {
			return nil, nil
		}
		return s.value(bytes.Clone(e.value))
	}
	vb, err := s.ws.Get(kb, ms)
	if err != nil {
		return nil, &runtimeError{fmt.Errorf("store %s: get: %w", s.spec.Name, err)}
	}
	return s.value(vb)
}

// Put implements topology.WindowStore. A nil value deletes.
func (s *windowStore) Put(key any, start time.Time, value any) error {
	kb, err := s.keyBytes(key)
	if err != nil {
		return err
	}
	vb, err := s.spec.ValueSerde.Serialize(s.topic, value)
	if err != nil {
		return fmt.Errorf("store %s: value: %w", s.spec.Name, err)
	}
	if value == nil {
		vb = nil
	}
	s.overlay[windowSlot{string(kb), start.UnixMilli()}] = overlayEntry{value: bytes.Clone(vb), deleted: vb == nil}
	return nil
}

// Fetch implements topology.WindowStore.
func (s *windowStore) Fetch(key any, from, to time.Time, fn func(start time.Time, value any) error) error {
	kb, err := s.keyBytes(key)
	if err != nil {
		return err
	}
	lo, hi := max(from.UnixMilli(), s.expiredBefore()), to.UnixMilli()
	if lo > hi {
		return nil
	}
	merged := map[int64][]byte{}
	if err := s.ws.Fetch(kb, lo, hi, func(start int64, v []byte) error {
		merged[start] = bytes.Clone(v)
		return nil
	}); err != nil {
		return &runtimeError{fmt.Errorf("store %s: fetch: %w", s.spec.Name, err)}
	}
	for slot, e := range s.overlay {
		if slot.key != string(kb) || slot.start < lo || slot.start > hi {
			continue
		}
		if e.deleted {
			delete(merged, slot.start)
		} else {
			merged[slot.start] = e.value
		}
	}
	starts := make([]int64, 0, len(merged))
	for st := range merged {
		starts = append(starts, st)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	for _, st := range starts {
		v, err := s.value(merged[st])
		if err != nil {
			return err
		}
		if err := fn(time.UnixMilli(st).UTC(), v); err != nil {
			return err
		}
	}
	return nil
}

// FetchAll implements topology.WindowStore.
func (s *windowStore) FetchAll(from, to time.Time, fn func(key any, start time.Time, value any) error) error {
	lo, hi := max(from.UnixMilli(), s.expiredBefore()), to.UnixMilli()
	if lo > hi {
		return nil
	}
	merged := map[windowSlot][]byte{}
	if err := s.ws.FetchAll(lo, hi, func(k []byte, start int64, v []byte) error {
		merged[windowSlot{string(k), start}] = bytes.Clone(v)
		return nil
	}); err != nil {
		return &runtimeError{fmt.Errorf("store %s: fetch all: %w", s.spec.Name, err)}
	}
	for slot, e := range s.overlay {
		if slot.start < lo || slot.start > hi {
			continue
		}
		if e.deleted {
			delete(merged, slot)
		} else {
			merged[slot] = e.value
		}
	}
	slots := make([]windowSlot, 0, len(merged))
	for slot := range merged {
		slots = append(slots, slot)
	}
	sort.Slice(slots, func(i, j int) bool {
		if slots[i].start != slots[j].start {
			return slots[i].start < slots[j].start
		}
		return slots[i].key < slots[j].key
	})
	for _, slot := range slots {
		k, err := s.spec.KeySerde.Deserialize(s.topic, []byte(slot.key))
		if err != nil {
			return fmt.Errorf("store %s: key: %w", s.spec.Name, err)
		}
		v, err := s.value(merged[slot])
		if err != nil {
			return err
		}
		if err := fn(k, time.UnixMilli(slot.start).UTC(), v); err != nil {
			return err
		}
	}
	return nil
}

// flush implements stateStore: this record's writes go to the pending batch
// and, as Kafka Streams' time-windowed changelog records, to the
// collector; then segments expired by stream time are dropped.
func (s *windowStore) flush() error {
	for slot, e := range s.overlay {
		kb := []byte(slot.key)
		var v []byte
		if !e.deleted {
			v = e.value
		}
		if err := s.ws.Put(kb, slot.start, v); err != nil {
			if errors.Is(err, changelog.ErrExpired) {
				s.dropped("expired-window")
				continue
			}
			return &runtimeError{fmt.Errorf("store %s: write: %w", s.spec.Name, err)}
		}
		s.changelog(changelog.EncodeWindowKey(kb, slot.start), v)
	}
	clear(s.overlay)
	if st := s.streamTime(); !st.IsZero() {
		if err := s.ws.Expire(st.UnixMilli()); err != nil {
			return &runtimeError{fmt.Errorf("store %s: expire: %w", s.spec.Name, err)}
		}
	}
	return nil
}

func (s *windowStore) discard()                                   { clear(s.overlay) }
func (s *windowStore) pendingCount() int                          { return s.ws.PendingCount() }
func (s *windowStore) commitAt(checkpoint int64) changelog.Commit { return s.ws.CommitAt(checkpoint) }
func (s *windowStore) abort()                                     { s.discard(); s.ws.Abort() }
func (s *windowStore) restore(ctx context.Context, src changelog.Source, opts changelog.RestoreOptions) (changelog.RestoreResult, error) {
	return changelog.RestoreWindows(ctx, s.ws, src, opts)
}

// sessionStore is a task's typed view of a session store partition
// (topology.SessionStore) over changelog.SessionStore, with the overlay
// discipline of statestore.go. Its changelog records carry Kafka Streams'
// session key layout (changelog.EncodeSessionKey). Sessions whose end stream
// time has expired are invisible to reads. Owned by its task's worker.
type sessionStore struct {
	windowed
	ss      *changelog.SessionStore
	overlay map[sessionSlot]overlayEntry
}

type sessionSlot struct {
	key        string
	start, end int64
}

func newSessionStore(spec topology.StoreSpec, ss *changelog.SessionStore, topic string, partition int32, coll *collector,
	streamTime, visible func() time.Time, dropped func(string)) *sessionStore {
	return &sessionStore{windowed: windowed{spec: spec, topic: topic, partition: partition, coll: coll, streamTime: streamTime, visible: visible,
		dropped: dropped}, ss: ss, overlay: map[sessionSlot]overlayEntry{}}
}

// FindSessions implements topology.SessionStore.
func (s *sessionStore) FindSessions(key any, earliestEnd, latestStart time.Time, fn func(w topology.Window, value any) error) error {
	kb, err := s.keyBytes(key)
	if err != nil {
		return err
	}
	lo, hi := max(earliestEnd.UnixMilli(), s.expiredBefore()), latestStart.UnixMilli()
	type span struct{ start, end int64 }
	merged := map[span][]byte{}
	if err := s.ss.FindSessions(kb, lo, hi, func(start, end int64, v []byte) error {
		merged[span{start, end}] = bytes.Clone(v)
		return nil
	}); err != nil {
		return &runtimeError{fmt.Errorf("store %s: find sessions: %w", s.spec.Name, err)}
	}
	for slot, e := range s.overlay {
		if slot.key != string(kb) || slot.end < lo || slot.start > hi {
			continue
		}
		if e.deleted {
			delete(merged, span{slot.start, slot.end})
		} else {
			merged[span{slot.start, slot.end}] = e.value
		}
	}
	spans := make([]span, 0, len(merged))
	for sp := range merged {
		spans = append(spans, sp)
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].end != spans[j].end {
			return spans[i].end < spans[j].end
		}
		return spans[i].start < spans[j].start
	})
	for _, sp := range spans {
		v, err := s.spec.ValueSerde.Deserialize(s.topic, merged[sp])
		if err != nil {
			return fmt.Errorf("store %s: value: %w", s.spec.Name, err)
		}
		w := topology.Window{Start: time.UnixMilli(sp.start).UTC(), End: time.UnixMilli(sp.end).UTC()}
		if err := fn(w, v); err != nil {
			return err
		}
	}
	return nil
}

// Put implements topology.SessionStore.
func (s *sessionStore) Put(key any, w topology.Window, value any) error {
	if value == nil {
		return s.Remove(key, w)
	}
	kb, err := s.keyBytes(key)
	if err != nil {
		return err
	}
	vb, err := s.spec.ValueSerde.Serialize(s.topic, value)
	if err != nil {
		return fmt.Errorf("store %s: value: %w", s.spec.Name, err)
	}
	s.overlay[sessionSlot{string(kb), w.Start.UnixMilli(), w.End.UnixMilli()}] = overlayEntry{value: bytes.Clone(vb)}
	return nil
}

// Remove implements topology.SessionStore.
func (s *sessionStore) Remove(key any, w topology.Window) error {
	kb, err := s.keyBytes(key)
	if err != nil {
		return err
	}
	s.overlay[sessionSlot{string(kb), w.Start.UnixMilli(), w.End.UnixMilli()}] = overlayEntry{deleted: true}
	return nil
}

// flush implements stateStore, as windowStore.flush.
func (s *sessionStore) flush() error {
	for slot, e := range s.overlay {
		kb := []byte(slot.key)
		var err error
		var v []byte
		if e.deleted {
			err = s.ss.Remove(kb, slot.start, slot.end)
		} else {
			v = e.value
			err = s.ss.Put(kb, slot.start, slot.end, v)
		}
		if err != nil {
			if errors.Is(err, changelog.ErrExpired) {
				s.dropped("expired-window")
				continue
			}
			return &runtimeError{fmt.Errorf("store %s: write: %w", s.spec.Name, err)}
		}
		s.changelog(changelog.EncodeSessionKey(kb, slot.start, slot.end), v)
	}
	clear(s.overlay)
	if st := s.streamTime(); !st.IsZero() {
		if err := s.ss.Expire(st.UnixMilli()); err != nil {
			return &runtimeError{fmt.Errorf("store %s: expire: %w", s.spec.Name, err)}
		}
	}
	return nil
}

func (s *sessionStore) discard()                                   { clear(s.overlay) }
func (s *sessionStore) pendingCount() int                          { return s.ss.PendingCount() }
func (s *sessionStore) commitAt(checkpoint int64) changelog.Commit { return s.ss.CommitAt(checkpoint) }
func (s *sessionStore) abort()                                     { s.discard(); s.ss.Abort() }
func (s *sessionStore) restore(ctx context.Context, src changelog.Source, opts changelog.RestoreOptions) (changelog.RestoreResult, error) {
	return changelog.RestoreSessions(ctx, s.ss, src, opts)
}
