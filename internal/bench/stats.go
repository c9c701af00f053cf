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

// Median returns the median of values (the mean of the middle two for an
// even count), 0 for none. values is not modified.
func Median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Spread is (max - min) / median of values: the whole range of a few
// repeated measurements, relative to their median; 0 for fewer than two
// values or a zero median.
func Spread(values []float64) float64 {
	m := Median(values)
	if len(values) < 2 || m == 0 {
		return 0
	}
	return (slices.Max(values) - slices.Min(values)) / m
}

// Summary is one configuration's runs: the medians of its figures, of its
// pairs' ratios to their raw copy, and the spread of those ratios.
type Summary struct {
	Name       string `json:"name"`
	Guarantee  string `json:"guarantee"`
	Keys       string `json:"keys"`
	CacheBytes int64  `json:"cache_max_bytes"`
	Binary     string `json:"binary,omitempty"`
	// Runs is the number of runs (rounds) the medians are taken over.
	Runs               int     `json:"runs"`
	RecordsPerSec      float64 `json:"records_per_sec"`
	CPUMicrosPerRecord float64 `json:"cpu_us_per_record"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes"`
	// Ratio is the median of RecordsPerSec over the paired raw copy's, run
	// by run; RatioMin, RatioMax and RatioSpread ((max - min) / median)
	// show how far the pairs disagree. Raw copy's own row has ratio 1 and
	// the spread of its records/s instead.
	Ratio       float64 `json:"ratio_to_raw"`
	RatioMin    float64 `json:"ratio_min"`
	RatioMax    float64 `json:"ratio_max"`
	RatioSpread float64 `json:"ratio_spread"`
	// CPURatio is the median of CPUMicrosPerRecord over the paired raw
	// copy's.
	CPURatio float64 `json:"cpu_ratio_to_raw"`
	// OtherCores is the median of the runs' OtherCores: how busy the
	// machine was with anything but runner and broker.
	OtherCores float64 `json:"other_cores"`
	// Flagged: RatioSpread is wider than MaxRatioSpread; the ratio does
	// not tell a real difference from noise.
	Flagged bool `json:"flagged"`
}

// summarize groups runs by configuration, in the order each first ran.
func summarize(runs []RunResult) []Summary {
	type cfgKey struct {
		name, guarantee, keys, binary string
		cache                         int64
	}
	var order []cfgKey
	groups := map[cfgKey][]RunResult{}
	for _, r := range runs {
		k := cfgKey{r.Name, r.Guarantee, r.Keys, r.Binary, r.CacheBytes}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Summary, 0, len(order))
	for _, k := range order {
		g := groups[k]
		var rate, cpu, rss, ratio, cpuRatio, other []float64
		for _, r := range g {
			other = append(other, r.OtherCores)
			rate = append(rate, r.RecordsPerSec)
			cpu = append(cpu, r.CPUMicrosPerRecord)
			rss = append(rss, float64(r.PeakRSSBytes))
			ratio = append(ratio, r.RatioToRaw)
			cpuRatio = append(cpuRatio, r.CPURatioToRaw)
		}
		if k.name == RunRawCopy {
			// Its own baseline: the ratios are 1; the spread that matters
			// is that of its rate, the noise every pair carries.
			ratio = nil
			for _, v := range rate {
				ratio = append(ratio, v/Median(rate))
			}
		}
		s := Summary{Name: k.name, Guarantee: k.guarantee, Keys: k.keys, CacheBytes: k.cache, Binary: k.binary,
			Runs: len(g), RecordsPerSec: round(Median(rate), 0), CPUMicrosPerRecord: round(Median(cpu), 2),
			PeakRSSBytes: int64(Median(rss)), Ratio: round(Median(ratio), 3), RatioMin: round(slices.Min(ratio), 3),
			RatioMax: round(slices.Max(ratio), 3), RatioSpread: round(Spread(ratio), 3), CPURatio: round(Median(cpuRatio), 3),
			OtherCores: round(Median(other), 2)}
		s.Flagged = Spread(ratio) > MaxRatioSpread
		out = append(out, s)
	}
	return out
}
