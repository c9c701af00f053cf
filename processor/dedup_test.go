package processor

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// dedupTask runs `in` -> Dedup(record key, ttl) -> `out` as one task over db,
// its outputs captured by p.
func dedupTask(t *testing.T, db *changelog.DB, ttl time.Duration) (*task, *fakeProducer) {
	t.Helper()
	bld := topology.NewBuilder()
	bld.Stream([]string{"in"}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		Dedup(topology.ByRecordKey(), ttl).
		To("out", topology.Produced{Key: serde.String{}, Value: serde.String{}})
	p := &fakeProducer{}
	return startTask(t, bld, db, p), p
}

// outputs lists the values the task produced to `out`.
func outputs(p *fakeProducer) []string {
	var vs []string
	for _, m := range p.produced {
		if *m.TopicPartition.Topic == "out" {
			vs = append(vs, string(m.Value))
		}
	}
	return vs
}

// commitTask is what a commit does to a task's state: pending batches to
// Pebble, the task's committed point moved.
func commitTask(t *testing.T, db *changelog.DB, tk *task) {
	t.Helper()
	var commits []changelog.Commit
	for _, s := range tk.stores {
		commits = append(commits, s.commitAt(-1))
	}
	if err := db.Commit(commits); err != nil {
		t.Fatal(err)
	}
	tk.markCommitted()
}

// TestDedupExactlyOnce: within the TTL (before or after in event time) a
// key passes once; past it, again. Across an abort the replay lets the same
// first occurrences through; across a restart over committed state it drops
// what was seen before.
func TestDedupExactlyOnce(t *testing.T) {
	db := openTestDB(t)
	const ttl = 10 * time.Second
	tk, p := dedupTask(t, db, ttl)
	ctx := context.Background()
	type rec struct {
		key, value string
		ts         int64
	}
	run := func(tk *task, off int64, recs ...rec) {
		t.Helper()
		for i, r := range recs {
			m := inRecord(off+int64(i), r.value, r.ts)
			m.Key = []byte(r.key)
			if err := tk.process(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(tk, 0,
		rec{"a", "a1", 1000},
		rec{"a", "a-dup-after", 5000}, // within 10s after: dropped
		rec{"b", "b1", 6000},          //
		rec{"a", "a-dup-before", 500}, // out of order, within 10s before: dropped
		rec{"a", "a2", 20_000},        // past the TTL: passes again
		rec{"b", "b-dup", 15_000},     // within 10s of b1: dropped
	)
	want := []string{"a1", "b1", "a2"}
	if got := outputs(p); !slices.Equal(got, want) {
		t.Fatalf("outputs %q, want %q", got, want)
	}
	if n := counterValue(tk.metrics.dropped.WithLabelValues("duplicate")); n != 3 {
		t.Fatalf("%v duplicates counted, want 3", n)
	}
	commitTask(t, db, tk)

	// An aborted transaction: c1 passes, is rolled back, and passes again
	// on the replay (its first occurrence is not lost).
	p.produced = nil
	run(tk, 6, rec{"c", "c1", 21_000})
	if err := tk.rollback(); err != nil {
		t.Fatal(err)
	}
	run(tk, 6, rec{"c", "c1", 21_000})
	if got := outputs(p); !slices.Equal(got, []string{"c1", "c1"}) {
		t.Fatalf("outputs around the abort %q, want c1 before and after it", got)
	}
	commitTask(t, db, tk)
	tk.close()

	// A restart over the committed state: what was seen stays seen.
	tk2, p2 := dedupTask(t, db, ttl)
	tk2.setCommittedStreamTime(time.UnixMilli(21_000))
	run(tk2, 7, rec{"c", "c-dup", 22_000}, rec{"a", "a-dup", 25_000}, rec{"d", "d1", 26_000})
	if got := outputs(p2); !slices.Equal(got, []string{"d1"}) {
		t.Fatalf("outputs after the restart %q, want only d1", got)
	}
}
