package processor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
)

// restoreMux shares the runner's one restore consumer among concurrent
// restores, as Kafka Streams' restore consumer serves every changelog
// partition being restored: each restore adds its partition to the
// assignment (IncrementalAssign at its checkpoint), a dispatcher goroutine
// polls and routes records and end-of-partition events to the partition's
// channel, and the restore removes its partition when done.
//
// The consumer reads with read_committed (or aborted state would come back),
// by explicit assignment (not through the group), with partition EOF events:
// the end is reached when the consumer's position reaches the end offset, not
// when a record at end-1 arrives, since transaction markers take offsets
// (DESIGN.md section 11).
type restoreMux struct {
	c *kafka.Consumer

	// mu guards routes; the dispatcher reads it per event, sources register
	// and unregister themselves.
	mu     sync.Mutex
	routes map[partitionKey]chan kafka.Event
}

func newRestoreMux(c *kafka.Consumer) *restoreMux {
	return &restoreMux{c: c, routes: map[partitionKey]chan kafka.Event{}}
}

// run dispatches the consumer's events until ctx is done. A partition's
// channel filling up blocks the dispatcher: back pressure from the slowest
// restore, which is what bounds memory.
func (m *restoreMux) run(ctx context.Context) {
	for ctx.Err() == nil {
		ev := m.c.Poll(100)
		var tp kafka.TopicPartition
		switch e := ev.(type) {
		case *kafka.Message:
			tp = e.TopicPartition
		case kafka.PartitionEOF:
			tp = kafka.TopicPartition(e)
		default:
			continue
		}
		m.mu.Lock()
		ch := m.routes[partitionKey{*tp.Topic, tp.Partition}]
		m.mu.Unlock()
		if ch == nil {
			continue // a partition whose restore ended or was cancelled
		}
		select {
		case ch <- ev:
		case <-ctx.Done():
		}
	}
}

// source returns a changelog.Source over one changelog partition.
func (m *restoreMux) source(topic string, partition int32) *changelogSource {
	return &changelogSource{m: m, key: partitionKey{topic, partition}, timeoutMs: 10000}
}

// changelogSource reads one changelog partition for changelog.Restore.
type changelogSource struct {
	m         *restoreMux
	key       partitionKey
	ch        chan kafka.Event
	pos       int64
	timeoutMs int
}

var _ changelog.Source = (*changelogSource)(nil)

func (s *changelogSource) tp(offset int64) []kafka.TopicPartition {
	topic := s.key.Topic
	return []kafka.TopicPartition{{Topic: &topic, Partition: s.key.Partition, Offset: kafka.Offset(offset)}}
}

// Bounds implements changelog.Source. Under read_committed librdkafka answers
// with the last stable offset as the high mark.
func (s *changelogSource) Bounds(ctx context.Context) (int64, int64, error) {
	lo, hi, err := s.m.c.QueryWatermarkOffsets(s.key.Topic, s.key.Partition, s.timeoutMs)
	if err != nil {
		return 0, 0, fmt.Errorf("changelog %s[%d]: watermarks: %w", s.key.Topic, s.key.Partition, err)
	}
	return lo, hi, nil
}

// Seek implements changelog.Source: it (re)assigns the partition at offset.
func (s *changelogSource) Seek(ctx context.Context, offset int64) error {
	s.done()
	s.ch = make(chan kafka.Event, 4096)
	s.m.mu.Lock()
	s.m.routes[s.key] = s.ch
	s.m.mu.Unlock()
	if err := s.m.c.IncrementalAssign(s.tp(offset)); err != nil {
		return fmt.Errorf("changelog %s[%d]: assign at %d: %w", s.key.Topic, s.key.Partition, offset, err)
	}
	s.pos = offset
	return nil
}

// Next implements changelog.Source: it returns the records routed so far (up
// to a batch) and the position, which jumps to the end offset on partition
// EOF.
func (s *changelogSource) Next(ctx context.Context) ([]changelog.ChangelogRecord, int64, error) {
	const maxBatch = 10000
	var recs []changelog.ChangelogRecord
	wait := time.NewTimer(100 * time.Millisecond)
	defer wait.Stop()
	for len(recs) < maxBatch {
		var ev kafka.Event
		if len(recs) == 0 {
			select {
			case ev = <-s.ch:
			case <-wait.C:
				return nil, s.pos, nil
			case <-ctx.Done():
				return nil, s.pos, ctx.Err()
			}
		} else {
			select {
			case ev = <-s.ch:
			default:
				return recs, s.pos, nil
			}
		}
		switch e := ev.(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				return recs, s.pos, fmt.Errorf("changelog %s[%d]: %w", s.key.Topic, s.key.Partition, e.TopicPartition.Error)
			}
			off := int64(e.TopicPartition.Offset)
			if off < s.pos {
				continue // fetched before the last seek
			}
			recs = append(recs, changelog.ChangelogRecord{Key: e.Key, Value: e.Value, Offset: off})
			s.pos = off + 1
		case kafka.PartitionEOF:
			if off := int64(e.Offset); off > s.pos {
				s.pos = off
			}
			return recs, s.pos, nil
		}
	}
	return recs, s.pos, nil
}

// done stops routing and releases the partition.
func (s *changelogSource) done() {
	if s.ch == nil {
		return
	}
	s.m.mu.Lock()
	delete(s.m.routes, s.key)
	s.m.mu.Unlock()
	_ = s.m.c.IncrementalUnassign(s.tp(int64(kafka.OffsetInvalid)))
	s.ch = nil
}
