package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// CheckConfig says what Check reads.
type CheckConfig struct {
	// Brokers are the bootstrap servers.
	Brokers []string
	// ClientOpts are extra client options: TLS and SASL (kafkasec.FranzOpts).
	ClientOpts []kgo.Opt
	// Input is the input topic T; the outputs are OutputTopics(T).
	Input string
	// Group is the consumer group whose committed offsets must cover the
	// input: the runner's application.id.
	Group string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// Cached: the runner had a record cache (statestore.cache.max.bytes),
	// so the aggregates (sum, min, max, cnt) are emitted on flush: per key
	// each holds a subsequence of the running values, in order, ending with
	// the final one, instead of one record per input record. The echo and
	// windowed outputs are checked as always.
	Cached bool
}

// Report is the outcome of Check.
type Report struct {
	// InputRecords is the number of committed input records.
	InputRecords int64
	// Outputs is the number of committed records per output topic (topics
	// that do not exist are absent).
	Outputs map[string]int64
	// Keys is the number of distinct input keys.
	Keys int
	// Cached is CheckConfig.Cached.
	Cached bool
	// Windowed is what Check found of the windowed output
	// (WindowedOutputTopic); nil if that topic does not exist (the input
	// was processed by a topology without it), and then it is not checked.
	Windowed *WindowedReport
	// Joins is what Check found of JoinTopology's join outputs; nil if
	// neither JoinOutputTopic nor WindowedJoinOutputTopic exists, and then
	// they are not checked (joins.go).
	Joins *JoinReport
	// SpreadKeys is the number of input keys whose records are in more than
	// one input partition: the input's producer did not partition by key
	// (librdkafka's random partitioner, a keyless sticky one, explicit
	// partitions). Check expects each input partition's records of such a key
	// to be aggregated on their own, as the runner's per-partition tasks do.
	SpreadKeys int
	// Violations lists every violation found, each one line that starts with
	// its subject (a topic, a topic partition as T[p], or "group G") and a
	// colon, in a deterministic order.
	Violations []string
	// OK is true when there is no violation.
	OK bool
}

// Verdict is the report in one line: "PASS: 100000 input records, 5 outputs x
// 100000, 1000 keys" (with "(n in several input partitions)" when some keys
// are spread, and "; windowed: 19000 closed windows exact, 1000 open, 50 late
// records dropped" when the windowed output was checked), or "FAIL: 3 violations (T-sum 2, group app 1)" with the
// number of violations per subject topic or group.
func (r *Report) Verdict() string {
	if len(r.Violations) == 0 {
		spread := ""
		if r.SpreadKeys > 0 {
			spread = fmt.Sprintf(" (%d in several input partitions)", r.SpreadKeys)
		}
		windowed := ""
		if w := r.Windowed; w != nil {
			windowed = fmt.Sprintf("; windowed: %d closed windows exact, %d open, %d late %s dropped",
				w.Closed, w.Open, w.Late, plural(w.Late, "record"))
		}
		joins := ""
		if r.Joins != nil {
			joins = "; joins: " + r.Joins.String()
		}
		outputs := fmt.Sprintf("%d outputs x %d", len(r.Outputs), r.InputRecords)
		if r.Cached {
			var n int64
			for _, c := range r.Outputs {
				n += c
			}
			outputs = fmt.Sprintf("%d outputs holding %d records (aggregates emitted on flush)", len(r.Outputs), n)
		}
		return fmt.Sprintf("PASS: %d input records, %s, %d keys%s%s%s",
			r.InputRecords, outputs, r.Keys, spread, windowed, joins)
	}
	var order []string
	n := map[string]int{}
	for _, v := range r.Violations {
		subj, _, _ := strings.Cut(v, ": ")
		if i := strings.LastIndexByte(subj, '['); i > 0 && strings.HasSuffix(subj, "]") {
			subj = subj[:i] // T[p] counts for T
		}
		if n[subj] == 0 {
			order = append(order, subj)
		}
		n[subj]++
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%s %d", s, n[s])
	}
	word := "violations"
	if len(r.Violations) == 1 {
		word = "violation"
	}
	return fmt.Sprintf("FAIL: %d %s (%s)", len(r.Violations), word, strings.Join(parts, ", "))
}

