package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// fakeTxnEnv is a scripted txnEnv: it logs every call in order, returns the
// errors queued for each call name, and models the broker's view of the
// transaction so that it can flag protocol violations (state applied before
// the commit, a begin inside an open transaction, ...).
type fakeTxnEnv struct {
	t             testing.TB
	transactional bool
	calls         []string
	fails         map[string][]error     // per call name: errors its next calls return, in order
	ends          map[partitionKey]int64 // what the next successful awaitDeliveries returns
	onCall        func(name string)      // called before each call is logged; may be nil
	now           func() time.Time       // when set, each call is logged with the time since start
	start         time.Time

	inTxn      bool // a transaction is open on the broker
	violations []string

	// The workers' side, as the script sets it: what they processed in the
	// transaction, what they reported failing, and the committed positions
	// of owned partitions.
	processed map[partitionKey]int64
	failErr   error
	owned     map[partitionKey]int64
	// cached: the tasks' record caches hold updates (flushCaches logs a
	// call only then, so scripts without a cache read as before).
	cached bool

	// The recovery from a lost producer: the producer's own fatal error,
	// and whether the tasks were lost since the producer was last reset.
	fatal      error
	tasksLost  bool
	resetSince bool // the producer was reset since the tasks were lost
}

func newFakeTxnEnv(t testing.TB, transactional bool) *fakeTxnEnv {
	return &fakeTxnEnv{t: t, transactional: transactional, fails: map[string][]error{}, ends: map[partitionKey]int64{},
		processed: map[partitionKey]int64{}, owned: map[partitionKey]int64{}}
}

func (f *fakeTxnEnv) call(name, detail string) error {
	if f.onCall != nil {
		f.onCall(name)
	}
	line := name
	if detail != "" {
		line += " " + detail
	}
	if f.now != nil {
		line = fmt.Sprintf("@%v %s", f.now().Sub(f.start), line)
	}
	var err error
	if q := f.fails[name]; len(q) > 0 {
		err, f.fails[name] = q[0], q[1:]
		line += " -> " + err.Error()
	}
	f.calls = append(f.calls, line)
	return err
}

func (f *fakeTxnEnv) violate(format string, args ...any) {
	f.violations = append(f.violations, fmt.Sprintf(format, args...))
}

// takeCalls returns the calls logged since the last takeCalls.
func (f *fakeTxnEnv) takeCalls() []string {
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeTxnEnv) barrier() { _ = f.call("barrier", "") }

func (f *fakeTxnEnv) flushCaches() error {
	if !f.cached {
		return nil
	}
	if !f.inTxn && f.transactional {
		f.violate("flushCaches without an open transaction")
	}
	err := f.call("flushCaches", "")
	if err == nil {
		f.cached = false
	}
	return err
}

func (f *fakeTxnEnv) failure() error { return f.failErr }

func (f *fakeTxnEnv) clearFailure() {
	_ = f.call("clearFailure", "")
	f.failErr = nil
}

func (f *fakeTxnEnv) positions() map[partitionKey]position {
	out := map[partitionKey]position{}
	for p, off := range f.owned {
		out[p] = position{Next: off}
	}
	for p, off := range f.processed {
		out[p] = position{Next: off}
	}
	return out
}

func (f *fakeTxnEnv) begin() error {
	if !f.transactional {
		f.violate("begin under at_least_once")
	}
	if f.inTxn {
		f.violate("begin inside an open transaction")
	}
	err := f.call("begin", "")
	if err == nil {
		f.inTxn = true
	}
	return err
}

func (f *fakeTxnEnv) sendOffsets(ctx context.Context, pos map[partitionKey]position) error {
	if f.cached {
		f.violate("sendOffsets before the record caches flushed")
	}
	if !f.inTxn {
		f.violate("sendOffsets without an open transaction")
	}
	return f.call("sendOffsets", fmtPositions(pos))
}

func (f *fakeTxnEnv) commit(ctx context.Context) error {
	if !f.inTxn {
		f.violate("commit without an open transaction")
	}
	err := f.call("commit", "")
	if err == nil {
		f.inTxn = false
	}
	return err
}

func (f *fakeTxnEnv) abort(ctx context.Context) error {
	if !f.inTxn {
		f.violate("abort without an open transaction")
	}
	err := f.call("abort", "")
	if err == nil {
		f.inTxn = false
	}
	return err
}

