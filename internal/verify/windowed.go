package verify

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
)

// The windowed check: what WindowedOutputTopic must hold after a run.
//
// One task processes each input partition, in offset order, and its stream
// time is the largest timestamp among the partition's records it has
// processed (a record whose value does not deserialize, or whose timestamp
// is negative, goes to the error policy before it moves stream time). For
// each keyed record at time ts, with stream time st after it:
//
//   - its window is [ts - ts%size, that + size);
//   - it is late, and changes nothing, if the window's end + grace <= st;
//   - otherwise it adds itself to the window's count and sum, and every
//     window of the task whose end + grace <= st closes: its final result is
//     emitted then, once.
//
// Check replays that per input partition and proves that T-win holds exactly
// one record per closed window, with its exact count and sum, none for a
// window still open at the end of its partition's input, in the partition
// murmur2 of the windowed key gives, and a key's windows in ascending order
// within an output partition. A key spread over several input partitions has
// a window per input partition (each task aggregates its own records): its
// results are compared as a multiset. Since the group's committed offsets
// cover the input (checked apart), every record was processed.

// WindowedReport is what Check found of the windowed output.
type WindowedReport struct {
	// Closed is the number of windows the input's stream time closed: each
	// has exactly one result.
	Closed int
	// Open is the number of windows still open at the end of their input
	// partition: none has a result.
	Open int
	// Late is the number of input records dropped as late.
	Late int
	// Results is the number of committed records in the windowed output.
	Results int64
}

// winKey names one window of one key.
type winKey struct {
	key   string
	start int64
}

// winResult is an expected final result: the input partition whose task
// emits it, and the input offset of the record whose stream time closed it.
type winResult struct {
	partition int32
	offset    int64
	value     CountSum
}

// expectWindows replays every input partition's task and returns the final
// results due per window, the windows still open (by the key and start, with
// the partition) and the count of late records.
func (s *snapshot) expectWindows() (closed map[winKey][]winResult, open map[winKey][]int32, late int) {
	size, grace := WindowSize.Milliseconds(), WindowGrace.Milliseconds()
	closed, open = map[winKey][]winResult{}, map[winKey][]int32{}
	for p := range s.counts[s.input] {
		pending := map[int64]map[string]*CountSum{} // window start -> key -> aggregate
		var starts []int64                          // of pending, ascending
		st := int64(-1)
		for _, rec := range s.records[topicPartition{s.input, p}] {
			v, err := parseDecimal(rec.value)
			if err != nil || rec.ts < 0 {
				continue
			}
			st = max(st, rec.ts)
			if rec.nilKey {
				continue
			}
			start := rec.ts - rec.ts%size
			if start+size+grace <= st {
				late++
				continue
			}
			byKey := pending[start]
			if byKey == nil {
				byKey = map[string]*CountSum{}
				pending[start] = byKey
				i, _ := slices.BinarySearch(starts, start)
				starts = slices.Insert(starts, i, start)
			}
			if agg := byKey[rec.key]; agg != nil {
				agg.Count, agg.Sum = agg.Count+1, agg.Sum+v
			} else {
				byKey[rec.key] = &CountSum{1, v}
			}
			// Close what st closed: windows of one size end in start order.
			for len(starts) > 0 && starts[0]+size+grace <= st {
				for key, agg := range pending[starts[0]] {
					w := winKey{key, starts[0]}
					closed[w] = append(closed[w], winResult{p, rec.offset, *agg})
				}
				delete(pending, starts[0])
				starts = starts[1:]
			}
		}
		for start, byKey := range pending {
			for key := range byKey {
				w := winKey{key, start}
				open[w] = append(open[w], p)
			}
		}
	}
	return closed, open, late
}

