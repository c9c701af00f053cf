package changelog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// windowModel is the in-memory truth a WindowStore is checked against:
// whole maps of committed and pending state, and expiry by segment.
type windowModel struct {
	retention, interval int64
	committed, pending  map[windowID]string
	// live, committedLive: the first live segment (math.MinInt64: none).
	live, committedLive int64
}

type windowID struct {
	key   string
	start int64
}

func (m *windowModel) segment(t int64) int64 {
	s := t / m.interval
	if t%m.interval < 0 {
		s--
	}
	return s
}

func (m *windowModel) liveSegment(streamTime int64) int64 { return m.segment(streamTime - m.retention) }

// put returns whether the store must refuse the write as expired.
func (m *windowModel) put(id windowID, v *string) (expired bool) {
	if m.segment(id.start) < m.live {
		return true
	}
	if v == nil {
		delete(m.pending, id)
	} else {
		m.pending[id] = *v
	}
	return false
}

func (m *windowModel) expire(streamTime int64) {
	if l := m.liveSegment(streamTime); l > m.live {
		m.live = l
		maps.DeleteFunc(m.pending, func(id windowID, _ string) bool { return m.segment(id.start) < l })
	}
}

func (m *windowModel) commit() { m.committed, m.committedLive = maps.Clone(m.pending), m.live }
func (m *windowModel) abort()  { m.pending, m.live = maps.Clone(m.committed), m.committedLive }

// crash: pending state is lost, and a new handle knows no expiry point.
func (m *windowModel) crash() {
	m.abort()
	m.live, m.committedLive = math.MinInt64, math.MinInt64
}

// fetchAll renders state's windows with a start in [from, to], ascending by
// start then key, as FetchAll does.
func fetchAllModel(state map[windowID]string, from, to int64) []string {
	var ids []windowID
	for id := range state {
		if id.start >= from && id.start <= to {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b windowID) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.key, b.key))
	})
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, fmt.Sprintf("%s@%d=%s", id.key, id.start, state[id]))
	}
	return out
}

func fetchAllStore(t *testing.T, w *WindowStore, from, to int64) []string {
	t.Helper()
	out := []string{}
	if err := w.FetchAll(from, to, func(k []byte, start int64, v []byte) error {
		out = append(out, fmt.Sprintf("%s@%d=%s", k, start, v))
		return nil
	}); err != nil {
		t.Fatalf("fetch all: %v", err)
	}
	return out
}

// TestWindowStoreMatchesModel runs random puts, deletes, expiries, commits,
// aborts and crashes against a WindowStore and windowModel, checking every
// read path against the model after each step, then restores the
// changelog the store would have written into a fresh partition and checks
// it holds the committed state less what is expired.
func TestWindowStoreMatchesModel(t *testing.T) {
	keys := []string{"a", "ab", "b", "", "abc"}
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			dir := t.TempDir()
			db := openTest(t, dir)
			opts := WindowOptions{Retention: 30 * time.Millisecond, SegmentInterval: 10 * time.Millisecond}
			w, err := db.WindowStore("w", 0, opts)
			if err != nil {
				t.Fatal(err)
			}
			m := &windowModel{retention: 30, interval: 10, committed: map[windowID]string{}, pending: map[windowID]string{},
				live: math.MinInt64, committedLive: math.MinInt64}
			// The changelog: records of committed transactions, in order.
			var log, txn []ChangelogRecord
			streamTime, maxStreamTime := int64(-20), int64(-20)
			for step := range 400 {
				var what string
				switch r := rng.IntN(100); {
				case r < 55:
					id := windowID{keys[rng.IntN(len(keys))], streamTime - 45 + rng.Int64N(50)}
					var v *string
					if rng.IntN(4) > 0 {
						s := fmt.Sprint(step)
						v = &s
					}
					what = fmt.Sprintf("put %q@%d %v", id.key, id.start, v != nil)
					var vb []byte
					if v != nil {
						vb = []byte(*v)
					}
					err := w.Put([]byte(id.key), id.start, vb)
					if wantExpired := m.put(id, v); wantExpired != errors.Is(err, ErrExpired) || (!wantExpired && err != nil) {
						t.Fatalf("step %d: %s = %v, model expired=%v", step, what, err, wantExpired)
					}
					if err == nil {
						txn = append(txn, ChangelogRecord{Key: EncodeWindowKey([]byte(id.key), id.start), Value: vb})
					}
				case r < 70:
					streamTime += rng.Int64N(15)
					maxStreamTime = max(maxStreamTime, streamTime)
					what = fmt.Sprintf("expire %d", streamTime)
					if err := w.Expire(streamTime); err != nil {
						t.Fatal(err)
					}
					m.expire(streamTime)
				case r < 82:
					what = "commit"
					log = append(log, txn...)
					txn = nil
					if err := db.Commit([]Commit{w.CommitAt(int64(len(log)))}); err != nil {
						t.Fatal(err)
					}
					m.commit()
				case r < 92:
					what = "abort"
					txn = nil
					w.Abort()
					m.abort()
				default:
					what = "crash"
					txn = nil
					if err := db.Close(); err != nil {
						t.Fatal(err)
					}
					db = openTest(t, dir)
					if w, err = db.WindowStore("w", 0, opts); err != nil {
						t.Fatal(err)
					}
					m.crash()
				}
				checkWindowReads(t, rng, w, m.pending, keys, streamTime, fmt.Sprintf("step %d (%s)", step, what))
			}

			// Restore the changelog into partition 1 with the largest
			// stream time seen: it must hold the committed state, less the
			// segments expired at the larger of that and the largest start.
			for i := range log {
				log[i].Offset = int64(i)
			}
			r, err := db.WindowStore("w", 1, opts)
			if err != nil {
				t.Fatal(err)
			}
			res, err := RestoreWindows(context.Background(), r, &sliceSource{recs: log, n: 7}, RestoreOptions{StreamTime: maxStreamTime})
			if err != nil {
				t.Fatal(err)
			}
			maxStart := int64(math.MinInt64)
			for _, rec := range log {
				_, start, _ := DecodeWindowKey(rec.Key)
				maxStart = max(maxStart, start)
			}
			live := m.liveSegment(max(maxStart, maxStreamTime))
			want := maps.Clone(m.committed)
			maps.DeleteFunc(want, func(id windowID, _ string) bool { return m.segment(id.start) < live })
			if got, want := fetchAllStore(t, r, math.MinInt64, math.MaxInt64), fetchAllModel(want, math.MinInt64, math.MaxInt64); !slices.Equal(got, want) {
				t.Fatalf("restored %d records (%d expired): state\n%q\nwant\n%q", res.Restored, res.Expired, got, want)
			}
			if res.Restored+res.Expired != int64(len(log)) {
				t.Fatalf("restored %d + expired %d records of %d", res.Restored, res.Expired, len(log))
			}
		})
	}
}

