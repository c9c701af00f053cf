// Package bench measures eos-runner against a baseline on the same broker:
// what exactly-once costs in throughput and CPU, what latency read_committed
// readers see, and how fast state comes back. It is what `eos-runner bench`
// (and `make bench`) runs.
//
// Every figure is taken from processes, not from an in-process runner: the
// broker runs as `eos-runner broker` (or is BENCH_BROKERS), and each measured
// runner is `eos-runner run --topology bench-...` (or the hidden `eos-runner
// bench worker` for the raw-copy baseline and for profiling, or the goka
// peer's goka-count), so the runner's
// CPU and memory are read from its own /proc entry, the broker's excluded.
//
// # Phases
//
//  1. input: the bench writes Records records (values of ValueBytes bytes,
//     keys drawn from Keys distinct keys, murmur2-partitioned as Java's
//     default partitioner does) to an input topic of Partitions partitions.
//  2. throughput: raw copy (processor.RawCopy, guarantee none), then the
//     stateless topology (filter + mapValues), the stateful one (count per
//     key, with its changelog) and the windowed one (count per key per
//     tumbling 1-minute window of event time, emitted on every update, with
//     its window store's changelog) and the dedup one (deduplicated by record
//     key with a 1-hour TTL, the kept records emitted; its keys in a window
//     store with a changelog), each under at_least_once and exactly_once_v2;
//     stateful exactly_once_v2 also with the record cache and on a second
//     input of Zipf-distributed keys; and a peer, goka (goka.go: the stateful
//     job written with github.com/lovoo/goka, at-least-once, built from
//     bench/goka, its own module, as Config.GokaBinary), on both inputs,
//     skipped when its binary is absent. Each configuration runs Repeats times,
//     each run right after a raw copy of its own (raw, A, raw, B, ...); a
//     run's ratio is to that raw copy, and the summary reports medians and
//     the ratios' spread (summarize). Each run is a fresh consumer group
//     reading the input from the start. A run is done when the group's committed offsets reach
//     the input's end offsets (polled with kadm every PollInterval); then the
//     runner gets SIGTERM. Throughput and CPU are taken over the window from
//     the first poll that sees a committed offset to the poll that sees the
//     end: records committed in the window / wall time of the window, and
//     the runner's utime+stime (from /proc/PID/stat) in the window / records
//     committed in it. Startup (group join, topic creation) and shutdown are
//     outside the window.
//  3. latency: the stateful topology under exactly_once_v2 with each commit
//     interval; the bench produces at a fixed rate, stamping each record's
//     timestamp, and reads the output with a read_committed kgo consumer.
//     Latency = the time the reader receives the output minus the input
//     record's timestamp (the runner copies it to the output).
//  4. restore: a store of RestoreKeys keys is built (stateful topology,
//     exactly_once_v2), the runner is stopped cleanly, and restarted: on the
//     same state dir (expected to restore nothing), on an empty state dir
//     (the full changelog: the restore rate), and after a SIGKILL mid-run
//     (expected: only the tail after the last applied checkpoint). Figures
//     come from the runner's "restored store partition" log lines.
package bench
