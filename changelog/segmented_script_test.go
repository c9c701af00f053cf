package changelog

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble"
)

// TestWindowStoreScripts and TestSessionStoreScripts run the scripts in
// testdata/windows and testdata/sessions. One store partition per script,
// times in milliseconds. Commands:
//
//	open retention=N segment=N [partition=P]  (re)take the handle, as after a restart
//	write           input lines, to the pending batch:
//	                  windows:  "put k start v" / "del k start"
//	                  sessions: "put k start end v" / "remove k start end"
//	get key=k start=N [end=N]
//	fetch key=k from=N to=N                   windows: Fetch
//	find key=k earliest-end=N latest-start=N  sessions: FindSessions
//	fetch-all [from=N] [to=N]                 FetchAll (default: all time)
//	expire stream-time=N
//	commit checkpoint=N | abort | crash       crash: close without commit, reopen
//	disk            committed keys per index, by segment, and the checkpoint
//	source start=N end=N [batch=N]            input as in testdata/restore, with
//	                                          keys k@start (windows), k@start-end (sessions);
//	                                          a key without @ is taken as is
//	restore [stream-time=N] [batch-records=N] [fail-after=N]
//
// Regenerate with -rewrite and review the diff.
func TestWindowStoreScripts(t *testing.T) { runSegmentedScripts(t, "testdata/windows", layoutWindow) }

func TestSessionStoreScripts(t *testing.T) {
	runSegmentedScripts(t, "testdata/sessions", layoutSession)
}

// scriptStore is what the scripts drive, for either kind.
type scriptStore struct {
	kind byte
	w    *WindowStore
	s    *SessionStore
}

func (ss scriptStore) g() *segmented {
	if ss.w != nil {
		return ss.w.g
	}
	return ss.s.g
}

