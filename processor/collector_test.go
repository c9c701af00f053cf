package processor

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// report builds a delivery report as the drainer receives it.
func deliveryReport(topic string, partition int32, offset int64, err error) *kafka.Message {
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: partition, Offset: kafka.Offset(offset), Error: err}}
}

type awaitResult struct {
	ends map[partitionKey]int64
	err  error
}

// startAwait runs await in a goroutine of the bubble and returns its result channel.
func startAwait(ctx context.Context, tr *deliveryTracker) <-chan awaitResult {
	ch := make(chan awaitResult, 1)
	go func() {
		ends, err := tr.await(ctx)
		ch <- awaitResult{ends, err}
	}()
	return ch
}

// blocked reports whether await is still waiting, once every goroutine of the
// bubble is durably blocked (so the answer does not depend on scheduling).
func blocked(ch <-chan awaitResult) bool {
	synctest.Wait()
	return len(ch) == 0
}

func TestTrackerAwaitBlocksUntilEveryReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newDeliveryTracker(map[string]bool{"app-cnt-changelog": true})
		for range 3 {
			tr.sent()
		}
		ch := startAwait(context.Background(), tr)
		if !blocked(ch) {
			t.Fatal("await returned with 3 reports outstanding")
		}
		tr.report(deliveryReport("app-cnt-changelog", 0, 4, nil))
		tr.report(deliveryReport("out", 0, 100, nil))
		if !blocked(ch) {
			t.Fatal("await returned with 1 report outstanding")
		}
		tr.report(deliveryReport("app-cnt-changelog", 0, 5, nil))
		if blocked(ch) {
			t.Fatal("await still blocked after every report")
		}
		r := <-ch
		if r.err != nil {
			t.Fatalf("await: %v", r.err)
		}
		// Only changelog topics, next offset = last delivered + 1.
		want := map[partitionKey]int64{{"app-cnt-changelog", 0}: 6}
		if !maps.Equal(r.ends, want) {
			t.Fatalf("await = %v, want %v", r.ends, want)
		}
	})
}

func TestTrackerNextOffsets(t *testing.T) {
	tr := newDeliveryTracker(map[string]bool{"a-changelog": true, "b-changelog": true})
	reports := []*kafka.Message{
		deliveryReport("a-changelog", 0, 9, nil),
		deliveryReport("a-changelog", 0, 7, nil), // reports of one partition may come in any order
		deliveryReport("a-changelog", 0, 8, nil),
		deliveryReport("a-changelog", 1, 0, nil), // offset 0: next is 1
		deliveryReport("b-changelog", 0, 41, nil),
		deliveryReport("out", 0, 500, nil),
		deliveryReport("a-changelog", 2, 77, kafka.NewError(kafka.ErrMsgTimedOut, "timed out", false)), // failed: no offset
	}
	for _, m := range reports {
		tr.sent()
		tr.report(m)
	}
	ends, err := tr.await(context.Background())
	if err == nil {
		t.Fatal("await: want the delivery error")
	}
	want := map[partitionKey]int64{{"a-changelog", 0}: 10, {"a-changelog", 1}: 1, {"b-changelog", 0}: 42}
	if !maps.Equal(ends, want) {
		t.Fatalf("await = %v, want %v", ends, want)
	}
	// Reset: the next await sees only what was delivered since.
	tr.sent()
	tr.report(deliveryReport("b-changelog", 0, 42, nil))
	ends, err = tr.await(context.Background())
	if err != nil {
		t.Fatalf("second await: %v", err)
	}
	if want := map[partitionKey]int64{{"b-changelog", 0}: 43}; !maps.Equal(ends, want) {
		t.Fatalf("second await = %v, want %v", ends, want)
	}
}

func TestTrackerFirstErrorReturnedAndReset(t *testing.T) {
	tr := newDeliveryTracker(nil)
	first := kafka.NewError(kafka.ErrMsgSizeTooLarge, "too large", false)
	second := kafka.NewError(kafka.ErrMsgTimedOut, "timed out", false)
	for _, m := range []*kafka.Message{
		deliveryReport("out", 3, 0, nil),
		deliveryReport("out", 3, -1, first),
		deliveryReport("dlq", 0, -1, second),
	} {
		tr.sent()
		tr.report(m)
	}
	_, err := tr.await(context.Background())
	var ke kafka.Error
	if !errors.As(err, &ke) || ke.Code() != kafka.ErrMsgSizeTooLarge {
		t.Fatalf("await = %v, want the first delivery error", err)
	}
	if !strings.Contains(err.Error(), "out[3]") {
		t.Errorf("await = %q: want the topic and partition of the failed delivery", err)
	}
	if _, err := tr.await(context.Background()); err != nil {
		t.Fatalf("second await = %v: the error was not reset", err)
	}
}