func (f *fakeTxnEnv) commitOffsets(ctx context.Context, pos map[partitionKey]position) error {
	if f.transactional {
		f.violate("commitOffsets under exactly_once_v2")
	}
	return f.call("commitOffsets", fmtPositions(pos))
}

func (f *fakeTxnEnv) awaitDeliveries(ctx context.Context) (map[partitionKey]int64, error) {
	if err := f.call("awaitDeliveries", ""); err != nil {
		return nil, err
	}
	ends := f.ends
	f.ends = map[partitionKey]int64{}
	return ends, nil
}

func (f *fakeTxnEnv) applyState(changelogNext map[partitionKey]int64, pos map[partitionKey]position) error {
	if f.inTxn {
		f.violate("applyState before the transaction committed")
	}
	if f.failErr != nil && failureOutcome(f.failErr) != stopAfterCommit {
		f.violate("applyState after a worker failure that forbids committing")
	}
	if err := f.call("applyState", fmtOffsets(changelogNext)); err != nil {
		return err
	}
	for p := range f.owned {
		if cp, ok := pos[p]; ok {
			f.owned[p] = cp.Next
		}
	}
	clear(f.processed)
	return nil
}

func (f *fakeTxnEnv) dropState() error {
	clear(f.processed)
	f.cached = false
	return f.call("dropState", "")
}

func (f *fakeTxnEnv) rewind(first map[partitionKey]int64) error {
	if f.inTxn {
		f.violate("rewind while the transaction is still open")
	}
	return f.call("rewind", fmtOffsets(first))
}

func (f *fakeTxnEnv) producerFatal() error { return f.fatal }

func (f *fakeTxnEnv) loseTasks() error {
	if f.failErr != nil {
		f.violate("loseTasks before the workers' failures were cleared")
	}
	err := f.call("loseTasks", "")
	clear(f.processed)
	clear(f.owned)
	f.cached = false
	f.tasksLost, f.resetSince = true, false
	return err
}

func (f *fakeTxnEnv) resetProducer(ctx context.Context) error {
	if !f.tasksLost {
		f.violate("resetProducer while tasks of the lost producer are open")
	}
	err := f.call("resetProducer", "")
	if err == nil {
		// The new producer's InitTransactions bumped the epoch: the broker
		// aborted the old transaction.
		f.inTxn, f.fatal, f.resetSince = false, nil, true
	}
	return err
}

func (f *fakeTxnEnv) rejoin() error {
	if !f.resetSince {
		f.violate("rejoin before the producer was replaced")
	}
	f.tasksLost = false
	return f.call("rejoin", "")
}

// fmtOffsets prints "topic/partition=offset" pairs in order.
func fmtOffsets(m map[partitionKey]int64) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b partitionKey) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s/%d=%d", k.Topic, k.Partition, m[k])
	}
	return strings.Join(parts, " ")
}

// fmtPositions prints "topic/partition=offset" pairs in order.
func fmtPositions(pos map[partitionKey]position) string {
	m := make(map[partitionKey]int64, len(pos))
	for p, cp := range pos {
		m[p] = cp.Next
	}
	return fmtOffsets(m)
}

// parsePartition parses "topic/partition".
func parsePartition(t testing.TB, s string) partitionKey {
	t.Helper()
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		t.Fatalf("partition %q: want topic/partition", s)
	}
	p, err := strconv.ParseInt(s[i+1:], 10, 32)
	if err != nil {
		t.Fatalf("partition %q: %v", s, err)
	}
	return partitionKey{s[:i], int32(p)}
}

