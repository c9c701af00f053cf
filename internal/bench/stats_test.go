package bench

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1) // 1 .. 100
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one value, any p", []float64{7}, 99, 7},
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 is the max", hundred, 100, 100},
		{"p0 is the min", hundred, 0, 1},
		{"tiny p is the min", hundred, 0.001, 1},
		{"nearest rank rounds up", []float64{1, 2, 3}, 50, 2},
		{"p99 of 3 values is the max", []float64{1, 2, 3}, 99, 3},
		{"p above 100 clamps", []float64{1, 2}, 150, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		samples []float64
		want    LatencySummary
	}{
		{"none", nil, LatencySummary{}},
		{"unsorted", []float64{30, 10, 20}, LatencySummary{P50: 20, P99: 30, Max: 30, Count: 3}},
		{"outlier only moves p99 and max", append(repeat(5, 199), 1000), LatencySummary{P50: 5, P99: 5, Max: 1000, Count: 200}},
		{"two outliers in 100 reach p99", append(repeat(5, 98), 700, 900), LatencySummary{P50: 5, P99: 700, Max: 900, Count: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarize(tt.samples); got != tt.want {
				t.Errorf("Summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name              string
		w                 window
		wantRate, wantCPU float64
	}{
		{"steady", window{t0: t0, t1: t0.Add(2 * time.Second), rec0: 100_000, rec1: 500_000,
			cpu0: time.Second, cpu1: 3 * time.Second}, 200_000, 5},
		{"empty window", window{t0: t0, t1: t0, rec0: 10, rec1: 10, cpu0: 0, cpu1: time.Second}, 0, 0},
		{"sub-microsecond CPU per record", window{t0: t0, t1: t0.Add(time.Second), rec0: 0, rec1: 4_000_000,
			cpu0: 0, cpu1: time.Second}, 4_000_000, 0.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.recordsPerSec(); math.Abs(got-tt.wantRate) > 1e-9 {
				t.Errorf("recordsPerSec = %v, want %v", got, tt.wantRate)
			}
			if got := tt.w.cpuPerRecord(); math.Abs(got-tt.wantCPU) > 1e-9 {
				t.Errorf("cpuPerRecord = %v, want %v", got, tt.wantCPU)
			}
		})
	}
}

func TestRound(t *testing.T) {
	for _, tt := range []struct {
		x    float64
		d    int
		want float64
	}{{1.23456, 2, 1.23}, {1.235001, 2, 1.24}, {123456.7, 0, 123457}, {-0.05, 1, -0.1}} {
		if got := round(tt.x, tt.d); got != tt.want {
			t.Errorf("round(%v, %d) = %v, want %v", tt.x, tt.d, got, tt.want)
		}
	}
}

func TestOtherCores(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := window{t0: t0, t1: t0.Add(2 * time.Second), cpu0: time.Second, cpu1: 3 * time.Second,
		busy0: 10 * time.Second, busy1: 14 * time.Second}
	// 4s busy in 2s: 2s runner, 1s broker, 1s other = 0.5 cores.
	if got := w.otherCores(time.Second); got != 0.5 {
		t.Errorf("otherCores = %v, want 0.5", got)
	}
	// Tick rounding can make the difference negative: never below 0.
	if got := w.otherCores(3 * time.Second); got != 0 {
		t.Errorf("otherCores = %v, want 0", got)
	}
	if got := (window{t0: t0, t1: t0.Add(time.Second)}).otherCores(0); got != 0 {
		t.Errorf("without machine samples otherCores = %v, want 0", got)
	}
}
