package verify

// The admin requests Generate and Check need, issued with kmsg through a kgo
// client (kgo routes each to the right broker: the controller, partition
// leaders, the group coordinator). franz-go's kadm would wrap these, but it is
// a separate module that go.mod does not pin; the four requests are small.

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicPartition names one partition of one topic.
type topicPartition struct {
	topic     string
	partition int32
}

func (tp topicPartition) String() string { return fmt.Sprintf("%s[%d]", tp.topic, tp.partition) }

// ends are a partition's offsets at the moment Check looked: the log start,
// the high watermark (read_uncommitted end) and the last stable offset
// (read_committed end: the first offset of the oldest open transaction, or
// the high watermark when none is open).
type ends struct {
	start, hwm, lso int64
}

// partitionCounts returns the partition count of each topic that exists;
// topics that do not exist are absent from the map.
func partitionCounts(ctx context.Context, cl *kgo.Client, topics []string) (map[string]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("metadata for %v: %w", topics, err)
	}
	counts := map[string]int32{}
	for _, t := range resp.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			continue
		case err != nil:
			return nil, fmt.Errorf("metadata for topic %q: %w", name, err)
		}
		counts[name] = int32(len(t.Partitions))
	}
	return counts, nil
}

// createTopic creates topic with the given partition count and the broker's
// default replication factor, and configs (nil: the broker's defaults).
// created is false when the topic already existed; its partition count is
// then returned as found, and its configs are left as they are.
func createTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32, configs map[string]string) (created bool, count int32, err error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = partitions
	rt.ReplicationFactor = -1 // the broker's default.replication.factor
	for _, k := range sortedKeys(configs) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(configs[k])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return false, 0, fmt.Errorf("create topic %q: %w", topic, err)
	}
	if len(resp.Topics) != 1 {
		return false, 0, fmt.Errorf("create topic %q: %d topics in the response, want 1", topic, len(resp.Topics))
	}
	switch err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); {
	case err == nil:
		return true, partitions, nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		counts, err := partitionCounts(ctx, cl, []string{topic})
		if err != nil {
			return false, 0, err
		}
		return false, counts[topic], nil
	default:
		msg := ""
		if m := resp.Topics[0].ErrorMessage; m != nil {
			msg = ": " + *m
		}
		return false, 0, fmt.Errorf("create topic %q%s: %w", topic, msg, err)
	}
}

// listEnds returns the log start, high watermark and last stable offset of
// every partition of the given topics (topic -> partition count). Each is a
// ListOffsets request: timestamp -2 is the log start, -1 the end, which is the
// high watermark under read_uncommitted (isolation 0) and the last stable
// offset under read_committed (isolation 1).
func listEnds(ctx context.Context, cl *kgo.Client, counts map[string]int32) (map[topicPartition]ends, error) {
	out := map[topicPartition]ends{}
	list := func(timestamp int64, isolation int8, set func(e *ends, off int64)) error {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		req.IsolationLevel = isolation
		for _, topic := range sortedKeys(counts) {
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			for p := range counts[topic] {
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Partition = p
				rp.Timestamp = timestamp
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("list offsets (timestamp %d, isolation %d): %w", timestamp, isolation, err)
		}
		seen := 0
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				tp := topicPartition{t.Topic, p.Partition}
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fmt.Errorf("list offsets of %s (timestamp %d, isolation %d): %w", tp, timestamp, isolation, err)
				}
				e := out[tp]
				set(&e, p.Offset)
				out[tp] = e
				seen++
			}
		}
		if want := totalPartitions(counts); seen != want {
			return fmt.Errorf("list offsets (timestamp %d, isolation %d): %d partitions answered, want %d", timestamp, isolation, seen, want)
		}
		return nil
	}
	// The high watermark is listed before the last stable offset: if a
	// transaction commits in between, LSO may exceed the HWM we saw, which
	// looks like no open transaction, the truth at the later moment. The
	// other order could report a transaction that is no longer open.
	if err := list(-2, 0, func(e *ends, off int64) { e.start = off }); err != nil {
		return nil, err
	}
	if err := list(-1, 0, func(e *ends, off int64) { e.hwm = off }); err != nil {
		return nil, err
	}
	if err := list(-1, 1, func(e *ends, off int64) { e.lso = off }); err != nil {
		return nil, err
	}
	return out, nil
}

// committedOffsets returns group's committed offset for each partition of
// topic, -1 where the group has committed nothing. A group the coordinator
// does not know has committed nothing.
func committedOffsets(ctx context.Context, cl *kgo.Client, group, topic string, partitions int32) (map[int32]int64, error) {
	out := make(map[int32]int64, partitions)
	for p := range partitions {
		out[p] = -1
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rg.MemberEpoch = -1 // an admin fetch, not a member's (KIP-848)
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic = topic
	for p := range partitions {
		rt.Partitions = append(rt.Partitions, p)
	}
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(ctx, cl)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %q: %w", group, err)
	}
	for _, g := range resp.Groups {
		switch err := kerr.ErrorForCode(g.ErrorCode); {
		case errors.Is(err, kerr.GroupIDNotFound):
			return out, nil
		case err != nil:
			return nil, fmt.Errorf("committed offsets of group %q: %w", group, err)
		}
		for _, t := range g.Topics {
			if t.Topic != topic {
				continue
			}
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("committed offset of group %q on %s[%d]: %w", group, topic, p.Partition, err)
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}

func totalPartitions(counts map[string]int32) int {
	n := 0
	for _, c := range counts {
		n += int(c)
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
