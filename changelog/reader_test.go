package changelog

import (
	"fmt"
	"sync"
	"testing"
)

// TestReaderSeesOnlyCommittedState: a Reader of a store partition sees what
// DB.Commit applied, never the owner's pending writes, and is safe to use
// from many goroutines while the owner commits.
func TestReaderSeesOnlyCommittedState(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := db.Store("g", 0)
	r := db.Reader("g", 0)
	if err := s.Put([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Get([]byte("a")); err != nil || v != nil {
		t.Fatalf("pending write visible to the reader: %q, %v", v, err)
	}
	if err := db.Commit([]Commit{s.CommitAt(1)}); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("committed value = %q, %v; want 1", v, err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if _, err := r.Get([]byte("a")); err != nil {
					t.Error(err)
					return
				}
				n := 0
				if err := r.Range(nil, nil, func(_, _ []byte) error { n++; return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 100; i++ {
		if err := s.Put([]byte(fmt.Sprintf("k%03d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := db.Commit([]Commit{s.CommitAt(int64(i + 2))}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	var keys []string
	if err := r.Range([]byte("k000"), []byte("k003"), func(k, _ []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[k000 k001 k002]" {
		t.Fatalf("range = %v", keys)
	}
}