// Check reads the input topic and every output with read_committed and
// verifies the exactly-once properties of a run of Topology(cfg.Input),
// whatever producer wrote the input and however it partitioned it (murmur2,
// librdkafka's crc32, random, explicit partitions).
//
// What the runner guarantees, and so what Check checks: each input partition
// is processed in order by one task at a time, with its own state, and each
// output record goes to the partition murmur2 of its key gives (as Java's
// producer). Hence, per output topic:
//
//   - Each input key's records are all in its murmur2 partition.
//   - A key whose input records are all in one input partition (any
//     partitioner that hashes the key): its records are exactly the key's
//     running aggregate (or echo) after each of its input records, in input
//     order; one output per input record, no more, no fewer.
//   - A key spread over several input partitions: each of those partitions'
//     tasks aggregates its own records of the key, so the key's records are
//     an interleaving of one sequence per input partition, each the running
//     aggregate over that partition's records of the key, in input order.
//     Nothing orders records of different input partitions. Check proves
//     that such an interleaving exists (and, first, that the records match
//     the expected ones as a multiset: no loss, no duplicate, exact values);
//     a search that outgrows its budget (interleave.go) is a violation that
//     says the order is not proven, never a pass.
//   - T-echo, beyond the above: the records T-echo[q] holds from input
//     partition p (keys in one input partition) are p's records of those
//     keys in input order, so the order across keys within a partition is
//     checked too. Records with a null key (murmur2_random sends them to a
//     random partition) are checked as a multiset.
//   - No record of a key that is not in the input, anywhere.
//   - The windowed output (WindowedOutputTopic), if it exists: exactly one
//     final result per window the input's stream time closed, with its exact
//     count and sum, none for a window still open, no late record counted
//     (windowed.go says how the windows are replayed).
//   - The join outputs (JoinOutputTopic, WindowedJoinOutputTopic), if they
//     exist: every record the input topics imply, as joins.go says.
//   - No open transaction: the last stable offset equals the high watermark
//     for every partition of every topic.
//   - The group's committed offset equals the input's end for every input
//     partition.
//
// Check takes one snapshot: the partitions' ends first, then the records up
// to them, then the group's offsets. Run it once the runners have stopped
// (or are idle with nothing left to read); records committed while it reads
// are outside the snapshot, and offsets committed meanwhile would exceed the
// input end it saw.
//
// The error is for infrastructure failures only (the brokers cannot be
// reached, the input topic does not exist, ctx ends); violations go in the
// Report.
func Check(ctx context.Context, cfg CheckConfig) (*Report, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("verify: check: no brokers")
	case cfg.Input == "":
		return nil, errors.New("verify: check: no input topic")
	case cfg.Group == "":
		return nil, errors.New("verify: check: no group (the runner's application.id)")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // to know the position past transaction markers
	}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("verify: check: client: %w", err)
	}
	defer cl.Close()

	topics := append([]string{cfg.Input}, OutputTopics(cfg.Input)...)
	topics = append(topics, WindowedOutputTopic(cfg.Input),
		RefTopic(cfg.Input), JoinOutputTopic(cfg.Input), WindowedJoinOutputTopic(cfg.Input))
	counts, err := partitionCounts(ctx, cl, topics)
	if err != nil {
		return nil, fmt.Errorf("verify: check: %w", err)
	}
	if _, ok := counts[cfg.Input]; !ok {
		return nil, fmt.Errorf("verify: check: input topic %q does not exist", cfg.Input)
	}
	e, err := listEnds(ctx, cl, counts)
	if err != nil {
		return nil, fmt.Errorf("verify: check: %w", err)
	}
	var span int64
	for _, x := range e {
		span += max(x.lso-x.start, 0)
	}
	start := time.Now()
	log.Info("verify check: reading with read_committed", "topics", len(counts), "partitions", len(e), "offsets", span)
	recs, err := readCommitted(ctx, cl, log, counts, e)
	if err != nil {
		return nil, fmt.Errorf("verify: check: %w", err)
	}
	committed, err := committedOffsets(ctx, cl, cfg.Group, cfg.Input, counts[cfg.Input])
	if err != nil {
		return nil, fmt.Errorf("verify: check: %w", err)
	}
	s := snapshot{input: cfg.Input, group: cfg.Group, counts: counts, ends: e, records: recs, committed: committed, cached: cfg.Cached}
	if n, ok := counts[RefTopic(cfg.Input)]; ok {
		if s.refCommitted, err = committedOffsets(ctx, cl, cfg.Group, RefTopic(cfg.Input), n); err != nil {
			return nil, fmt.Errorf("verify: check: %w", err)
		}
	}
	r := s.evaluate()
	log.Info("verify check: done", "elapsed", time.Since(start).Round(time.Millisecond), "verdict", r.Verdict())
	return r, nil
}

