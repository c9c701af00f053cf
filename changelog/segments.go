package changelog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble"
)

// Segments: what window and session stores share. Their entries carry a
// time (a window's start, a session's end) that places them in a segment,
// floorDiv(time, segment interval), and the key layout (keys.go) makes each
// segment a contiguous range in both indexes. Expiry removes whole segments
// by range deletes, as Kafka Streams drops whole segment databases
// (KeyValueSegments): a segment goes once every entry in it is older than
// stream time less the retention, so an entry is kept until stream time
// passes its time plus the retention, and gone once stream time passes its
// time plus the retention plus one segment interval.
//
// Rejected: a Pebble database per segment, as Kafka Streams keeps a RocksDB
// per segment. One database per runner is what lets DB.Commit write every
// store's pending batch and checkpoint in one batch; a DeleteRange is
// Pebble's way to drop a range whole (constant cost to write, its space
// reclaimed by compaction).

// segmentOptions are the validated, millisecond form of WindowOptions and
// SessionOptions.
type segmentOptions struct {
	retention, interval int64
}

// newSegmentOptions validates a retention and segment interval (0: the
// default, max(retention/2, 1 minute), Kafka Streams' default for its
// persistent window and session stores).
func newSegmentOptions(retention, interval time.Duration) (segmentOptions, error) {
	switch {
	case retention < time.Millisecond:
		return segmentOptions{}, fmt.Errorf("retention %v is below 1ms", retention)
	case retention%time.Millisecond != 0:
		return segmentOptions{}, fmt.Errorf("retention %v is not a whole number of milliseconds", retention)
	case interval < 0:
		return segmentOptions{}, fmt.Errorf("segment interval %v is negative", interval)
	case interval%time.Millisecond != 0:
		return segmentOptions{}, fmt.Errorf("segment interval %v is not a whole number of milliseconds", interval)
	}
	if interval == 0 {
		interval = max(retention/2, time.Minute)
	}
	return segmentOptions{retention: retention.Milliseconds(), interval: interval.Milliseconds()}, nil
}

// segmented is the part of a window or session store partition that does
// not depend on what an entry is: its layout, reads over its pending batch,
// and expiry by segment. It writes to the pending batch of its Store (which
// also holds the checkpoint keys), so DB.Commit, Abort, Drop and Restore
// treat it as any store partition. Same owner as its Store.
type segmented struct {
	// s, kind, opts, byKey, byTime, layoutKey, layout: set by newSegmented,
	// read-only afterwards.
	s         *Store
	kind      byte // layoutWindow or layoutSession
	opts      segmentOptions
	byKey     []byte // 0x01|sp|0x01
	byTime    []byte // 0x01|sp|0x02
	layoutKey []byte // 0x01|sp|0x00
	layout    []byte // encoded layout value of this handle

	// liveFrom is the first segment not expired by this handle, pending
	// expiry included; committedLiveFrom counts committed expiry only.
	// math.MinInt64: none expired yet. Every entry below liveFrom is
	// deleted (pending or committed), since each expiry deletes from the
	// start of both indexes. The Store's afterReset hook moves one to the
	// other: committedLiveFrom = liveFrom after DB.Commit, liveFrom =
	// committedLiveFrom after Abort.
	liveFrom, committedLiveFrom int64
}

func newSegmented(db *DB, name string, partition int32, kind byte, opts segmentOptions) *segmented {
	s := db.Store(name, partition)
	s.indexed = true // read and iterated with its pending writes
	g := &segmented{
		s:                 s,
		kind:              kind,
		opts:              opts,
		byKey:             kindPrefix(s.prefix, kindByKey),
		byTime:            kindPrefix(s.prefix, kindByTime),
		layoutKey:         kindPrefix(s.prefix, kindLayout),
		layout:            encodeLayout(kind, opts.interval),
		liveFrom:          math.MinInt64,
		committedLiveFrom: math.MinInt64,
	}
	s.afterReset = g.afterReset
	return g
}

// afterReset keeps the expiry point in step with the pending batch.
func (g *segmented) afterReset(committed bool) {
	if committed {
		g.committedLiveFrom = g.liveFrom
	} else {
		g.liveFrom = g.committedLiveFrom
	}
}

// segment returns the segment of time t.
func (g *segmented) segment(t int64) int64 {
	seg := t / g.opts.interval
	if t%g.opts.interval < 0 {
		seg--
	}
	return seg
}

// liveSegment returns the first segment that is not expired at streamTime:
// every segment below it holds only times before streamTime - retention.
// math.MinInt64 when none is expired.
func (g *segmented) liveSegment(streamTime int64) int64 {
	if streamTime < math.MinInt64+g.opts.retention+g.opts.interval {
		return math.MinInt64 // no whole segment lies before the cutoff
	}
	return g.segment(streamTime - g.opts.retention)
}

