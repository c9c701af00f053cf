package processor

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// workerFailures collects what the task workers hit in the open
// transaction. Every failure is kept, not only the first: whether the
// transaction may still commit depends on all of them (a clean on.error=fail
// stop in one task says nothing about a produce that failed half way in
// another). Workers add; the poll loop reads after the commit barrier and
// clears after an abort. Once any failure is set, workers skip the work they
// are given, so a task stops at its failing record.
type workerFailures struct {
	set atomic.Bool // fast path for workers and the poll loop
	mu  sync.Mutex
	all []error // guarded by mu
}

func (w *workerFailures) add(err error) {
	w.mu.Lock()
	w.all = append(w.all, err)
	w.mu.Unlock()
	w.set.Store(true)
}

// any reports whether a worker failed in the open transaction.
func (w *workerFailures) any() bool { return w.set.Load() }

// err returns the failures in the order they were reported (one error, or
// an errors.Join of several), or nil.
func (w *workerFailures) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch len(w.all) {
	case 0:
		return nil
	case 1:
		return w.all[0]
	}
	return errors.Join(w.all...)
}

func (w *workerFailures) clear() {
	w.mu.Lock()
	w.all = nil
	w.mu.Unlock()
	w.set.Store(false)
}

// failureAction is what the open transaction may still do after workers
// failed in it; a larger value is more restrictive.
type failureAction int

const (
	// stopAfterCommit: every failure is an input record's own under
	// on.error=fail (*ProcessingError): the record left nothing behind and
	// its task processed nothing after it, so what was processed commits,
	// and the runner stops at the record.
	stopAfterCommit failureAction = iota
	// abortAndRetry: a runtime failure (a produce or a store error; the
	// record is not at fault) may have left part of a record's effects in
	// the transaction: abort, and process the records again.
	abortAndRetry
	// abortAndStop: anything else (a punctuator's error or panic, a fatal
	// client error, a failure the runner does not know): abort what can be
	// aborted, apply nothing, stop.
	abortAndStop
)

// failureOutcome decides by the most restrictive of the failures.
func failureOutcome(err error) failureAction {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := stopAfterCommit
	for _, e := range errs {
		var pe *ProcessingError
		var rte *runtimeError
		var ke kafka.Error
		switch {
		case errors.As(e, &ke) && ke.IsFatal():
			return abortAndStop
		case errors.As(e, &rte):
			out = max(out, abortAndRetry)
		case errors.As(e, &pe):
		default:
			return abortAndStop
		}
	}
	return out
}