// snapshot is everything Check read; evaluate turns it into a Report without
// I/O.
type snapshot struct {
	input, group string
	counts       map[string]int32 // existing topics -> partition count
	ends         map[topicPartition]ends
	records      map[topicPartition][]record // committed records, offset order
	committed    map[int32]int64             // input partition -> group's offset, -1 none
	refCommitted map[int32]int64             // RefTopic partition -> group's offset, -1 none
	// refs is each input partition's table for the stream-table join
	// (refTables), set by checkTableJoin before it uses want.
	refs []map[string]string
	// cached: aggregates are emitted on flush (CheckConfig.Cached).
	cached bool
}

// expected is one expected output record, with the input record it answers.
type expected struct {
	partition int32 // of the input record
	offset    int64 // of the input record
	text      string
}

// observed is one output record as read.
type observed struct {
	partition int32
	offset    int64
	key       string
	nilKey    bool
	text      string // the value, or key=value for echo
}

// keyState is what the input says of one key. The expected outputs are
// derived from refs when the key is checked, not stored: a run of a million
// input records would otherwise hold five million expectations at once.
type keyState struct {
	partitions []int32    // input partitions holding the key's valid records, ascending
	refs       []inputRef // the key's valid input records, by partition, then offset
}

// spread reports whether the key's records are in more than one input
// partition.
func (k *keyState) spread() bool { return len(k.partitions) > 1 }

// inputRef locates a record in snapshot.records of the input.
type inputRef struct {
	partition int32
	index     int32
}

// aggregateSuffixes are the per-key outputs, in report order.
func aggregateSuffixes() [4]string { return [...]string{suffixSum, suffixMin, suffixMax, suffixCnt} }

// want is what output suffix must hold for key k, one sequence per input
// partition of the key (in k.partitions order): echo, or the running
// aggregate after each of the partition's records of the key. Each input
// partition is a task with its own store partition, so a spread key's
// aggregates start afresh in each.
func (s *snapshot) want(k *keyState, suffix string) [][]expected {
	out := make([][]expected, 0, len(k.partitions))
	var cur []expected
	var sum, lo, hi, n int64
	for i, ref := range k.refs {
		if i > 0 && ref.partition != k.refs[i-1].partition {
			out = append(out, cur)
			cur, n = nil, 0
		}
		rec := s.records[topicPartition{s.input, ref.partition}][ref.index]
		v, _ := parseDecimal(rec.value) // valid: checked by the input walk
		if n == 0 {
			sum, lo, hi = 0, v, v
		}
		sum, lo, hi, n = sum+v, min(lo, v), max(hi, v), n+1
		var text string
		switch suffix {
		case suffixEcho:
			text = echoText(rec)
		case suffixSum:
			text = formatDecimal(sum)
		case suffixMin:
			text = formatDecimal(lo)
		case suffixMax:
			text = formatDecimal(hi)
		case suffixCnt:
			text = formatDecimal(n)
		case suffixJoin:
			text = formatDecimal(v) + "|" + s.refText(ref.partition, rec.key)
		}
		cur = append(cur, expected{ref.partition, rec.offset, text})
	}
	if len(k.refs) > 0 {
		out = append(out, cur)
	}
	return out
}

