package changelog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble"
)

// TestRestore runs the scripts in testdata/restore. Commands:
//
//	write store=S partition=P        input: "put k v" / "del k" lines, to the pending batch
//	commit store=S partition=P checkpoint=N
//	abort store=S partition=P
//	crash                            close the DB without committing, reopen it
//	clock advance=D                  move the clock (of checkpoint times and restores) by D
//	forget-time store=S partition=P  delete the checkpoint time, as a binary that
//	                                 predates checkpoint times leaves it
//	source store=S partition=P start=N end=N [high=N] [settle-after=N] [batch=N]
//	                                 input: the changelog partition; end is the stable
//	                                 offset, high defaults to it (see scriptedSource)
//	restore store=S partition=P [batch-records=N] [fail-after=N] [max-age=D]
//	        [cancel-after-sleeps=N] [logs]
//	dump store=S partition=P         state, checkpoint and checkpoint time
//	partitions
//
// The clock starts at 2024-01-01T00:00:00Z and moves 1ms at every reading.
// Regenerate with go test ./changelog -run TestRestore -rewrite and review the diff.
func TestRestore(t *testing.T) {
	datadriven.Walk(t, "testdata/restore", func(t *testing.T, path string) {
		dir := t.TempDir()
		clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), step: time.Millisecond}
		var logs strings.Builder
		open := func() *DB {
			db := openTest(t, dir)
			db.now = clock.now
			// Only the restores that print their logs write here.
			db.logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
				ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey && len(groups) == 0 {
						return slog.Attr{}
					}
					return a
				}}))
			return db
		}
		db := open()
		stores := map[StorePartition]*Store{}
		sources := map[StorePartition]*scriptedSource{}
		store := func(d *datadriven.TestData) *Store {
			var sp StorePartition
			d.ScanArgs(t, "store", &sp.Store)
			var p int
			d.ScanArgs(t, "partition", &p)
			sp.Partition = int32(p)
			if stores[sp] == nil {
				stores[sp] = db.Store(sp.Store, sp.Partition)
			}
			return stores[sp]
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "write":
				s := store(d)
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					f := strings.Fields(line)
					var err error
					switch {
					case len(f) == 3 && f[0] == "put":
						err = s.Put([]byte(f[1]), []byte(f[2]))
					case len(f) == 2 && f[0] == "del":
						err = s.Delete([]byte(f[1]))
					default:
						d.Fatalf(t, "bad write %q", line)
					}
					if err != nil {
						return "error: " + err.Error()
					}
				}
				return fmt.Sprintf("pending=%d", s.PendingCount())

			case "commit":
				s := store(d)
				var cp int64
				d.ScanArgs(t, "checkpoint", &cp)
				if err := db.Commit([]Commit{{Store: s, Checkpoint: cp}}); err != nil {
					return "error: " + err.Error()
				}
				return "ok"

			case "abort":
				store(d).Abort()
				return "ok"

			case "crash":
				if err := db.Close(); err != nil {
					d.Fatalf(t, "close: %v", err)
				}
				db = open()
				clear(stores)
				return "ok"

			case "clock":
				var adv string
				d.ScanArgs(t, "advance", &adv)
				dur, err := time.ParseDuration(adv)
				if err != nil {
					d.Fatalf(t, "%v", err)
				}
				clock.t = clock.t.Add(dur)
				return "ok"

			case "forget-time":
				s := store(d)
				if err := db.pdb.Delete(s.cpTimeKey, pebble.Sync); err != nil {
					d.Fatalf(t, "%v", err)
				}
				return "ok"

			case "source":
				s := store(d)
				var start, end int64
				batch := int64(3)
				settleAfter := 0
				d.ScanArgs(t, "start", &start)
				d.ScanArgs(t, "end", &end)
				high := end
				d.MaybeScanArgs(t, "high", &high)
				d.MaybeScanArgs(t, "settle-after", &settleAfter)
				d.MaybeScanArgs(t, "batch", &batch)
				src, err := parseSource(start, end, high, batch, settleAfter, d.Input)
				if err != nil {
					d.Fatalf(t, "%v", err)
				}
				sources[s.StorePartition()] = src
				return "ok"

			case "restore":
				s := store(d)
				src := sources[s.StorePartition()]
				if src == nil {
					d.Fatalf(t, "no source for %s", s.StorePartition())
				}
				src.resetCalls()
				src.failAfter = 0
				d.MaybeScanArgs(t, "fail-after", &src.failAfter)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				sleeper := &fakeSleeper{clock: clock, cancel: cancel}
				d.MaybeScanArgs(t, "cancel-after-sleeps", &sleeper.cancelAfter)
				cfg := restoreConfig{batchRecords: 1000, batchBytes: 1 << 20, reportInterval: time.Second,
					now: clock.now, sleep: sleeper.sleep}
				d.MaybeScanArgs(t, "batch-records", &cfg.batchRecords)
				if d.HasArg("max-age") {
					var age string
					d.ScanArgs(t, "max-age", &age)
					var err error
					if cfg.maxStateAge, err = time.ParseDuration(age); err != nil {
						d.Fatalf(t, "%v", err)
					}
				}
				logs.Reset()
				var reports []Progress
				res, err := restore(ctx, s, src, func(p Progress) { reports = append(reports, p) }, cfg)
				var b strings.Builder
				fmt.Fprintf(&b, "seeks=%v nexts=%d bounds=%d sleeps=%d\n", src.seeks, src.nexts, src.bounds, len(sleeper.sleeps))
				if d.HasArg("logs") {
					for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
						fmt.Fprintf(&b, "log: %s\n", line)
					}
				}
				if err != nil {
					fmt.Fprintf(&b, "error: %v\n", err)
					return b.String()
				}
				fmt.Fprintf(&b, "restored=%d from=%d to=%d full=%v\n", res.Restored, res.From, res.To, res.Full)
				if res.Full {
					fmt.Fprintf(&b, "reason: %s\n", res.Reason)
				}
				for _, p := range reports {
					fmt.Fprintf(&b, "progress: restored=%d position=%d start=%d end=%d percent=%.0f\n",
						p.Restored, p.Position, p.Start, p.End, p.Percent)
				}
				return b.String()

			case "dump":
				s := store(d)
				var b strings.Builder
				err := s.Range(nil, nil, func(k, v []byte) error {
					fmt.Fprintf(&b, "%s=%s\n", k, v)
					return nil
				})
				if err != nil {
					return "error: " + err.Error()
				}
				cp, ok, err := s.Checkpoint()
				switch {
				case err != nil:
					fmt.Fprintf(&b, "checkpoint error: %v\n", err)
				case ok:
					fmt.Fprintf(&b, "checkpoint=%d\n", cp)
				default:
					b.WriteString("checkpoint=none\n")
				}
				at, ok, err := s.checkpointTime()
				switch {
				case err != nil:
					fmt.Fprintf(&b, "checkpoint time error: %v\n", err)
				case ok:
					fmt.Fprintf(&b, "checkpoint time=%s\n", at.UTC().Format("2006-01-02T15:04:05.000Z"))
				default:
					b.WriteString("checkpoint time=none\n")
				}
				return b.String()

			case "partitions":
				sps, err := db.Partitions()
				if err != nil {
					return "error: " + err.Error()
				}
				var b strings.Builder
				for _, sp := range sps {
					fmt.Fprintln(&b, sp)
				}
				if b.Len() == 0 {
					return "none"
				}
				return b.String()
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}

