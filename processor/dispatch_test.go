package processor

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/topology"
)

// TestDispatcher checks the dispatcher's invariants: each task's work runs
// in dispatch order, drain returns only once everything dispatched before
// it (collected or handed over) has run, and discard drops what was only
// collected.
func TestDispatcher(t *testing.T) {
	var (
		mu  sync.Mutex
		ran = map[*task][]int{}
	)
	run := func(_ context.Context, batch []work) {
		mu.Lock()
		for _, w := range batch {
			ran[w.t] = append(ran[w.t], int(w.wall.Unix()))
		}
		mu.Unlock()
	}
	d, stop := startDispatcher(context.Background(), 3, run)
	defer stop()
	sub := &topology.SubTopology{ID: 0}
	tasks := make([]*task, 7)
	for i := range tasks {
		tasks[i] = &task{sub: sub, partition: int32(i)}
	}
	want := map[*task][]int{}
	n := 0
	for round := range 5 {
		// Uneven amounts: some batches fill, some stay collected.
		for i, tk := range tasks {
			for range (i*13 + round*7) % 50 {
				n++
				d.dispatch(work{t: tk, wall: unix(n)})
				want[tk] = append(want[tk], n)
			}
		}
		d.drain()
		mu.Lock()
		for _, tk := range tasks {
			if !slices.Equal(ran[tk], want[tk]) {
				t.Fatalf("round %d task %d: ran %v, want %v", round, tk.partition, ran[tk], want[tk])
			}
		}
		mu.Unlock()
		if d.pending() {
			t.Fatalf("round %d: work still collected after drain", round)
		}
	}

	// Fewer than a batch: collected, not handed over; discard drops it.
	before := len(ran[tasks[0]])
	d.dispatch(work{t: tasks[0], wall: unix(-1)})
	if !d.pending() {
		t.Fatal("a dispatched piece of work is neither collected nor handed over")
	}
	d.discard()
	mu.Lock()
	defer mu.Unlock()
	if len(ran[tasks[0]]) != before || d.pending() {
		t.Fatalf("discard ran or kept the collected work: %v", ran[tasks[0]][before:])
	}
}

// unix returns the time n seconds after the epoch: the test numbers its
// work in work.wall.
func unix(n int) time.Time { return time.Unix(int64(n), 0) }
