package processor

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

const (
	testStoreTopic     = "app-kv-changelog"
	testStorePartition = 3
)

// newTestKVStore returns a kvStore (string keys, int64 values) over a fresh
// DB in a temporary directory, and its DB.
func newTestKVStore(t *testing.T) (*kvStore, *changelog.DB) {
	t.Helper()
	spec := topology.StoreSpec{Name: "kv", KeySerde: serde.String{}, ValueSerde: serde.Int64{}}
	return newStoreOver(t, spec, testStoreTopic, testStorePartition)
}

// newStoreOver returns a kvStore of spec over a fresh DB in a temporary
// directory, with a collector over a fake producer, and its DB.
func newStoreOver(t *testing.T, spec topology.StoreSpec, topic string, partition int32) (*kvStore, *changelog.DB) {
	t.Helper()
	db, err := changelog.Open(t.TempDir(), changelog.Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	coll := &collector{p: &fakeProducer{}, tracker: newDeliveryTracker(nil)}
	return newKVStore(spec, db.Store(spec.Name, partition), topic, partition, coll), db
}

// commitKV commits key=value pairs (int64 values) to the store's committed state.
func commitKV(t *testing.T, db *changelog.DB, s *kvStore, kv map[string]int64) {
	t.Helper()
	for k, v := range kv {
		b, err := serde.Int64{}.Serialize("", v)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.cs.Put([]byte(k), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Commit([]changelog.Commit{{Store: s.cs, Checkpoint: -1}}); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, s *kvStore, key string) any {
	t.Helper()
	v, err := s.Get(key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

// dumpRange prints Range(from, to) as "k=v ...".
func dumpRange(t *testing.T, s *kvStore, from, to any) string {
	t.Helper()
	var out []string
	if err := s.Range(from, to, func(k, v any) error {
		out = append(out, fmt.Sprintf("%v=%v", k, v))
		return nil
	}); err != nil {
		t.Fatalf("Range(%v, %v): %v", from, to, err)
	}
	return strings.Join(out, " ")
}

// changelogMsgs prints the collector's buffered changelog records, sorted by
// key (flush walks a map), as "key=<value bytes>|nil@topic[partition]".
func changelogMsgs(t *testing.T, c *collector) []string {
	t.Helper()
	var out []string
	for _, m := range c.buffered {
		v := "nil"
		if m.Value != nil {
			v = fmt.Sprintf("%x", m.Value)
		}
		out = append(out, fmt.Sprintf("%s=%s@%s[%d]", m.Key, v, *m.TopicPartition.Topic, m.TopicPartition.Partition))
	}
	slices.Sort(out)
	return out
}

func TestStoreOverlayFlushDiscard(t *testing.T) {
	s, db := newTestKVStore(t)
	commitKV(t, db, s, map[string]int64{"a": 1, "c": 3})

	// This record's writes: reads see them at once.
	if err := s.Put("b", int64(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("c", nil); err != nil { // a nil value deletes
		t.Fatal(err)
	}
	if err := s.Delete("zz"); err != nil { // deleting an absent key is fine
		t.Fatal(err)
	}
	for key, want := range map[string]any{"a": nil, "b": int64(2), "c": nil, "zz": nil} {
		if got := mustGet(t, s, key); got != want {
			t.Errorf("Get(%q) = %v, want %v", key, got, want)
		}
	}
	// ... but nothing has reached the pending batch or the collector yet.
	if n := s.cs.PendingCount(); n != 0 {
		t.Errorf("PendingCount before flush = %d", n)
	}
	if v, err := s.cs.Get([]byte("a")); err != nil || v == nil {
		t.Errorf("changelog.Store Get(a) before flush = %x, %v: the overlay leaked", v, err)
	}
	if len(s.coll.buffered) != 0 {
		t.Errorf("collector has %d records before flush", len(s.coll.buffered))
	}

	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if n := s.cs.PendingCount(); n != 4 {
		t.Errorf("PendingCount after flush = %d, want 4", n)
	}
	if v, err := s.cs.Get([]byte("a")); err != nil || v != nil {
		t.Errorf("changelog.Store Get(a) after flush = %x, %v, want deleted", v, err)
	}
	if v, err := s.cs.Get([]byte("b")); err != nil || !bytes.Equal(v, []byte{0, 0, 0, 0, 0, 0, 0, 2}) {
		t.Errorf("changelog.Store Get(b) after flush = %x, %v", v, err)
	}
	want := []string{
		"a=nil@app-kv-changelog[3]",
		"b=0000000000000002@app-kv-changelog[3]",
		"c=nil@app-kv-changelog[3]",
		"zz=nil@app-kv-changelog[3]",
	}
	if got := changelogMsgs(t, s.coll); !slices.Equal(got, want) {
		t.Errorf("changelog records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(s.overlay) != 0 {
		t.Errorf("overlay not cleared by flush: %d entries", len(s.overlay))
	}
	// After flush, reads see the pending batch.
	if got := mustGet(t, s, "b"); got != int64(2) {
		t.Errorf("Get(b) after flush = %v", got)
	}

	// A failed record's writes are discarded: reads go back to pending, and
	// nothing more is queued.
	if err := s.Put("b", int64(20)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("d", int64(4)); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "b"); got != int64(20) {
		t.Errorf("Get(b) in the overlay = %v", got)
	}
	s.discard()
	if got := mustGet(t, s, "b"); got != int64(2) {
		t.Errorf("Get(b) after discard = %v, want 2", got)
	}
	if got := mustGet(t, s, "d"); got != nil {
		t.Errorf("Get(d) after discard = %v, want nil", got)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if n := s.cs.PendingCount(); n != 4 {
		t.Errorf("PendingCount after discard and flush = %d, want 4", n)
	}
	if n := len(s.coll.buffered); n != 4 {
		t.Errorf("collector has %d records after discard and flush, want 4", n)
	}
}

// TestStoreEmptyValueIsNotATombstone: an empty (non-nil) serialized value is
// a value, kept distinct from a delete in the store and on the changelog.
func TestStoreEmptyValueIsNotATombstone(t *testing.T) {
	s, _ := newStoreOver(t, topology.StoreSpec{Name: "s", KeySerde: serde.String{}, ValueSerde: serde.String{}}, "app-s-changelog", 0)
	coll := s.coll
	if err := s.Put("k", ""); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get("k"); err != nil || v != "" {
		t.Fatalf("Get(k) = %#v, %v, want empty string", v, err)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get("k"); err != nil || v != "" {
		t.Fatalf("Get(k) after flush = %#v, %v, want empty string", v, err)
	}
	if len(coll.buffered) != 1 || coll.buffered[0].Value == nil {
		t.Fatalf("changelog record for an empty value: %+v, want a non-nil empty value", coll.buffered)
	}
}

func TestStoreRange(t *testing.T) {
	s, db := newTestKVStore(t)
	commitKV(t, db, s, map[string]int64{"a": 1, "c": 3, "e": 5, "g": 7})
	// Pending (an earlier record of the transaction): b=2, c deleted.
	if err := s.Put("b", int64(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("c"); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	// Overlay (this record): a=10, d=4, e=50, g deleted, z=26, b deleted then put again.
	for k, v := range map[string]any{"a": int64(10), "d": int64(4), "e": int64(50), "g": nil, "z": int64(26)} {
		if err := s.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete("b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("b", int64(22)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, to any
		want     string
	}{
		{nil, nil, "a=10 b=22 d=4 e=50 z=26"},
		{"b", "e", "b=22 d=4"},      // [from, to)
		{"c", nil, "d=4 e=50 z=26"}, // c deleted in pending
		{nil, "b", "a=10"},          // overlay value over committed
		{"f", "h", ""},              // g committed but deleted in the overlay
		{"e", "b", ""},              // empty interval
		{"e", "e", ""},              // empty interval
		{"a", "a\x00", "a=10"},      // a single key
		{"y", nil, "z=26"},          // overlay-only key
		{"0", "1", ""},              // nothing there
		{nil, "zzz", "a=10 b=22 d=4 e=50 z=26"},
	} {
		if got := dumpRange(t, s, tc.from, tc.to); got != tc.want {
			t.Errorf("Range(%v, %v) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
	// An error from fn stops the iteration and comes back as is.
	stop := errors.New("stop")
	var seen []any
	err := s.Range(nil, nil, func(k, v any) error {
		seen = append(seen, k)
		if k == "b" {
			return stop
		}
		return nil
	})
	if err != stop || len(seen) != 2 {
		t.Errorf("Range with a failing fn = %v after %v, want stop after [a b]", err, seen)
	}
}

func TestStoreNilKey(t *testing.T) {
	s, _ := newTestKVStore(t)
	for name, f := range map[string]func() error{
		"Get":    func() error { _, err := s.Get(nil); return err },
		"Put":    func() error { return s.Put(nil, int64(1)) },
		"Delete": func() error { return s.Delete(nil) },
	} {
		err := f()
		if err == nil || !strings.Contains(err.Error(), "nil key") {
			t.Errorf("%s(nil key) = %v, want a nil key error", name, err)
		}
		var rte *runtimeError
		if errors.As(err, &rte) {
			t.Errorf("%s(nil key) = %v: a bad key is the record's fault, not a runtime error", name, err)
		}
	}
	if len(s.overlay) != 0 {
		t.Errorf("a rejected write reached the overlay")
	}
}

func TestStoreSerdeErrors(t *testing.T) {
	s, _ := newTestKVStore(t)
	if err := s.Put(42, int64(1)); !errors.Is(err, serde.ErrType) {
		t.Errorf("Put with an int key = %v, want serde.ErrType", err)
	}
	if err := s.Put("k", "not an int"); !errors.Is(err, serde.ErrType) {
		t.Errorf("Put with a string value = %v, want serde.ErrType", err)
	}
	if err := s.Range(42, nil, func(k, v any) error { return nil }); !errors.Is(err, serde.ErrType) {
		t.Errorf("Range with an int bound = %v, want serde.ErrType", err)
	}
	if err := s.Range(nil, 42, func(k, v any) error { return nil }); !errors.Is(err, serde.ErrType) {
		t.Errorf("Range with an int bound = %v, want serde.ErrType", err)
	}
	if len(s.overlay) != 0 {
		t.Errorf("a rejected write reached the overlay")
	}
}

// TestStoreIOErrorsAreRuntimeErrors: a failing changelog.Store (here: closed)
// is the runtime's fault, so the record goes to an abort and not to the error
// policy.
func TestStoreIOErrorsAreRuntimeErrors(t *testing.T) {
	s, db := newTestKVStore(t)
	if err := s.Put("k", int64(1)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var rte *runtimeError
	if _, err := s.Get("other"); !errors.As(err, &rte) || !errors.Is(err, changelog.ErrClosed) {
		t.Errorf("Get on a closed DB = %v, want *runtimeError wrapping ErrClosed", err)
	}
	if err := s.Range(nil, nil, func(k, v any) error { return nil }); !errors.As(err, &rte) {
		t.Errorf("Range on a closed DB = %v, want *runtimeError", err)
	}
	if err := s.flush(); !errors.As(err, &rte) || !errors.Is(err, changelog.ErrClosed) {
		t.Errorf("flush on a closed DB = %v, want *runtimeError wrapping ErrClosed", err)
	}
}

func TestStoreName(t *testing.T) {
	s, _ := newTestKVStore(t)
	if s.Name() != "kv" {
		t.Errorf("Name() = %q", s.Name())
	}
	var _ topology.KeyValueStore = s
}

// TestStorePutKeepsCallerBytes documents a finding: with a pass-through serde
// (serde.Bytes, or serde.String given a []byte) Put keeps the caller's slice
// in the overlay, and Get hands the overlay's slice back, so a processor
// that reuses a buffer after Put (or edits a value it got) silently changes
// what the store holds and what its changelog record carries, until the
// record's flush copies it into the pending batch. changelog.Store.Put
// promises "the arguments may be modified after Put returns"; kvStore loses
// that promise. Fix: store bytes.Clone(vb) in Put (and clone in Get/Range
// for the overlay path), or document the duty on topology.KeyValueStore.
func TestStorePutKeepsCallerBytes(t *testing.T) {
	s, _ := newStoreOver(t, topology.StoreSpec{Name: "b", KeySerde: serde.String{}, ValueSerde: serde.Bytes{}}, "app-b-changelog", 0)
	coll := s.coll
	buf := []byte("v1")
	if err := s.Put("k", buf); err != nil {
		t.Fatal(err)
	}
	buf[1] = 'X' // the processor reuses its buffer
	got, err := s.Get("k")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.([]byte)) != "v1" {
		t.Errorf("Get(k) = %q after the caller reused its buffer, want \"v1\"", got)
	}
	got.([]byte)[0] = 'Z' // the processor edits a value it read
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.cs.Get([]byte("k")); string(v) != "v1" {
		t.Errorf("pending value = %q, want \"v1\"", v)
	}
	if len(coll.buffered) != 1 || string(coll.buffered[0].Value) != "v1" {
		t.Errorf("changelog record value = %q, want \"v1\"", coll.buffered[0].Value)
	}
}

// TestStoreRangeEmptyValue documents a finding: Range copies committed and
// pending values with append([]byte(nil), v...), which turns an empty value
// into nil, so the value serde reads a tombstone: serde.String gives nil
// where Get gives "". Fix: bytes.Clone(v) (keeps empty non-nil).
func TestStoreRangeEmptyValue(t *testing.T) {
	s, _ := newStoreOver(t, topology.StoreSpec{Name: "s", KeySerde: serde.String{}, ValueSerde: serde.String{}}, "app-s-changelog", 0)
	if err := s.Put("pending", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("overlay", ""); err != nil {
		t.Fatal(err)
	}
	// The changelog layer keeps the distinction: the loss is in kvStore.Range.
	if err := s.cs.Range(nil, nil, func(k, v []byte) error {
		if v == nil {
			t.Errorf("changelog.Store.Range gave a nil value for %q", k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	if err := s.Range(nil, nil, func(k, v any) error { got[k.(string)] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pending", "overlay"} {
		if v, ok := got[k]; !ok || v != "" {
			t.Errorf("Range: %s = %#v, want \"\" (Get says %#v)", k, v, mustGet(t, s, k))
		}
	}
}
