// Package dlqreplay replays a dead-letter topic, after a fix, exactly once,
// filtered by error class, source topic or source offset range
// (docs/architecture.md, section 7).
//
// # The model
//
// A replay is an ordinary topology run by the ordinary runner, so it is
// exactly once by the same transaction protocol as any other application:
//
//	DLQ (serde.Bytes) -> replay-filter -> To (serde.Bytes)
//
// The filter forwards the DLQ records that match Config and drops the rest;
// forwarded records lose the `eos.*` headers the runner added when it
// dead-lettered them and keep everything else: the original key, value,
// headers and timestamp, byte for byte. The replay's consumer offsets on the
// DLQ and the records it writes commit in one transaction, so a record is
// replayed once even across crashes, and a second run under the same
// application.id starts where the first one committed: it replays nothing
// twice.
//
// # The caller's duties
//
//  1. Pick the application.id (default `<dlq>-replay`) and keep it: the
//     group's committed offsets are the memory of what was replayed. The
//     filter is part of that memory: a record skipped by one run is behind
//     the committed offset and is never looked at again under the same
//     application.id. To replay another class later, use another
//     application.id with a filter that excludes what was already replayed.
//  2. Pick To, usually the records' eos.source.topic (the input of the
//     application that failed on them), or a separate topic to inspect first.
//     Records go to the partition their key hashes to (the runner's
//     murmur2_random partitioner); records without a key go to a random one.
//  3. Run dlqreplay.Run (or `eos-runner dlq replay`), which stops by itself
//     once the group has committed past every record the DLQ held when it
//     started. Records dead-lettered while it runs may be replayed too.
package dlqreplay