func (s *snapshot) evaluate() *Report {
	r := &Report{Outputs: map[string]int64{}, Cached: s.cached}
	violate := func(format string, args ...any) {
		r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
	}

	// Walk the input in order, validating it and indexing it by key.
	nIn := s.counts[s.input]
	keys := map[string]*keyState{}
	var keyOrder []string
	valid := make([][]bool, nIn) // per input partition and index: a decimal value
	for p := range nIn {
		recs := s.records[topicPartition{s.input, p}]
		valid[p] = make([]bool, len(recs))
		for i, rec := range recs {
			r.InputRecords++
			if _, err := parseDecimal(rec.value); err != nil {
				violate("%s[%d]: record at offset %d: value %q is not a decimal integer; the runner cannot deserialize it",
					s.input, p, rec.offset, rec.value)
				continue
			}
			valid[p][i] = true
			if rec.nilKey {
				violate("%s[%d]: record at offset %d has a null key; aggregations skip it", s.input, p, rec.offset)
				continue
			}
			k := keys[rec.key]
			if k == nil {
				k = &keyState{}
				keys[rec.key] = k
				keyOrder = append(keyOrder, rec.key)
			}
			if len(k.partitions) == 0 || k.partitions[len(k.partitions)-1] != p {
				k.partitions = append(k.partitions, p)
				if len(k.partitions) == 2 {
					r.SpreadKeys++
				}
			}
			k.refs = append(k.refs, inputRef{p, int32(i)})
		}
	}
	r.Keys = len(keys)
	if r.InputRecords == 0 {
		violate("%s: no committed input records; nothing to verify", s.input)
	}

	// Echo: per stream from an input partition to an echo partition, and
	// per key for spread keys.
	echo := outputTopic(s.input, suffixEcho)
	if n, ok := s.counts[echo]; !ok {
		violate("%s: topic does not exist", echo)
	} else {
		got := make([][]observed, n)
		for p := range n {
			got[p] = make([]observed, 0, len(s.records[topicPartition{echo, p}]))
			for _, rec := range s.records[topicPartition{echo, p}] {
				got[p] = append(got[p], observed{p, rec.offset, rec.key, rec.nilKey, echoText(rec)})
			}
			r.Outputs[echo] += int64(len(got[p]))
		}
		s.checkEcho(echo, got, keys, keyOrder, valid, violate)
	}

	// Aggregates: key by key.
	for _, suffix := range aggregateSuffixes() {
		topic := outputTopic(s.input, suffix)
		n, ok := s.counts[topic]
		if !ok {
			violate("%s: topic does not exist", topic)
			continue
		}
		got := make([][]observed, n)
		for p := range n {
			got[p] = make([]observed, 0, len(s.records[topicPartition{topic, p}]))
			for _, rec := range s.records[topicPartition{topic, p}] {
				if rec.nilKey {
					violate("%s[%d]: record at offset %d has a null key", topic, p, rec.offset)
					continue
				}
				got[p] = append(got[p], observed{p, rec.offset, rec.key, false, rec.value})
			}
			r.Outputs[topic] += int64(len(s.records[topicPartition{topic, p}]))
		}
		s.checkPerKey(topic, suffix, got, keys, keyOrder, violate)
	}

	// The windowed output, if the topology has one.
	s.checkWindowed(r, keys, violate)

	// The join outputs, if the topology has them.
	s.checkJoins(r, keys, keyOrder, violate)

	// No open transaction anywhere.
	for _, topic := range sortedKeys(s.counts) {
		for p := range s.counts[topic] {
			e := s.ends[topicPartition{topic, p}]
			if e.lso < e.hwm {
				violate("%s[%d]: open transaction: last stable offset %d < high watermark %d (%d %s undecided)",
					topic, p, e.lso, e.hwm, e.hwm-e.lso, plural(int(e.hwm-e.lso), "offset"))
			}
		}
	}

	// The group's committed offsets cover the input.
	for p := range nIn {
		e := s.ends[topicPartition{s.input, p}]
		end := e.lso
		c, ok := s.committed[p]
		switch {
		case (!ok || c < 0) && end > e.start:
			violate("group %s: %s[%d]: no committed offset; input end is %d", s.group, s.input, p, end)
		case ok && c >= 0 && c < end:
			violate("group %s: %s[%d]: committed offset %d < input end %d (%d offsets not committed as processed)",
				s.group, s.input, p, c, end, end-c)
		case ok && c > end:
			violate("group %s: %s[%d]: committed offset %d > input end %d", s.group, s.input, p, c, end)
		}
	}

	r.OK = len(r.Violations) == 0
	return r
}

