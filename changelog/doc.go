// Package changelog keeps the local state of a runner: its stores, their
// pending writes, their checkpoints, and their restore from changelog
// topics. It imports no Kafka client; the runner feeds it changelog records
// through Source.
//
// # Model
//
// A runner has one Pebble database (DB), at state.dir/<application.id>/.
// Each store of the topology on each partition is a store partition (Store)
// inside it, and is backed by partition n of the compacted changelog topic
// <application.id>-<store>-changelog.
//
// A store partition is a key-value Store, a WindowStore ((key, window
// start) -> value) or a SessionStore ((key, start, end) -> value). The
// window and session kinds keep their entries in time segments laid out so
// that one key over a time range and all keys over a time range are both
// range scans, and expire whole segments by range deletes (keys.go,
// segments.go). They are Stores underneath: the same pending batch,
// checkpoint, commit, restore and cleanup, so everything below holds for
// them unchanged.
//
// # The checkpoint invariant
//
// Pebble never holds uncommitted state. A store partition's checkpoint (the
// next changelog offset to read) lives in Pebble, next to its state, and
// every write that changes one changes the other in the same Pebble batch.
// So at any moment, and after any crash, the state on disk is exactly the
// changelog partition replayed up to the checkpoint; restore replays only the
// tail from there. (Kafka Streams under EOS wipes local state after an
// unclean shutdown; we need not.)
//
// Each checkpoint is written with its checkpoint time, before which (less one
// transaction) no changelog record after the checkpoint was appended. The
// tail is trusted only while that is younger than the changelog's
// delete.retention.ms: compaction removes a tombstone that long after it was
// appended, and a tail replay missing it would bring its key back.
//
// # Restore: where to start, where to stop
//
// Restore starts at the checkpoint when it lies within [log start, high
// watermark] and is young enough; otherwise it wipes the store partition and
// restores from the log start (no checkpoint; topic recreated or records
// deleted; a tombstone possibly compacted away). It stops at the last stable
// offset, and only once that has reached the high watermark it started by:
// the stable offset stays below committed records while another producer's
// transaction is open or its markers are in flight, so a checkpoint above it
// is no sign of recreation, and stopping below the records appended before
// the restore began could miss a transaction that commits after.
//
// # The caller's duties, in order
//
//  1. Open the DB once per process. Take one Store handle per store
//     partition of each task; it belongs to that task's worker.
//  2. On assignment, before processing any record of a partition, Restore
//     each of its stores from a read_committed reader of its changelog
//     partition (not through the group; pause the partition on the main
//     consumer meanwhile so the group is not starved). Its Source reports
//     the log start, the last stable offset and the high watermark (the
//     last from a read_uncommitted query), and RestoreOptions.MaxStateAge
//     is the changelog topic's delete.retention.ms less
//     transaction.timeout.ms. Never run two restores of one store partition
//     at once; cancel a restore whose partition is revoked, and let it
//     return before the partition's next restore starts.
//  3. While processing, Put and Delete go to the store's pending writes, and
//     the same writes go as changelog records into the open Kafka
//     transaction (a Delete as a tombstone, a nil value). Reads see the
//     pending writes.
//  4. After CommitTransaction returns, call DB.Commit (or CommitAsync, which
//     writes in the background; see its invariants) with every store that
//     has pending writes and its new checkpoint (the offset after the last
//     changelog record it wrote in that transaction). Never before: a crash
//     between the two loses nothing, since the restore replays the tail.
//  5. When the transaction is aborted, Abort every store's pending writes.
//  6. On revocation, MarkUnowned the task's store partitions; call
//     DropUnowned from time to time to delete state not owned for
//     state.cleanup.delay.ms.
//
// Window and session stores add, at the same points:
//
//  2. Restore them with RestoreWindows and RestoreSessions, passing the
//     task's committed stream time as RestoreOptions.StreamTime: records of
//     expired segments are left out. Their changelog topics are
//     cleanup.policy=compact,delete with retention.ms at least the store's
//     Retention plus a margin, so the log forgets what the store expires.
//  3. Write the changelog record key with EncodeWindowKey (EncodeSessionKey),
//     Kafka Streams' layouts; a deleted window or a removed session is a
//     tombstone. A write refused with ErrExpired gets no changelog record.
//     As stream time moves, call Expire with it (the store keeps no stream
//     time of its own): the expiry is pending like any write, committed or
//     aborted with it, and needs no changelog record.
//  4. Give DB.Commit each store's CommitAt(checkpoint).
//  5. Abort them as any store; an aborted expiry is undone with the writes.
//
// # Rejected designs
//
// Writing to Pebble while processing and rolling back on abort: a crash
// between the write and the rollback leaves uncommitted state on disk, with
// nothing to tell it apart (peers corrupt state this way). Wiping local
// state after an unclean shutdown, as Kafka Streams does under EOS: correct,
// but every crash then costs a full restore; the checkpoint makes it
// unnecessary. Treating a checkpoint above the end a read_committed reader
// sees (the stable offset) as a recreated topic: that end moves with other
// producers' transactions, and wiping there lost committed state.
//
// The on-disk format (keys, checkpoint encoding, format version) is in
// keys.go and never changes in place.
package changelog
