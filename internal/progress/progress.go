// Package progress runs the periodic progress reports of long operations
// (data generation, benchmarks) and formats their rates.
package progress

import (
	"strconv"
	"sync"
	"time"
)

// Every calls fn every interval on its own goroutine until the returned
// stop is called; stop waits for the goroutine to end, so fn never runs
// after it returns.
func Every(interval time.Duration, fn func(now time.Time)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				fn(now)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// Rate formats n per d as "N/s", or "n/a" for a non-positive d.
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return strconv.FormatFloat(float64(n)/d.Seconds(), 'f', 0, 64) + "/s"
}
