package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// Input is the input topic T; the outputs are OutputTopics(T).
	Input string
	// Group is the consumer group whose committed offsets must cover the
	// input: the runner's application.id.
	Group string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
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
	// Violations lists every violation found, each one line that starts with
	// its subject (a topic, a topic partition as T[p], or "group G") and a
	// colon, in a deterministic order.
	Violations []string
	// OK is true when there is no violation.
	OK bool
}

// Verdict is the report in one line: "PASS: 100000 input records, 5 outputs x
// 100000, 1000 keys", or "FAIL: 3 violations (T-sum 2, group app 1)" with the
// number of violations per subject topic or group.
func (r *Report) Verdict() string {
	if len(r.Violations) == 0 {
		return fmt.Sprintf("PASS: %d input records, %d outputs x %d, %d keys",
			r.InputRecords, len(r.Outputs), r.InputRecords, r.Keys)
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
// verifies the exactly-once properties of a run of Topology(cfg.Input):
//
//   - T-echo partition p equals input partition p, record for record, in
//     order (key and value).
//   - For each of T-sum, T-min, T-max and T-cnt and each input key, the
//     key's records, all in one partition, are exactly the key's running
//     aggregate after each of its input records, in input order: one output
//     per input record, no more, no fewer. Keys are checked one by one, not
//     partition by partition, so the check does not depend on how the runner
//     partitions its outputs; that keys land in the partition of their input
//     (murmur2, as Java's producer) is checked separately.
//   - No record of a key that is not in the input, anywhere.
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
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // to know the position past transaction markers
	)
	if err != nil {
		return nil, fmt.Errorf("verify: check: client: %w", err)
	}
	defer cl.Close()

	topics := append([]string{cfg.Input}, OutputTopics(cfg.Input)...)
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
	s := snapshot{input: cfg.Input, group: cfg.Group, counts: counts, ends: e, records: recs, committed: committed}
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
	text      string // the value, or key=value for echo
}

// keyState is what the input says of one key. The expected outputs are
// derived from refs when the key is checked, not stored: a run of a million
// input records would otherwise hold five million expectations at once.
type keyState struct {
	partition int32      // input partition of the key's first record
	split     bool       // the key is in more than one input partition
	refs      []inputRef // the key's valid input records, in input order
}

// inputRef locates a record in snapshot.records of the input.
type inputRef struct {
	partition int32
	index     int32
}

// aggregateSuffixes are the per-key outputs, in report order.
func aggregateSuffixes() [4]string { return [...]string{suffixSum, suffixMin, suffixMax, suffixCnt} }

// want is what output suffix must hold for key k: echo, or the running
// aggregate after each of the key's input records.
func (s *snapshot) want(k *keyState, suffix string) []expected {
	out := make([]expected, 0, len(k.refs))
	var sum, lo, hi, n int64
	for i, ref := range k.refs {
		rec := s.records[topicPartition{s.input, ref.partition}][ref.index]
		v, _ := parseDecimal(rec.value) // valid: checked by the input walk
		if i == 0 {
			lo, hi = v, v
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
		}
		out = append(out, expected{ref.partition, rec.offset, text})
	}
	return out
}

