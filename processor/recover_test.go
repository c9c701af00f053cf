package processor

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// TestLostProducer covers lostProducer's classification beyond the
// scripts in testdata/txn/recover: which failures lose the producer, and
// that a stop-worthy error anywhere in the tree wins.
func TestLostProducer(t *testing.T) {
	fenced := kafka.NewError(kafka.ErrProducerFenced, "fenced", true)
	authz := &AuthorizationError{Resource: "topic", Name: "out", Operations: []string{"WRITE"}, Code: "TOPIC_AUTHORIZATION_FAILED"}
	bareFatal := fmt.Errorf("%w: %w", ErrFatal, &runtimeError{kafka.NewError(kafka.ErrFatal, "Local: Fatal error", false)})
	none := func() error { return nil }
	for _, c := range []struct {
		name          string
		failure       error
		producerFatal func() error
		want          string
	}{
		{"nil", nil, nil, ""},
		{"plain fatal", fmt.Errorf("%w: apply committed state: disk full", ErrFatal), nil, ""},
		{"fenced", fmt.Errorf("%w: commit transaction: %w", ErrFatal, fenced), nil, lostFenced},
		{"local fenced", kafka.NewError(kafka.ErrFenced, "fenced by a newer instance", true), nil, lostFenced},
		{"invalid epoch", kafka.NewError(kafka.ErrInvalidProducerEpoch, "old epoch", true), nil, lostFenced},
		{"pid mapping", kafka.NewError(kafka.ErrInvalidProducerIDMapping, "no such pid", true), nil, lostUnknownProducer},
		{"deadline", fmt.Errorf("%w: %w", ErrFatal, unfinished(fmt.Errorf("commit transaction: %w", context.DeadlineExceeded))), nil, lostUnfinished},
		{"fenced and authz joined", errors.Join(fenced, authz), nil, ""},
		{"fenced and authz code", errors.Join(fenced, kafka.NewError(kafka.ErrTopicAuthorizationFailed, "denied", false)), nil, ""},
		{"unfinished and authz", errors.Join(unfinished(errors.New("timed out")), authz), nil, ""},
		{"record's own", fmt.Errorf("%w (committing the records before it: %w)", &ProcessingError{Err: errors.New("x")}, fenced), nil, ""},
		{"bare fatal, no producer error", bareFatal, none, ""},
		{"bare fatal, producer fenced", bareFatal, func() error { return fenced }, lostFenced},
		{"bare fatal, producer misconfigured", bareFatal,
			func() error { return kafka.NewError(kafka.ErrInvalidTransactionTimeout, "invalid timeout", true) }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := lostProducer(c.failure, c.producerFatal); got != c.want {
				t.Errorf("lostProducer(%v) = %q, want %q", c.failure, got, c.want)
			}
		})
	}
}

// TestRetryable: what makes a failed producer reset worth another attempt.
func TestRetryable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("init transactions: %w", kafka.NewError(kafka.ErrTimedOut, "timed out", false)), true},
		{fmt.Errorf("init transactions: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("init transactions: %w", kafka.NewError(kafka.ErrAllBrokersDown, "all brokers down", false)), true},
		{&AuthorizationError{Resource: "transactional id", Name: "a", Operations: []string{"WRITE"}, Code: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"}, false},
		{fmt.Errorf("init transactions: %w", kafka.NewError(kafka.ErrInvalidTransactionTimeout, "invalid timeout", true)), false},
		{errors.New("producer: bad config"), false},
	} {
		if got := errors.Is(retryable(c.err), errUnfinished); got != c.want {
			t.Errorf("retryable(%v) marked unfinished: %v, want %v", c.err, got, c.want)
		}
	}
}

// TestTxnShutdownIsNotALostProducer: a commit cut short by the runner's
// shutdown (its context cancelled) stops the runner; it does not replace
// the producer.
func TestTxnShutdownIsNotALostProducer(t *testing.T) {
	env := newFakeTxnEnv(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	env.onCall = func(name string) {
		if name == "commit" {
			cancel()
		}
	}
	c := newCommitter(env, true)
	if err := c.ensureOpen(); err != nil {
		t.Fatal(err)
	}
	c.state.track(partitionKey{"in", 0}, 0)
	env.fails["commit"] = []error{scriptedError(t, "retriable")}
	err := c.commitTxn(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("commitTxn = %v, want it to wrap context.Canceled", err)
	}
	if reason := lostProducer(err, nil); reason != "" {
		t.Errorf("lostProducer(%v) = %q: a shutdown is not a lost producer", err, reason)
	}
	lost := false
	if stop := c.recover(ctx, err, func(string) { lost = true }, func(error) {}); !errors.Is(stop, context.Canceled) || lost {
		t.Errorf("recover = %v (lost called: %v), want the failure back, untouched", stop, lost)
	}
}
