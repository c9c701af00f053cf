package processor

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/eos-runner/eos-runner/topology"
)

// The TestDriver's store views: one store over all its partitions, made of
// the tasks' own typed stores (kvStore, windowStore, sessionStore), so reads
// go through the same overlay, pending batch and Pebble reads as a
// processor's. The driver commits after every record, so what they read is
// committed state. A read looks in every partition (a topology partitioned
// by the store's key keeps each key in one); a write goes to the partition
// the key hashes to (murmur2 of the key bytes, as for input records) and is
// committed at once, with its changelog record, as if a processor had made
// it: tests use it to set up state, as Kafka Streams' tests do.

// KeyValueStore returns a view of the key-value store name over all its
// partitions. Range visits entries in key-byte order across partitions.
func (d *TestDriver) KeyValueStore(name string) (topology.KeyValueStore, error) {
	parts, spec, err := d.storeOf(name, topology.KeyValueStoreKind)
	if err != nil {
		return nil, err
	}
	v := &driverKVStore{d: d, spec: spec}
	for _, p := range parts {
		v.parts = append(v.parts, p.(kvView))
	}
	return v, nil
}

// WindowStore returns a view of the window store name over all its
// partitions (windows stream time has expired are invisible, as to a
// processor).
func (d *TestDriver) WindowStore(name string) (topology.WindowStore, error) {
	parts, spec, err := d.storeOf(name, topology.WindowStoreKind)
	if err != nil {
		return nil, err
	}
	v := &driverWindowStore{d: d, spec: spec}
	for _, p := range parts {
		v.parts = append(v.parts, p.(*windowStore))
	}
	return v, nil
}

// SessionStore returns a view of the session store name over all its
// partitions.
func (d *TestDriver) SessionStore(name string) (topology.SessionStore, error) {
	parts, spec, err := d.storeOf(name, topology.SessionStoreKind)
	if err != nil {
		return nil, err
	}
	v := &driverSessionStore{d: d, spec: spec}
	for _, p := range parts {
		v.parts = append(v.parts, p.(*sessionStore))
	}
	return v, nil
}

func (d *TestDriver) storeOf(name string, kind topology.StoreKind) ([]stateStore, topology.StoreSpec, error) {
	spec, ok := d.topo.Stores[name]
	if !ok {
		return nil, spec, fmt.Errorf("test driver: no store %q", name)
	}
	if spec.Kind != kind {
		return nil, spec, fmt.Errorf("test driver: store %q is a %v store, not a %v store", name, spec.Kind, kind)
	}
	parts := d.storeParts[name]
	if len(parts) == 0 {
		return nil, spec, fmt.Errorf("test driver: store %q has no task", name)
	}
	return parts, spec, nil
}

// route returns the partition a store key belongs to.
func (d *TestDriver) route(spec topology.StoreSpec, key any, n int) (int, error) {
	kb, err := spec.KeySerde.Serialize(topology.ChangelogTopic(d.cfg.ApplicationID, spec.Name), key)
	if err != nil {
		return 0, fmt.Errorf("store %s: key: %w", spec.Name, err)
	}
	if kb == nil {
		return 0, fmt.Errorf("store %s: nil key", spec.Name)
	}
	return int(murmur2Partition(kb, int32(n))), nil
}

// commitWrite moves a view's write to the pending batch and its changelog
// record to the producer, and commits, as after a record.
func (d *TestDriver) commitWrite(s stateStore, coll *collector) error {
	if d.closed {
		return fmt.Errorf("test driver: closed")
	}
	if err := s.flush(); err != nil {
		d.abort()
		return err
	}
	if err := coll.flush(d.ctx); err != nil {
		d.abort()
		return err
	}
	return d.commit()
}

type driverKVStore struct {
	d     *TestDriver
	spec  topology.StoreSpec
	parts []kvView
}

// kvView is a task's key-value store of either implementation (kvStore, or
// ttlStore with a TTL).
type kvView interface {
	topology.KeyValueStore
	stateStore
	keyBytes(key any) ([]byte, error)
	collector() *collector
}

func (s *driverKVStore) Name() string { return s.spec.Name }

func (s *driverKVStore) Get(key any) (any, error) {
	for _, p := range s.parts {
		v, err := p.Get(key)
		if err != nil || v != nil {
			return v, err
		}
	}
	return nil, nil
}

func (s *driverKVStore) write(key any, fn func(p kvView) error) error {
	i, err := s.d.route(s.spec, key, len(s.parts))
	if err != nil {
		return err
	}
	p := s.parts[i]
	if err := fn(p); err != nil {
		p.discard()
		return err
	}
	return s.d.commitWrite(p, p.collector())
}