// checkWindowed checks the windowed output topic and fills r.Windowed.
func (s *snapshot) checkWindowed(r *Report, keys map[string]*keyState, violate func(string, ...any)) {
	topic := WindowedOutputTopic(s.input)
	n, ok := s.counts[topic]
	if !ok {
		return
	}
	closed, open, late := s.expectWindows()
	wr := &WindowedReport{Open: len(open), Late: late}
	for _, rs := range closed {
		wr.Closed += len(rs)
	}
	for _, ps := range open {
		wr.Open += len(ps) - 1
	}
	r.Windowed = wr

	type seen struct {
		partition int32
		offset    int64
		value     string
	}
	got := map[winKey][]seen{}
	size := WindowSize.Milliseconds()
	for q := range n {
		last := map[string]int64{} // key -> start of its previous window in q
		for _, rec := range s.records[topicPartition{topic, q}] {
			wr.Results++
			if rec.nilKey || len(rec.key) < 8 {
				violate("%s[%d]: record at offset %d: key %q is not a time-windowed key (key bytes and an 8-byte start)",
					topic, q, rec.offset, rec.key)
				continue
			}
			w := winKey{rec.key[:len(rec.key)-8], int64(binary.BigEndian.Uint64([]byte(rec.key[len(rec.key)-8:])))}
			if want := murmur2Partition([]byte(rec.key), n); want != q {
				violate("%s[%d]: record at offset %d for key %q window [%d,%d) belongs in partition %d (murmur2 of the windowed key)",
					topic, q, rec.offset, w.key, w.start, w.start+size, want)
			}
			if k := keys[w.key]; k != nil && !k.spread() {
				if prev, ok := last[w.key]; ok && w.start <= prev {
					violate("%s[%d]: record at offset %d: key %q window [%d,%d) after its window [%d,%d): a key's final results come in window order",
						topic, q, rec.offset, w.key, w.start, w.start+size, prev, prev+size)
				}
				last[w.key] = w.start
			}
			got[w] = append(got[w], seen{q, rec.offset, rec.value})
		}
	}

	all := make([]winKey, 0, len(closed)+len(got))
	for w := range closed {
		all = append(all, w)
	}
	for w := range got {
		if _, ok := closed[w]; !ok {
			all = append(all, w)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		return a.key < b.key || a.key == b.key && a.start < b.start
	})
	for _, w := range all {
		subject := fmt.Sprintf("%s: key %q window [%d,%d)", topic, w.key, w.start, w.start+size)
		want, have := closed[w], got[w]
		if len(want) == 0 {
			h := have[0]
			why := "no record of the input falls in it"
			if ps, ok := open[w]; ok {
				why = fmt.Sprintf("it is still open at the end of input partition %s (stream time below its end + grace)", joinPartitions(ps))
			}
			violate("%s: %d %s (first at partition %d offset %d: %s), want none: %s",
				subject, len(have), plural(len(have), "result"), h.partition, h.offset, h.value, why)
			continue
		}
		need := map[string]int{}
		for _, x := range want {
			need[x.value.String()]++
		}
		var extra []seen
		for _, h := range have {
			if need[h.value] > 0 {
				need[h.value]--
			} else {
				extra = append(extra, h)
			}
		}
		var missing []winResult
		for _, x := range want {
			if need[x.value.String()] > 0 {
				need[x.value.String()]--
				missing = append(missing, x)
			}
		}
		switch {
		case len(missing) == 0 && len(extra) == 0:
		case len(missing) == 0:
			e := extra[0]
			violate("%s: %d results, want %d: extra at partition %d offset %d: %s (a final result emitted twice, or a late record counted)",
				subject, len(have), len(want), e.partition, e.offset, e.value)
		case len(extra) == 0:
			m := missing[0]
			violate("%s: no result %s (count,sum), closed by input partition %d offset %d; %d results, want %d",
				subject, m.value, m.partition, m.offset, len(have), len(want))
		default:
			e, m := extra[0], missing[0]
			violate("%s: result at partition %d offset %d is %s, want %s (count,sum), closed by input partition %d offset %d",
				subject, e.partition, e.offset, e.value, m.value, m.partition, m.offset)
		}
	}
}