// TestRestoreProgress checks that reports are throttled to the interval and
// that the last one says 100%.
func TestRestoreProgress(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	recs := make([]ChangelogRecord, 100)
	for i := range recs {
		recs[i] = ChangelogRecord{Key: []byte(fmt.Sprint(i)), Value: []byte("v"), Offset: int64(i)}
	}
	src := &sliceSource{recs: recs, n: 1}
	// Each Next is followed by one clock reading; 300ms per reading gives
	// a report every 4th reading at a 1s interval.
	clock := &fakeClock{t: time.Unix(0, 0), step: 300 * time.Millisecond}
	var reports []Progress
	res, err := restore(context.Background(), s, src, func(p Progress) { reports = append(reports, p) },
		restoreConfig{batchRecords: 7, batchBytes: 1 << 20, reportInterval: time.Second, now: clock.now, sleep: sleepCtx})
	if err != nil {
		t.Fatal(err)
	}
	if res.Restored != 100 || res.To != 101 || !res.Full {
		t.Fatalf("result = %+v", res)
	}
	if len(reports) < 20 || len(reports) > 30 {
		t.Fatalf("%d reports for ~100 clock readings of 300ms at a 1s interval, want about 25", len(reports))
	}
	for i := 1; i < len(reports); i++ {
		if gap := reports[i].Elapsed - reports[i-1].Elapsed; gap < time.Second && i != len(reports)-1 {
			t.Errorf("reports %d and %d only %v apart", i-1, i, gap)
		}
		if reports[i].Position < reports[i-1].Position || reports[i].Percent < reports[i-1].Percent {
			t.Errorf("report %d went backwards: %+v after %+v", i, reports[i], reports[i-1])
		}
	}
	last := reports[len(reports)-1]
	if last.Percent != 100 || last.Restored != 100 || last.Position != 101 || last.RecordsPerSec <= 0 {
		t.Errorf("final report = %+v", last)
	}
	mid := reports[len(reports)/2]
	if mid.Percent <= 0 || mid.Percent >= 100 {
		t.Errorf("middle report percent = %v", mid.Percent)
	}
}

