package changelog

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

type sessionID struct {
	key        string
	start, end int64
}

// TestSessionStoreMatchesModel runs random puts, removes, expiries,
// commits and aborts against a SessionStore and a map, and checks
// FindSessions and FetchAll against a brute-force filter of the map after
// each step.
func TestSessionStoreMatchesModel(t *testing.T) {
	keys := []string{"a", "ab", "b"}
	const retention, interval = 40, 10
	segment := func(t int64) int64 {
		s := t / interval
		if t%interval < 0 {
			s--
		}
		return s
	}
	for seed := range uint64(10) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			db := openTest(t, "")
			s, err := db.SessionStore("s", 0, SessionOptions{Retention: retention * time.Millisecond, SegmentInterval: interval * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			committed, pending := map[sessionID]string{}, map[sessionID]string{}
			live, committedLive := int64(math.MinInt64), int64(math.MinInt64)
			streamTime := int64(0)
			for step := range 300 {
				switch r := rng.IntN(100); {
				case r < 60:
					start := streamTime - 30 + rng.Int64N(40)
					id := sessionID{keys[rng.IntN(len(keys))], start, start + rng.Int64N(25)}
					remove := rng.IntN(4) == 0
					if remove {
						// Mostly remove sessions that exist.
						for sid := range pending {
							id = sid
							break
						}
						err = s.Remove([]byte(id.key), id.start, id.end)
					} else {
						err = s.Put([]byte(id.key), id.start, id.end, []byte(fmt.Sprint(step)))
					}
					expired := segment(id.end) < live
					if expired != errors.Is(err, ErrExpired) || (!expired && err != nil) {
						t.Fatalf("step %d: write %+v = %v, want expired=%v", step, id, err, expired)
					}
					if !expired {
						if remove {
							delete(pending, id)
						} else {
							pending[id] = fmt.Sprint(step)
						}
					}
				case r < 75:
					streamTime += rng.Int64N(15)
					if err := s.Expire(streamTime); err != nil {
						t.Fatal(err)
					}
					if l := segment(streamTime - retention); l > live {
						live = l
						maps.DeleteFunc(pending, func(id sessionID, _ string) bool { return segment(id.end) < l })
					}
				case r < 88:
					if err := db.Commit([]Commit{s.CommitAt(int64(step))}); err != nil {
						t.Fatal(err)
					}
					committed, committedLive = maps.Clone(pending), live
				default:
					s.Abort()
					pending, live = maps.Clone(committed), committedLive
				}

				// FindSessions for every key, over a random range.
				earliestEnd := streamTime - 40 + rng.Int64N(40)
				latestStart := earliestEnd - 10 + rng.Int64N(30)
				for _, k := range keys {
					var want []sessionID
					for id := range pending {
						if id.key == k && id.end >= earliestEnd && id.start <= latestStart {
							want = append(want, id)
						}
					}
					slices.SortFunc(want, func(a, b sessionID) int {
						return cmp.Or(cmp.Compare(a.end, b.end), cmp.Compare(a.start, b.start))
					})
					var got []sessionID
					if err := s.FindSessions([]byte(k), earliestEnd, latestStart, func(start, end int64, v []byte) error {
						got = append(got, sessionID{k, start, end})
						if string(v) != pending[sessionID{k, start, end}] {
							t.Errorf("step %d: session %s@%d-%d = %q, want %q", step, k, start, end, v, pending[sessionID{k, start, end}])
						}
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(got, want) {
						t.Fatalf("step %d: FindSessions(%q, %d, %d) = %v, want %v", step, k, earliestEnd, latestStart, got, want)
					}
				}
				// FetchAll over a random range of ends.
				from, to := earliestEnd, earliestEnd+rng.Int64N(30)
				var want, got []sessionID
				for id := range pending {
					if id.end >= from && id.end <= to {
						want = append(want, id)
					}
				}
				slices.SortFunc(want, func(a, b sessionID) int {
					return cmp.Or(cmp.Compare(a.end, b.end), cmp.Compare(a.start, b.start), cmp.Compare(a.key, b.key))
				})
				if err := s.FetchAll(from, to, func(k []byte, start, end int64, _ []byte) error {
					got = append(got, sessionID{string(k), start, end})
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("step %d: FetchAll(%d, %d) = %v, want %v", step, from, to, got, want)
				}
			}
		})
	}
}

func TestSessionStoreRefusesNilValue(t *testing.T) {
	db := openTest(t, "")
	s, err := db.SessionStore("s", 0, SessionOptions{Retention: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put([]byte("k"), 0, 1, nil); !errors.Is(err, ErrNilValue) {
		t.Fatalf("Put(nil) = %v, want ErrNilValue", err)
	}
	if n := s.PendingCount(); n != 0 {
		t.Fatalf("PendingCount after a refused Put = %d", n)
	}
}
