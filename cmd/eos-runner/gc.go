package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target (GOGC) when the
// environment sets none. The runner's live heap is small (tens of MiB: the
// stores' cached values and the records in flight) and its allocation rate
// high (the Kafka client allocates every consumed record and delivery
// report), so at Go's default of 100 it collects several times a second and
// the collector's workers took 7 % of a stateful run's CPU. At 200 they run
// half as often, for a heap goal twice the live heap: a few tens of MiB more,
// within the memory figures in docs/BENCHMARKS.md. GOGC (and GOMEMLIMIT) in
// the environment still win.
const defaultGCPercent = 200

// tuneGC applies defaultGCPercent unless GOGC is set.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}