func TestRestoreRefusesPendingWrites(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	apply(t, s, []op{put("k", "v")})
	_, err := Restore(context.Background(), s, &sliceSource{n: 1}, RestoreOptions{})
	if !errors.Is(err, ErrPendingWrites) {
		t.Fatalf("Restore with pending writes = %v, want ErrPendingWrites", err)
	}
	if v, _ := s.Get([]byte("k")); string(v) != "v" {
		t.Fatal("Restore touched the pending batch")
	}
}

// badSource misbehaves in one scripted way.
type badSource struct {
	start, end int64
	high       int64 // 0: end
	next       func(calls int) ([]ChangelogRecord, int64, error)
	calls      int
}

func (b *badSource) Bounds(context.Context) (Bounds, error) {
	high := b.high
	if high == 0 {
		high = b.end
	}
	return Bounds{LogStart: b.start, Stable: b.end, High: high}, nil
}
func (b *badSource) Seek(context.Context, int64) error { return nil }
func (b *badSource) Next(context.Context) ([]ChangelogRecord, int64, error) {
	b.calls++
	return b.next(b.calls)
}

func TestRestoreRejectsBrokenSources(t *testing.T) {
	tests := []struct {
		name             string
		start, end, high int64
		next             func(calls int) ([]ChangelogRecord, int64, error)
		want             string
	}{
		{name: "inverted bounds", start: 5, end: 4, want: "invalid bounds"},
		{name: "stable above high", end: 4, high: 3, want: "invalid bounds"},
		{name: "position goes back", end: 10, want: "went back",
			next: func(calls int) ([]ChangelogRecord, int64, error) { return nil, int64(6 - calls), nil }},
		{name: "record before position", end: 10, want: "outside",
			next: func(int) ([]ChangelogRecord, int64, error) {
				return []ChangelogRecord{{Key: []byte("k"), Value: []byte("v"), Offset: -1}}, 1, nil
			}},
		{name: "record at or after new position", end: 10, want: "outside",
			next: func(int) ([]ChangelogRecord, int64, error) {
				return []ChangelogRecord{{Key: []byte("k"), Value: []byte("v"), Offset: 3}}, 3, nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, "")
			_, err := Restore(context.Background(), db.Store("s", 0), &badSource{start: tt.start, end: tt.end, high: tt.high, next: tt.next}, RestoreOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestRestoreCancel: a cancelled restore returns ctx's error and keeps the
// batches it wrote, with their checkpoint.
func TestRestoreCancel(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &badSource{end: 1000, next: func(calls int) ([]ChangelogRecord, int64, error) {
		if calls == 5 {
			cancel()
		}
		off := int64(calls - 1)
		return []ChangelogRecord{{Key: []byte(fmt.Sprint(off)), Value: []byte("v"), Offset: off}}, off + 1, nil
	}}
	_, err := restore(ctx, s, src, nil, restoreConfig{batchRecords: 2, batchBytes: 1 << 20, reportInterval: time.Second, now: time.Now, sleep: sleepCtx})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("restore = %v, want context.Canceled", err)
	}
	cp, ok, err := s.Checkpoint()
	if err != nil || !ok || cp != 4 {
		t.Fatalf("checkpoint after cancel = %d, %v, %v; want 4 (two flushed batches of 2)", cp, ok, err)
	}
	if got := contents(t, s, nil, nil); len(got) != 4 {
		t.Fatalf("state after cancel = %q, want the 4 flushed records", got)
	}
}

// boundsSource answers Bounds from a script (repeating its last entry) and
// serves the records of a changelog partition up to the stable offset of
// its latest answer.
type boundsSource struct {
	script []Bounds
	recs   map[int64]ChangelogRecord
	calls  int
	pos    int64
	seeks  []int64
}

func (b *boundsSource) Bounds(context.Context) (Bounds, error) {
	b.calls++
	return b.script[min(b.calls, len(b.script))-1], nil
}

func (b *boundsSource) Seek(_ context.Context, offset int64) error {
	b.seeks = append(b.seeks, offset)
	b.pos = offset
	return nil
}

func (b *boundsSource) Next(context.Context) ([]ChangelogRecord, int64, error) {
	var recs []ChangelogRecord
	for end := b.script[min(b.calls, len(b.script))-1].Stable; b.pos < end; b.pos++ {
		if r, ok := b.recs[b.pos]; ok {
			recs = append(recs, r)
		}
	}
	return recs, b.pos, nil
}

// TestRestoreDecidesAgainWhenHighGoesBack: the topic is recreated while
// Restore waits for an open transaction to settle above a valid checkpoint.
// The high watermark falls below the mark Restore waits for, which the
// stable offset would then never reach; Restore decides again, and the
// checkpoint, now above the new high watermark, is wiped.
func TestRestoreDecidesAgainWhenHighGoesBack(t *testing.T) {
	db := openTest(t, "")
	s := db.Store("s", 0)
	commitOps(t, s, []op{put("old", "1")}, 8)
	src := &boundsSource{
		script: []Bounds{
			{LogStart: 0, Stable: 5, High: 10}, // checkpoint 8 valid; wait for 10
			{LogStart: 0, Stable: 5, High: 10},
			{LogStart: 0, Stable: 2, High: 2}, // recreated: 2 records
		},
		recs: map[int64]ChangelogRecord{0: {Key: []byte("new"), Value: []byte("1"), Offset: 0}},
	}
	clock := &fakeClock{t: time.Unix(0, 0), step: time.Millisecond}
	sleeper := &fakeSleeper{clock: clock}
	res, err := restore(context.Background(), s, src, nil, restoreConfig{batchRecords: 10, batchBytes: 1 << 20,
		reportInterval: time.Second, now: clock.now, sleep: sleeper.sleep})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Full || res.From != 0 || res.To != 2 || !strings.Contains(res.Reason, "above the high watermark") {
		t.Fatalf("result = %+v, want a full restore of [0, 2) for a checkpoint above the high watermark", res)
	}
	if got := contents(t, s, nil, nil); !slices.Equal(got, []string{"new=1"}) {
		t.Fatalf("state = %q, want only the recreated topic's record", got)
	}
	if src.calls != 4 || len(sleeper.sleeps) != 2 || !slices.Equal(src.seeks, []int64{0}) {
		t.Fatalf("bounds calls %d, sleeps %v, seeks %v; want 4 calls, 2 sleeps, one seek to 0", src.calls, sleeper.sleeps, src.seeks)
	}
}

// TestRestoreLargeRecords goes through the byte bound of a restore batch and
// through Pebble's large-batch path (a batch of half a memtable or more is
// flushed as its own table), then reuses the batch.
func TestRestoreLargeRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~40 MiB")
	}
	db := openTest(t, "")
	s := db.Store("s", 0)
	sizes := []int{1 << 20, 3 << 20, memTableSize/2 + 1, 10, 2 << 20}
	recs := make([]ChangelogRecord, len(sizes))
	for i, n := range sizes {
		v := make([]byte, n)
		v[0], v[n-1] = byte(i), byte(i)
		recs[i] = ChangelogRecord{Key: []byte{byte('a' + i)}, Value: v, Offset: int64(i)}
	}
	res, err := Restore(context.Background(), s, &sliceSource{recs: recs, n: 1}, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Restored != int64(len(recs)) {
		t.Fatalf("restored %d, want %d", res.Restored, len(recs))
	}
	for i, n := range sizes {
		v, err := s.Get([]byte{byte('a' + i)})
		if err != nil || len(v) != n || v[0] != byte(i) || v[n-1] != byte(i) {
			t.Errorf("record %d: len %d, err %v; want len %d marked %d", i, len(v), err, n, i)
		}
	}
}
