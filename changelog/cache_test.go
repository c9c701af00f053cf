package changelog

import (
	"strconv"
	"testing"
)

// TestStoreCommittedCache: reads served from the cache of committed values
// always agree with Pebble: after commits, aborts, deletes, eviction and a
// reopen (a fresh handle starts empty).
func TestStoreCommittedCache(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	s := db.Store("agg", 0)
	s.slotsMax = 4
	get := func(k string) string {
		t.Helper()
		v, err := s.Get([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if v == nil {
			return "<nil>"
		}
		return string(v)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := get("a"); got != "<nil>" { // caches the absence
		t.Fatalf("a = %s", got)
	}
	must(s.Put([]byte("a"), []byte("1")))
	must(db.Commit([]Commit{{Store: s, Checkpoint: 1}}))
	if got := get("a"); got != "1" {
		t.Fatalf("after commit a = %s, want 1 (the cached absence must be replaced)", got)
	}
	must(s.Put([]byte("a"), []byte("2")))
	s.Abort()
	if got := get("a"); got != "1" {
		t.Fatalf("after abort a = %s, want the committed 1", got)
	}
	must(s.Delete([]byte("a")))
	must(db.Commit([]Commit{{Store: s, Checkpoint: 2}}))
	if got := get("a"); got != "<nil>" {
		t.Fatalf("after committed delete a = %s, want absent", got)
	}
	// More keys than the cache holds: every read still agrees with Pebble.
	for i := range 10 {
		must(s.Put([]byte("k"+strconv.Itoa(i)), []byte(strconv.Itoa(i))))
	}
	must(db.Commit([]Commit{{Store: s, Checkpoint: 3}}))
	if n := len(s.slots); n > s.slotsMax {
		t.Fatalf("cache holds %d entries, bound %d", n, s.slotsMax)
	}
	for i := range 10 {
		if got := get("k" + strconv.Itoa(i)); got != strconv.Itoa(i) {
			t.Fatalf("k%d = %s", i, got)
		}
	}
	// The returned slice is the caller's: changing it does not change the cache.
	v, _ := s.Get([]byte("k9"))
	v[0] = 'x'
	if got := get("k9"); got != "9" {
		t.Fatalf("k9 = %s after the caller changed its copy", got)
	}
	db.Close()
	db = openTest(t, dir)
	s2 := db.Store("agg", 0)
	if v, _ := s2.Get([]byte("k3")); string(v) != "3" {
		t.Fatalf("after reopen k3 = %q", v)
	}
}