// keyRecords are one key's records in an output topic.
type keyRecords struct {
	partitions []int32 // output partitions holding them, ascending
	recs       []observed
}

// byKey indexes an output topic's records by key, in partition then offset
// order; records with a null key are returned apart.
func byKey(got [][]observed) (keyed map[string]*keyRecords, nulls []observed) {
	n := map[string]int{} // records per key, to size each key's slice once
	for p := range got {
		for _, o := range got[p] {
			n[o.key]++
		}
	}
	keyed = make(map[string]*keyRecords, len(n))
	for p := range got {
		for _, o := range got[p] {
			if o.nilKey {
				nulls = append(nulls, o)
				continue
			}
			kr := keyed[o.key]
			if kr == nil {
				kr = &keyRecords{recs: make([]observed, 0, n[o.key])}
				keyed[o.key] = kr
			}
			if len(kr.partitions) == 0 || kr.partitions[len(kr.partitions)-1] != o.partition {
				kr.partitions = append(kr.partitions, o.partition)
			}
			kr.recs = append(kr.recs, o)
		}
	}
	return keyed, nulls
}

// checkPlacement checks where an output topic of n partitions holds each
// input key: in one partition, the one murmur2 of the key gives (the runner's
// producer partitions as Java's does, whatever partitioned the input).
// Misplaced keys are reported once for the topic.
func (s *snapshot) checkPlacement(topic string, n int32, keyed map[string]*keyRecords, keyOrder []string,
	violate func(string, ...any)) {
	var misplaced int
	var first string
	for _, key := range keyOrder {
		kr := keyed[key]
		if kr == nil {
			continue
		}
		if len(kr.partitions) > 1 {
			violate("%s: key %q is in partitions %v; all of a key's records belong in one partition", topic, key, kr.partitions)
		}
		if want := murmur2Partition([]byte(key), n); kr.partitions[0] != want {
			if misplaced == 0 {
				first = fmt.Sprintf("key %q in partition %d, murmur2 gives %d", key, kr.partitions[0], want)
			}
			misplaced++
		}
	}
	if misplaced > 0 {
		violate("%s: %d %s outside the partition murmur2 gives (first: %s); the runner partitions outputs by murmur2 of the key, as Java's producer does",
			topic, misplaced, plural(misplaced, "key"), first)
	}
}

