package processor

import (
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// TestPartitionGroup plays Kafka Streams' PartitionGroup rules: lowest
// head timestamp first, wait for an empty partition whose fetch is pending,
// wait max.task.idle.ms for an empty caught-up one, never wait when
// negative.
func TestPartitionGroup(t *testing.T) {
	a, b := partitionKey{"a", 0}, partitionKey{"b", 0}
	msg := func(tp partitionKey, off int64, ts int64) *kafka.Message {
		topic := tp.Topic
		return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: tp.Partition, Offset: kafka.Offset(off)}, Timestamp: time.UnixMilli(ts)}
	}
	type step struct {
		add   []*kafka.Message // buffered before the step
		at    time.Duration    // wall clock
		lags  map[string]int64 // known lag of empty partitions by topic (default 0)
		taken string           // "topic@offset ..." taken by next until nil
	}
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name    string
		maxIdle time.Duration
		steps   []step
	}{
		{"lowest timestamp first, ties by topic", 0, []step{
			{add: []*kafka.Message{msg(a, 0, 5), msg(a, 1, 7), msg(b, 0, 5), msg(b, 1, 6)}, taken: "a@0 b@0 b@1 a@1"},
		}},
		{"an empty partition with pending records is waited for", 0, []step{
			{add: []*kafka.Message{msg(a, 0, 5), msg(a, 1, 7)}, lags: map[string]int64{"b": 3}, taken: ""},
			{add: []*kafka.Message{msg(b, 0, 6)}, taken: "a@0 b@0 a@1"},
		}},
		{"unknown lag is waited for", 0, []step{
			{add: []*kafka.Message{msg(a, 0, 5)}, lags: map[string]int64{"b": -1}, taken: ""},
		}},
		{"a caught-up partition is not waited for at idle 0", 0, []step{
			{add: []*kafka.Message{msg(a, 0, 5), msg(a, 1, 7)}, taken: "a@0 a@1"},
		}},
		{"a caught-up partition is waited for up to max idle", 100 * time.Millisecond, []step{
			{add: []*kafka.Message{msg(a, 0, 5)}, taken: ""},
			{at: 99 * time.Millisecond, taken: ""},
			{at: 100 * time.Millisecond, add: []*kafka.Message{msg(a, 1, 9)}, taken: "a@0 a@1"},
			// Still waiting: enforced processing goes on without a new wait.
			{at: 150 * time.Millisecond, add: []*kafka.Message{msg(a, 2, 10)}, taken: "a@2"},
			// Both have records again: the wait starts afresh next time.
			{at: 160 * time.Millisecond, add: []*kafka.Message{msg(a, 3, 11), msg(b, 0, 12)}, taken: "a@3"},
			{at: 170 * time.Millisecond, taken: ""},
			{at: 270 * time.Millisecond, taken: "b@0"},
		}},
		{"negative max idle never waits", -1, []step{
			{add: []*kafka.Message{msg(a, 0, 5)}, lags: map[string]int64{"b": 10}, taken: "a@0"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newPartitionGroup([]partitionKey{b, a}, tc.maxIdle)
			for i, s := range tc.steps {
				for _, m := range s.add {
					g.add(partitionKey{*m.TopicPartition.Topic, m.TopicPartition.Partition}, m)
				}
				var got []string
				for {
					m := g.next(t0.Add(s.at), func(tp partitionKey) int64 { return s.lags[tp.Topic] })
					if m == nil {
						break
					}
					got = append(got, *m.TopicPartition.Topic+"@"+m.TopicPartition.Offset.String())
				}
				if strings.Join(got, " ") != s.taken {
					t.Fatalf("step %d: took %q, want %q", i, strings.Join(got, " "), s.taken)
				}
			}
		})
	}
}

func TestPartitionGroupDrop(t *testing.T) {
	a, b := partitionKey{"a", 0}, partitionKey{"b", 0}
	g := newPartitionGroup([]partitionKey{a, b}, -1)
	ta, tb := "a", "b"
	g.add(a, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &ta, Offset: 0}})
	g.add(a, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &ta, Offset: 1}})
	g.add(b, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &tb, Offset: 4}})
	g.drop(a)
	if g.buffered != 1 {
		t.Fatalf("buffered = %d after dropping a, want 1", g.buffered)
	}
	if m := g.next(time.Now(), nil); m == nil || *m.TopicPartition.Topic != "b" {
		t.Fatalf("next = %v, want b@4", m)
	}
	if m := g.next(time.Now(), nil); m != nil {
		t.Fatalf("next = %v after draining, want nil", m)
	}
}
