package verify

import (
	"fmt"
	"sort"
	"strconv"
)

// The join checks: what JoinTopology's two join outputs must hold after a
// run. Check runs them when the output topics exist, as it does the windowed
// one, and computes every expected record from the input topics alone.
//
// Stream-table (JoinOutputTopic). A task reads T[p] beside RefTopic[p] and
// takes the record with the lowest timestamp first, waiting for a partition
// whose records are on their way (max.task.idle.ms); Generate writes every
// ref, at timestamp 0, before the first record of T. So each record of T[p]
// joins what RefTopic[p] holds at its end for its key: the last value, or
// nothing after a tombstone or with no record (null). Check proves, per key
// and exactly as for the aggregates (checkPerKey: in input order, one
// output per input record, interleaved per input partition for a spread
// key), that JoinOutputTopic holds "<value>|<ref>" or "<value>|null" for
// each input record; that every record of T lies above every ref record of
// its partition in time (else which ref it joins would depend on timing,
// and the check says so instead of guessing); and that the group's committed
// offsets cover RefTopic too (the runner commits a follower partition's
// position like its leader's).
//
// Stream-stream (WindowedJoinOutputTopic). The join runs in T[p]'s task, on
// T[p]'s records in offset order; the task's stream time st after record i
// is the largest timestamp up to i. Left is every record, right the ones
// with an even value, negated. Each side's buffer keeps a record at t only
// while t >= st - retention + 1, retention = JoinBefore + JoinAfter +
// JoinGrace + 1ms (a record already expired on arrival is not buffered);
// nothing is dropped as late otherwise (an inner join emits nothing for an
// unmatched record). A pair (l, r) of one key and one partition with r's
// time in [l - JoinBefore, l + JoinAfter] is emitted once, when the later of
// the two is processed, if the earlier one is still buffered then: its time
// >= st(later) - retention + 1 (for a record paired with itself, st after
// it). Its value is "<l>,<-r>" and its timestamp the later of the two
// records' times. Check computes that multiset of pairs by brute force
// (per key, the right records sorted by time, each left record's range
// searched) and proves the output holds it exactly, per key, in the key's
// murmur2 partition, timestamps included. It does not check the order of a
// key's pairs.

// JoinReport is what Check found of the join outputs.
type JoinReport struct {
	// Table is true when JoinOutputTopic was checked; WithRef and WithNull
	// count its expected records that joined a ref and null.
	Table             bool
	WithRef, WithNull int
	// Windowed is true when WindowedJoinOutputTopic was checked; Pairs
	// counts its expected records, Self those pairing a record with its own
	// right copy.
	Windowed    bool
	Pairs, Self int
	// Expired counts the pairs within the join window that are not
	// emitted: the earlier record had left its buffer when the later came.
	Expired int
	// Results is the number of committed records in
	// WindowedJoinOutputTopic.
	Results int64
}

func (j *JoinReport) String() string {
	var s string
	if j.Table {
		s = fmt.Sprintf("stream-table %d exact (%d with a ref, %d with null)", j.WithRef+j.WithNull, j.WithRef, j.WithNull)
	}
	if j.Windowed {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("stream-stream %d pairs exact (%d self, %d expired unpaired)", j.Pairs, j.Self, j.Expired)
	}
	return s
}

// joinRetention is how long, in stream time, the stream-stream join's
// buffers keep a record.
func joinRetention() int64 { return (JoinBefore + JoinAfter + JoinGrace).Milliseconds() + 1 }

// refTables reads RefTopic as the runner's tasks hold it once every ref is
// processed: per partition, each key's last value, absent after a
// tombstone. It also returns each partition's largest ref timestamp (-1
// with none).
func (s *snapshot) refTables() (tables []map[string]string, latest []int64) {
	topic := RefTopic(s.input)
	n := s.counts[topic]
	tables, latest = make([]map[string]string, n), make([]int64, n)
	for p := range n {
		tables[p], latest[p] = map[string]string{}, -1
		for _, rec := range s.records[topicPartition{topic, p}] {
			latest[p] = max(latest[p], rec.ts)
			switch {
			case rec.nilKey:
			case rec.nilValue:
				delete(tables[p], rec.key)
			default:
				tables[p][rec.key] = rec.value
			}
		}
	}
	return tables, latest
}

// checkTableJoin checks JoinOutputTopic, if it exists, and fills jr.
func (s *snapshot) checkTableJoin(r *Report, jr *JoinReport, keys map[string]*keyState, keyOrder []string,
	violate func(string, ...any)) {
	topic, refTopic := JoinOutputTopic(s.input), RefTopic(s.input)
	n, ok := s.counts[topic]
	if !ok {
		return
	}
	jr.Table = true
	nRef, ok := s.counts[refTopic]
	if !ok {
		violate("%s: topic does not exist, but %s does: the stream-table join read no table", refTopic, topic)
		return
	}
	if nIn := s.counts[s.input]; nRef != nIn {
		violate("%s: %d partitions, %s has %d: a table is read beside its stream partition by partition", refTopic, nRef, s.input, nIn)
		return
	}
	var latest []int64
	s.refs, latest = s.refTables()
	for p := range s.counts[s.input] {
		for _, rec := range s.records[topicPartition{s.input, p}] {
			if rec.ts <= latest[p] {
				violate("%s[%d]: record at offset %d has timestamp %d, not above %s[%d]'s latest ref at %d: "+
					"which ref it joins depends on timing, so the stream-table join is not checked exactly",
					s.input, p, rec.offset, rec.ts, refTopic, p, latest[p])
				break
			}
		}
	}

	got, total := s.observedOf(topic, n, violate, func(rec record) string { return rec.value })
	r.Outputs[topic] += total
	s.checkPerKey(topic, suffixJoin, got, keys, keyOrder, violate)
	for _, key := range keyOrder {
		for _, ref := range keys[key].refs {
			if _, ok := s.refs[ref.partition][key]; ok {
				jr.WithRef++
			} else {
				jr.WithNull++
			}
		}
	}

	// The runner commits the table partitions' positions with the stream's.
	for p := range nRef {
		e := s.ends[topicPartition{refTopic, p}]
		c, ok := s.refCommitted[p]
		switch {
		case (!ok || c < 0) && e.lso > e.start:
			violate("group %s: %s[%d]: no committed offset; its end is %d", s.group, refTopic, p, e.lso)
		case ok && c >= 0 && c != e.lso:
			violate("group %s: %s[%d]: committed offset %d, want its end %d", s.group, refTopic, p, c, e.lso)
		}
	}
}