// checkEcho checks T-echo. Records of keys in one input partition are
// compared per stream: the records echo partition q holds from input
// partition p must be p's records whose key lives in q, in input order (one
// task writes them, in order). A spread key's records are checked per key,
// as an interleaving of its input partitions' records; null-key records, sent
// to random partitions, as a multiset.
func (s *snapshot) checkEcho(topic string, got [][]observed, keys map[string]*keyState, keyOrder []string, valid [][]bool,
	violate func(string, ...any)) {
	n := int32(len(got))
	keyed, nulls := byKey(got)
	s.checkPlacement(topic, n, keyed, keyOrder, violate)
	home := func(key string) int32 { // where the key's records are, or belong
		if kr := keyed[key]; kr != nil {
			return kr.partitions[0]
		}
		return murmur2Partition([]byte(key), n)
	}

	type stream struct{ in, out int32 }
	want := map[stream][]expected{}
	var wantNull []expected
	for p := range s.counts[s.input] {
		for i, rec := range s.records[topicPartition{s.input, p}] {
			switch {
			case !valid[p][i]:
			case rec.nilKey:
				wantNull = append(wantNull, expected{p, rec.offset, echoText(rec)})
			case !keys[rec.key].spread():
				st := stream{p, home(rec.key)}
				want[st] = append(want[st], expected{p, rec.offset, echoText(rec)})
			}
		}
	}
	have := map[stream][]observed{}
	for q := range got {
		for _, o := range got[q] {
			if k := keys[o.key]; !o.nilKey && k != nil && !k.spread() {
				st := stream{k.partitions[0], int32(q)}
				have[st] = append(have[st], o)
			}
		}
	}
	streams := make([]stream, 0, len(want)+len(have))
	for st := range want {
		streams = append(streams, st)
	}
	for st := range have {
		if _, ok := want[st]; !ok {
			streams = append(streams, st)
		}
	}
	sort.Slice(streams, func(i, j int) bool {
		a, b := streams[i], streams[j]
		return a.out < b.out || a.out == b.out && a.in < b.in
	})
	for _, st := range streams {
		subject := fmt.Sprintf("%s[%d]", topic, st.out)
		if st.in != st.out {
			subject += fmt.Sprintf(": records from %s[%d]", s.input, st.in)
		}
		if msg, bad := describe(subject, have[st], want[st]); bad {
			violate("%s", msg)
		}
	}

	for _, key := range keyOrder {
		if k := keys[key]; k.spread() {
			var recs []observed
			if kr := keyed[key]; kr != nil {
				recs = kr.recs
			}
			if msg, bad := s.describeSpread(fmt.Sprintf("%s: key %q", topic, key), k, recs, s.want(k, suffixEcho)); bad {
				violate("%s", msg)
			}
		}
	}
	if len(wantNull) > 0 || len(nulls) > 0 {
		if msg, bad := describeMultiset(topic+": records with a null key", nulls, [][]expected{wantNull}); bad {
			violate("%s", msg)
		}
	}
	s.checkUnknown(topic, keyed, keys, violate)
}

// checkPerKey checks one aggregate topic key by key: each input key's
// records are in its murmur2 partition and are exactly s.want(key, suffix),
// interleaved in any order if the key is spread; no other key appears.
func (s *snapshot) checkPerKey(topic, suffix string, got [][]observed, keys map[string]*keyState, keyOrder []string,
	violate func(string, ...any)) {
	keyed, _ := byKey(got) // null keys were reported by the caller
	s.checkPlacement(topic, int32(len(got)), keyed, keyOrder, violate)
	for _, key := range keyOrder {
		k := keys[key]
		var recs []observed
		if kr := keyed[key]; kr != nil {
			recs = kr.recs
		}
		subject := fmt.Sprintf("%s: key %q", topic, key)
		want := s.want(k, suffix)
		var msg string
		var bad bool
		switch {
		case s.cached && k.spread():
			msg, bad = subject+": spread over input partitions, which the check of cached aggregates does not support", true
		case s.cached:
			msg, bad = describeFlushed(subject, recs, want[0])
		case k.spread():
			msg, bad = s.describeSpread(subject, k, recs, want)
		default:
			msg, bad = describe(subject, recs, want[0])
		}
		if bad {
			violate("%s", msg)
		}
	}
	s.checkUnknown(topic, keyed, keys, violate)
}

// checkUnknown reports, per key, records of keys that are not in the input.
func (s *snapshot) checkUnknown(topic string, keyed map[string]*keyRecords, keys map[string]*keyState,
	violate func(string, ...any)) {
	var unknown []string
	for key := range keyed {
		if _, ok := keys[key]; !ok {
			unknown = append(unknown, key)
		}
	}
	sort.Strings(unknown)
	for _, key := range unknown {
		kr := keyed[key]
		first := kr.recs[0]
		violate("%s: key %q is not in the input: %d extra %s (first at partition %d offset %d, value %s)",
			topic, key, len(kr.recs), plural(len(kr.recs), "record"), first.partition, first.offset, first.text)
	}
}

