package processor

import (
	"sort"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Co-partitioning. A sub-topology with several source topics (a join, a
// merge into one store) needs partition p of each of them in the same task,
// so on the same instance, under every assignment. The consumer group's
// assignor (cooperative-sticky) balances partitions, not tasks, and would
// split them. So the runner makes the group assign tasks:
//
//   - The group subscribes to one topic per sub-topology, its leader: the
//     first of its source topics by full name (every instance computes the
//     same one). The other source topics of the sub-topology follow it.
//   - When the group assigns partition p of a leader, the runner assigns
//     partition p of every follower beside it (IncrementalAssign accepts
//     partitions the group did not assign; the group protocol only ever
//     reports its own), and when the group revokes or loses leader
//     partition p, the runner revokes the followers' partition p with it,
//     in the same callback, before anything else. So a follower partition
//     is owned exactly while its leader partition is, and the group's
//     guarantee that a partition has one owner per generation carries over
//     to the whole task.
//   - Offsets of followers are read, committed and fenced like the
//     leader's: the transactional offset commit names the group's member and
//     generation, not the partitions' assignment.
//
// The cost against plain cooperative-sticky is none in protocol terms (the
// same incremental rebalances, over fewer partitions); the balance is per
// task, as Kafka Streams' assignor balances.

// copartitions is the leader/follower split of the source topics.
type copartitions struct {
	// group lists the topics the group subscribes to.
	group []string
	// followers lists, per leader, the topics whose partitions follow its
	// partitions.
	followers map[string][]string
}

// planCopartitions splits the source topics (full names, by sub-topology)
// into leaders and followers.
func planCopartitions(subOf map[string]int) copartitions {
	bySub := map[int][]string{}
	for topic, sub := range subOf {
		bySub[sub] = append(bySub[sub], topic)
	}
	cp := copartitions{followers: map[string][]string{}}
	for _, topics := range bySub {
		sort.Strings(topics)
		cp.group = append(cp.group, topics[0])
		if len(topics) > 1 {
			cp.followers[topics[0]] = topics[1:]
		}
	}
	sort.Strings(cp.group)
	return cp
}

// expand returns parts with, after each leader partition, the same
// partition of each of its followers.
func (cp copartitions) expand(parts []kafka.TopicPartition) []kafka.TopicPartition {
	if len(cp.followers) == 0 {
		return parts
	}
	out := make([]kafka.TopicPartition, 0, len(parts))
	for _, p := range parts {
		out = append(out, p)
		for _, f := range cp.followers[*p.Topic] {
			topic := f
			out = append(out, kafka.TopicPartition{Topic: &topic, Partition: p.Partition, Offset: p.Offset})
		}
	}
	return out
}
