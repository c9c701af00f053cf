package topology

import (
	"fmt"
	"sort"
	"time"
)

// memWindowStore is an in-memory WindowStore. Keys are compared by their
// fmt.Sprint form, standing in for serialized key bytes.
type memWindowStore struct {
	name string
	m    map[windowSlot]memWindowEntry
}

type windowSlot struct {
	key   string
	start int64
}

type memWindowEntry struct {
	key   any
	value any
}

var _ WindowStore = (*memWindowStore)(nil)

func newMemWindowStore(name string) *memWindowStore {
	return &memWindowStore{name: name, m: map[windowSlot]memWindowEntry{}}
}

func (s *memWindowStore) Name() string { return s.name }

func (s *memWindowStore) Get(key any, start time.Time) (any, error) {
	return s.m[windowSlot{fmt.Sprint(key), toMillis(start)}].value, nil
}

func (s *memWindowStore) Put(key any, start time.Time, value any) error {
	slot := windowSlot{fmt.Sprint(key), toMillis(start)}
	if value == nil {
		delete(s.m, slot)
		return nil
	}
	s.m[slot] = memWindowEntry{key, value}
	return nil
}

// sorted returns the slots with start in [from, to] (and key k, unless k is
// nil), by start, then key.
func (s *memWindowStore) sorted(k *string, from, to int64) []windowSlot {
	var slots []windowSlot
	for slot := range s.m {
		if slot.start < from || slot.start > to || (k != nil && slot.key != *k) {
			continue
		}
		slots = append(slots, slot)
	}
	sort.Slice(slots, func(i, j int) bool {
		if slots[i].start != slots[j].start {
			return slots[i].start < slots[j].start
		}
		return slots[i].key < slots[j].key
	})
	return slots
}

func (s *memWindowStore) Fetch(key any, from, to time.Time, fn func(time.Time, any) error) error {
	k := fmt.Sprint(key)
	for _, slot := range s.sorted(&k, toMillis(from), toMillis(to)) {
		if err := fn(fromMillis(slot.start), s.m[slot].value); err != nil {
			return err
		}
	}
	return nil
}

func (s *memWindowStore) FetchAll(from, to time.Time, fn func(any, time.Time, any) error) error {
	for _, slot := range s.sorted(nil, toMillis(from), toMillis(to)) {
		e := s.m[slot]
		if err := fn(e.key, fromMillis(slot.start), e.value); err != nil {
			return err
		}
	}
	return nil
}

// memSessionStore is an in-memory SessionStore.
type memSessionStore struct {
	name string
	m    map[sessionSlot]any
}

type sessionSlot struct {
	key        string
	start, end int64
}

var _ SessionStore = (*memSessionStore)(nil)

func newMemSessionStore(name string) *memSessionStore {
	return &memSessionStore{name: name, m: map[sessionSlot]any{}}
}

func (s *memSessionStore) Name() string { return s.name }

func (s *memSessionStore) FindSessions(key any, earliestEnd, latestStart time.Time, fn func(Window, any) error) error {
	k, lo, hi := fmt.Sprint(key), toMillis(earliestEnd), toMillis(latestStart)
	var slots []sessionSlot
	for slot := range s.m {
		if slot.key == k && slot.end >= lo && slot.start <= hi {
			slots = append(slots, slot)
		}
	}
	sort.Slice(slots, func(i, j int) bool {
		if slots[i].end != slots[j].end {
			return slots[i].end < slots[j].end
		}
		return slots[i].start < slots[j].start
	})
	for _, slot := range slots {
		if err := fn(Window{Start: fromMillis(slot.start), End: fromMillis(slot.end)}, s.m[slot]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSessionStore) Put(key any, w Window, value any) error {
	slot := sessionSlot{fmt.Sprint(key), toMillis(w.Start), toMillis(w.End)}
	if value == nil {
		delete(s.m, slot)
		return nil
	}
	s.m[slot] = value
	return nil
}

func (s *memSessionStore) Remove(key any, w Window) error {
	delete(s.m, sessionSlot{fmt.Sprint(key), toMillis(w.Start), toMillis(w.End)})
	return nil
}