// expireRange adds to b the range deletes of every segment below live, in
// both indexes.
func (g *segmented) expireRange(b *pebble.Batch, live int64) error {
	if err := b.DeleteRange(g.byKey, appendTime(bytes.Clone(g.byKey), live), nil); err != nil {
		return err
	}
	return b.DeleteRange(g.byTime, appendTime(bytes.Clone(g.byTime), live*g.opts.interval), nil)
}

// expire removes, in the pending batch, every segment whose entries all lie
// before streamTime - retention. It writes only when that moves the
// expiry point.
func (g *segmented) expire(streamTime int64) error {
	live := g.liveSegment(streamTime)
	if live <= g.liveFrom {
		return nil
	}
	if err := g.ensurePending(); err != nil {
		return err
	}
	if err := g.expireRange(g.s.pending, live); err != nil {
		return fmt.Errorf("changelog: expire %s at stream time %d: %w", g.s.sp, streamTime, err)
	}
	g.liveFrom = live
	return nil
}

// ensurePending creates the pending batch if needed and makes sure it
// carries the layout, so that any commit of this store's writes records it.
func (g *segmented) ensurePending() error {
	if err := g.s.ensurePending(); err != nil {
		return err
	}
	if g.s.pending.Empty() {
		if err := g.s.pending.Set(g.layoutKey, g.layout, nil); err != nil {
			return fmt.Errorf("changelog: %s: %w", g.s.sp, err)
		}
	}
	return nil
}

// write sets (value not nil) or deletes (nil) one entry in both indexes of
// the pending batch.
func (g *segmented) write(byKey, byTime, value []byte) error {
	if err := g.ensurePending(); err != nil {
		return err
	}
	if value == nil {
		if err := g.s.pending.Delete(byKey, nil); err != nil {
			return err
		}
		return g.s.pending.Delete(byTime, nil)
	}
	if err := g.s.pending.Set(byKey, value, nil); err != nil {
		return err
	}
	return g.s.pending.Set(byTime, value, nil)
}

// get returns a copy of the value at a by-key index key, pending writes
// and expiry first; nil when absent.
func (g *segmented) get(k []byte) ([]byte, error) {
	if g.s.db.closed.Load() {
		return nil, ErrClosed
	}
	var (
		v      []byte
		closer interface{ Close() error }
		err    error
	)
	// Both read Pebble: the pending batch is indexed over it.
	if err := g.s.db.settled(); err != nil {
		return nil, err
	}
	if g.s.hasPending() {
		v, closer, err = g.s.pending.Get(k)
	} else {
		v, closer, err = g.s.db.pdb.Get(k)
	}
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := append(make([]byte, 0, len(v)), v...)
	return out, closer.Close()
}

// newIter returns an iterator over [lower, upper) that sees the pending
// batch (writes and expiry) over committed state.
func (g *segmented) newIter(lower, upper []byte) (*pebble.Iterator, error) {
	if g.s.db.closed.Load() {
		return nil, ErrClosed
	}
	if err := g.s.db.settled(); err != nil {
		return nil, err
	}
	opts := &pebble.IterOptions{LowerBound: lower, UpperBound: upper}
	if g.s.hasPending() {
		return g.s.pending.NewIter(opts)
	}
	return g.s.db.pdb.NewIter(opts)
}

// timeBound returns prefix|ord(t), or the end of prefix's range when t is
// past the last time (an exclusive bound for times up to and including
// math.MaxInt64).
func timeBound(prefix []byte, t int64, past bool) []byte {
	if past {
		if t == math.MaxInt64 {
			return prefixEnd(prefix)
		}
		t++
	}
	return appendTime(bytes.Clone(prefix), t)
}

// scanByTime calls fn for every by-time entry with a leading time in
// [from, to], in key order, with the key bytes after the leading time.
func (g *segmented) scanByTime(from, to int64, fn func(rest, value []byte) error) error {
	if from > to {
		return nil
	}
	it, err := g.newIter(timeBound(g.byTime, from, false), timeBound(g.byTime, to, true))
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key()[len(g.byTime):], it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// errStopScan, returned by a scanKey callback, ends the scan without error.
var errStopScan = errors.New("stop scan")

// scanKey calls fn, in key order, for every by-key entry of key in the
// segments from segLo on whose bytes after byKey|seg|len|key (the suffix)
// are at least from. It seeks once or twice per segment that holds
// entries, skipping empty ones. fn returns errStopScan to end the scan.
func (g *segmented) scanKey(key []byte, segLo int64, from []byte, fn func(suffix, value []byte) error) error {
	it, err := g.newIter(timeBound(g.byKey, segLo, false), prefixEnd(g.byKey))
	if err != nil {
		return err
	}
	err = g.scanKeyIter(it, key, segLo, from, fn)
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, errStopScan) {
		return nil
	}
	return err
}

