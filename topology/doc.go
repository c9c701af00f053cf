// Package topology says what a stream-processing application computes: its
// source topics, the processors records flow through, the state stores they
// use and the sink topics they write. It does not run anything and imports no
// Kafka client; package processor instantiates a Topology once per task.
//
// The vocabulary is Kafka Streams'. A Builder offers the DSL (Stream, Filter,
// Map, GroupByKey, Count, ...) and the Processor API (Stream.Process with a
// user Processor), both producing the same graph of nodes. Build validates the
// graph and cuts it into sub-topologies at topics: a sub-topology is a
// connected part of the graph, numbered from 0, and runs as one task per
// partition of its source topics.
//
// Names and topics the runner derives at run time:
//   - a state store named S is backed by the compacted changelog topic
//     `<application.id>-S-changelog`; partition n backs the store of task n.
//   - grouping a stream whose key was changed (Map, SelectKey, FlatMap) inserts
//     a repartition topic `<application.id>-<name>-repartition`, which cuts the
//     graph into two sub-topologies, as in Kafka Streams.
//
// Processing of a task waits until all of its stores are restored from their
// changelogs.
//
// Values travel through the graph as Go values (any); serdes convert them at
// sources and sinks only.
package topology
