package topology

// aggregateSession folds a record (key, value, timestamp ts) into key's
// sessions at stream time st, as Kafka Streams'
// KStreamSessionWindowAggregate.process does:
//
//  1. find key's sessions ending at or after ts - gap and starting at or
//     before ts + gap (by ascending end); the record's session is [ts, ts]
//     widened to cover them all, its aggregate the initializer's value
//     merged with theirs in that order;
//  2. if that session ends before st - grace - gap it is closed: the record
//     changes nothing and yields a LateRecordError;
//  3. unless the session is exactly [ts, ts], every session found is removed
//     and its tombstone forwarded (nil value, old aggregate, timestamp = its
//     end) — including a session the record merely falls into, which KS
//     removes and writes back with the new aggregate;
//  4. the aggregator folds the value in, the session is written, and its
//     aggregate forwarded with timestamp = the session's end.
func aggregateSession(w SessionWindows, s SessionStore, a aggregation, key, value any, ts, st int64) ([]WindowResult, error) {
	gap := w.Gap.Milliseconds()
	closeTime := st - w.Grace.Milliseconds() - gap
	type session struct {
		w     Window
		value any
	}
	var found []session
	start, end := ts, ts
	agg := a.init()
	var merr error
	err := s.FindSessions(key, fromMillis(ts-gap), fromMillis(ts+gap), func(sw Window, v any) error {
		found = append(found, session{sw, v})
		if agg, merr = a.merge(key, agg, v); merr != nil {
			return merr
		}
		start, end = min(start, toMillis(sw.Start)), max(end, toMillis(sw.End))
		return nil
	})
	if err != nil {
		return nil, err
	}
	merged := windowOf(start, end)
	if end < closeTime {
		return nil, lateError(ts, st, merged)
	}
	var out []WindowResult
	if start != ts || end != ts {
		for _, f := range found {
			if err := s.Remove(key, f.w); err != nil {
				return nil, err
			}
			out = append(out, WindowResult{Key: Windowed{Key: key, Window: f.w}, Old: f.value, Timestamp: f.w.End})
		}
	}
	agg, err = a.add(key, value, agg)
	if err != nil {
		return nil, err
	}
	if agg == nil {
		err = s.Remove(key, merged) // KS: putting null removes the session
	} else {
		err = s.Put(key, merged, agg)
	}
	if err != nil {
		return nil, err
	}
	return append(out, WindowResult{Key: Windowed{Key: key, Window: merged}, Value: agg, Timestamp: merged.End}), nil
}

// closedThrough is the largest session end that is closed at stream time st:
// a session is closed once end < st - grace - gap.
func (w SessionWindows) closedThrough(st int64) int64 {
	return st - w.Grace.Milliseconds() - w.Gap.Milliseconds() - 1
}
