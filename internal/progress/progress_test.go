package progress

import (
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	for _, c := range []struct {
		n    int64
		d    time.Duration
		want string
	}{
		{1000, time.Second, "1000/s"},
		{1500, 2 * time.Second, "750/s"},
		{5, 0, "n/a"},
		{5, -time.Second, "n/a"},
	} {
		if got := Rate(c.n, c.d); got != c.want {
			t.Errorf("Rate(%d, %v) = %q, want %q", c.n, c.d, got, c.want)
		}
	}
}

func TestEveryStopsBeforeReturning(t *testing.T) {
	calls := make(chan struct{}, 100)
	stop := Every(time.Millisecond, func(time.Time) { calls <- struct{}{} })
	<-calls // it runs
	stop()
	n := len(calls)
	// After stop returns fn never runs again: nothing can be added now.
	if len(calls) != n {
		t.Fatalf("fn ran after stop returned")
	}
}