// checkWindowReads compares Get, Fetch and FetchAll with the model's
// pending state (what reads must see).
func checkWindowReads(t *testing.T, rng *rand.Rand, w *WindowStore, state map[windowID]string, keys []string, now int64, at string) {
	t.Helper()
	from := now - 60 + rng.Int64N(40)
	to := from + rng.Int64N(50)
	if got, want := fetchAllStore(t, w, from, to), fetchAllModel(state, from, to); !slices.Equal(got, want) {
		t.Fatalf("%s: FetchAll(%d, %d) = %q, want %q", at, from, to, got, want)
	}
	if got, want := fetchAllStore(t, w, math.MinInt64, math.MaxInt64), fetchAllModel(state, math.MinInt64, math.MaxInt64); !slices.Equal(got, want) {
		t.Fatalf("%s: FetchAll(all) = %q, want %q", at, got, want)
	}
	for _, k := range keys {
		got := []string{}
		if err := w.Fetch([]byte(k), from, to, func(start int64, v []byte) error {
			got = append(got, fmt.Sprintf("%s@%d=%s", k, start, v))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		keyState := maps.Clone(state)
		maps.DeleteFunc(keyState, func(id windowID, _ string) bool { return id.key != k })
		if want := fetchAllModel(keyState, from, to); !slices.Equal(got, want) {
			t.Fatalf("%s: Fetch(%q, %d, %d) = %q, want %q", at, k, from, to, got, want)
		}
	}
	id := windowID{keys[rng.IntN(len(keys))], now - 45 + rng.Int64N(50)}
	for sid := range state {
		if rng.IntN(len(state)) == 0 {
			id = sid
			break
		}
	}
	v, err := w.Get([]byte(id.key), id.start)
	want, ok := state[id]
	if err != nil || (v != nil) != ok || string(v) != want {
		t.Fatalf("%s: Get(%q, %d) = %q, %v; want %q (present %v)", at, id.key, id.start, v, err, want, ok)
	}
}

func TestWindowOptions(t *testing.T) {
	db := openTest(t, "")
	for _, tt := range []struct {
		opts         WindowOptions
		wantInterval int64
		wantErr      string
	}{
		{opts: WindowOptions{Retention: time.Hour}, wantInterval: 30 * 60 * 1000},
		{opts: WindowOptions{Retention: time.Minute}, wantInterval: 60 * 1000},
		{opts: WindowOptions{Retention: time.Second, SegmentInterval: 100 * time.Millisecond}, wantInterval: 100},
		{opts: WindowOptions{}, wantErr: "retention 0s is below 1ms"},
		{opts: WindowOptions{Retention: time.Second + time.Microsecond}, wantErr: "not a whole number"},
		{opts: WindowOptions{Retention: time.Second, SegmentInterval: -time.Second}, wantErr: "negative"},
	} {
		w, err := db.WindowStore("w", 0, tt.opts)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%+v: error %v, want %q", tt.opts, err, tt.wantErr)
		case tt.wantErr == "" && err != nil:
			t.Errorf("%+v: %v", tt.opts, err)
		case tt.wantErr == "" && w.SegmentInterval() != tt.wantInterval:
			t.Errorf("%+v: segment interval %d, want %d", tt.opts, w.SegmentInterval(), tt.wantInterval)
		}
	}
}

// TestWindowStoreFetchStops: an error from fn stops Fetch and FetchAll and
// is returned as is.
func TestWindowStoreFetchStops(t *testing.T) {
	db := openTest(t, "")
	w, err := db.WindowStore("w", 0, WindowOptions{Retention: time.Second, SegmentInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, start := range []int64{5, 15, 25} {
		if err := w.Put([]byte("k"), start, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := w.Fetch([]byte("k"), 0, 100, func(int64, []byte) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("Fetch = %v after %d calls, want stop after 1", err, calls)
	}
	calls = 0
	if err := w.FetchAll(0, 100, func([]byte, int64, []byte) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("FetchAll = %v after %d calls, want stop after 1", err, calls)
	}
}
