package topology

// aggregateTime folds a record (key, value, timestamp ts) into its tumbling
// or hopping windows at stream time st, as Kafka Streams'
// KStreamWindowAggregate.process does:
//
//   - every window of WindowsFor(ts) that is still open (end > st - grace) is
//     read from s, started from the initializer if absent, folded with the
//     aggregator and written back with timestamp max(ts, stored timestamp);
//     one result per updated window, by ascending start, with the old
//     aggregate (the initializer's value for a new window);
//   - closed windows are skipped; a hopping record in some closed and some
//     open windows still updates the open ones;
//   - a record whose windows are all closed changes nothing and yields a
//     LateRecordError.
//
// An aggregate of nil deletes the window (KS's ValueAndTimestamp.make(null)).
func aggregateTime(w TimeWindows, s WindowStore, a aggregation, key, value any, ts, st int64) ([]WindowResult, error) {
	closeTime := st - w.Grace.Milliseconds()
	size := w.Size.Milliseconds()
	var out []WindowResult
	var last int64
	for _, start := range w.startsFor(ts) {
		end := start + size
		last = start
		if end <= closeTime {
			continue // KS: "Skipping record for expired window"
		}
		stored, err := s.Get(key, fromMillis(start))
		if err != nil {
			return nil, err
		}
		old, newTs := a.init(), ts
		if stored != nil {
			vt, err := asTimestamped(s.Name(), stored)
			if err != nil {
				return nil, err
			}
			old, newTs = vt.Value, max(ts, toMillis(vt.Timestamp))
		}
		agg, err := a.add(key, value, old)
		if err != nil {
			return nil, err
		}
		var put any
		if agg != nil {
			put = ValueAndTimestamp{Value: agg, Timestamp: fromMillis(newTs)}
		}
		if err := s.Put(key, fromMillis(start), put); err != nil {
			return nil, err
		}
		out = append(out, WindowResult{Key: Windowed{Key: key, Window: windowOf(start, end)}, Value: agg, Old: old, Timestamp: fromMillis(newTs)})
	}
	if len(out) == 0 {
		return nil, lateError(ts, st, windowOf(last, last+size))
	}
	return out, nil
}

// closedThrough is the largest window end that is closed at stream time st:
// a time window is closed once end <= st - grace.
func (w TimeWindows) closedThrough(st int64) int64 { return st - w.Grace.Milliseconds() }