func (s *snapshot) evaluate() *Report {
	r := &Report{Outputs: map[string]int64{}}
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
				k = &keyState{partition: p}
				keys[rec.key] = k
				keyOrder = append(keyOrder, rec.key)
			} else if k.partition != p && !k.split {
				k.split = true
				violate("%s: key %q is in partitions %d and %d; its order across partitions is undefined",
					s.input, rec.key, k.partition, p)
			}
			k.refs = append(k.refs, inputRef{p, int32(i)})
		}
	}
	r.Keys = len(keys)
	if r.InputRecords == 0 {
		violate("%s: no committed input records; nothing to verify", s.input)
	}

	// Echo: partition by partition, in order.
	echo := outputTopic(s.input, suffixEcho)
	if n, ok := s.counts[echo]; !ok {
		violate("%s: topic does not exist", echo)
	} else {
		got := make([][]observed, n)
		for p := range n {
			got[p] = make([]observed, 0, len(s.records[topicPartition{echo, p}]))
			for _, rec := range s.records[topicPartition{echo, p}] {
				got[p] = append(got[p], observed{p, rec.offset, rec.key, echoText(rec)})
			}
			r.Outputs[echo] += int64(len(got[p]))
		}
		if n != nIn {
			violate("%s: %d partitions, input has %d; records are compared per key only", echo, n, nIn)
			s.checkPerKey(echo, suffixEcho, got, keys, keyOrder, violate)
		} else {
			for p := range n {
				var want []expected // the partition's valid input records
				for i, rec := range s.records[topicPartition{s.input, p}] {
					if valid[p][i] {
						want = append(want, expected{p, rec.offset, echoText(rec)})
					}
				}
				if msg, bad := describe(fmt.Sprintf("%s[%d]", echo, p), got[p], want); bad {
					violate("%s", msg)
				}
			}
		}
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
				got[p] = append(got[p], observed{p, rec.offset, rec.key, rec.value})
			}
			r.Outputs[topic] += int64(len(s.records[topicPartition{topic, p}]))
		}
		s.checkPerKey(topic, suffix, got, keys, keyOrder, violate)
	}

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

// checkPerKey checks one output topic key by key: each input key's records
// are in one partition and are exactly s.want(key, suffix); no other key
// appears. It also reports, once for the topic, keys written to another
// partition than their input's when the partition counts match.
func (s *snapshot) checkPerKey(topic, suffix string, got [][]observed, keys map[string]*keyState, keyOrder []string,
	violate func(string, ...any)) {
	type keyRecords struct {
		partitions []int32
		recs       []observed
	}
	byKey := map[string]*keyRecords{}
	for p := range got {
		for _, o := range got[p] {
			kr := byKey[o.key]
			if kr == nil {
				kr = &keyRecords{}
				byKey[o.key] = kr
			}
			if len(kr.partitions) == 0 || kr.partitions[len(kr.partitions)-1] != o.partition {
				kr.partitions = append(kr.partitions, o.partition)
			}
			kr.recs = append(kr.recs, o)
		}
	}
	samePartitioning := int32(len(got)) == s.counts[s.input]
	var misplaced int
	var firstMisplaced string
	for _, key := range keyOrder {
		k := keys[key]
		kr := byKey[key]
		if kr == nil {
			kr = &keyRecords{}
		}
		if len(kr.partitions) > 1 && !k.split { // a split input key is reported once, on the input
			violate("%s: key %q is in partitions %v; all of a key's records belong in one partition", topic, key, kr.partitions)
		}
		if samePartitioning && !k.split && len(kr.partitions) > 0 && kr.partitions[0] != k.partition {
			if misplaced == 0 {
				firstMisplaced = fmt.Sprintf("key %q: input partition %d, output partition %d", key, k.partition, kr.partitions[0])
			}
			misplaced++
		}
		if msg, bad := describe(fmt.Sprintf("%s: key %q", topic, key), kr.recs, s.want(k, suffix)); bad {
			violate("%s", msg)
		}
	}
	if misplaced > 0 {
		violate("%s: %d %s outside the partition of their input (first: %s); outputs must be partitioned like the input (murmur2)",
			topic, misplaced, plural(misplaced, "key"), firstMisplaced)
	}
	var unknown []string
	for key := range byKey {
		if _, ok := keys[key]; !ok {
			unknown = append(unknown, key)
		}
	}
	sort.Strings(unknown)
	for _, key := range unknown {
		kr := byKey[key]
		first := kr.recs[0]
		violate("%s: key %q is not in the input: %d extra %s (first at partition %d offset %d, value %s)",
			topic, key, len(kr.recs), plural(len(kr.recs), "record"), first.partition, first.offset, first.text)
	}
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
