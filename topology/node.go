package topology

import (
	"time"

	"github.com/eos-runner/eos-runner/serde"
)

// NodeKind tells sources, processors and sinks apart.
type NodeKind int

const (
	SourceNode NodeKind = iota
	ProcessorNode
	SinkNode
)

func (k NodeKind) String() string {
	switch k {
	case SourceNode:
		return "Source"
	case SinkNode:
		return "Sink"
	}
	return "Processor"
}

// Node is one vertex of a built topology. The runner reads it; users build
// nodes through a Builder.
type Node struct {
	Name string
	Kind NodeKind

	// Topics a source reads, or the one topic a sink writes (Topics[0]).
	// Internal topics (repartition) are named without the application.id
	// prefix and flagged Internal; see Topology.TopicName.
	Topics   []string
	Internal bool
	// KeySerde and ValueSerde of a source or sink.
	KeySerde, ValueSerde serde.Serde
	// Timestamp extracts a source's record event time; nil: the record's
	// own timestamp.
	Timestamp TimestampExtractor

	// Supplier builds a processor node's Processor, once per task.
	Supplier ProcessorSupplier
	// StoreNames are the stores a processor node may use.
	StoreNames []string
	// OnError is the node's own error policy for the records it fails
	// ("dlq", "skip" or "fail"; the OnError option); "" follows the
	// application's on.error. A record that fails in a node downstream
	// follows that node's policy, not this one's.
	OnError string

	Children []*Node
	Parents  []*Node

	subtopology int
}

// Subtopology is the number of the sub-topology the node belongs to.
func (n *Node) Subtopology() int { return n.subtopology }

// StoreSpec declares a state store and the serdes of its entries. Every
// store is backed by a changelog topic.
//
// A key-value store's changelog is compacted. A window or session store
// (Kind) expires its entries once they fall Retention behind stream time, so
// its changelog is `cleanup.policy=compact,delete` with retention.ms =
// Retention plus a margin (Kafka Streams'
// windowstore.changelog.additional.retention.ms, default one day).
// KeySerde encodes the record key (without the window), ValueSerde the
// stored value.
type StoreSpec struct {
	Name                 string
	KeySerde, ValueSerde serde.Serde

	// Kind is KeyValueStoreKind (the zero value), WindowStoreKind or
	// SessionStoreKind. The fields below are for window and session stores.
	Kind StoreKind
	// Retention is how long entries stay behind stream time: a window's
	// start (a session's end) older than stream time - Retention expires.
	// Windowed aggregations set KS's default: size + grace (sliding: 2 *
	// time difference + grace; session: gap + grace).
	Retention time.Duration
	// WindowSize is the size of the windows a window store holds (the time
	// difference for sliding windows), needed to turn a stored start back
	// into a window; zero for session stores.
	WindowSize time.Duration
	// Grace is the windows' grace period.
	Grace time.Duration
	// TTL, for a key-value store, expires an entry once stream time has
	// passed its last update by TTL: it is deleted, with a tombstone on the
	// changelog, under the same checkpoint protocol as every write. Reads
	// never see an expired entry. Stream time (not the wall clock) decides,
	// so a replay expires exactly what the first attempt did. Zero: never.
	TTL time.Duration

	// SourceTopic, for the store of a table read from a topic
	// (Builder.Table), is that topic (external, unprefixed): the store's
	// changelog, instead of `<application.id>-<name>-changelog` (Kafka
	// Streams' source-topic optimisation). Its values are
	// serde.Timestamped; a restore turns each source record into one,
	// with the record's timestamp, and stops at the committed offset of the
	// source partition. The store writes no changelog records.
	SourceTopic string
	// Global marks the store of a GlobalTable: every instance holds all of
	// its partitions, kept current from SourceTopic outside any task, and
	// every task may read it (never write it). It belongs to no
	// sub-topology.
	Global bool
}

// SubTopology is a connected part of the graph, cut at topics.
type SubTopology struct {
	ID      int
	Sources []*Node
	Nodes   []*Node // in the order they were added to the Builder
	Sinks   []*Node
	// Stores used by the nodes of this sub-topology.
	Stores []string
}

// SourceTopics lists the topics this sub-topology reads, with internal ones
// unprefixed.
func (s *SubTopology) SourceTopics() []string {
	var ts []string
	for _, n := range s.Sources {
		ts = append(ts, n.Topics...)
	}
	return ts
}