func TestTrackerUnsent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newDeliveryTracker(nil)
		tr.sent()
		tr.sent()
		tr.report(deliveryReport("out", 0, 1, nil))
		ch := startAwait(context.Background(), tr)
		if !blocked(ch) {
			t.Fatal("await returned with 1 report outstanding")
		}
		// The second Produce failed: it never gets a report. unsent must
		// wake the waiting await.
		tr.unsent()
		if blocked(ch) {
			t.Fatal("unsent did not wake await")
		}
		if r := <-ch; r.err != nil {
			t.Fatalf("await: %v", r.err)
		}
	})
}

func TestTrackerAwaitContextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newDeliveryTracker(map[string]bool{"c": true})
		tr.sent()
		tr.sent()
		tr.report(deliveryReport("c", 0, 3, nil))
		ctx, cancel := context.WithCancel(context.Background())
		ch := startAwait(ctx, tr)
		if !blocked(ch) {
			t.Fatal("await returned with 1 report outstanding")
		}
		cancel()
		if blocked(ch) {
			t.Fatal("cancel did not unblock await")
		}
		r := <-ch
		if !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, errDeliveriesPending) || !strings.Contains(r.err.Error(), "1 of them") {
			t.Fatalf("await = %v, want context.Canceled naming the outstanding count", r.err)
		}
		// The late report still counts; what was delivered is not lost.
		tr.report(deliveryReport("c", 0, 4, nil))
		ends, err := tr.await(context.Background())
		if err != nil {
			t.Fatalf("await after the late report: %v", err)
		}
		if want := map[partitionKey]int64{{"c", 0}: 5}; !maps.Equal(ends, want) {
			t.Fatalf("await = %v, want %v", ends, want)
		}
	})
}

func TestTrackerAwaitNothingOutstanding(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ends, err := newDeliveryTracker(nil).await(ctx)
	if err != nil || len(ends) != 0 {
		t.Fatalf("await = %v, %v; want nothing, at once, even with a done context", ends, err)
	}
}

// TestTrackerConcurrent runs workers and a drainer as the runner does, for
// the race detector: await returns once every report is in, with the highest
// changelog offset.
func TestTrackerConcurrent(t *testing.T) {
	const workers, each = 4, 500
	tr := newDeliveryTracker(map[string]bool{"c": true})
	reports := make(chan *kafka.Message, 64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				tr.sent()
				reports <- deliveryReport("c", int32(w), int64(i), nil)
			}
		}()
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for m := range reports {
			tr.report(m)
		}
	}()
	wg.Wait()
	ends, err := tr.await(context.Background())
	close(reports)
	<-drained
	if err != nil {
		t.Fatal(err)
	}
	for w := range workers {
		if got := ends[partitionKey{"c", int32(w)}]; got != each {
			t.Errorf("partition %d: next offset %d, want %d", w, got, each)
		}
	}
}

// fakeProducer is a scripted producer: Produce returns errs in order, then nil.
type fakeProducer struct {
	errs      []error
	calls     int
	produced  []*kafka.Message
	onProduce func(call int)
}

func (p *fakeProducer) Produce(msg *kafka.Message, deliveryChan chan kafka.Event) error {
	p.calls++
	if p.onProduce != nil {
		p.onProduce(p.calls)
	}
	if len(p.errs) > 0 {
		err := p.errs[0]
		p.errs = p.errs[1:]
		if err != nil {
			return err
		}
	}
	cp := *msg // librdkafka copies too: the collector reuses its messages
	p.produced = append(p.produced, &cp)
	return nil
}

func outMsg(topic, key string) *kafka.Message {
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Key: []byte(key)}
}

func (t *deliveryTracker) producedCount() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.produced
}

func keys(ms []*kafka.Message) string {
	var ks []string
	for _, m := range ms {
		ks = append(ks, string(m.Key))
	}
	return strings.Join(ks, ",")
}

