package processor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/internal/devstack"
)

// The tests here run restores through restoreMux and changelogSource against
// the embedded broker (kfake, in process), as Runner.restoreStore does.

// restoreTestBed is a broker with changelog topics, a restore consumer
// configured as Runner.Run configures it, its mux, and a state DB.
type restoreTestBed struct {
	addr string
	cl   *kgo.Client
	adm  *kadm.Client
	mux  *restoreMux
	db   *changelog.DB
}

func newRestoreTestBed(t *testing.T) *restoreTestBed {
	t.Helper()
	br, err := devstack.StartBroker(devstack.BrokerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":      br.Addr(),
		"group.id":               "restore-test-restore",
		"enable.auto.commit":     false,
		"isolation.level":        "read_committed",
		"enable.partition.eof":   true,
		"auto.offset.reset":      "earliest",
		"fetch.wait.max.ms":      10,
		"fetch.error.backoff.ms": 10,
		"log_level":              3,
	})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux, err := newRestoreMux(c, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	dispatched := make(chan struct{})
	go func() { defer close(dispatched); mux.run(ctx) }()
	t.Cleanup(func() {
		stop()
		<-dispatched
		mux.close()
		_ = c.Close()
	})
	db, err := changelog.Open(t.TempDir(), changelog.Options{CacheSize: 1 << 20, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &restoreTestBed{addr: br.Addr(), cl: cl, adm: kadm.NewClient(cl), mux: mux, db: db}
}

// createTopic creates a compacted changelog topic.
func (b *restoreTestBed) createTopic(t *testing.T, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	if configs == nil {
		configs = map[string]*string{}
	}
	compact := "compact"
	configs["cleanup.policy"] = &compact
	res, err := b.adm.CreateTopics(context.Background(), partitions, 1, configs, topic)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// produceTxn writes records k<first>..k<first+n-1> (value: the index) to one
// partition in one committed transaction, with its own transactional id.
func (b *restoreTestBed) produceTxn(t *testing.T, topic string, partition int32, first, n int) {
	t.Helper()
	txn := b.beginTxn(t, fmt.Sprintf("%s-%d-%d", topic, partition, first))
	b.produce(t, txn, topic, partition, first, n)
	if err := txn.EndTransaction(context.Background(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

func (b *restoreTestBed) beginTxn(t *testing.T, id string) *kgo.Client {
	t.Helper()
	txn, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.TransactionalID(id), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(txn.Close)
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	return txn
}

func (b *restoreTestBed) produce(t *testing.T, cl *kgo.Client, topic string, partition int32, first, n int) {
	t.Helper()
	ctx := context.Background()
	for i := first; i < first+n; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: partition, Key: []byte("k" + strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// restoreWith runs changelog.Restore of store/partition from topic through
// the mux, wrapping the source, and closes the source after it returns.
func (b *restoreTestBed) restoreWith(ctx context.Context, store, topic string, partition int32,
	wrap func(*changelogSource) changelog.Source) (changelog.RestoreResult, error) {
	src, err := b.mux.open(ctx, topic, partition)
	if err != nil {
		return changelog.RestoreResult{}, err
	}
	defer src.close()
	var s changelog.Source = src
	if wrap != nil {
		s = wrap(src)
	}
	return changelog.Restore(ctx, b.db.Store(store, partition), s, changelog.RestoreOptions{})
}

// checkState checks that store/partition holds exactly k0..k<n-1>.
func (b *restoreTestBed) checkState(t *testing.T, store string, partition int32, n int) {
	t.Helper()
	got := 0
	err := b.db.Store(store, partition).Range(nil, nil, func(k, v []byte) error {
		if string(k) != "k"+string(v) {
			return fmt.Errorf("key %s has value %s", k, v)
		}
		got++
		return nil
	})
	if err != nil || got != n {
		t.Fatalf("%s/%d holds %d keys (%v), want %d", store, partition, got, err, n)
	}
}

// routeFull reports whether the partition's current route has a full channel.
func (m *restoreMux) routeFull(topic string, partition int32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	rt := m.routes[partitionKey{topic, partition}]
	return rt != nil && len(rt.ch) == cap(rt.ch)
}

// waitUntil polls cond (every 10ms) until it holds, failing after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stallingSource is a task's source that stops reading after its first Next
// until the route's channel is full, and then is revoked (its restore's ctx
// cancelled), as when a rebalance takes a partition during a large restore
// while the restore is busy writing a batch.
type stallingSource struct {
	*changelogSource
	t      *testing.T
	revoke context.CancelFunc
	nexts  int
}

func (s *stallingSource) Next(ctx context.Context) ([]changelog.ChangelogRecord, int64, error) {
	s.nexts++
	if s.nexts == 2 {
		waitUntil(s.t, "the revoked restore's route is full", func() bool { return s.m.routeFull(s.key.Topic, s.key.Partition) })
		s.revoke()
		// Restore, back from its batch, sees the cancellation at the top of
		// its loop and reads no more.
		return nil, s.pos, ctx.Err()
	}
	return s.changelogSource.Next(ctx)
}

// TestRestoreRevokedMidwayDoesNotStallOthers: a restore revoked while its
// route's channel is full (the dispatcher blocked sending to it) must not
// leave the dispatcher blocked on a channel nobody reads: the restore of
// another partition, started afterwards, finishes. (Before routes closed on
// removal, the second restore waited forever, paused, with no error.)
func TestRestoreRevokedMidwayDoesNotStallOthers(t *testing.T) {
	b := newRestoreTestBed(t)
	const topic, big, small = "app-s-changelog", 3 * routeBuffer, 100
	b.createTopic(t, topic, 2, nil)
	b.produceTxn(t, topic, 0, 0, big)
	b.produceTxn(t, topic, 1, 0, small)

	ctx, revoke := context.WithCancel(context.Background())
	defer revoke()
	_, err := b.restoreWith(ctx, "s", topic, 0, func(src *changelogSource) changelog.Source {
		return &stallingSource{changelogSource: src, t: t, revoke: revoke}
	})
	if err == nil || ctx.Err() == nil {
		t.Fatalf("revoked restore = %v, want it cancelled", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := b.restoreWith(ctx, "s", topic, 1, nil)
	if err != nil {
		t.Fatalf("restore of another partition after the revoke: %v", err)
	}
	if res.Restored != small || res.To != small+1 {
		t.Fatalf("restore of partition 1 = %+v, want %d records up to %d", res, small, small+1)
	}
	b.checkState(t, "s", 1, small)
}

// TestRestoreSamePartitionWaitsForRevokedOne: a task revoked mid-restore and
// assigned again starts a new restore of the same store partition while the
// old one is still returning. The new one waits for the old one to close
// (claim), so the old one's unassign cannot strand it on a shared route; it
// ends with the whole partition.
func TestRestoreSamePartitionWaitsForRevokedOne(t *testing.T) {
	b := newRestoreTestBed(t)
	const topic, n = "app-s-changelog", 3 * routeBuffer
	b.createTopic(t, topic, 1, nil)
	b.produceTxn(t, topic, 0, 0, n)

	// The old restore: revoked after its first batch; its Restore returns,
	// its source is not closed yet.
	oldCtx, revoke := context.WithCancel(context.Background())
	defer revoke()
	oldSrc, err := b.mux.open(oldCtx, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = changelog.Restore(oldCtx, b.db.Store("s", 0), &stallingSource{changelogSource: oldSrc, t: t, revoke: revoke},
		changelog.RestoreOptions{})
	if oldCtx.Err() == nil {
		t.Fatalf("old restore = %v, want it cancelled", err)
	}

	// The new restore starts, and only then does the old one close.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type result struct {
		res changelog.RestoreResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := b.restoreWith(ctx, "s", topic, 0, nil)
		done <- result{res, err}
	}()
	oldSrc.close()
	r := <-done
	if r.err != nil {
		t.Fatalf("new restore: %v", r.err)
	}
	if r.res.To != n+1 {
		t.Fatalf("new restore = %+v, want it up to %d", r.res, n+1)
	}
	b.checkState(t, "s", 0, n)
}

// TestRestoreMuxClaims: one restore per changelog partition at a time; a
// second open of a partition waits for the first to close, or for its ctx.
// Other partitions are not held up.
func TestRestoreMuxClaims(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &restoreMux{routes: map[partitionKey]*route{}, claims: map[partitionKey]chan struct{}{}}
		ctx := context.Background()
		first, err := m.open(ctx, "t", 0)
		if err != nil {
			t.Fatal(err)
		}
		if other, err := m.open(ctx, "t", 1); err != nil {
			t.Fatalf("open of another partition: %v", err)
		} else {
			other.close()
		}

		second := make(chan *changelogSource, 1)
		go func() {
			s, err := m.open(ctx, "t", 0)
			if err != nil {
				t.Error(err)
			}
			second <- s
		}()
		cctx, cancel := context.WithCancel(ctx)
		cancelled := make(chan error, 1)
		go func() {
			_, err := m.open(cctx, "t", 0)
			cancelled <- err
		}()
		synctest.Wait()
		if len(second) != 0 || len(cancelled) != 0 {
			t.Fatal("a second open of a claimed partition did not wait")
		}
		cancel()
		synctest.Wait()
		if err := <-cancelled; err == nil {
			t.Fatal("open waiting for a claim ignored its cancelled ctx")
		}
		first.close()
		synctest.Wait()
		s := <-second
		if s == nil {
			t.Fatal("second open failed")
		}
		s.close()
		if len(m.claims) != 0 {
			t.Fatalf("claims left after every close: %v", m.claims)
		}
	})
}

// TestRestoreWaitsForOpenTransaction: a restore that starts while a
// transaction is open on the changelog partition does not stop at the last
// stable offset below it. Those records may belong to a transaction that
// commits (here: it does); the restore waits for it to settle and replays
// it. (Before, the restore stopped at the stable offset and the committed
// records never reached the store.)
func TestRestoreWaitsForOpenTransaction(t *testing.T) {
	b := newRestoreTestBed(t)
	const topic, committed, open = "app-s-changelog", 50, 20
	b.createTopic(t, topic, 1, nil)
	b.produceTxn(t, topic, 0, 0, committed)
	txn := b.beginTxn(t, "open-txn")
	b.produce(t, txn, topic, 0, committed, open)

	src, err := b.mux.open(context.Background(), topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	bounds, err := src.Bounds(context.Background())
	src.close()
	if err != nil {
		t.Fatal(err)
	}
	if want := (changelog.Bounds{LogStart: 0, Stable: committed + 1, High: committed + 1 + open}); bounds != want {
		t.Fatalf("bounds with a transaction open = %+v, want %+v", bounds, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type result struct {
		res changelog.RestoreResult
		err error
	}
	done := make(chan result, 1)
	waiting := make(chan struct{})
	go func() {
		res, err := b.restoreWith(ctx, "s", topic, 0, func(src *changelogSource) changelog.Source {
			return &boundsProbe{changelogSource: src, calls: 2, reached: waiting}
		})
		done <- result{res, err}
	}()
	<-waiting // the restore read the bounds again: it is waiting
	if err := txn.EndTransaction(context.Background(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.res.Restored != committed+open || r.res.To != committed+open+2 {
		t.Fatalf("restore = %+v, want %d records up to %d", r.res, committed+open, committed+open+2)
	}
	b.checkState(t, "s", 0, committed+open)
}

// boundsProbe closes reached at the given Bounds call.
type boundsProbe struct {
	*changelogSource
	calls, n int
	reached  chan struct{}
}

func (p *boundsProbe) Bounds(ctx context.Context) (changelog.Bounds, error) {
	p.n++
	if p.n == p.calls {
		close(p.reached)
	}
	return p.changelogSource.Bounds(ctx)
}

// TestRestoreMuxDeleteRetention reads a changelog topic's
// delete.retention.ms, Kafka's default (24h) when not set.
func TestRestoreMuxDeleteRetention(t *testing.T) {
	b := newRestoreTestBed(t)
	hour := "3600000"
	b.createTopic(t, "set-changelog", 1, map[string]*string{"delete.retention.ms": &hour})
	b.createTopic(t, "default-changelog", 1, nil)
	for topic, want := range map[string]time.Duration{"set-changelog": time.Hour, "default-changelog": 24 * time.Hour} {
		got, err := b.mux.deleteRetention(context.Background(), topic)
		if err != nil || got != want {
			t.Errorf("deleteRetention(%s) = %v, %v; want %v", topic, got, err, want)
		}
	}
	if got := maxStateAge(time.Hour, 10*time.Second); got != time.Hour-10*time.Second {
		t.Errorf("maxStateAge(1h, 10s) = %v", got)
	}
	if got := maxStateAge(5*time.Second, 10*time.Second); got >= 0 {
		t.Errorf("maxStateAge(5s, 10s) = %v, want negative (always a full restore)", got)
	}
}