// refText is what a record of key in input partition p joins: its ref, or
// "null".
// observedOf reads topic's n partitions as observed records, each valued by
// text; a record with a null key is a violation and left out. total counts
// every record read, null keys included.
func (s *snapshot) observedOf(topic string, n int32, violate func(string, ...any), text func(record) string) (got [][]observed, total int64) {
	got = make([][]observed, n)
	for q := range n {
		recs := s.records[topicPartition{topic, q}]
		got[q] = make([]observed, 0, len(recs))
		for _, rec := range recs {
			if rec.nilKey {
				violate("%s[%d]: record at offset %d has a null key", topic, q, rec.offset)
				continue
			}
			got[q] = append(got[q], observed{q, rec.offset, rec.key, false, text(rec)})
		}
		total += int64(len(recs))
	}
	return got, total
}

func (s *snapshot) refText(p int32, key string) string {
	if v, ok := s.refs[p][key]; ok {
		return v
	}
	return "null"
}

// joinRecord is one record of T as the stream-stream join sees it.
type joinRecord struct {
	index  int   // in its partition's offset order
	offset int64 //
	ts, st int64 // its timestamp, and the task's stream time after it
	value  int64
}

// expectPairs returns the stream-stream join's expected records per key,
// each answering the input record whose processing emits it.
func (s *snapshot) expectPairs(jr *JoinReport) map[string][]expected {
	before, after, retention := JoinBefore.Milliseconds(), JoinAfter.Milliseconds(), joinRetention()
	want := map[string][]expected{}
	for p := range s.counts[s.input] {
		byKey := map[string][]joinRecord{}
		var keyOrder []string
		st := int64(-1)
		for i, rec := range s.records[topicPartition{s.input, p}] {
			v, err := parseDecimal(rec.value)
			if err != nil || rec.ts < 0 {
				continue
			}
			st = max(st, rec.ts)
			if rec.nilKey {
				continue
			}
			if _, ok := byKey[rec.key]; !ok {
				keyOrder = append(keyOrder, rec.key)
			}
			byKey[rec.key] = append(byKey[rec.key], joinRecord{i, rec.offset, rec.ts, st, v})
		}
		for _, key := range keyOrder {
			recs := byKey[key]
			var right []joinRecord
			for _, x := range recs {
				if joinsRight(x.value) {
					right = append(right, x)
				}
			}
			sort.SliceStable(right, func(i, j int) bool { return right[i].ts < right[j].ts })
			for _, l := range recs {
				from, to := max(0, l.ts-before), l.ts+after
				for k := sort.Search(len(right), func(i int) bool { return right[i].ts >= from }); k < len(right) && right[k].ts <= to; k++ {
					rt := right[k]
					earlier, later := l, rt
					if rt.index < l.index {
						earlier, later = rt, l
					}
					if earlier.ts < later.st-retention+1 {
						jr.Expired++ // left its buffer before the later one came
						continue
					}
					if rt.index == l.index {
						jr.Self++
					}
					jr.Pairs++
					text := formatDecimal(l.value) + "," + formatDecimal(-rt.value) + "@" + strconv.FormatInt(max(l.ts, rt.ts), 10)
					want[key] = append(want[key], expected{p, later.offset, text})
				}
			}
		}
	}
	return want
}

// checkStreamJoin checks WindowedJoinOutputTopic, if it exists, and fills
// jr.
func (s *snapshot) checkStreamJoin(r *Report, jr *JoinReport, keys map[string]*keyState, keyOrder []string,
	violate func(string, ...any)) {
	topic := WindowedJoinOutputTopic(s.input)
	n, ok := s.counts[topic]
	if !ok {
		return
	}
	jr.Windowed = true
	want := s.expectPairs(jr)
	got, total := s.observedOf(topic, n, violate, func(rec record) string { return rec.value + "@" + strconv.FormatInt(rec.ts, 10) })
	jr.Results += total
	keyed, _ := byKey(got)
	s.checkPlacement(topic, n, keyed, keyOrder, violate)
	for _, key := range keyOrder {
		var recs []observed
		if kr := keyed[key]; kr != nil {
			recs = kr.recs
		}
		if msg, bad := describeMultiset(fmt.Sprintf("%s: key %q", topic, key), recs, [][]expected{want[key]}); bad {
			violate("%s", msg)
		}
	}
	s.checkUnknown(topic, keyed, keys, violate)
}

// checkJoins runs both join checks and fills r.Joins when either output
// exists.
func (s *snapshot) checkJoins(r *Report, keys map[string]*keyState, keyOrder []string, violate func(string, ...any)) {
	jr := &JoinReport{}
	s.checkTableJoin(r, jr, keys, keyOrder, violate)
	s.checkStreamJoin(r, jr, keys, keyOrder, violate)
	if jr.Table || jr.Windowed {
		r.Joins = jr
	}
}