func (g *segmented) scanKeyIter(it *pebble.Iterator, key []byte, seg int64, from []byte, fn func(suffix, value []byte) error) error {
	p := bytes.Clone(g.byKey)
	for {
		p = appendByKeyPrefix(p[:len(g.byKey)], seg, key)
		ok := it.SeekGE(append(p, from...))
		for ; ok && bytes.HasPrefix(it.Key(), p); ok = it.Next() {
			if err := fn(it.Key()[len(p):], it.Value()); err != nil {
				return err
			}
		}
		if !ok {
			return nil
		}
		// The iterator is past key's entries in seg: at another key's entry
		// of seg, or in a later segment.
		next, err := g.keySegment(it.Key())
		if err != nil {
			return err
		}
		if next <= seg {
			if seg == math.MaxInt64 || !it.SeekGE(appendTime(p[:len(g.byKey)], seg+1)) {
				return nil
			}
			if next, err = g.keySegment(it.Key()); err != nil {
				return err
			}
		}
		seg = next
	}
}

// keySegment decodes the segment of a by-key index key.
func (g *segmented) keySegment(k []byte) (int64, error) {
	if len(k) < len(g.byKey)+timeLen {
		return 0, fmt.Errorf("%w: %s: by-key index key %x too short", ErrCorrupt, g.s.sp, k)
	}
	return decodeTime(k[len(g.byKey):]), nil
}

// restoreApplier is the recordApplier of a window or session store: it
// applies records to both indexes and leaves out those of expired segments.
type restoreApplier struct {
	g *segmented
	// entry decodes a changelog record key into the entry's time and its
	// two index keys.
	entry func(changelogKey []byte) (t int64, byKey, byTime []byte, err error)
	// observed is the largest entry time seen, on disk or in the changelog,
	// or the stream time the caller passed if larger.
	observed int64
	// live is the expiry point applied to the batch so far.
	live int64
}

func (a *restoreApplier) wipeReason() (string, error) {
	if err := a.g.s.db.settled(); err != nil {
		return "", err
	}
	v, closer, err := a.g.s.db.pdb.Get(a.g.layoutKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	kind, interval, err := decodeLayout(v)
	closer.Close()
	switch {
	case err != nil:
		return "", err
	case kind != a.g.kind:
		return fmt.Sprintf("state on disk is of another store kind (%d, want %d)", kind, a.g.kind), nil
	case interval != a.g.opts.interval:
		return fmt.Sprintf("segment interval changed from %dms to %dms (the by-key index moves)", interval, a.g.opts.interval), nil
	}
	return "", nil
}

// begin takes the largest entry time on disk (the last by-time key) into
// observed and expires by it.
func (a *restoreApplier) begin(b *pebble.Batch) error {
	it, err := a.g.s.db.pdb.NewIter(&pebble.IterOptions{LowerBound: a.g.byTime, UpperBound: prefixEnd(a.g.byTime)})
	if err != nil {
		return err
	}
	if it.Last() {
		if len(it.Key()) < len(a.g.byTime)+timeLen {
			it.Close()
			return fmt.Errorf("%w: %s: by-time index key %x too short", ErrCorrupt, a.g.s.sp, it.Key())
		}
		a.observed = max(a.observed, decodeTime(it.Key()[len(a.g.byTime):]))
	}
	if err := it.Close(); err != nil {
		return err
	}
	return a.advance(b)
}

// advance expires, in b, the segments that observed has expired.
func (a *restoreApplier) advance(b *pebble.Batch) error {
	live := a.g.liveSegment(a.observed)
	if live <= a.live {
		return nil
	}
	a.live = live
	return a.g.expireRange(b, live)
}

func (a *restoreApplier) apply(b *pebble.Batch, rec ChangelogRecord) (bool, error) {
	t, byKey, byTime, err := a.entry(rec.Key)
	if err != nil {
		return false, err
	}
	if t > a.observed {
		a.observed = t
		if err := a.advance(b); err != nil {
			return false, err
		}
	}
	if a.g.segment(t) < a.live {
		return false, nil
	}
	if rec.Value == nil {
		if err := b.Delete(byKey, nil); err != nil {
			return false, err
		}
		return true, b.Delete(byTime, nil)
	}
	if err := b.Set(byKey, rec.Value, nil); err != nil {
		return false, err
	}
	return true, b.Set(byTime, rec.Value, nil)
}

func (a *restoreApplier) flushing(b *pebble.Batch) error {
	return b.Set(a.g.layoutKey, a.g.layout, nil)
}

// restored moves the handle's expiry point to where the restore left it.
func (a *restoreApplier) restored() {
	a.g.liveFrom, a.g.committedLiveFrom = a.live, a.live
}

// restoreSegmented is RestoreWindows and RestoreSessions: Restore, with a
// restoreApplier for entry's decoding, under cfg (defaultRestoreConfig but
// in tests).
func restoreSegmented(ctx context.Context, g *segmented, entry func([]byte) (int64, []byte, []byte, error),
	src Source, opts RestoreOptions, cfg restoreConfig) (RestoreResult, error) {
	a := &restoreApplier{g: g, entry: entry, observed: math.MinInt64, live: math.MinInt64}
	if opts.StreamTime != 0 {
		a.observed = opts.StreamTime
	}
	cfg.applier = a
	res, err := restore(ctx, g.s, src, opts.Report, cfg)
	if err != nil {
		return res, err
	}
	a.restored()
	return res, nil
}
