package topology

import (
	"errors"
	"fmt"
	"time"
)

// Windows is a window definition for GroupedStream.WindowedBy: TimeWindows,
// SlidingWindows or SessionWindows.
type Windows interface {
	// Validate reports a definition Kafka Streams would refuse, naming the field.
	Validate() error
	// GracePeriod is how long after its end a window still accepts records.
	GracePeriod() time.Duration
	windows() // only this package's types
}

// TimeWindows are fixed-size windows aligned to the epoch, Kafka Streams'
// TimeWindows: tumbling when Advance is zero or equals Size, hopping (and
// overlapping) when Advance is smaller. A window is [start, start+Size), its
// start a multiple of Advance.
//
// A window is closed once stream time >= end + Grace (KS's
// KStreamWindowAggregate updates a window only while end > streamTime - grace);
// records for closed windows are dropped as late. Grace zero is KS's
// TimeWindows.ofSizeWithNoGrace.
type TimeWindows struct {
	Size    time.Duration // required, > 0
	Advance time.Duration // 0 means Size (tumbling); else 0 < Advance <= Size
	Grace   time.Duration // >= 0
}

// SlidingWindows are Kafka Streams' SlidingWindows (KIP-450, 2.7+): windows
// of a fixed TimeDifference that slide with the records. Each record at t
// has a left window [t-TimeDifference, t] and, if some record of its key
// falls in (t, t+1+TimeDifference], a right window
// [t+1, t+1+TimeDifference]; both ends are inclusive. Records earlier than
// TimeDifference share the window [0, TimeDifference], as in KS.
//
// A window is closed once stream time > end + Grace (KS's
// KStreamSlidingWindowAggregate updates a window while end >= streamTime -
// grace); a record is dropped as late when t + TimeDifference < streamTime -
// Grace.
type SlidingWindows struct {
	TimeDifference time.Duration // required, > 0
	Grace          time.Duration // >= 0
}

// SessionWindows group a key's records into sessions of activity separated
// by more than Gap of inactivity, Kafka Streams' SessionWindows. A session is
// [first record, last record], both inclusive; a record within Gap of
// sessions merges them.
//
// A session is closed once stream time > end + Gap + Grace (KS's
// KStreamSessionWindowAggregate drops a record when the session it would
// form ends before streamTime - grace - gap).
type SessionWindows struct {
	Gap   time.Duration // required, > 0: KS's inactivity gap
	Grace time.Duration // >= 0
}

func (TimeWindows) windows()    {}
func (SlidingWindows) windows() {}
func (SessionWindows) windows() {}

// GracePeriod implements Windows.
func (w TimeWindows) GracePeriod() time.Duration { return w.Grace }

// GracePeriod implements Windows.
func (w SlidingWindows) GracePeriod() time.Duration { return w.Grace }

// GracePeriod implements Windows.
func (w SessionWindows) GracePeriod() time.Duration { return w.Grace }

// Validate implements Windows, with Kafka Streams' rules (TimeWindows'
// constructor and advanceBy). Windows work in milliseconds, so durations
// must be whole milliseconds.
func (w TimeWindows) Validate() error {
	var errs []error
	if w.Size <= 0 {
		errs = append(errs, fmt.Errorf("TimeWindows: Size must be positive, got %v", w.Size))
	}
	if w.Advance < 0 || w.Advance > w.Size {
		errs = append(errs, fmt.Errorf("TimeWindows: Advance must be in (0, Size=%v], or 0 for tumbling windows, got %v", w.Size, w.Advance))
	}
	if w.Grace < 0 {
		errs = append(errs, fmt.Errorf("TimeWindows: Grace must not be negative, got %v", w.Grace))
	}
	errs = append(errs, wholeMillis("TimeWindows", "Size", w.Size), wholeMillis("TimeWindows", "Advance", w.Advance),
		wholeMillis("TimeWindows", "Grace", w.Grace))
	return errors.Join(errs...)
}

// Validate implements Windows (KS's SlidingWindows.ofTimeDifferenceAndGrace
// accepts a zero difference; we refuse it, since a window [t, t] aggregates
// only records with equal timestamps and is never what was meant).
func (w SlidingWindows) Validate() error {
	var errs []error
	if w.TimeDifference <= 0 {
		errs = append(errs, fmt.Errorf("SlidingWindows: TimeDifference must be positive, got %v", w.TimeDifference))
	}
	if w.Grace < 0 {
		errs = append(errs, fmt.Errorf("SlidingWindows: Grace must not be negative, got %v", w.Grace))
	}
	errs = append(errs, wholeMillis("SlidingWindows", "TimeDifference", w.TimeDifference),
		wholeMillis("SlidingWindows", "Grace", w.Grace))
	return errors.Join(errs...)
}

