package processor

// In-process recovery from a lost transactional producer (exactly_once_v2).
//
// A runner cut off from the broker (a network partition, a firewall, a
// process starved of CPU) for longer than transaction.timeout.ms finds its
// transaction aborted by the broker and its producer epoch bumped: its
// transactional calls time out while it is cut off, and once it reaches the
// broker again its producer is fatally fenced. Usually the group has also
// dropped the member after session.timeout.ms. Such a runner used to stop
// and leave the restart to a supervisor. It now recovers in process, as
// Kafka Streams handles a ProducerFencedException or
// InvalidProducerEpochException under exactly_once_v2 (a
// TaskMigratedException: TaskManager.handleLostAll, then
// StreamsProducer.resetProducer, then the consumer rejoins):
//
//  1. Nothing of the open transaction is applied: the workers are drained
//     and every task is closed dirty, dropping its pending store batches and
//     record caches; a task's stream time and punctuation schedule go with
//     it, so whatever replaces it starts from the committed point.
//  2. The producer is closed, waiting at most the transaction timeout (a
//     fenced producer cannot abort, and a cut-off one cannot even say so),
//     and a new one is built from the same configuration, with the same
//     transactional.id. It has its own delivery tracker and drainer
//     (producer.go): the old producer's reports, late or never, are not
//     counted against it. Its InitTransactions bumps the epoch, so the
//     broker has aborted the old transaction or aborts it now, and rejects
//     anything the old producer still had in flight. The runner then aborts
//     one empty transaction, as at startup (abortLeftoverTransaction).
//  3. The consumer leaves the group and joins it again, and every task it
//     is then assigned is created afresh: it starts at the offset the group
//     committed (read with require_stable once the old transaction is
//     settled) and its stores restore the changelog tail from their
//     checkpoints.
//
// Why all tasks are treated as lost, rather than rewound in place to the
// positions the runner last committed: only the broker knows how the lost
// transaction ended. A CommitTransaction that timed out may have committed
// it; rewinding to our own last commit would then process its records
// twice, while the committed offsets and the changelog say what happened
// either way. And the group has usually moved the partitions already;
// asking it again (a rejoin) is the one answer that is right in both cases.
// This is what a restart does, without the restart: it is exactly once for
// the same reasons (docs/exactly-once.md).
//
// Which failures lost the producer (lostProducer): a kafka.Error anywhere in
// the failure's tree whose code says the broker moved on from this producer
// (a new producer fixes it):
//
//   - PRODUCER_FENCED, INVALID_PRODUCER_EPOCH and librdkafka's __FENCED: the
//     epoch was bumped, by the broker's transaction timeout or by another
//     InitTransactions with our transactional.id;
//   - INVALID_PRODUCER_ID_MAPPING and UNKNOWN_PRODUCER_ID: the broker no
//     longer knows the producer id (transactional.id.expiration.ms);
//
// or a failure the commit protocol marked errUnfinished (txn.go): a
// transactional call still failing with retriable errors at its deadline
// (the transaction timeout, after which the broker aborts the transaction
// and bumps the epoch, so the producer is fenced at its next request), or
// an abort whose delivery reports did not all arrive in time (a new
// producer's tracker cannot confuse them with its own).
//
// Everything else stops the runner as before, in particular: authorization
// failures (an ACL must be granted: authz.go; these are checked first, so a
// tree holding one never recovers); configuration errors librdkafka reports
// as fatal (INVALID_TRANSACTION_TIMEOUT, UNSUPPORTED_VERSION, ...);
// OUT_OF_ORDER_SEQUENCE_NUMBER, which may mean the broker lost acknowledged
// records; the consumer's FENCED_INSTANCE_ID, which means another live
// process uses our group.instance.id (recovering would fence it in turn);
// a record's own failure under on.error=fail; a shutdown (cancelled
// context); and every failure under at_least_once.
//
// A producer that keeps being lost cannot spin: more than
// maxProducerRecoveries recoveries without a commit in between (attempts
// whose new producer could not be initialized count too) stop the runner.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// maxProducerRecoveries is how many recoveries from a lost producer may
// follow each other without a commit in between before the runner stops.
const maxProducerRecoveries = 5

// Why a producer was lost, as lostProducer and the
// eos_producer_recoveries_total metric's reason label name it.
const (
	lostFenced          = "fenced"
	lostUnknownProducer = "unknown-producer"
	lostUnfinished      = "unfinished"
)

// errUnfinished marks a failure after which the producer could not finish
// (commit or abort) its transaction, though no broker said why: see above.
var errUnfinished = errors.New("the producer could not finish its transaction")

// unfinishedError wraps err so that errors.Is(·, errUnfinished) holds;
// its message is err's.
type unfinishedError struct{ err error }

func unfinished(err error) error { return &unfinishedError{err} }

