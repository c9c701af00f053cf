// Package verify is the exactly-once verification workload, eos-runner's
// counterpart of Kafka Streams' streams_eos_test.py: a generator, a topology
// and a checker that together prove no loss, no duplicate and exact state
// across crashes, rebalances and broker restarts.
//
// The workload, in the order an operator runs it:
//
//  1. Generate writes N records to the input topic T with an idempotent
//     producer: key "k<i>" for i in [0, K), value a decimal integer in
//     [-1000, 1000], both drawn from a seeded generator, so a seed names the
//     input exactly. Keys are partitioned with murmur2, as Java's default
//     partitioner does, or on request with crc32 (librdkafka's default) or
//     at random. The input may as well come from any other producer.
//  2. The runner runs Topology(T): T is echoed unchanged to T-echo, and each
//     key's running sum, min, max and count go to T-sum, T-min, T-max and
//     T-cnt, one output record per input record. The four aggregates live in
//     stores sum, min, max and cnt, each with its changelog, so a crash in the
//     middle of a transaction exercises restore as well as the output path.
//     Each key's count and sum per tumbling window of event time
//     (WindowSize, WindowGrace), final results only, go to T-win, one
//     record per closed window, from a window store and an emit-final buffer
//     with their changelogs: Kafka Streams' EOS system test likewise adds
//     windowed aggregates. Generate's timestamps advance with some bounded
//     disorder, within the grace, and a few are late on purpose.
//  3. Check reads T and every output with read_committed and proves, per key
//     and per input partition, that each output holds exactly the records the
//     input implies, in the order the runner guarantees (each input
//     partition's in input order); that no transaction is left open; and that
//     the group's committed offsets cover the whole input. It assumes nothing
//     of how the input was partitioned: a key spread over several input
//     partitions is aggregated per input partition, as the runner's tasks do.
//
// JoinTopology adds two joins beside those outputs, as Kafka Streams' EOS
// system test adds them: a stream-table left join of T with the compacted
// topic T-ref (which Generate with Joins writes first) to T-join, and a
// windowed stream-stream self-join of T to T-wjoin. Check proves both
// exactly from the input topics alone when they exist (joins.go).
//
// Why running aggregates: a duplicate or lost input record changes every later
// sum and count of its key, a record processed against state that was
// rolled back (or applied twice) changes the next output, and min/max detect
// reordering within a key. Echo checks the record path without state.
//
// Check and Generate use franz-go, a client independent of the runner's
// librdkafka, so a bug shared by the runner and its checker is unlikely.
package verify
