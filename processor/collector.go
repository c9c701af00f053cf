package processor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// producer is the part of *kafka.Producer the record collector needs.
type producer interface {
	Produce(msg *kafka.Message, deliveryChan chan kafka.Event) error
}

// collector serializes nothing itself: it holds the records one input record
// produces (sink outputs, DLQ records) until that record has been processed
// without error, then produces them into the open transaction. So a record
// that fails half way leaves no output behind, and its error policy decides
// alone what it contributes. Owned by its task's worker.
type collector struct {
	p        producer
	tracker  *deliveryTracker
	buffered []*kafka.Message
	// arena holds the messages message() hands out, reused once the
	// buffer is flushed or discarded: Produce copies key, value and headers
	// (RD_KAFKA_MSG_F_COPY) and, given no opaque and no delivery channel,
	// keeps no reference to the message. next is the first unused one.
	arena []kafka.Message
	next  int
}

func (c *collector) send(msg *kafka.Message) { c.buffered = append(c.buffered, msg) }

// message returns a zeroed message to fill and send, without allocating
// one per record. A message a caller keeps past the next flush or discard
// must be allocated instead.
func (c *collector) message() *kafka.Message {
	if c.next == len(c.arena) {
		// Full: a fresh arena. The old one stays reachable through
		// buffered until that is flushed.
		c.arena = make([]kafka.Message, max(16, 2*len(c.arena)))
		c.next = 0
	}
	m := &c.arena[c.next]
	c.next++
	*m = kafka.Message{}
	return m
}

func (c *collector) discard() {
	clear(c.buffered)
	c.buffered = c.buffered[:0]
	c.next = 0
}

// flush produces the buffered records.
func (c *collector) flush(ctx context.Context) error {
	for i, m := range c.buffered {
		if err := c.produce(ctx, m); err != nil {
			c.buffered = c.buffered[i:]
			return err
		}
	}
	c.discard()
	return nil
}

// produce hands one record to librdkafka, waiting while its queue is full.
func (c *collector) produce(ctx context.Context, m *kafka.Message) error {
	for {
		c.tracker.sent()
		err := c.p.Produce(m, nil)
		if err == nil {
			return nil
		}
		c.tracker.unsent()
		if ke, ok := err.(kafka.Error); ok && ke.Code() == kafka.ErrQueueFull {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
				continue
			}
		}
		return &runtimeError{fmt.Errorf("produce to %s: %w", *m.TopicPartition.Topic, err)}
	}
}

// runtimeError marks failures of the runtime itself (produce, store I/O), which
// abort the transaction instead of going to the error policy: the record is
// not at fault.
type runtimeError struct{ err error }

func (e *runtimeError) Error() string { return e.err.Error() }
func (e *runtimeError) Unwrap() error { return e.err }

// deliveryTracker counts produces against delivery reports, so that the commit
// can wait until the drainer has seen every report of the transaction, and
// keeps the last delivered offset per changelog partition for checkpoints.
// Written by workers (sent) and by the delivery drainer (delivered); read by
// the poll loop at commit. mu guards every field.
type deliveryTracker struct {
	mu         sync.Mutex
	cond       *sync.Cond
	produced   int64
	delivered  int64
	firstErr   error
	changelogs map[string]bool // changelog topic names; fixed after start
	last       map[partitionKey]int64
}

func newDeliveryTracker(changelogTopics map[string]bool) *deliveryTracker {
	t := &deliveryTracker{changelogs: changelogTopics, last: map[partitionKey]int64{}}
	t.cond = sync.NewCond(&t.mu)
	return t
}

func (t *deliveryTracker) sent() {
	t.mu.Lock()
	t.produced++
	t.mu.Unlock()
}

func (t *deliveryTracker) unsent() {
	t.mu.Lock()
	t.produced--
	t.cond.Broadcast()
	t.mu.Unlock()
}

// report records one delivery report. Called by the drainer only.
func (t *deliveryTracker) report(m *kafka.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.delivered++
	tp := m.TopicPartition
	if tp.Error != nil {
		if t.firstErr == nil {
			t.firstErr = fmt.Errorf("delivery to %s[%d]: %w", *tp.Topic, tp.Partition, tp.Error)
		}
	} else if t.changelogs[*tp.Topic] {
		k := partitionKey{*tp.Topic, tp.Partition}
		if int64(tp.Offset) >= t.last[k] {
			t.last[k] = int64(tp.Offset) + 1
		}
	}
	if t.delivered == t.produced {
		t.cond.Broadcast()
	}
}

// await waits until every produced record has a report, then returns the next
// changelog offset per partition delivered since the last await, and the first
// delivery error, and resets both.
func (t *deliveryTracker) await(ctx context.Context) (map[partitionKey]int64, error) {
	stop := context.AfterFunc(ctx, func() {
		t.mu.Lock()
		t.cond.Broadcast()
		t.mu.Unlock()
	})
	defer stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.delivered < t.produced {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %d of them: %w", errDeliveriesPending, t.produced-t.delivered, ctx.Err())
		}
		t.cond.Wait()
	}
	last, err := t.last, t.firstErr
	t.last, t.firstErr = map[partitionKey]int64{}, nil
	return last, err
}

// The Go client's producer channels, which it otherwise allocates for a
// million entries each (go.events.channel.size, go.produce.channel.size):
// 24 MiB of pointers that the garbage collector scans in every cycle,
// whatever they hold, which profiled as most of the runner's GC work.
// Delivery reports are drained as they come (the drainer), so a full
// channel only makes librdkafka's poller wait; the produce channel is not
// used (records go through Produce).
const (
	producerEventsChannelSize  = 10000
	producerProduceChannelSize = 1
)
