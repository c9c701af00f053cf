package changelog

import (
	"slices"
	"testing"
	"time"
)

func TestDropUnowned(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const delay = 10 * time.Minute
	a0, a1, b0 := StorePartition{"a", 0}, StorePartition{"a", 1}, StorePartition{"b", 0}
	type step struct {
		at      time.Duration // since t0
		owned   []StorePartition
		marks   map[StorePartition]time.Duration // MarkUnowned at t0+d
		dropped []StorePartition
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "owned partitions are never dropped",
			steps: []step{
				{at: 0, owned: []StorePartition{a0, a1, b0}},
				{at: time.Hour, owned: []StorePartition{a0, a1, b0}},
			},
		},
		{
			name: "leftover state gets the full delay from first sight",
			steps: []step{
				{at: time.Hour, owned: []StorePartition{a0}},
				{at: time.Hour + delay - time.Second, owned: []StorePartition{a0}},
				{at: time.Hour + delay, owned: []StorePartition{a0}, dropped: []StorePartition{a1, b0}},
			},
		},
		{
			name: "delay runs from the last time owned",
			steps: []step{
				{at: 0, owned: []StorePartition{a0, a1, b0}},
				{at: 5 * time.Minute, owned: []StorePartition{a0, b0}}, // a1 last owned at 0
				{at: 9 * time.Minute, owned: []StorePartition{a0}},
				{at: delay, owned: []StorePartition{a0}, dropped: []StorePartition{a1}},
				{at: 5*time.Minute + delay, owned: []StorePartition{a0}, dropped: []StorePartition{b0}},
			},
		},
		{
			name: "MarkUnowned sets the start of the delay",
			steps: []step{
				{at: 0, owned: []StorePartition{a0, a1, b0}},
				{at: 8 * time.Minute, owned: []StorePartition{a0, b0}, marks: map[StorePartition]time.Duration{a1: 7 * time.Minute}},
				{at: 7*time.Minute + delay - time.Nanosecond, owned: []StorePartition{a0, b0}},
				{at: 7*time.Minute + delay, owned: []StorePartition{a0, b0}, dropped: []StorePartition{a1}},
			},
		},
		{
			name: "a partition that comes back is kept",
			steps: []step{
				{at: 0, owned: []StorePartition{a0, a1, b0}},
				{at: 5 * time.Minute, owned: []StorePartition{a0, b0}},
				{at: 9 * time.Minute, owned: []StorePartition{a0, a1, b0}},
				{at: 9*time.Minute + delay - time.Second, owned: []StorePartition{a0, b0}},
				{at: 9*time.Minute + delay, owned: []StorePartition{a0, b0}, dropped: []StorePartition{a1}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, "")
			for _, sp := range []StorePartition{a0, a1, b0} {
				commitOps(t, db.Store(sp.Store, sp.Partition), []op{put("k", "v")}, 1)
			}
			for i, st := range tt.steps {
				for sp, d := range st.marks {
					db.MarkUnowned(sp, t0.Add(d))
				}
				owned := map[StorePartition]bool{}
				for _, sp := range st.owned {
					owned[sp] = true
					db.MarkOwned(sp, t0.Add(st.at))
				}
				got, err := db.DropUnowned(owned, delay, t0.Add(st.at))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, st.dropped) {
					t.Fatalf("step %d (t0+%v): dropped %v, want %v", i, st.at, got, st.dropped)
				}
				for _, sp := range st.dropped {
					if c := contents(t, db.Store(sp.Store, sp.Partition), nil, nil); c != nil {
						t.Errorf("step %d: %v still has state %q", i, sp, c)
					}
				}
			}
		})
	}
}
