package topology

import (
	"fmt"
	"time"
)

// aggregateSliding folds a record (key, value, timestamp ts) into key's
// sliding windows at stream time st, porting Kafka Streams'
// KStreamSlidingWindowAggregate (processReverse, the path KS takes with its
// built-in stores, and processEarly) step for step, so that the windows it
// creates, the order of its results and their timestamps are KS's:
//
//   - a record is late, and changes nothing, when ts + timeDifference <
//     st - grace;
//   - the record's left window [ts - d, ts] is created (from the previous
//     record's aggregate when that record falls in it) or updated; every
//     existing window containing ts is updated; the right window
//     [ts + 1, ts + 1 + d] is created when a later record falls in it, and
//     so is the previous record's right window when ts falls in that;
//   - windows are updated only while open (end >= st - grace);
//   - records before d (the windows would start before the epoch) all go to
//     the window [0, d].
//
// Store entries are ValueAndTimestamp keyed by window start; a window's
// timestamp is the largest timestamp of its records.
func aggregateSliding(w SlidingWindows, s WindowStore, a aggregation, key, value any, ts, st int64) ([]WindowResult, error) {
	sl := &slidingStep{s: s, a: a, key: key, value: value, ts: ts,
		td: w.TimeDifference.Milliseconds(), closeTime: st - w.Grace.Milliseconds()}
	if ts+sl.td < sl.closeTime {
		return nil, lateError(ts, st, windowOf(ts, ts+sl.td))
	}
	var err error
	if ts < sl.td {
		err = sl.processEarly()
	} else {
		err = sl.processReverse()
	}
	if err != nil {
		return nil, err
	}
	return sl.out, nil
}

// closedThrough is the largest sliding window end that is closed at stream
// time st: a sliding window is closed once end < st - grace.
func (w SlidingWindows) closedThrough(st int64) int64 { return st - w.Grace.Milliseconds() - 1 }

// slidingStep is one record's pass over its key's windows.
type slidingStep struct {
	s          WindowStore
	a          aggregation
	key, value any
	ts, td     int64
	closeTime  int64
	out        []WindowResult
}

type slidingWindow struct {
	start int64
	vt    ValueAndTimestamp
}

// fetch returns key's windows with start in [from, to], ascending.
func (sl *slidingStep) fetch(from, to int64) ([]slidingWindow, error) {
	var ws []slidingWindow
	err := sl.s.Fetch(sl.key, fromMillis(from), fromMillis(to), func(start time.Time, v any) error {
		vt, err := asTimestamped(sl.s.Name(), v)
		if err != nil {
			return err
		}
		ws = append(ws, slidingWindow{toMillis(start), vt})
		return nil
	})
	return ws, err
}

// processReverse is KS's processReverse: it walks key's windows with start
// in [ts - 2d, ts + 1] from the latest down.
func (sl *slidingStep) processReverse() error {
	ts, td := sl.ts, sl.td
	ws, err := sl.fetch(max(0, ts-2*td), ts+1)
	if err != nil {
		return err
	}
	starts := map[int64]bool{}
	var leftAgg, rightAgg *ValueAndTimestamp
	leftCreated, rightCreated := false, false
	var prev *int64
	for i := len(ws) - 1; i >= 0; i-- {
		win := ws[i]
		starts[win.start] = true
		end := win.start + td
		maxTs := toMillis(win.vt.Timestamp)
		switch {
		case win.start == ts+1:
			rightCreated = true
		case end > ts:
			if rightAgg == nil {
				rightAgg = &win.vt
			}
			if err := sl.update(win.start, end, &win.vt); err != nil {
				return err
			}
		case end == ts:
			leftCreated = true
			if err := sl.update(win.start, end, &win.vt); err != nil {
				return err
			}
			if maxTs >= ts {
				return nil // KS returns here: nothing to create
			}
			prev = &maxTs
		default: // end < ts
			leftAgg, prev = &win.vt, &maxTs
			i = -1 // KS breaks out of the walk
		}
	}
	return sl.createWindows(starts, rightAgg, leftAgg, leftCreated, rightCreated, prev)
}