// describeSpread compares the observed records of a key spread over several
// input partitions with want, one expected sequence per input partition of
// the key: first as multisets (a lost, duplicated or wrong record), then
// whether got interleaves the sequences, each in order.
func (s *snapshot) describeSpread(subject string, k *keyState, got []observed, want [][]expected) (string, bool) {
	subject = fmt.Sprintf("%s (in input partitions %s)", subject, joinPartitions(k.partitions))
	if msg, bad := describeMultiset(subject, got, want); bad {
		return msg, true
	}
	gt := make([]string, len(got))
	for i, o := range got {
		gt[i] = o.text
	}
	wt := make([][]string, len(want))
	for j := range want {
		wt[j] = make([]string, len(want[j]))
		for i, w := range want[j] {
			wt[j][i] = w.text
		}
	}
	res := interleave(gt, wt, interleaveBudget)
	switch {
	case res.ok:
		return "", false
	case res.exhausted:
		return fmt.Sprintf("%s: the records match the input's as a multiset, but no order of them was found "+
			"that keeps each input partition's records in input order within %d search steps: order not proven; %d records",
			subject, interleaveBudget, len(got)), true
	}
	g := got[res.at]
	var next []string
	for j, i := range res.next {
		if i < len(want[j]) {
			w := want[j][i]
			next = append(next, fmt.Sprintf("%s for input partition %d offset %d", w.text, w.partition, w.offset))
		}
	}
	return fmt.Sprintf("%s: record at partition %d offset %d is %s, not the next record of any input partition "+
		"(next: %s): out of order; %d records", subject, g.partition, g.offset, g.text, strings.Join(next, "; "), len(got)), true
}

