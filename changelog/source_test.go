package changelog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// scriptedSource is an in-memory changelog partition as a read_committed
// reader sees it. Every offset in [start, limit) is either a visible record,
// an invisible one (aborted record, transaction marker, or an offset not
// listed at all), where limit is max(high, last listed offset+1).
//
// Bounds answers {start, stable, high}. While stable < high a transaction
// is open at stable: Next reads no further than stable, as a read_committed
// consumer does. After settleAfter Bounds calls (0: never) the transactions
// settle: stable and high become limit. Otherwise Next reads up to limit
// (records at or beyond high were committed after Bounds was read). Next
// scans `batch` offsets from the position and returns the visible records
// among them; the position moves past invisible offsets just as a real
// consumer's does.
type scriptedSource struct {
	start, stable, high int64
	batch               int64
	offsets             map[int64]scriptedOffset
	limit               int64
	settleAfter         int

	// failAfter > 0: Next fails once that many calls have succeeded.
	failAfter int

	// Per restore: what the restore asked for.
	pos    int64
	seeks  []int64
	nexts  int
	bounds int
}

type scriptedOffset struct {
	rec     ChangelogRecord
	visible bool
}

var errInjected = errors.New("injected source failure")

// parseSource reads lines "<offset> put <key> <value>", "<offset> del <key>",
// "<offset> aborted <key> <value>" and "<offset> marker".
func parseSource(start, stable, high, batch int64, settleAfter int, input string) (*scriptedSource, error) {
	if stable > high {
		return nil, fmt.Errorf("stable %d above high %d", stable, high)
	}
	src := &scriptedSource{start: start, stable: stable, high: high, batch: batch, settleAfter: settleAfter,
		offsets: map[int64]scriptedOffset{}, limit: high}
	for _, line := range strings.Split(strings.TrimSpace(input), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		off, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || len(f) < 2 {
			return nil, fmt.Errorf("bad line %q", line)
		}
		if _, dup := src.offsets[off]; dup || off < start {
			return nil, fmt.Errorf("offset %d duplicated or below start", off)
		}
		o := scriptedOffset{rec: ChangelogRecord{Offset: off}}
		switch {
		case f[1] == "put" && len(f) == 4:
			o.rec.Key, o.rec.Value, o.visible = []byte(f[2]), []byte(f[3]), true
		case f[1] == "del" && len(f) == 3:
			o.rec.Key, o.visible = []byte(f[2]), true
		case f[1] == "aborted" && len(f) == 4:
			o.rec.Key, o.rec.Value = []byte(f[2]), []byte(f[3])
		case f[1] == "marker" && len(f) == 2:
		default:
			return nil, fmt.Errorf("bad line %q", line)
		}
		src.offsets[off] = o
		src.limit = max(src.limit, off+1)
	}
	return src, nil
}

func (s *scriptedSource) Bounds(context.Context) (Bounds, error) {
	s.bounds++
	if s.settleAfter > 0 && s.bounds > s.settleAfter {
		s.stable, s.high = s.limit, s.limit
	}
	return Bounds{LogStart: s.start, Stable: s.stable, High: s.high}, nil
}

// Seek refuses offsets outside the log, as a consumer with
// auto.offset.reset=none does: a restore must never ask for them.
func (s *scriptedSource) Seek(_ context.Context, offset int64) error {
	s.seeks = append(s.seeks, offset)
	if offset < s.start || offset > s.limit {
		return fmt.Errorf("offset %d out of range [%d, %d]", offset, s.start, s.limit)
	}
	s.pos = offset
	return nil
}

func (s *scriptedSource) Next(ctx context.Context) ([]ChangelogRecord, int64, error) {
	if s.failAfter > 0 && s.nexts >= s.failAfter {
		return nil, s.pos, errInjected
	}
	s.nexts++
	if err := ctx.Err(); err != nil {
		return nil, s.pos, err
	}
	var recs []ChangelogRecord
	readable := s.limit
	if s.stable < s.high {
		readable = s.stable
	}
	stop := min(s.pos+s.batch, readable)
	for ; s.pos < stop; s.pos++ {
		if o, ok := s.offsets[s.pos]; ok && o.visible {
			recs = append(recs, o.rec)
		}
	}
	return recs, s.pos, nil
}

// resetCalls forgets the calls of the previous restore.
func (s *scriptedSource) resetCalls() { s.seeks, s.nexts, s.bounds = nil, 0, 0 }

// fakeClock advances by step at every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(c.step)
	return c.t
}

// fakeSleeper is restoreConfig.sleep on a fakeClock: each sleep advances the
// clock at once. After cancelAfter sleeps (0: never) it cancels, as a
// revocation would.
type fakeSleeper struct {
	clock       *fakeClock
	sleeps      []time.Duration
	cancelAfter int
	cancel      context.CancelFunc
}

func (f *fakeSleeper) sleep(ctx context.Context, d time.Duration) error {
	f.sleeps = append(f.sleeps, d)
	f.clock.t = f.clock.t.Add(d)
	if f.cancelAfter > 0 && len(f.sleeps) >= f.cancelAfter {
		f.cancel()
	}
	return ctx.Err()
}

// sliceSource serves a fixed slice of records, n per Next, ending with one
// commit marker; for benchmarks.
type sliceSource struct {
	recs []ChangelogRecord
	n    int
	i    int
}

func (s *sliceSource) Bounds(context.Context) (Bounds, error) {
	end := int64(len(s.recs)) + 1
	return Bounds{LogStart: 0, Stable: end, High: end}, nil
}

func (s *sliceSource) Seek(_ context.Context, offset int64) error {
	s.i = int(offset)
	return nil
}

func (s *sliceSource) Next(context.Context) ([]ChangelogRecord, int64, error) {
	j := min(s.i+s.n, len(s.recs))
	out := s.recs[s.i:j]
	s.i = j
	if j == len(s.recs) {
		return out, int64(j) + 1, nil // past the final marker
	}
	return out, int64(j), nil
}

// compile-time checks.
var (
	_ Source = (*scriptedSource)(nil)
	_ Source = (*sliceSource)(nil)
)