// scriptedError builds the error a kind names in testdata/txn.
func scriptedError(t testing.TB, kind string) error {
	t.Helper()
	switch kind {
	case "retriable":
		return flaggedError(t, kafka.ErrTimedOut, "timed out", true, false)
	case "abortable":
		return flaggedError(t, kafka.ErrMsgTimedOut, "produce failed, transaction must abort", false, true)
	case "fenced":
		return kafka.NewError(kafka.ErrFenced, "producer fenced", true)
	case "unflagged":
		return kafka.NewError(kafka.ErrRebalanceInProgress, "rebalance in progress", false)
	case "plain":
		return errors.New("disk full")
	case "runtime":
		return &runtimeError{errors.New("produce to out: message size too large")}
	case "flush":
		return fmt.Errorf("task 0_0: %w of store counts: node sink: boom", errCacheFlush)
	case "delivery":
		return errors.New("delivery to out[0]: broker down")
	case "pending":
		return fmt.Errorf("%w: 3 of them: %w", errDeliveriesPending, context.DeadlineExceeded)
	case "epoch":
		return kafka.NewError(kafka.ErrInvalidProducerEpoch, "producer attempted an operation with an old epoch", true)
	case "broker-fenced":
		return kafka.NewError(kafka.ErrProducerFenced, "there is a newer producer with the same transactionalId", true)
	case "unknown-producer":
		return kafka.NewError(kafka.ErrUnknownProducerID, "unknown producer id", true)
	case "config":
		return kafka.NewError(kafka.ErrInvalidTransactionTimeout, "invalid transaction timeout", true)
	case "sequence":
		return kafka.NewError(kafka.ErrOutOfOrderSequenceNumber, "out of order sequence number", true)
	case "cluster-authz":
		return kafka.NewError(kafka.ErrClusterAuthorizationFailed, "cluster authorization failed", true)
	case "authz":
		// What txnAuthorization makes of TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
		return &AuthorizationError{Resource: "transactional id", Name: "app-a", Operations: []string{"WRITE"},
			Code: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"}
	case "unfinished":
		// What resetProducer returns when InitTransactions timed out.
		return unfinished(fmt.Errorf("init transactions: %w", kafka.NewError(kafka.ErrTimedOut, "timed out waiting for operation to finish", false)))
	}
	t.Fatalf("unknown error kind %q", kind)
	return nil
}

// loopFailure builds the error the poll loop stops on for a kind: the
// consumer's fatal error, a record's own failure, a global table's, a
// worker's produce on a producer that has a fatal error (librdkafka's
// __FATAL), or else the delivery drainer's fatal producer error of a
// scriptedError kind.
func loopFailure(t testing.TB, kind string) error {
	t.Helper()
	switch kind {
	case "fenced-instance":
		return fmt.Errorf("%w: consumer: %w", ErrFatal, kafka.NewError(kafka.ErrFencedInstanceID,
			"static consumer fenced by other consumer with same group.instance.id", true))
	case "processing":
		return fmt.Errorf("on.error=fail: %w", &ProcessingError{Class: "processing", Topic: "in", Partition: 0, Offset: 7, Err: errors.New("boom")})
	case "global":
		return fmt.Errorf("%w: global tables: %w", ErrFatal, errors.New("restore refs: disk full"))
	case "produce-fatal":
		return fmt.Errorf("%w: %w", ErrFatal, &runtimeError{fmt.Errorf("produce to out: %w", kafka.NewError(kafka.ErrFatal, "Local: Fatal error", false))})
	case "authz":
		return scriptedError(t, kind)
	}
	return fmt.Errorf("%w: producer: %w", ErrFatal, scriptedError(t, kind))
}

// outcome prints commitTxn/abortTxn's result by the sentinel it wraps.
func outcome(err error) string {
	aborted, fatal := errors.Is(err, ErrAborted), errors.Is(err, ErrFatal)
	var pe *ProcessingError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &pe) && !aborted && !fatal:
		return "stop: " + err.Error()
	case aborted && !fatal:
		return "aborted: " + err.Error()
	case fatal && !aborted:
		return "fatal: " + err.Error()
	}
	return "UNCLASSIFIED: " + err.Error()
}

func fmtState(s txnState) string {
	return fmt.Sprintf("state: open=%v records=%d first=[%s]", s.open, s.records, fmtOffsets(s.first))
}

