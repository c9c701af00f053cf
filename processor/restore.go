package processor

import (
	"context"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
)

// changelogSource reads one changelog partition for changelog.Restore through
// the runner's restore consumer: read_committed (or aborted state would come
// back), by explicit assignment (not through the group), with partition EOF
// events, because the end is reached when the consumer's position reaches the
// end offset, not when a record at end-1 arrives: transaction markers take
// offsets (DESIGN.md section 11).
type changelogSource struct {
	c         *kafka.Consumer
	topic     string
	partition int32
	pos       int64
	timeoutMs int
}

var _ changelog.Source = (*changelogSource)(nil)

// Bounds implements changelog.Source. Under read_committed librdkafka answers
// with the last stable offset as the high mark.
func (s *changelogSource) Bounds(ctx context.Context) (int64, int64, error) {
	lo, hi, err := s.c.QueryWatermarkOffsets(s.topic, s.partition, s.timeoutMs)
	if err != nil {
		return 0, 0, fmt.Errorf("changelog %s[%d]: watermarks: %w", s.topic, s.partition, err)
	}
	return lo, hi, nil
}

// Seek implements changelog.Source.
func (s *changelogSource) Seek(ctx context.Context, offset int64) error {
	topic := s.topic
	if err := s.c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: s.partition, Offset: kafka.Offset(offset)}}); err != nil {
		return fmt.Errorf("changelog %s[%d]: assign at %d: %w", s.topic, s.partition, offset, err)
	}
	s.pos = offset
	return nil
}

// Next implements changelog.Source: it returns the records fetched so far (up
// to a batch) and the position, which jumps to the end offset on partition EOF.
func (s *changelogSource) Next(ctx context.Context) ([]changelog.ChangelogRecord, int64, error) {
	const maxBatch = 10000
	var recs []changelog.ChangelogRecord
	timeout := 100
	for len(recs) < maxBatch {
		if err := ctx.Err(); err != nil {
			return recs, s.pos, err
		}
		ev := s.c.Poll(timeout)
		if ev == nil {
			if len(recs) > 0 {
				break
			}
			continue
		}
		timeout = 0
		switch e := ev.(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				return recs, s.pos, fmt.Errorf("changelog %s[%d]: %w", s.topic, s.partition, e.TopicPartition.Error)
			}
			off := int64(e.TopicPartition.Offset)
			recs = append(recs, changelog.ChangelogRecord{Key: e.Key, Value: e.Value, Offset: off})
			s.pos = off + 1
		case kafka.PartitionEOF:
			if off := int64(e.Offset); off > s.pos {
				s.pos = off
			}
			return recs, s.pos, nil
		case kafka.Error:
			if e.IsFatal() {
				return recs, s.pos, fmt.Errorf("changelog %s[%d]: %w", s.topic, s.partition, e)
			}
		}
	}
	return recs, s.pos, nil
}

// done releases the partition.
func (s *changelogSource) done() { _ = s.c.Unassign() }