// describeMultiset compares got with the union of want's sequences as
// multisets of texts and, if they differ, says how in one line: how many
// records are missing and extra, and the first of each.
func describeMultiset(subject string, got []observed, want [][]expected) (string, bool) {
	need := map[string]int{}
	total := 0
	for _, seq := range want {
		for _, w := range seq {
			need[w.text]++
			total++
		}
	}
	wanted := maps.Clone(need)
	avail := map[string]int{}
	var extra []observed
	for _, o := range got {
		if need[o.text] > 0 {
			need[o.text]--
			avail[o.text]++
		} else {
			extra = append(extra, o)
		}
	}
	var missing []expected
	for _, seq := range want {
		for _, w := range seq {
			if avail[w.text] > 0 {
				avail[w.text]--
			} else {
				missing = append(missing, w)
			}
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return "", false
	}
	var parts []string
	if len(missing) > 0 {
		m := missing[0]
		parts = append(parts, fmt.Sprintf("%d %s missing (first: %s for input partition %d offset %d)",
			len(missing), plural(len(missing), "record"), m.text, m.partition, m.offset))
	}
	if len(extra) > 0 {
		e := extra[0]
		repeated := "" // the record is right but once too often: processed twice
		if wanted[e.text] > 0 {
			repeated = ", repeated"
		}
		parts = append(parts, fmt.Sprintf("%d extra (first at partition %d offset %d: %s%s)", len(extra), e.partition, e.offset, e.text, repeated))
	}
	return fmt.Sprintf("%s: %s; %d records, want %d", subject, strings.Join(parts, ", "), len(got), total), true
}

// joinPartitions formats input partitions as "0, 2 and 3".
func joinPartitions(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// describe compares the observed records of subject with the expected ones
// and, if they differ, says how in one line: which record is extra,
// duplicated, missing, swapped or wrong, with its coordinates and those of
// the input record it answers, and the counts.
func describe(subject string, got []observed, want []expected) (string, bool) {
	gt := make([]string, len(got))
	for i, o := range got {
		gt[i] = o.text
	}
	wt := make([]string, len(want))
	for i, w := range want {
		wt[i] = w.text
	}
	m, bad := compare(gt, wt)
	if !bad {
		return "", false
	}
	counts := fmt.Sprintf("%d records, want %d", len(got), len(want))
	switch m.kind {
	case duplicate:
		g, prev := got[m.at], got[m.at-1]
		return fmt.Sprintf("%s: duplicate record at partition %d offset %d: %s repeats offset %d; %s",
			subject, g.partition, g.offset, g.text, prev.offset, counts), true
	case extra:
		g := got[m.at]
		return fmt.Sprintf("%s: extra record at partition %d offset %d: %s; %s",
			subject, g.partition, g.offset, g.text, counts), true
	case missing:
		w := want[m.at]
		return fmt.Sprintf("%s: missing record %s for input partition %d offset %d%s; %s",
			subject, w.text, w.partition, w.offset, after(got, m.at), counts), true
	case swapped:
		a, b := got[m.at], got[m.at+1]
		return fmt.Sprintf("%s: records at partition %d offsets %d and %d are out of order: got %s, %s; want %s, %s (input offsets %d, %d)",
			subject, a.partition, a.offset, b.offset, a.text, b.text, want[m.at].text, want[m.at+1].text,
			want[m.at].offset, want[m.at+1].offset), true
	case duplicateRun:
		d := len(got) - len(want)
		first, last := got[m.at], got[m.at+d-1]
		return fmt.Sprintf("%s: %d records at partition %d offsets %d..%d repeat the %d before them (offsets %d..%d); %s",
			subject, d, first.partition, first.offset, last.offset, d, got[m.at-d].offset, got[m.at-1].offset, counts), true
	case extraRun:
		d := len(got) - len(want)
		first, last := got[m.at], got[m.at+d-1]
		return fmt.Sprintf("%s: %d extra records at partition %d offsets %d..%d (first %s); %s",
			subject, d, first.partition, first.offset, last.offset, first.text, counts), true
	case missingRun:
		d := len(want) - len(got)
		first, last := want[m.at], want[m.at+d-1]
		return fmt.Sprintf("%s: %d records missing, for input partition %d offsets %d..%d (first %s)%s; %s",
			subject, d, first.partition, first.offset, last.offset, first.text, after(got, m.at), counts), true
	}
	g, w := got[m.at], want[m.at]
	return fmt.Sprintf("%s: record #%d at partition %d offset %d is %s, want %s (input partition %d offset %d); %s",
		subject, m.at, g.partition, g.offset, g.text, w.text, w.partition, w.offset, counts), true
}

// describeFlushed checks the output of an aggregate emitted on flush (a
// record cache merged updates): got must be a subsequence of want, in
// order, ending with want's last record. A lost or duplicated input record
// changes the final value (or, for a count, breaks the order); a record
// processed again after an abort would repeat a value out of order.
func describeFlushed(subject string, got []observed, want []expected) (string, bool) {
	if len(want) == 0 {
		if len(got) > 0 {
			return fmt.Sprintf("%s: %d records, want none (first at partition %d offset %d: %s)",
				subject, len(got), got[0].partition, got[0].offset, got[0].text), true
		}
		return "", false
	}
	j := 0
	for i, g := range got {
		for j < len(want) && want[j].text != g.text {
			j++
		}
		if j == len(want) {
			return fmt.Sprintf("%s: record #%d at partition %d offset %d (%s) is not a later running value; %d records for %d inputs",
				subject, i, g.partition, g.offset, g.text, len(got), len(want)), true
		}
		j++
	}
	last := want[len(want)-1]
	if len(got) == 0 || got[len(got)-1].text != last.text {
		return fmt.Sprintf("%s: the last record is not the final value %s (input partition %d offset %d); %d records for %d inputs",
			subject, last.text, last.partition, last.offset, len(got), len(want)), true
	}
	return "", false
}

// after locates a missing record among the observed ones: before the record
// at index i, or at the end.
func after(got []observed, i int) string {
	if i < len(got) {
		return fmt.Sprintf(" (before partition %d offset %d)", got[i].partition, got[i].offset)
	}
	return " (at the end)"
}

// echoText is how an echo record is compared and shown: key=value.
func echoText(r record) string {
	if r.nilKey {
		return "<null>=" + r.value
	}
	return r.key + "=" + r.value
}

func parseDecimal(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

func formatDecimal(v int64) string { return strconv.FormatInt(v, 10) }

// plural is word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