// TestTxn runs the scripts in testdata/txn against a committer over
// fakeTxnEnv. Commands:
//
//	new [transactional=false] [retries=N]   a fresh committer (default: exactly_once_v2, 5 retries)
//	track p=T/P offset=N                    what the poll loop does per record: ensureOpen, then track;
//	                                        the fake's worker processes it
//	worker-fail kind=K [p=T/P offset=N]     a worker fails (K: processing, runtime, punctuator, fatal) at
//	                                        the record at N of T/P, which it and later ones were not processed
//	own p=T/P committed=N                   an owned partition with a committed position
//	open                                    ensureOpen alone (a punctuation)
//	cache                                   the record caches now hold updates (processed records')
//	untrack p=T/P                           partition revoked
//	ends T/P=N ...                          changelog ends the next awaitDeliveries returns
//	fail call=NAME err=KIND [times=N]       the next N calls of NAME fail (KIND: see scriptedError)
//	commit                                  commitTxn
//	abort                                   abortTxn
//	due elapsed=D interval=D [max=N]        due, elapsed after the transaction opened
//	state
//	producer-fatal kind=K                   the producer's own fatal error is now a scriptedError K
//	recover [err=K] [max=N]                 the runner's recovery from a lost producer (recover.go), after
//	                                        the last commit's or abort's error, or after the poll loop
//	                                        stopped on loopFailure K; max: maxRecoveries (default 5)
//
// Each command prints the env calls it caused in order, the outcome, and any
// protocol violation the fake saw. Regenerate with
// go test ./processor -run TestTxn -rewrite and review the diff.
func TestTxn(t *testing.T) {
	datadriven.Walk(t, "testdata/txn", func(t *testing.T, path string) {
		var env *fakeTxnEnv
		var c *committer
		// A scripted failure that never happened means the script did not
		// test what it says.
		checkLeftover := func() {
			if env == nil {
				return
			}
			for call, q := range env.fails {
				if len(q) > 0 {
					t.Errorf("%s: %d scripted failures of %s never happened", path, len(q), call)
				}
			}
		}
		reset := func(transactional bool, retries int) {
			checkLeftover()
			env = newFakeTxnEnv(t, transactional)
			c = newCommitter(env, transactional)
			c.retries = retries
			c.retryBackoff = time.Microsecond
		}
		reset(true, 5)
		ctx := context.Background()
		var last error // the last commit's or abort's error, for recover
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var out []string
			result := func(err error, withState bool) string {
				last = err
				out = append(out, env.takeCalls()...)
				out = append(out, "-> "+outcome(err))
				if withState {
					out = append(out, fmtState(c.state))
				}
				for _, v := range env.violations {
					out = append(out, "VIOLATION: "+v)
				}
				env.violations = nil
				return strings.Join(out, "\n") + "\n"
			}
			switch d.Cmd {
			case "new":
				transactional, retries := true, 5
				d.MaybeScanArgs(t, "transactional", &transactional)
				d.MaybeScanArgs(t, "retries", &retries)
				reset(transactional, retries)
				return "ok\n"
			case "track":
				var p string
				var off int64
				d.ScanArgs(t, "p", &p)
				d.ScanArgs(t, "offset", &off)
				err := c.ensureOpen()
				if err == nil {
					c.state.track(parsePartition(t, p), off)
					env.processed[parsePartition(t, p)] = off + 1
				}
				return result(err, false)
			case "worker-fail":
				var kind, p string
				var off int64
				d.ScanArgs(t, "kind", &kind)
				d.MaybeScanArgs(t, "p", &p)
				d.MaybeScanArgs(t, "offset", &off)
				var err error
				switch kind {
				case "processing":
					pk := parsePartition(t, p)
					err = &ProcessingError{Class: "deserialization", Topic: pk.Topic, Partition: pk.Partition, Offset: off, Err: errors.New("not a number")}
				case "runtime":
					err = &runtimeError{errors.New("produce to out: message size too large")}
				case "punctuator":
					err = errors.New("task 0_0: wall_clock_time punctuator of p: boom")
				case "fatal":
					err = &runtimeError{kafka.NewError(kafka.ErrFenced, "producer fenced", true)}
				default:
					d.Fatalf(t, "unknown failure kind %q", kind)
				}
				if p != "" {
					pk := parsePartition(t, p)
					if first, ok := c.state.first[pk]; ok && off <= first {
						delete(env.processed, pk)
					} else {
						env.processed[pk] = off
					}
				}
				env.failErr = errors.Join(env.failErr, err)
				if j, ok := env.failErr.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) == 1 {
					env.failErr = j.Unwrap()[0]
				}
				return "ok\n"
			case "own":
				var p string
				var off int64
				d.ScanArgs(t, "p", &p)
				d.ScanArgs(t, "committed", &off)
				env.owned[parsePartition(t, p)] = off
				return "ok\n"
			case "open":
				return result(c.ensureOpen(), true)
			case "cache":
				env.cached = true
				return "ok\n"
			case "untrack":
				var p string
				d.ScanArgs(t, "p", &p)
				c.state.untrack(parsePartition(t, p))
				return result(nil, true)
			case "ends":
				for _, a := range d.CmdArgs {
					n, err := strconv.ParseInt(a.Vals[0], 10, 64)
					if err != nil {
						d.Fatalf(t, "ends %s: %v", a.Key, err)
					}
					env.ends[parsePartition(t, a.Key)] = n
				}
				return "ok\n"
			case "fail":
				var call, kind string
				times := 1
				d.ScanArgs(t, "call", &call)
				d.ScanArgs(t, "err", &kind)
				d.MaybeScanArgs(t, "times", &times)
				for range times {
					env.fails[call] = append(env.fails[call], scriptedError(t, kind))
				}
				return "ok\n"
			case "commit":
				return result(c.commitTxn(ctx), true)
			case "abort":
				return result(c.abortTxn(ctx), true)
			case "due":
				var elapsed, interval string
				max := 0
				d.ScanArgs(t, "elapsed", &elapsed)
				d.ScanArgs(t, "interval", &interval)
				d.MaybeScanArgs(t, "max", &max)
				e, err := time.ParseDuration(elapsed)
				if err != nil {
					d.Fatalf(t, "elapsed: %v", err)
				}
				iv, err := time.ParseDuration(interval)
				if err != nil {
					d.Fatalf(t, "interval: %v", err)
				}
				return fmt.Sprintf("%v\n", c.due(c.state.started.Add(e), iv, max))
			case "state":
				return fmtState(c.state) + "\n"
			case "producer-fatal":
				var kind string
				d.ScanArgs(t, "kind", &kind)
				env.fatal = scriptedError(t, kind)
				return "ok\n"
			case "recover":
				failure := last
				var kind string
				d.MaybeScanArgs(t, "err", &kind)
				if kind != "" {
					failure = loopFailure(t, kind)
				}
				d.MaybeScanArgs(t, "max", &c.maxRecoveries)
				err := c.recover(ctx, failure, func(reason string) {
					out = append(out, "lost: "+reason)
				}, func(err error) {
					out = append(out, env.takeCalls()...)
					out = append(out, "retry after: "+err.Error())
				})
				out = append(out, env.takeCalls()...)
				out = append(out, fmt.Sprintf("recoveries since the last commit: %d", c.recoveries))
				return result(err, true)
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
		checkLeftover()
	})
}

