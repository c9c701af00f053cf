// Package processor runs a topology against Kafka exactly once. It is the
// only package that talks to confluent-kafka-go's consumer and producer.
//
// # The record path
//
// One Runner is one instance of an application (application.id): one
// consumer in the application's group (cooperative-sticky, read_committed,
// no auto commit), one transactional producer (transactional.id
// `<application.id>-<instance.id>`, stable across restarts), one Pebble
// database of local state, and a task per partition of each sub-topology's
// sources (task id `<subtopology>_<partition>`).
//
//  1. The poll loop polls a record of partition p and hands it to task p's
//     worker (a pool of num.stream.threads goroutines; a task always runs on
//     the same worker, so order within a partition is kept).
//  2. The worker deserializes the record and pushes it depth first through
//     the sub-topology's nodes. Sinks serialize their records, and store
//     writes stay in the record's overlay (reads see them), until the record
//     has been processed: then its outputs are produced into the open
//     transaction and its store writes move to the task's pending batch, with
//     their changelog records produced into the same transaction. A record
//     that fails (deserialization, a processor's error or panic, a sink's
//     serialization) leaves nothing behind and goes to the error policy:
//     on.error=dlq writes it to the dead-letter topic in the same transaction,
//     skip drops it, fail stops the runner before anything past it commits.
//  3. Every commit.interval.ms (or commit.max.records records), or at once
//     when a worker failed, the poll loop commits: barrier (workers drained);
//     the workers' failures decide first (on.error=fail commits what came
//     before the failing record and stops; other failures abort);
//     SendOffsetsToTransaction with every owned partition's position and its
//     task's stream time as metadata, and the consumer's group metadata
//     (KIP-447 fencing); CommitTransaction; then the pending batches and the
//     changelog checkpoints go to Pebble in one batch (written in the
//     background while the next transaction runs), and the tasks' stream time and punctuation schedules become their committed point. See
//     txn.go for the protocol and its invariants.
//  4. An abortable error aborts the transaction, rolls every task that worked
//     in it back to its committed point (pending batches dropped, processors
//     rebuilt, stream time and punctuation schedule restored) and rewinds
//     every partition to its first offset in the transaction; the records
//     are processed again and see what the first attempt saw. A fatal one
//     (a punctuator's error, any error librdkafka does not flag) aborts what
//     it can and stops: nothing is applied, and no revoke callback commits
//     while the consumer closes. A lost producer under exactly_once_v2
//     (fenced, invalid epoch, a transaction that could not finish by its
//     timeout) is replaced in process instead: tasks closed dirty, a new
//     producer with the same transactional.id, the group rejoined
//     (recover.go).
//  5. Rebalances run in the poll loop (librdkafka calls the callback from
//     Poll): a revoke commits the open transaction first (aborts it if the
//     partitions were lost), then closes the revoked tasks; an assignment
//     creates tasks, pauses their partitions, restores their stores from the
//     changelogs on a separate goroutine and consumer (read_committed, by
//     explicit assignment), and resumes them when the restore is done. No
//     record of a partition is processed before its stores are restored, and
//     the poll loop keeps polling meanwhile, so a long restore does not throw
//     the member out of the group.
//
// # Ownership
//
// The poll loop owns the consumer, the open transaction's bookkeeping, the
// task map and the commit barrier. Each worker owns its tasks' processors,
// stores, overlays, pending batches and stream time; the poll loop touches
// them only with the workers drained. The delivery drainer reads the
// producer's event channel and touches only the delivery tracker.
//
// # Guarantees
//
// processing.guarantee=exactly_once_v2 (default): for every input record, its
// outputs, its state changes and its offset advance are committed together
// or not at all, across crashes, rebalances and zombies. at_least_once keeps
// the same path without the transaction: outputs are acknowledged before
// offsets are committed, so a crash may repeat records.
package processor
