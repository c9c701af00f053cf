package processor

import (
	"context"
	"sync"
	"time"
)

// dispatchBatch is how many pieces of work the poll loop collects for one
// worker before it hands them over. One channel send, one wake-up and one
// WaitGroup update per batch instead of per record: per record they
// profiled as cache-line traffic between the poll loop's core and the
// workers'. Small enough that one worker's batch does not leave the others
// idle.
const dispatchBatch = 32

// dispatchQueue is the number of batches a worker's channel holds: about
// 1024 records queued per worker, beyond which the poll loop waits.
const dispatchQueue = 1024 / dispatchBatch

// dispatchMaxWait bounds how long collected work waits to be handed over.
const dispatchMaxWait = time.Millisecond

// dispatcher hands work to the task workers, in batches, and lets the poll
// loop wait until every piece handed over is done (the commit barrier).
//
// Invariants a change must keep:
//   - A task's work always goes to the same worker, in dispatch order
//     (workerFor), so its records are processed in order by one goroutine.
//   - Work collected but not yet handed over is not in flight: drain hands
//     it over before it waits, so every barrier (commit, abort, revocation,
//     recovery, shutdown) sees all work dispatched before it done. The poll
//     loop never blocks in Poll while it holds collected work: it polls
//     with no timeout then, and flushes when nothing more is ready, or
//     when the oldest collected work has waited dispatchMaxWait (a worker
//     whose partitions are quiet while others flood does not wait for its
//     batch to fill).
//   - discard drops collected work without running it; only for a runner
//     that stops applying anything (stopOnError).
//
// dispatch, flush, drain, discard and pending belong to the poll loop.
type dispatcher struct {
	workers   []chan []work
	collected [][]work  // per worker, not yet handed over
	oldest    time.Time // when the oldest collected work was collected; zero when none
	inflight  sync.WaitGroup
	done      sync.WaitGroup // the worker goroutines
}

// startDispatcher starts n workers, each running run on its batches of
// work in order until stop is called (after a final drain by the caller).
func startDispatcher(ctx context.Context, n int, run func(ctx context.Context, batch []work)) (*dispatcher, func()) {
	d := &dispatcher{workers: make([]chan []work, n), collected: make([][]work, n)}
	for i := range d.workers {
		ch := make(chan []work, dispatchQueue)
		d.workers[i] = ch
		d.done.Add(1)
		go func() {
			defer d.done.Done()
			for batch := range ch {
				run(ctx, batch)
				d.inflight.Add(-len(batch))
			}
		}()
	}
	return d, func() {
		for _, ch := range d.workers {
			close(ch)
		}
		d.done.Wait()
	}
}

// workerFor picks task t's worker.
func workerFor(t *task, n int) int { return (t.sub.ID*7919 + int(t.partition)) % n }

// dispatch collects w for its task's worker, handing the batch over when it
// is full.
func (d *dispatcher) dispatch(w work) {
	if d.oldest.IsZero() {
		d.oldest = time.Now()
	}
	i := workerFor(w.t, len(d.workers))
	d.collected[i] = append(d.collected[i], w)
	if len(d.collected[i]) >= dispatchBatch {
		d.handOver(i)
	}
}

// handOver sends worker i's collected work. The batch's slice is the
// worker's from here on; the next one starts afresh.
func (d *dispatcher) handOver(i int) {
	b := d.collected[i]
	d.collected[i] = make([]work, 0, dispatchBatch)
	d.inflight.Add(len(b))
	d.workers[i] <- b
}

// pending reports whether work is collected and not handed over.
func (d *dispatcher) pending() bool { return !d.oldest.IsZero() }

// flushIfOld flushes when the oldest collected work has waited
// dispatchMaxWait at now.
func (d *dispatcher) flushIfOld(now time.Time) {
	if !d.oldest.IsZero() && now.Sub(d.oldest) >= dispatchMaxWait {
		d.flush()
	}
}

// flush hands over everything collected.
func (d *dispatcher) flush() {
	for i, b := range d.collected {
		if len(b) > 0 {
			d.handOver(i)
		}
	}
	d.oldest = time.Time{}
}

// drain hands over everything collected and waits until all work handed
// over is done: the commit barrier.
func (d *dispatcher) drain() {
	d.flush()
	d.inflight.Wait()
}

// discard drops the collected work and waits for what was handed over.
func (d *dispatcher) discard() {
	for i := range d.collected {
		clear(d.collected[i])
		d.collected[i] = d.collected[i][:0]
	}
	d.oldest = time.Time{}
	d.inflight.Wait()
}
