package changelog

import (
	"fmt"
	"sync"
	"testing"
)

// TestWorkersAndCommitBarrier runs the runner's pattern under -race: one
// goroutine per task writes and reads its own store, then the poll loop
// commits them all at the barrier, round after round.
func TestWorkersAndCommitBarrier(t *testing.T) {
	db := openTest(t, "")
	const tasks, rounds, writes = 4, 3, 200
	stores := make([]*Store, tasks)
	for i := range stores {
		stores[i] = db.Store("counts", int32(i))
	}
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, tasks)
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for w := range writes {
					k := []byte(fmt.Sprintf("k%03d", w))
					if err := s.Put(k, []byte(fmt.Sprint(round))); err != nil {
						errs[i] = err
						return
					}
					v, err := s.Get(k)
					if err != nil || string(v) != fmt.Sprint(round) {
						errs[i] = fmt.Errorf("read-your-writes: %q, %v", v, err)
						return
					}
				}
			}()
		}
		wg.Wait() // the commit barrier
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d task %d: %v", round, i, err)
			}
		}
		commits := make([]Commit, tasks)
		for i, s := range stores {
			commits[i] = Commit{Store: s, Checkpoint: int64((round + 1) * writes)}
		}
		if err := db.Commit(commits); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range stores {
		n := 0
		err := s.Range(nil, nil, func(_, v []byte) error {
			if string(v) != fmt.Sprint(rounds-1) {
				return fmt.Errorf("value %q, want %d", v, rounds-1)
			}
			n++
			return nil
		})
		if err != nil || n != writes {
			t.Errorf("store %s: %d keys, %v; want %d", s.StorePartition(), n, err, writes)
		}
		if cp, ok, _ := s.Checkpoint(); !ok || cp != rounds*writes {
			t.Errorf("store %s: checkpoint %d, want %d", s.StorePartition(), cp, rounds*writes)
		}
	}
}
