package processor

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"unsafe"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// flaggedError builds a kafka.Error with librdkafka's retriable and
// txn-requires-abort flags set.
//
// confluent-kafka-go exposes no way to build such an error: NewError sets only
// the fatal flag, and the other two are filled in from rd_kafka_error_t by the
// transactional producer API alone (the mock cluster cannot inject them
// either). So the test reaches into the unexported fields by name; if a
// library upgrade renames them, this fails loudly instead of silently
// building an unflagged (hence fatal) error.
func flaggedError(t testing.TB, code kafka.ErrorCode, str string, retriable, txnRequiresAbort bool) kafka.Error {
	t.Helper()
	e := kafka.NewError(code, str, false)
	v := reflect.ValueOf(&e).Elem()
	set := func(name string, b bool) {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Bool {
			t.Fatalf("kafka.Error has no bool field %q any more: update flaggedError", name)
		}
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetBool(b)
	}
	set("retriable", retriable)
	set("txnRequiresAbort", txnRequiresAbort)
	if e.IsRetriable() != retriable || e.TxnRequiresAbort() != txnRequiresAbort {
		t.Fatalf("flaggedError: flags did not stick: %+v", e)
	}
	return e
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func(t *testing.T) error
		want ErrorClass
	}{
		{"fatal flag (fenced)", func(t *testing.T) error {
			return kafka.NewError(kafka.ErrFenced, "producer fenced", true)
		}, Fatal},
		{"fatal flag wins over retriable", func(t *testing.T) error {
			e := flaggedError(t, kafka.ErrTimedOut, "x", true, true)
			return setFatal(t, e)
		}, Fatal},
		{"txn requires abort", func(t *testing.T) error {
			return flaggedError(t, kafka.ErrMsgTimedOut, "produce failed in transaction", false, true)
		}, Abortable},
		{"abortable wins over retriable", func(t *testing.T) error {
			return flaggedError(t, kafka.ErrTimedOut, "x", true, true)
		}, Abortable},
		{"retriable", func(t *testing.T) error {
			return flaggedError(t, kafka.ErrTimedOut, "commit timed out", true, false)
		}, Retriable},
		{"wrapped retriable", func(t *testing.T) error {
			return fmt.Errorf("commit: %w", flaggedError(t, kafka.ErrTimedOut, "timed out", true, false))
		}, Retriable},
		{"unflagged fenced code", func(t *testing.T) error {
			return kafka.NewError(kafka.ErrProducerFenced, "fenced", false)
		}, Fatal},
		{"unflagged invalid epoch code", func(t *testing.T) error {
			return kafka.NewError(kafka.ErrInvalidProducerEpoch, "epoch", false)
		}, Fatal},
		{"unflagged timeout code is still fatal", func(t *testing.T) error {
			return kafka.NewError(kafka.ErrTimedOut, "timed out", false)
		}, Fatal},
		{"unflagged queue full", func(t *testing.T) error {
			return kafka.NewError(kafka.ErrQueueFull, "queue full", false)
		}, Fatal},
		{"not a kafka error", func(t *testing.T) error { return errors.New("disk on fire") }, Fatal},
		{"nil", func(t *testing.T) error { return nil }, Fatal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err(t)
			if got := Classify(err); got != tc.want {
				t.Fatalf("Classify(%v) = %v, want %v", err, got, tc.want)
			}
			if got := IsFatal(err); got != (tc.want == Fatal) {
				t.Errorf("IsFatal = %v", got)
			}
			if got := IsAbortable(err); got != (tc.want == Abortable) {
				t.Errorf("IsAbortable = %v", got)
			}
		})
	}
}

// setFatal returns e with the fatal flag set too.
func setFatal(t *testing.T, e kafka.Error) kafka.Error {
	t.Helper()
	f := reflect.ValueOf(&e).Elem().FieldByName("fatal")
	if !f.IsValid() {
		t.Fatal("kafka.Error has no field fatal")
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetBool(true)
	if !e.IsFatal() {
		t.Fatal("setFatal did not stick")
	}
	return e
}

func TestErrorClassString(t *testing.T) {
	for c, want := range map[ErrorClass]string{Retriable: "retriable", Abortable: "abortable", Fatal: "fatal", ErrorClass(42): "fatal"} {
		if got := c.String(); got != want {
			t.Errorf("ErrorClass(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

func TestProcessingErrorFormat(t *testing.T) {
	cause := errors.New("boom")
	for _, tc := range []struct {
		e    ProcessingError
		want string
	}{
		{ProcessingError{Class: "processing", Topic: "orders", Partition: 3, Offset: 42, Node: "KSTREAM-MAP-0000000001", Err: cause},
			"processing error in node KSTREAM-MAP-0000000001 at orders[3]@42: boom"},
		{ProcessingError{Class: "deserialization", Topic: "orders", Partition: 0, Offset: 7, Err: cause},
			"deserialization error at orders[0]@7: boom"},
		{ProcessingError{Class: "panic", Topic: "t", Partition: 11, Offset: 0, Node: "n", Err: cause},
			"panic error in node n at t[11]@0: boom"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		var err error = fmt.Errorf("worker: %w", &tc.e)
		if !errors.Is(err, cause) {
			t.Errorf("%v does not unwrap to its cause", err)
		}
		var pe *ProcessingError
		if !errors.As(err, &pe) || pe.Offset != tc.e.Offset {
			t.Errorf("errors.As(%v) failed", err)
		}
	}
}

func TestIsMigrated(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{kafka.NewError(kafka.ErrUnknownMemberID, "unknown member", false), true},
		{fmt.Errorf("send offsets: %w", kafka.NewError(kafka.ErrIllegalGeneration, "stale generation", false)), true},
		{kafka.NewError(kafka.ErrFencedInstanceID, "fenced instance", false), true},
		{kafka.NewError(kafka.ErrRebalanceInProgress, "rebalancing", false), true},
		{kafka.NewError(kafka.ErrProducerFenced, "producer fenced", true), false},
		{errors.New("plain"), false},
	}
	for _, c := range cases {
		if got := IsMigrated(c.err); got != c.want {
			t.Errorf("IsMigrated(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