// processEarly is KS's processEarly, for 0 <= ts < d: such records share the
// window [0, d] instead of left windows starting before the epoch.
func (sl *slidingStep) processEarly() error {
	ts, td := sl.ts, sl.td
	ws, err := sl.fetch(0, ts+1)
	if err != nil {
		return err
	}
	starts := map[int64]bool{}
	var combined, rightAgg *ValueAndTimestamp
	rightCreated := false
	var prev *int64
	for i := range ws {
		win := ws[i]
		starts[win.start] = true
		maxTs := toMillis(win.vt.Timestamp)
		switch {
		case win.start == 0:
			combined = &ws[i].vt
			if maxTs < ts {
				prev = &maxTs
			}
		case win.start <= ts:
			rightAgg = &ws[i].vt
			if err := sl.update(win.start, win.start+td, &win.vt); err != nil {
				return err
			}
		case win.start == ts+1:
			rightCreated = true
		default:
			return fmt.Errorf("sliding windows: unexpected window starting at %d for a record at %d", win.start, ts)
		}
	}
	if rightAgg == nil && combined != nil && toMillis(combined.Timestamp) > ts {
		rightAgg = combined
	}
	if !rightCreated && rightAgg != nil && toMillis(rightAgg.Timestamp) > ts {
		if err := sl.createRight(*rightAgg); err != nil {
			return err
		}
	}
	if prev != nil && !starts[*prev+1] {
		if err := sl.update(*prev+1, *prev+1+td, &ValueAndTimestamp{Value: sl.a.init(), Timestamp: fromMillis(ts)}); err != nil {
			return err
		}
	}
	if combined == nil {
		return sl.update(0, td, &ValueAndTimestamp{Value: sl.a.init(), Timestamp: fromMillis(ts)})
	}
	return sl.update(0, td, combined)
}

// createWindows is KS's createWindows: the previous record's right window,
// the record's left window and its right window, as needed.
func (sl *slidingStep) createWindows(starts map[int64]bool, rightAgg, leftAgg *ValueAndTimestamp,
	leftCreated, rightCreated bool, prev *int64) error {
	ts, td := sl.ts, sl.td
	if prev != nil {
		prevRight := *prev + 1
		if !starts[prevRight] && prevRight+td >= ts {
			if err := sl.update(prevRight, prevRight+td, &ValueAndTimestamp{Value: sl.a.init(), Timestamp: fromMillis(ts)}); err != nil {
				return err
			}
		}
	}
	if !leftCreated {
		vt := ValueAndTimestamp{Value: sl.a.init(), Timestamp: fromMillis(ts)}
		if prev != nil && ts-td <= *prev {
			vt.Value = leftAgg.Value
		}
		if err := sl.update(ts-td, ts, &vt); err != nil {
			return err
		}
	}
	if !rightCreated && rightAgg != nil && toMillis(rightAgg.Timestamp) > ts {
		return sl.createRight(*rightAgg)
	}
	return nil
}

// createRight is KS's createCurrentRecordRightWindow: the record's right
// window starts with the aggregate of the later records found, unchanged.
func (sl *slidingStep) createRight(agg ValueAndTimestamp) error {
	start := sl.ts + 1
	if err := sl.s.Put(sl.key, fromMillis(start), agg); err != nil {
		return err
	}
	sl.out = append(sl.out, WindowResult{Key: Windowed{Key: sl.key, Window: windowOf(start, start+sl.td)},
		Value: agg.Value, Timestamp: agg.Timestamp})
	return nil
}

// update is KS's updateWindowAndForward: fold the record into the window
// [start, end] holding vt, if the window is still open.
func (sl *slidingStep) update(start, end int64, vt *ValueAndTimestamp) error {
	if end < sl.closeTime {
		return nil // KS: "Skipping record for expired window"
	}
	old := vt.Value
	agg, err := sl.a.add(sl.key, sl.value, old)
	if err != nil {
		return err
	}
	newTs := sl.ts
	if old != nil {
		newTs = max(sl.ts, toMillis(vt.Timestamp))
	}
	var put any
	if agg != nil {
		put = ValueAndTimestamp{Value: agg, Timestamp: fromMillis(newTs)}
	}
	if err := sl.s.Put(sl.key, fromMillis(start), put); err != nil {
		return err
	}
	sl.out = append(sl.out, WindowResult{Key: Windowed{Key: sl.key, Window: windowOf(start, end)},
		Value: agg, Old: old, Timestamp: fromMillis(newTs)})
	return nil
}
