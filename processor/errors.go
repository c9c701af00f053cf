package processor

import (
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ErrorClass says what the runner must do after a client call failed.
type ErrorClass int

const (
	// Retriable: call the same function again with the same arguments
	// (librdkafka flags it retriable; e.g. a commit that timed out).
	Retriable ErrorClass = iota
	// Abortable: the transaction cannot commit but the producer is healthy:
	// abort, drop pending state, rewind the consumer, begin again
	// (librdkafka's TxnRequiresAbort; e.g. a produce that failed in the
	// transaction).
	Abortable
	// Fatal: the producer can no longer commit (fenced by a newer instance
	// with the same transactional.id, invalid producer epoch, or any error
	// librdkafka does not flag): stop processing at once, apply nothing.
	// Under exactly_once_v2 the runner then replaces a producer that was
	// lost (fenced, say) in process instead of stopping (recover.go).
	Fatal
)

func (c ErrorClass) String() string {
	switch c {
	case Retriable:
		return "retriable"
	case Abortable:
		return "abortable"
	}
	return "fatal"
}

// Classify sorts a client error by what the caller must do. An error librdkafka
// does not flag is fatal: guessing it retriable could keep a fenced producer
// processing.
func Classify(err error) ErrorClass {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return Fatal
	}
	switch {
	case ke.IsFatal():
		return Fatal
	case ke.TxnRequiresAbort():
		return Abortable
	case ke.IsRetriable():
		return Retriable
	}
	return Fatal
}

// IsMigrated reports whether err says the group moved on without this member
// (KIP-447's fencing of offsets from a stale member or generation): its tasks
// may be owned by another member now, as Kafka Streams' TaskMigratedException.
func IsMigrated(err error) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke.Code() {
	case kafka.ErrUnknownMemberID, kafka.ErrIllegalGeneration, kafka.ErrFencedInstanceID, kafka.ErrRebalanceInProgress:
		return true
	}
	return false
}

// classifyOffsetCommit sorts the errors of a consumer offset commit
// (at_least_once), which librdkafka never flags: a rebalance under way means
// the partitions may have moved, so the records are rewound and processed
// again (abortable); coordinator moves and timeouts are retried.
func classifyOffsetCommit(err error) ErrorClass {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return Fatal
	}
	switch ke.Code() {
	case kafka.ErrRebalanceInProgress, kafka.ErrIllegalGeneration, kafka.ErrUnknownMemberID,
		kafka.ErrAssignmentLost, kafka.ErrState:
		return Abortable
	case kafka.ErrNotCoordinator, kafka.ErrCoordinatorNotAvailable, kafka.ErrCoordinatorLoadInProgress,
		kafka.ErrRequestTimedOut, kafka.ErrTimedOut, kafka.ErrTransport:
		return Retriable
	}
	return Classify(err)
}

// IsFatal reports whether err means the producer can no longer commit.
func IsFatal(err error) bool { return Classify(err) == Fatal }

// IsAbortable reports whether err asks for the transaction to be aborted.
func IsAbortable(err error) bool { return Classify(err) == Abortable }

// ErrFatal wraps the error that stopped the runner; the process should exit
// non-zero (or build a new runner) and must not keep processing.
var ErrFatal = errors.New("eos-runner: fatal")

// ProcessingError is an input record that failed to deserialize or to process,
// with its coordinates, as handed to the error policy.
type ProcessingError struct {
	Class     string // "deserialization", "processing" or "panic"
	Topic     string
	Partition int32
	Offset    int64
	Node      string // the node that failed, when known
	Err       error
}

func (e *ProcessingError) Error() string {
	where := ""
	if e.Node != "" {
		where = " in node " + e.Node
	}
	return fmt.Sprintf("%s error%s at %s[%d]@%d: %v", e.Class, where, e.Topic, e.Partition, e.Offset, e.Err)
}

func (e *ProcessingError) Unwrap() error { return e.Err }
