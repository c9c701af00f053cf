package changelog

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestCommitAsyncReadsSeeEveryCommit runs the runner's pattern with the
// write of each commit still in flight when the next round starts: tasks
// whose stores keep no committed values in memory (StoreCacheEntries < 0,
// so every read goes to Pebble) and a window store (its reads always go to
// Pebble) must read the previous round's values, and a concurrent Reader,
// as interactive queries use, must only ever see whole commits. Under -race
// it also checks that the background write shares nothing unsynchronized.
func TestCommitAsyncReadsSeeEveryCommit(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{CacheSize: 8 << 20, StoreCacheEntries: -1, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const tasks, rounds, keys = 3, 20, 100
	stores := make([]*Store, tasks)
	for i := range stores {
		stores[i] = db.Store("counts", int32(i))
	}
	ws, err := db.WindowStore("windows", 0, WindowOptions{Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	// A query reader: every key of store 0 carries the same round at any
	// committed point, so two keys read in one Range must agree.
	stop := make(chan struct{})
	var stopOnce sync.Once
	queryErr := make(chan error, 1)
	defer stopOnce.Do(func() { close(stop); <-queryErr }) // before db.Close, on a failure too
	go func() {
		r := db.Reader("counts", 0)
		for {
			select {
			case <-stop:
				queryErr <- nil
				return
			default:
			}
			seen := map[string]bool{}
			if err := r.Range(nil, nil, func(_, v []byte) error { seen[string(v)] = true; return nil }); err != nil {
				queryErr <- err
				return
			}
			if len(seen) > 1 {
				queryErr <- fmt.Errorf("a range saw values of %d commits at once: %v", len(seen), seen)
				return
			}
		}
	}()

	for round := range rounds {
		want := strconv.Itoa(round - 1) // what the last commit wrote
		var wg sync.WaitGroup
		errs := make([]error, tasks+1)
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range keys {
					key := []byte(fmt.Sprintf("k%03d", k))
					v, err := s.Get(key)
					if err != nil || (round > 0 && string(v) != want) {
						errs[i] = fmt.Errorf("key %s: read %q (%v), want %q, the last commit's", key, v, err, want)
						return
					}
					if err := s.Put(key, []byte(strconv.Itoa(round))); err != nil {
						errs[i] = err
						return
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := ws.Get([]byte("w"), 0)
			if err != nil || (round > 0 && string(v) != want) {
				errs[tasks] = fmt.Errorf("window: read %q (%v), want %q", v, err, want)
				return
			}
			errs[tasks] = ws.Put([]byte("w"), 0, []byte(strconv.Itoa(round)))
		}()
		wg.Wait() // the commit barrier
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d task %d: %v", round, i, err)
			}
		}
		commits := make([]Commit, 0, tasks+1)
		for _, s := range stores {
			commits = append(commits, Commit{Store: s, Checkpoint: int64(round + 1)})
		}
		commits = append(commits, ws.CommitAt(int64(round+1)))
		if err := db.CommitAsync(commits); err != nil {
			t.Fatal(err)
		}
	}
	var qerr error
	stopOnce.Do(func() { close(stop); qerr = <-queryErr })
	if qerr != nil {
		t.Fatalf("query reader: %v", qerr)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waited for the last write: reopened, every store is at the last
	// round with its checkpoint.
	db2 := openTest(t, dir)
	for i := range tasks {
		s := db2.Store("counts", int32(i))
		v, err := s.Get([]byte("k000"))
		if err != nil || string(v) != strconv.Itoa(rounds-1) {
			t.Errorf("store %d after reopen: %q, %v; want %d", i, v, err, rounds-1)
		}
		if cp, ok, err := s.Checkpoint(); err != nil || !ok || cp != rounds {
			t.Errorf("store %d after reopen: checkpoint %d, %v, %v; want %d", i, cp, ok, err, rounds)
		}
	}
}