// TestTxnRetryBackoff checks the retry schedule in a synctest bubble, whose
// clock only moves when every goroutine is blocked: the backoff doubles from
// retryBackoff, and the same offsets are sent again each time.
func TestTxnRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newFakeTxnEnv(t, true)
		env.now, env.start = time.Now, time.Now()
		c := newCommitter(env, true) // default: 5 retries, 100ms backoff
		if err := c.ensureOpen(); err != nil {
			t.Fatal(err)
		}
		c.state.track(partitionKey{"in", 0}, 41)
		env.processed[partitionKey{"in", 0}] = 42
		for range 3 {
			env.fails["sendOffsets"] = append(env.fails["sendOffsets"], scriptedError(t, "retriable"))
		}
		if err := c.commitTxn(context.Background()); err != nil {
			t.Fatalf("commitTxn: %v", err)
		}
		want := []string{
			"@0s begin",
			"@0s barrier",
			"@0s sendOffsets in/0=42 -> timed out",
			"@100ms sendOffsets in/0=42 -> timed out",
			"@300ms sendOffsets in/0=42 -> timed out",
			"@700ms sendOffsets in/0=42",
			"@700ms commit",
			"@700ms awaitDeliveries",
			"@700ms applyState",
		}
		got := env.takeCalls()
		if !slices.Equal(got, want) {
			t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestTxnRetryStopsWhenContextDone: a context cancelled during the backoff
// ends the retries as a fatal error that wraps the context's, without an
// abort (the runner is stopping; the broker's transaction timeout aborts).
func TestTxnRetryStopsWhenContextDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newFakeTxnEnv(t, true)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
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
		env.fails["commit"] = []error{scriptedError(t, "retriable"), scriptedError(t, "retriable")}
		err := c.commitTxn(ctx)
		if !errors.Is(err, ErrFatal) || !errors.Is(err, context.Canceled) || errors.Is(err, ErrAborted) {
			t.Fatalf("commitTxn = %v, want fatal wrapping context.Canceled", err)
		}
		calls := env.takeCalls()
		if n := slices.Index(calls, "commit -> timed out"); n < 0 || slices.Contains(calls[n+1:], "commit -> timed out") {
			t.Errorf("want exactly one commit attempt, got %q", calls)
		}
		for _, c := range calls {
			if strings.HasPrefix(c, "abort") || strings.HasPrefix(c, "applyState") || strings.HasPrefix(c, "dropState") {
				t.Errorf("unexpected %q after cancel: %q", c, calls)
			}
		}
		if !c.state.open {
			t.Error("state reset after a fatal error")
		}
	})
}