func (e *unfinishedError) Error() string        { return e.err.Error() }
func (e *unfinishedError) Unwrap() error        { return e.err }
func (e *unfinishedError) Is(target error) bool { return target == errUnfinished }

// lostProducer says why failure means the transactional producer is lost
// (lostFenced, lostUnknownProducer, lostUnfinished), or "" when the runner
// must stop on it (see above). producerFatal (nil: none) returns the
// producer's own fatal error: asked only when failure merely says that the
// producer has one (librdkafka's __FATAL, as Produce returns it).
func lostProducer(failure error, producerFatal func() error) string {
	if failure == nil || isAuthorization(failure) || hasAuthorizationCode(failure) {
		return ""
	}
	var pe *ProcessingError
	if errors.As(failure, &pe) {
		return ""
	}
	reason, sawFatal := "", false
	walkErrors(failure, func(e error) {
		if ke, ok := e.(kafka.Error); ok {
			switch ke.Code() {
			case kafka.ErrProducerFenced, kafka.ErrInvalidProducerEpoch, kafka.ErrFenced:
				reason = lostFenced
			case kafka.ErrInvalidProducerIDMapping, kafka.ErrUnknownProducerID:
				if reason == "" {
					reason = lostUnknownProducer
				}
			case kafka.ErrFatal:
				sawFatal = true
			}
		}
	})
	switch {
	case reason != "":
		return reason
	case errors.Is(failure, errUnfinished):
		return lostUnfinished
	case sawFatal && producerFatal != nil:
		if pf := producerFatal(); pf != nil {
			return lostProducer(pf, nil)
		}
	}
	return ""
}

// walkErrors calls fn on err and on every error in its tree.
func walkErrors(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), fn)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, fn)
		}
	}
}

// recover settles failure, on which the poll loop stopped. It returns nil
// once the lost producer is replaced (the poll loop goes on), else the
// error to stop on: failure itself when it did not lose the producer (or the
// runner is shutting down), an authorization failure of the new producer,
// or an error wrapping ErrFatal, e.g. when the recoveries since the last
// commit exceed maxRecoveries. lost is called once, with the reason,
// before the first attempt; retry after each attempt that failed in a way
// another attempt may not (each counts toward maxRecoveries).
func (c *committer) recover(ctx context.Context, failure error, lost func(reason string), retry func(err error)) error {
	reason, stop := c.recoverable(failure)
	if stop != nil {
		return stop
	}
	if ctx.Err() != nil {
		return failure // shutting down: stop on it, as without recovery
	}
	lost(reason)
	for {
		err := c.recoverProducer(ctx)
		if err == nil {
			return nil
		}
		if _, stop := c.recoverable(err); stop != nil {
			return stop
		}
		if ctx.Err() != nil {
			return err
		}
		retry(err)
	}
}

// recoverable returns why failure lost the producer, or the error to stop
// on: failure itself, or an error wrapping ErrFatal when maxRecoveries
// recoveries already followed the last commit.
func (c *committer) recoverable(failure error) (reason string, stop error) {
	if !c.transactional {
		return "", failure
	}
	reason = lostProducer(failure, c.env.producerFatal)
	switch {
	case reason == "":
		return "", failure
	case c.recoveries >= c.maxRecoveries:
		return "", fmt.Errorf("%w: transactional producer lost %d times without a commit in between, last: %w",
			ErrFatal, c.recoveries+1, failure)
	}
	return reason, nil
}

// recoverProducer is one attempt at steps 1 to 3 above. An error it
// returns that recoverable accepts again (wrapping errUnfinished: the
// broker still out of reach, say) is worth another attempt.
func (c *committer) recoverProducer(ctx context.Context) error {
	if c.recoveries > 0 {
		// Back to back: give the broker a moment (100ms, doubling).
		select {
		case <-ctx.Done():
			return fmt.Errorf("recover producer: %w", ctx.Err())
		case <-time.After(c.retryBackoff << (c.recoveries - 1)):
		}
	}
	c.recoveries++
	c.env.barrier()
	c.env.clearFailure()
	c.state = newTxnState() // forgotten: the broker aborts it (step 2)
	if err := c.env.loseTasks(); err != nil {
		return fmt.Errorf("%w: close the tasks of a lost producer: %w", ErrFatal, err)
	}
	if err := c.env.resetProducer(ctx); err != nil {
		return fmt.Errorf("%w: replace the lost producer: %w", ErrFatal, err)
	}
	if err := c.env.rejoin(); err != nil {
		return fmt.Errorf("%w: rejoin the group after replacing the producer: %w", ErrFatal, err)
	}
	return nil
}