func (s *driverKVStore) Put(key, value any) error {
	return s.write(key, func(p kvView) error { return p.Put(key, value) })
}

func (s *driverKVStore) Delete(key any) error {
	return s.write(key, func(p kvView) error { return p.Delete(key) })
}

func (s *driverKVStore) Range(from, to any, fn func(key, value any) error) error {
	type entry struct {
		kb         []byte
		key, value any
	}
	var all []entry
	for _, p := range s.parts {
		if err := p.Range(from, to, func(k, v any) error {
			kb, err := p.keyBytes(k)
			if err != nil {
				return err
			}
			all = append(all, entry{kb, k, v})
			return nil
		}); err != nil {
			return err
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return bytes.Compare(all[i].kb, all[j].kb) < 0 })
	for _, e := range all {
		if err := fn(e.key, e.value); err != nil {
			return err
		}
	}
	return nil
}

type driverWindowStore struct {
	d     *TestDriver
	spec  topology.StoreSpec
	parts []*windowStore
}

func (s *driverWindowStore) Name() string { return s.spec.Name }

func (s *driverWindowStore) Get(key any, start time.Time) (any, error) {
	for _, p := range s.parts {
		v, err := p.Get(key, start)
		if err != nil || v != nil {
			return v, err
		}
	}
	return nil, nil
}

func (s *driverWindowStore) Put(key any, start time.Time, value any) error {
	i, err := s.d.route(s.spec, key, len(s.parts))
	if err != nil {
		return err
	}
	p := s.parts[i]
	if err := p.Put(key, start, value); err != nil {
		p.discard()
		return err
	}
	return s.d.commitWrite(p, p.collector())
}

func (s *driverWindowStore) Fetch(key any, from, to time.Time, fn func(start time.Time, value any) error) error {
	type entry struct {
		start time.Time
		value any
	}
	var all []entry
	for _, p := range s.parts {
		if err := p.Fetch(key, from, to, func(st time.Time, v any) error {
			all = append(all, entry{st, v})
			return nil
		}); err != nil {
			return err
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	for _, e := range all {
		if err := fn(e.start, e.value); err != nil {
			return err
		}
	}
	return nil
}

func (s *driverWindowStore) FetchAll(from, to time.Time, fn func(key any, start time.Time, value any) error) error {
	type entry struct {
		kb    []byte
		key   any
		start time.Time
		value any
	}
	var all []entry
	for _, p := range s.parts {
		if err := p.FetchAll(from, to, func(k any, st time.Time, v any) error {
			kb, err := p.keyBytes(k)
			if err != nil {
				return err
			}
			all = append(all, entry{kb, k, st, v})
			return nil
		}); err != nil {
			return err
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].start.Equal(all[j].start) {
			return all[i].start.Before(all[j].start)
		}
		return bytes.Compare(all[i].kb, all[j].kb) < 0
	})
	for _, e := range all {
		if err := fn(e.key, e.start, e.value); err != nil {
			return err
		}
	}
	return nil
}

type driverSessionStore struct {
	d     *TestDriver
	spec  topology.StoreSpec
	parts []*sessionStore
}

func (s *driverSessionStore) Name() string { return s.spec.Name }

func (s *driverSessionStore) FindSessions(key any, earliestEnd, latestStart time.Time, fn func(w topology.Window, value any) error) error {
	type entry struct {
		w     topology.Window
		value any
	}
	var all []entry
	for _, p := range s.parts {
		if err := p.FindSessions(key, earliestEnd, latestStart, func(w topology.Window, v any) error {
			all = append(all, entry{w, v})
			return nil
		}); err != nil {
			return err
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].w.End.Equal(all[j].w.End) {
			return all[i].w.End.Before(all[j].w.End)
		}
		return all[i].w.Start.Before(all[j].w.Start)
	})
	for _, e := range all {
		if err := fn(e.w, e.value); err != nil {
			return err
		}
	}
	return nil
}

func (s *driverSessionStore) write(key any, fn func(p *sessionStore) error) error {
	i, err := s.d.route(s.spec, key, len(s.parts))
	if err != nil {
		return err
	}
	p := s.parts[i]
	if err := fn(p); err != nil {
		p.discard()
		return err
	}
	return s.d.commitWrite(p, p.collector())
}

func (s *driverSessionStore) Put(key any, w topology.Window, value any) error {
	return s.write(key, func(p *sessionStore) error { return p.Put(key, w, value) })
}

func (s *driverSessionStore) Remove(key any, w topology.Window) error {
	return s.write(key, func(p *sessionStore) error { return p.Remove(key, w) })
}