// TestTxnAtLeastOnceCommitOffsetsRebalanceIsNotFatal documents a finding:
// under at_least_once the offsets are committed through the consumer, whose
// errors librdkafka never flags (the retriable and abortable flags are set by
// the transactional producer API only). Classify therefore calls every
// consumer commit failure fatal, so a commit that races a rebalance
// (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) or a
// coordinator move (NOT_COORDINATOR, REQUEST_TIMED_OUT) stops the runner.
// Under at_least_once these are safe to handle by rewinding (the records are
// simply processed again), or by retrying for the coordinator errors.
func TestTxnAtLeastOnceCommitOffsetsRebalanceIsNotFatal(t *testing.T) {
	for _, code := range []kafka.ErrorCode{kafka.ErrRebalanceInProgress, kafka.ErrIllegalGeneration,
		kafka.ErrUnknownMemberID, kafka.ErrNotCoordinator, kafka.ErrRequestTimedOut} {
		t.Run(code.String(), func(t *testing.T) {
			env := newFakeTxnEnv(t, false)
			c := newCommitter(env, false)
			c.retryBackoff = time.Microsecond
			if err := c.ensureOpen(); err != nil {
				t.Fatal(err)
			}
			c.state.track(partitionKey{"in", 0}, 9)
			// What kafka.Consumer.CommitOffsets returns: an unflagged error.
			env.fails["commitOffsets"] = []error{kafka.NewError(code, code.String(), false)}
			err := c.commitTxn(context.Background())
			if errors.Is(err, ErrFatal) {
				t.Fatalf("commitTxn = %v: a consumer commit failure under at_least_once should rewind or retry, not stop the runner", err)
			}
		})
	}
}

// TestTxnStateTrack covers txnState's bookkeeping directly.
func TestTxnStateTrack(t *testing.T) {
	s := newTxnState()
	a, b := partitionKey{"in", 0}, partitionKey{"in", 1}
	s.track(a, 5)
	s.track(a, 6)
	s.track(b, 100)
	s.track(a, 9) // gaps are fine: compacted or filtered input
	if s.records != 4 || s.first[a] != 5 || s.first[b] != 100 {
		t.Fatalf("after track: %s", fmtState(s))
	}
	s.untrack(a)
	if _, ok := s.first[a]; ok {
		t.Errorf("untrack left first: %s", fmtState(s))
	}
	s.track(a, 20) // reassigned in the same transaction: starts afresh
	if s.first[a] != 20 {
		t.Errorf("re-track after untrack: %s", fmtState(s))
	}
}

// TestTxnAbortFailureKeepsCause documents a finding: when the abort that
// follows an abortable commit fails, fail returns the abort's error alone,
// so the log of a runner that stops says "abort transaction: ..." and never
// why the transaction had to be aborted in the first place.
func TestTxnAbortFailureKeepsCause(t *testing.T) {
	env := newFakeTxnEnv(t, true)
	c := newCommitter(env, true)
	c.retryBackoff = time.Microsecond
	if err := c.ensureOpen(); err != nil {
		t.Fatal(err)
	}
	c.state.track(partitionKey{"in", 0}, 5)
	env.fails["commit"] = []error{scriptedError(t, "abortable")}
	env.fails["abort"] = []error{scriptedError(t, "fenced")}
	err := c.commitTxn(context.Background())
	if !errors.Is(err, ErrFatal) {
		t.Fatalf("commitTxn = %v, want fatal", err)
	}
	if !strings.Contains(err.Error(), "produce failed, transaction must abort") {
		t.Errorf("commitTxn = %q: the commit error that caused the abort is lost", err)
	}
}

// TestTxnAbortRunsAfterCancel: an abort asked for while the runner shuts down
// (its context cancelled) still aborts, under a deadline of its own, instead
// of leaving the transaction open until the broker's timeout.
func TestTxnAbortRunsAfterCancel(t *testing.T) {
	env := newFakeTxnEnv(t, true)
	var deadlineSet bool
	env.onCall = func(name string) {
		if name == "abort" {
			deadlineSet = true
		}
	}
	c := newCommitter(env, true)
	c.abortTimeout = time.Minute
	if err := c.ensureOpen(); err != nil {
		t.Fatal(err)
	}
	c.state.track(partitionKey{"in", 0}, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.abortTxn(ctx); err != nil {
		t.Fatalf("abortTxn after cancel = %v, want nil", err)
	}
	want := []string{"begin", "barrier", "abort", "awaitDeliveries", "dropState", "rewind in/0=3"}
	if got := env.takeCalls(); !slices.Equal(got, want) || !deadlineSet {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if env.inTxn {
		t.Fatal("transaction still open on the broker")
	}
}