func runSegmentedScripts(t *testing.T, dir string, kind byte) {
	datadriven.Walk(t, dir, func(t *testing.T, path string) {
		stateDir := t.TempDir()
		clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), step: time.Millisecond}
		open := func() *DB {
			db := openTest(t, stateDir)
			db.now = clock.now
			return db
		}
		db := open()
		var (
			st                 scriptStore
			retention, segment int64
			partition          int
			src                *scriptedSource
		)
		openStore := func() string {
			r, i := time.Duration(retention)*time.Millisecond, time.Duration(segment)*time.Millisecond
			st = scriptStore{kind: kind}
			var err error
			if kind == layoutWindow {
				st.w, err = db.WindowStore("w", int32(partition), WindowOptions{Retention: r, SegmentInterval: i})
			} else {
				st.s, err = db.SessionStore("s", int32(partition), SessionOptions{Retention: r, SegmentInterval: i})
			}
			if err != nil {
				return "error: " + err.Error()
			}
			return "ok"
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "open" && st.g() == nil {
				d.Fatalf(t, "open first")
			}
			switch d.Cmd {
			case "open":
				partition = 0
				d.ScanArgs(t, "retention", &retention)
				d.ScanArgs(t, "segment", &segment)
				d.MaybeScanArgs(t, "partition", &partition)
				return openStore()

			case "write":
				var b strings.Builder
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					if err := scriptWrite(st, strings.Fields(line)); err != nil {
						fmt.Fprintf(&b, "%s: error: %v\n", line, err)
					}
				}
				fmt.Fprintf(&b, "pending=%d", st.g().s.PendingCount())
				return b.String()

			case "get":
				var key string
				var start, end int64
				d.ScanArgs(t, "key", &key)
				d.ScanArgs(t, "start", &start)
				var v []byte
				var err error
				if kind == layoutWindow {
					v, err = st.w.Get([]byte(key), start)
				} else {
					d.ScanArgs(t, "end", &end)
					v, err = st.s.Get([]byte(key), start, end)
				}
				switch {
				case err != nil:
					return "error: " + err.Error()
				case v == nil:
					return "absent"
				}
				return string(v)

			case "fetch":
				var key string
				var from, to int64
				d.ScanArgs(t, "key", &key)
				d.ScanArgs(t, "from", &from)
				d.ScanArgs(t, "to", &to)
				var b strings.Builder
				err := st.w.Fetch([]byte(key), from, to, func(start int64, v []byte) error {
					fmt.Fprintf(&b, "%s@%d=%s\n", key, start, v)
					return nil
				})
				return scriptResult(&b, err)

			case "find":
				var key string
				var earliestEnd, latestStart int64
				d.ScanArgs(t, "key", &key)
				d.ScanArgs(t, "earliest-end", &earliestEnd)
				d.ScanArgs(t, "latest-start", &latestStart)
				var b strings.Builder
				err := st.s.FindSessions([]byte(key), earliestEnd, latestStart, func(start, end int64, v []byte) error {
					fmt.Fprintf(&b, "%s@%d-%d=%s\n", key, start, end, v)
					return nil
				})
				return scriptResult(&b, err)

			case "fetch-all":
				from, to := int64(math.MinInt64), int64(math.MaxInt64)
				d.MaybeScanArgs(t, "from", &from)
				d.MaybeScanArgs(t, "to", &to)
				var b strings.Builder
				return scriptResult(&b, scriptFetchAll(st, from, to, &b))

			case "expire":
				var streamTime int64
				d.ScanArgs(t, "stream-time", &streamTime)
				var err error
				if kind == layoutWindow {
					err = st.w.Expire(streamTime)
				} else {
					err = st.s.Expire(streamTime)
				}
				if err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("pending=%d live-from=%s", st.g().s.PendingCount(), fmtSegment(st.g().liveFrom))

			case "commit":
				var cp int64
				d.ScanArgs(t, "checkpoint", &cp)
				if err := db.Commit([]Commit{st.g().s.CommitAt(cp)}); err != nil {
					return "error: " + err.Error()
				}
				return "ok"

			case "abort":
				st.g().s.Abort()
				return fmt.Sprintf("pending=%d live-from=%s", st.g().s.PendingCount(), fmtSegment(st.g().liveFrom))

			case "crash":
				if err := db.Close(); err != nil {
					d.Fatalf(t, "close: %v", err)
				}
				db = open()
				return openStore()

			case "disk":
				return scriptDisk(t, st.g())

			case "source":
				var start, end int64
				batch := int64(3)
				d.ScanArgs(t, "start", &start)
				d.ScanArgs(t, "end", &end)
				d.MaybeScanArgs(t, "batch", &batch)
				var err error
				if src, err = parseSource(start, end, end, batch, 0, d.Input); err != nil {
					d.Fatalf(t, "%v", err)
				}
				for off, o := range src.offsets {
					if o.rec.Key == nil {
						continue
					}
					if o.rec.Key, err = scriptChangelogKey(kind, string(o.rec.Key)); err != nil {
						d.Fatalf(t, "%v", err)
					}
					src.offsets[off] = o
				}
				return "ok"

			case "restore":
				if src == nil {
					d.Fatalf(t, "no source")
				}
				src.resetCalls()
				src.failAfter = 0
				d.MaybeScanArgs(t, "fail-after", &src.failAfter)
				var opts RestoreOptions
				d.MaybeScanArgs(t, "stream-time", &opts.StreamTime)
				cfg := restoreConfig{batchRecords: 1000, batchBytes: 1 << 20, reportInterval: time.Second,
					now: clock.now, sleep: (&fakeSleeper{clock: clock}).sleep}
				d.MaybeScanArgs(t, "batch-records", &cfg.batchRecords)
				var entry func([]byte) (int64, []byte, []byte, error)
				if kind == layoutWindow {
					entry = st.w.restoredEntry
				} else {
					entry = st.s.restoredEntry
				}
				res, err := restoreSegmented(context.Background(), st.g(), entry, src, opts, cfg)
				var b strings.Builder
				fmt.Fprintf(&b, "seeks=%v nexts=%d\n", src.seeks, src.nexts)
				if err != nil {
					fmt.Fprintf(&b, "error: %v\n", err)
					return b.String()
				}
				fmt.Fprintf(&b, "restored=%d expired=%d from=%d to=%d full=%v live-from=%s\n",
					res.Restored, res.Expired, res.From, res.To, res.Full, fmtSegment(st.g().liveFrom))
				if res.Full {
					fmt.Fprintf(&b, "reason: %s\n", res.Reason)
				}
				return b.String()
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}

func scriptResult(b *strings.Builder, err error) string {
	if err != nil {
		fmt.Fprintf(b, "error: %v\n", err)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

func fmtSegment(seg int64) string {
	if seg == math.MinInt64 {
		return "none"
	}
	return strconv.FormatInt(seg, 10)
}

// scriptWrite applies one write line.
func scriptWrite(st scriptStore, f []string) error {
	ints := func(ss ...string) ([]int64, error) {
		out := make([]int64, len(ss))
		for i, s := range ss {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	}
	switch {
	case st.w != nil && len(f) == 4 && f[0] == "put":
		n, err := ints(f[2])
		if err != nil {
			return err
		}
		return st.w.Put([]byte(f[1]), n[0], []byte(f[3]))
	case st.w != nil && len(f) == 3 && f[0] == "del":
		n, err := ints(f[2])
		if err != nil {
			return err
		}
		return st.w.Put([]byte(f[1]), n[0], nil)
	case st.s != nil && len(f) == 5 && f[0] == "put":
		n, err := ints(f[2], f[3])
		if err != nil {
			return err
		}
		return st.s.Put([]byte(f[1]), n[0], n[1], []byte(f[4]))
	case st.s != nil && len(f) == 4 && f[0] == "remove":
		n, err := ints(f[2], f[3])
		if err != nil {
			return err
		}
		return st.s.Remove([]byte(f[1]), n[0], n[1])
	}
	return fmt.Errorf("bad write %q", f)
}

// scriptFetchAll renders FetchAll.
func scriptFetchAll(st scriptStore, from, to int64, b *strings.Builder) error {
	if st.w != nil {
		return st.w.FetchAll(from, to, func(k []byte, start int64, v []byte) error {
			fmt.Fprintf(b, "%s@%d=%s\n", k, start, v)
			return nil
		})
	}
	return st.s.FetchAll(from, to, func(k []byte, start, end int64, v []byte) error {
		fmt.Fprintf(b, "%s@%d-%d=%s\n", k, start, end, v)
		return nil
	})
}

// scriptChangelogKey encodes "k@start" (windows) or "k@start-end"
// (sessions) as a changelog record key.
func scriptChangelogKey(kind byte, s string) ([]byte, error) {
	k, times, ok := strings.Cut(s, "@")
	if !ok {
		return []byte(s), nil // as is: no windowed key
	}
	if kind == layoutWindow {
		start, err := strconv.ParseInt(times, 10, 64)
		return EncodeWindowKey([]byte(k), start), err
	}
	a, b, _ := strings.Cut(times, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("key %q: want k@start-end", s)
	}
	return EncodeSessionKey([]byte(k), start, end), nil
}

// scriptDisk renders the committed keys of each index per segment (by
// time: per segment of the leading time), and the checkpoint.
func scriptDisk(t *testing.T, g *segmented) string {
	count := func(prefix []byte) (int, []string) {
		it, err := g.s.db.pdb.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		n := 0
		perSeg := map[int64]int{}
		for ok := it.First(); ok; ok = it.Next() {
			n++
			v := decodeTime(it.Key()[len(prefix):])
			if bytesHasPrefix(prefix, g.byTime) {
				v = g.segment(v)
			}
			perSeg[v]++
		}
		var segs []int64
		for s := range perSeg {
			segs = append(segs, s)
		}
		slices.Sort(segs)
		var out []string
		for _, s := range segs {
			out = append(out, fmt.Sprintf("%d:%d", s, perSeg[s]))
		}
		return n, out
	}
	var b strings.Builder
	nk, sk := count(g.byKey)
	nt, stm := count(g.byTime)
	fmt.Fprintf(&b, "by-key=%d %v\nby-time=%d %v\n", nk, sk, nt, stm)
	if _, closer, err := g.s.db.pdb.Get(g.layoutKey); err == nil {
		closer.Close()
		b.WriteString("layout=yes\n")
	} else {
		b.WriteString("layout=no\n")
	}
	cp, ok, err := g.s.Checkpoint()
	switch {
	case err != nil:
		fmt.Fprintf(&b, "checkpoint error: %v\n", err)
	case ok:
		fmt.Fprintf(&b, "checkpoint=%d\n", cp)
	default:
		b.WriteString("checkpoint=none\n")
	}
	return b.String()
}

func bytesHasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}
