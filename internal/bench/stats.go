package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value such that at least p percent of the
// values are less than or equal to it. It returns 0 for no values. sorted
// must be in ascending order.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// LatencySummary is one latency measurement in milliseconds.
type LatencySummary struct {
	P50, P99, Max float64
	Count         int
}

// Summarize sorts samples (milliseconds) in place and returns their p50, p99
// and maximum.
func Summarize(samples []float64) LatencySummary {
	slices.Sort(samples)
	s := LatencySummary{Count: len(samples)}
	if len(samples) == 0 {
		return s
	}
	s.P50, s.P99, s.Max = Percentile(samples, 50), Percentile(samples, 99), samples[len(samples)-1]
	return s
}

// window is a throughput measurement between two observations of a run:
// records committed and runner CPU at each end.
type window struct {
	t0, t1     time.Time
	rec0, rec1 int64
	cpu0, cpu1 time.Duration
	// busy0 and busy1 are the whole machine's busy CPU time (machineBusy).
	busy0, busy1 time.Duration
}

// recordsPerSec is the records committed in the window per second of it.
func (w window) recordsPerSec() float64 {
	d := w.t1.Sub(w.t0).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(w.rec1-w.rec0) / d
}

// cpuPerRecord is the CPU used in the window per record committed in it, in
// microseconds (which is also CPU seconds per million records).
func (w window) cpuPerRecord() float64 {
	n := w.rec1 - w.rec0
	if n <= 0 {
		return 0
	}
	return float64(w.cpu1-w.cpu0) / float64(time.Microsecond) / float64(n)
}

// otherCores is the average number of cores busy with anything but the
// runner and the broker (brokerCPU in the window) during the window: the
// bench's own polling, and whatever else shares the machine.
func (w window) otherCores(brokerCPU time.Duration) float64 {
	d := w.t1.Sub(w.t0)
	if d <= 0 || w.busy1 == 0 {
		return 0
	}
	other := (w.busy1 - w.busy0) - (w.cpu1 - w.cpu0) - brokerCPU
	return max(float64(other)/float64(d), 0)
}

// round rounds x to d decimals, so that results.json stays readable.
func round(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}