// Validate implements Windows, with KS's rules ("Gap time cannot be zero or
// negative", "Grace period must not be negative").
func (w SessionWindows) Validate() error {
	var errs []error
	if w.Gap <= 0 {
		errs = append(errs, fmt.Errorf("SessionWindows: Gap must be positive, got %v", w.Gap))
	}
	if w.Grace < 0 {
		errs = append(errs, fmt.Errorf("SessionWindows: Grace must not be negative, got %v", w.Grace))
	}
	errs = append(errs, wholeMillis("SessionWindows", "Gap", w.Gap), wholeMillis("SessionWindows", "Grace", w.Grace))
	return errors.Join(errs...)
}

func wholeMillis(typ, field string, d time.Duration) error {
	if d%time.Millisecond != 0 {
		return fmt.Errorf("%s: %s must be whole milliseconds, got %v", typ, field, d)
	}
	return nil
}

// advance is the hop in milliseconds: Size for tumbling windows.
func (w TimeWindows) advance() int64 {
	if w.Advance == 0 {
		return w.Size.Milliseconds()
	}
	return w.Advance.Milliseconds()
}

// WindowsFor returns every window [start, start+Size) containing ts, by
// ascending start, as Kafka Streams' TimeWindows.windowsFor: starts are
// multiples of Advance from the epoch, and windows that would start before
// the epoch are left out. ts must not be negative (see CheckTimestamp).
func (w TimeWindows) WindowsFor(ts time.Time) []Window {
	var out []Window
	for _, s := range w.startsFor(toMillis(ts)) {
		out = append(out, Window{Start: fromMillis(s), End: fromMillis(s + w.Size.Milliseconds())})
	}
	return out
}

// startsFor is WindowsFor in milliseconds: KS's
// windowStart = (max(0, ts - size + advance) / advance) * advance, then every
// advance up to ts.
func (w TimeWindows) startsFor(ts int64) []int64 {
	size, adv := w.Size.Milliseconds(), w.advance()
	var out []int64
	for start := (max(0, ts-size+adv) / adv) * adv; start <= ts; start += adv {
		out = append(out, start)
	}
	return out
}

// IsClosed reports whether a time window ending at end is closed at stream
// time st: st >= end + Grace. The boundary is KS's: KStreamWindowAggregate
// updates a window only while windowEnd > streamTime - grace, and emits its
// final result once windowEnd <= streamTime - grace.
func (w TimeWindows) IsClosed(end, st time.Time) bool {
	return toMillis(end)+w.Grace.Milliseconds() <= toMillis(st)
}

// IsClosed reports whether a sliding window ending at end (inclusive) is
// closed at stream time st: st > end + Grace (KStreamSlidingWindowAggregate
// updates a window while windowEnd >= streamTime - grace).
func (w SlidingWindows) IsClosed(end, st time.Time) bool {
	return toMillis(end)+w.Grace.Milliseconds() < toMillis(st)
}

// IsClosed reports whether a session ending at end (inclusive) is closed at
// stream time st: st > end + Gap + Grace (KStreamSessionWindowAggregate drops
// a record whose session ends before streamTime - grace - gap, and emits a
// session's final result once its end is below that).
func (w SessionWindows) IsClosed(end, st time.Time) bool {
	return toMillis(end)+w.Gap.Milliseconds()+w.Grace.Milliseconds() < toMillis(st)
}

// ErrNegativeTimestamp is wrapped by the error a windowed aggregation returns
// for a record with a negative timestamp: windows start at the epoch, so the
// record belongs to none. The runner hands it to the error policy
// (dead-letter, skip or fail), as Kafka Streams' default
// FailOnInvalidTimestamp extractor refuses such records.
var ErrNegativeTimestamp = errors.New("negative record timestamp")

// CheckTimestamp returns an error wrapping ErrNegativeTimestamp if ts is
// before the epoch, and nil otherwise.
func CheckTimestamp(ts time.Time) error {
	if toMillis(ts) < 0 {
		return fmt.Errorf("%w: %d ms; windowed aggregations need timestamps at or after the epoch", ErrNegativeTimestamp, toMillis(ts))
	}
	return nil
}

// ErrLateRecord is wrapped by the error a windowed aggregation returns for a
// record that every window it belongs to has already closed: Kafka Streams
// drops it ("Skipping record for expired window") and counts it in
// dropped-records. The record changed nothing; the runner counts it, or
// dead-letters it with class "late", and must not fail the task for it.
var ErrLateRecord = errors.New("late record")

// LateRecordError says why a record was dropped as late.
type LateRecordError struct {
	Timestamp  time.Time // the record's
	StreamTime time.Time // when it arrived
	Window     Window    // the latest window it belonged to (for sessions: the session it would have formed)
}

func (e *LateRecordError) Error() string {
	return fmt.Sprintf("late record: timestamp %d, window %v closed at stream time %d",
		toMillis(e.Timestamp), e.Window, toMillis(e.StreamTime))
}

// Unwrap makes errors.Is(err, ErrLateRecord) hold.
func (e *LateRecordError) Unwrap() error { return ErrLateRecord }