func TestCollectorFlush(t *testing.T) {
	p := &fakeProducer{}
	c := &collector{p: p, tracker: newDeliveryTracker(nil)}
	c.send(outMsg("out", "a"))
	c.send(outMsg("out", "b"))
	c.send(outMsg("dlq", "c"))
	if len(p.produced) != 0 {
		t.Fatal("send produced before flush")
	}
	if err := c.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := keys(p.produced); got != "a,b,c" {
		t.Errorf("produced %s, want a,b,c in order", got)
	}
	if len(c.buffered) != 0 {
		t.Errorf("buffered after flush: %d", len(c.buffered))
	}
	if n := c.tracker.producedCount(); n != 3 {
		t.Errorf("tracker counts %d produced, want 3", n)
	}
	// Flushing again produces nothing more.
	if err := c.flush(context.Background()); err != nil || len(p.produced) != 3 {
		t.Errorf("second flush: %v, %d produced", err, len(p.produced))
	}
}

func TestCollectorDiscard(t *testing.T) {
	p := &fakeProducer{}
	c := &collector{p: p, tracker: newDeliveryTracker(nil)}
	c.send(outMsg("out", "a"))
	c.send(outMsg("out", "b"))
	c.discard()
	if err := c.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.calls != 0 || c.tracker.producedCount() != 0 {
		t.Errorf("discarded records were produced: %d calls", p.calls)
	}
	c.send(outMsg("out", "c"))
	if err := c.flush(context.Background()); err != nil || keys(p.produced) != "c" {
		t.Errorf("after discard: %v, produced %s", err, keys(p.produced))
	}
}

func TestCollectorQueueFullRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		full := kafka.NewError(kafka.ErrQueueFull, "queue full", false)
		p := &fakeProducer{errs: []error{full, full}}
		c := &collector{p: p, tracker: newDeliveryTracker(nil)}
		c.send(outMsg("out", "a"))
		c.send(outMsg("out", "b"))
		if err := c.flush(context.Background()); err != nil {
			t.Fatalf("flush: %v", err)
		}
		if p.calls != 4 || keys(p.produced) != "a,b" {
			t.Errorf("%d Produce calls, produced %s; want 4 calls (2 queue full), a,b", p.calls, keys(p.produced))
		}
		if n := c.tracker.producedCount(); n != 2 {
			t.Errorf("tracker counts %d produced, want 2: a queue-full attempt must not count", n)
		}
	})
}

func TestCollectorQueueFullContextDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		full := kafka.NewError(kafka.ErrQueueFull, "queue full", false)
		p := &fakeProducer{errs: []error{full, full, full, full}, onProduce: func(call int) {
			if call == 3 {
				cancel()
			}
		}}
		c := &collector{p: p, tracker: newDeliveryTracker(nil)}
		c.send(outMsg("out", "a"))
		err := c.flush(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("flush = %v, want context.Canceled", err)
		}
		if p.calls != 3 || c.tracker.producedCount() != 0 {
			t.Errorf("%d calls, %d counted produced; want 3, 0", p.calls, c.tracker.producedCount())
		}
		if len(c.buffered) != 1 {
			t.Errorf("the unsent record left the buffer: %d buffered", len(c.buffered))
		}
	})
}

func TestCollectorHardErrorIsRuntimeError(t *testing.T) {
	tooLarge := kafka.NewError(kafka.ErrMsgSizeTooLarge, "message too large", false)
	p := &fakeProducer{errs: []error{nil, tooLarge}}
	c := &collector{p: p, tracker: newDeliveryTracker(nil)}
	c.send(outMsg("out", "a"))
	c.send(outMsg("sink", "b"))
	c.send(outMsg("out", "c"))
	err := c.flush(context.Background())
	var rte *runtimeError
	if !errors.As(err, &rte) {
		t.Fatalf("flush = %v (%T), want *runtimeError", err, err)
	}
	var ke kafka.Error
	if !errors.As(err, &ke) || ke.Code() != kafka.ErrMsgSizeTooLarge {
		t.Errorf("flush = %v: the kafka error is not wrapped", err)
	}
	if !strings.Contains(err.Error(), "sink") {
		t.Errorf("flush = %q: want the topic named", err)
	}
	if got := keys(c.buffered); got != "b,c" {
		t.Errorf("buffered after the failure: %s, want b,c (a was produced)", got)
	}
	if n := c.tracker.producedCount(); n != 1 {
		t.Errorf("tracker counts %d produced, want 1", n)
	}
	c.discard()
	if len(c.buffered) != 0 {
		t.Error("discard kept records")
	}
}