// process runs the poll loop until ctx is cancelled (nil) or it stops on an
// error it cannot recover from, recovering in process from a lost producer
// (above) in between: one warning per recovery, with its cause.
func (r *Runner) process(ctx context.Context) error {
	for {
		failure := r.loop(ctx)
		if failure == nil {
			return nil
		}
		start, attempts := time.Now(), 1
		err := r.com.recover(ctx, failure, func(reason string) {
			r.log.Warn("transactional producer lost; recovering in process", "cause", failure, "reason", reason,
				"recoveries_without_commit", r.com.recoveries+1, "max", r.com.maxRecoveries,
				"action", "tasks closed dirty, new producer with the same transactional.id, rejoining the group")
			r.m.recoveries.WithLabelValues(reason).Inc()
		}, func(err error) {
			r.log.Warn("producer recovery attempt failed; trying again", "err", err, "attempt", attempts,
				"recoveries_without_commit", r.com.recoveries, "max", r.com.maxRecoveries)
			attempts++
		})
		if err != nil {
			return err
		}
		r.log.Info("transactional producer recovered", "took", time.Since(start).Round(time.Millisecond).String(), "attempts", attempts)
	}
}

// producerFatal is the current producer's fatal error, nil if none.
func (k *kafkaTxn) producerFatal() error {
	if p := k.r.producer; !p.IsClosed() { // closed: a recovery failed to start the next
		if err := p.GetFatalError(); err != nil {
			return err
		}
	}
	if p := k.r.producerFatal.Load(); p != nil {
		return *p
	}
	return nil
}

// loseTasks closes every active task dirty and forgets every partition
// (partitions lost), and forgets what the poll loop held for the dead
// transaction. Standby tasks stay: they never produce.
func (k *kafkaTxn) loseTasks() error {
	r := k.r
	parts := make([]kafka.TopicPartition, 0, len(r.tm.taskOf))
	for tp := range r.tm.taskOf {
		topic := tp.Topic
		parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: tp.Partition})
	}
	// The same report a lost assignment gives (rebalance.go), so that
	// whoever reads the log (operators, the ownership checks of the fault
	// tests) sees the ownership end here, not at the next assignment.
	r.log.Info("partitions revoked", "partitions", fmtParts(parts), "lost", true, "reason", "transactional producer lost")
	closing := r.tm.forget(parts)
	for id, t := range r.tm.tasks { // any task left without a partition too
		closing[id] = t
	}
	r.tm.closeRevoked(closing)
	clear(r.buffered)
	r.e2eTimestamps = r.e2eTimestamps[:0]
	r.consecutiveAborts = 0
	r.fatal = nil // a callback's failure on the lost producer: recovered from here
	r.health.publishOwned(r.tm)
	r.health.loopTick(time.Now(), r.tm)
	return nil
}

// resetProducer replaces the producer: it closes the old one (waiting at
// most the transaction timeout), starts a new one with the same
// configuration and transactional.id, initializes it (bounded by the
// transaction timeout) and aborts its leftover transaction, and gives the
// repartition purger an admin client of the new one. A failure that
// another attempt may not have (a timeout, the broker unreachable) wraps
// errUnfinished.
func (k *kafkaTxn) resetProducer(ctx context.Context) error {
	r := k.r
	r.newProducerGeneration() // the old producer's fatal errors no longer count
	r.purge.wait()            // its admin client is the old producer's
	if r.purge != nil {
		r.purge.admin.Close()
	}
	r.closeProducer(r.cfg.TransactionTimeout)
	if err := r.startProducer(); err != nil {
		return err
	}
	if r.purge != nil {
		admin, err := kafka.NewAdminClientFromProducer(r.producer)
		if err != nil {
			return fmt.Errorf("admin client: %w", err)
		}
		r.purge.admin = admin
	}
	if err := r.initTransactions(ctx, r.cfg.TransactionTimeout); err != nil {
		return retryable(err)
	}
	r.health.loopTick(time.Now(), r.tm)
	if err := r.abortLeftoverTransaction(ctx); err != nil {
		return retryable(err)
	}
	return nil
}

// retryable marks err errUnfinished when another attempt may succeed: a
// retriable client error, a timeout, a deadline. Authorization failures
// and everything else are returned as they are.
func retryable(err error) error {
	var ke kafka.Error
	switch {
	case isAuthorization(err):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return unfinished(err)
	case errors.As(err, &ke) && (ke.IsRetriable() || ke.Code() == kafka.ErrTimedOut || ke.Code() == kafka.ErrTransport ||
		ke.Code() == kafka.ErrAllBrokersDown):
		return unfinished(err)
	}
	return err
}

// rejoin leaves the group and subscribes again: librdkafka revokes the
// assignment through the rebalance callback (no task is left to close) and
// joins again once the revocation is done; the assignment that follows
// creates the tasks afresh (rebalance.go).
func (k *kafkaTxn) rejoin() error {
	r := k.r
	r.health.rebalancing.Store(true)
	if err := r.consumer.Unsubscribe(); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	topics := r.plan.copart.group
	if err := r.consumer.SubscribeTopics(topics, r.rebalance); err != nil {
		return fmt.Errorf("subscribe %v: %w", topics, err)
	}
	return nil
}
