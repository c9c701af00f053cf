package verify

import (
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/processor"
)

// driverSnapshot runs JoinTopology(testInput) through the processor's test
// driver on the input Generate would write for seed (records records over
// keys keys, 4 partitions, murmur2, the refs first) and returns the snapshot
// of that run as Check would read it: the driver is the runner here, and
// only its outputs are taken from it; every expectation is the checker's
// own.
func driverSnapshot(t *testing.T, seed int64, records, keys int, lateEvery int) *snapshot {
	t.Helper()
	const partitions = 4
	topo, err := JoinTopology(testInput)
	if err != nil {
		t.Fatal(err)
	}
	ref := RefTopic(testInput)
	d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{ApplicationID: testGroup,
		Partitions: map[string]int{testInput: partitions, ref: partitions}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	s := &snapshot{input: testInput, group: testGroup, counts: map[string]int32{}, ends: map[topicPartition]ends{},
		records: map[topicPartition][]record{}, committed: map[int32]int64{}, refCommitted: map[int32]int64{}}
	add := func(topic string, p int32, key []byte, value []byte, ts time.Time) {
		tp := topicPartition{topic, p}
		s.records[tp] = append(s.records[tp], record{offset: int64(len(s.records[tp])), key: string(key), nilKey: key == nil,
			value: string(value), nilValue: value == nil, ts: ts.UnixMilli()})
	}
	pipe := func(topic string, key, value []byte, ts time.Time) {
		p := murmur2Partition(key, partitions)
		if err := d.PipeRecord(processor.TestRecord{Topic: topic, Partition: p, Key: key, Value: value, Timestamp: ts}); err != nil {
			t.Fatalf("pipe %s: %v", topic, err)
		}
		add(topic, p, key, value, ts)
	}
	for _, r := range refRecords(seed, keys) {
		var v []byte
		if r.value != nil {
			v = []byte(*r.value)
		}
		pipe(ref, []byte(r.key), v, time.UnixMilli(0))
	}
	cfg, err := GenerateConfig{Brokers: []string{"-"}, Topic: testInput, Records: records, Keys: keys, Seed: seed,
		EventStart: time.UnixMilli(1_000_000), LateEvery: lateEvery}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	seq, times := newSequence(seed, keys), newEventTimes(cfg)
	for i := range records {
		k, v := seq.next()
		pipe(testInput, []byte(k), []byte(formatDecimal(v)), time.UnixMilli(times.next(i)))
	}
	outputs := append(OutputTopics(testInput), WindowedOutputTopic(testInput), JoinOutputTopic(testInput), WindowedJoinOutputTopic(testInput))
	for _, topic := range outputs {
		for _, r := range d.ReadOutput(topic) {
			add(topic, r.Partition, r.Key, r.Value, r.Timestamp)
		}
	}
	for _, topic := range append(outputs, testInput, ref) {
		s.counts[topic] = partitions
		for p := range int32(partitions) {
			end := int64(len(s.records[topicPartition{topic, p}]))
			s.ends[topicPartition{topic, p}] = ends{0, end, end}
			switch topic {
			case testInput:
				s.committed[p] = end
			case ref:
				s.refCommitted[p] = end
			}
		}
	}
	return s
}

// TestJoinCheck: a correct run of JoinTopology passes with both joins
// checked (and each of the rules the expectation follows exercised:
// refs, nulls, self pairs, pairs lost to buffer expiry), and each kind of
// damage to a join output is found and named.
func TestJoinCheck(t *testing.T) {
	// One late record in 50: they land far behind stream time, where a
	// buffer no longer holds what they would pair with.
	base := driverSnapshot(t, 11, 4000, 40, 50)
	r := base.evaluate()
	if !r.OK {
		t.Fatalf("correct run: %s\n%s", r.Verdict(), strings.Join(r.Violations, "\n"))
	}
	j := r.Joins
	if j == nil || !j.Table || !j.Windowed {
		t.Fatalf("joins not checked: %+v", j)
	}
	if j.WithRef == 0 || j.WithNull == 0 || j.Self == 0 || j.Pairs <= j.Self || j.Expired == 0 {
		t.Errorf("a rule of the join check is not exercised: %+v", *j)
	}
	if want := int64(len(base.allRecords(WindowedJoinOutputTopic(testInput)))); j.Results != want || int64(j.Pairs) != want {
		t.Errorf("stream-stream: %d results, %d pairs expected, want %d", j.Results, j.Pairs, want)
	}
	t.Log(r.Verdict())

	wjoin, join, ref := WindowedJoinOutputTopic(testInput), JoinOutputTopic(testInput), RefTopic(testInput)
	tests := []struct {
		name  string
		alter func(s *snapshot)
		want  string // pattern of the first violation
	}{
		{"pair lost", func(s *snapshot) { s.dropRecord(wjoin, 3) },
			`^T-wjoin: key "k\d+": 1 record missing \(first: -?\d+,-?\d+@\d+ for input partition \d offset \d+\); \d+ records, want \d+$`},
		{"pair twice", func(s *snapshot) { s.duplicateRecord(wjoin, 5) },
			`^T-wjoin: key "k\d+": 1 extra \(first at partition \d offset \d+: -?\d+,-?\d+@\d+, repeated\)`},
		{"pair with the wrong timestamp", func(s *snapshot) {
			tp := topicPartition{wjoin, 0}
			s.records[tp][2].ts++
		}, `^T-wjoin: key "k\d+": 1 record missing .* 1 extra`},
		{"stream-table record lost", func(s *snapshot) { s.dropRecord(join, 7) },
			`^T-join: key "k\d+": missing record -?\d+\|(r\d+\.\d+|null) for input partition \d offset \d+`},
		{"stale ref joined", func(s *snapshot) {
			// The first output of a key with a ref says null instead.
			tp := topicPartition{join, 0}
			for i, rec := range s.records[tp] {
				if !strings.HasSuffix(rec.value, "|null") {
					s.records[tp][i].value = rec.value[:strings.IndexByte(rec.value, '|')] + "|null"
					return
				}
			}
		}, `^T-join: key "k\d+": record #\d+ at partition 0 offset \d+ is -?\d+\|null, want -?\d+\|r\d+\.\d+`},
		{"ref later than the stream", func(s *snapshot) {
			tp := topicPartition{ref, 1}
			s.records[tp][0].ts = s.records[topicPartition{testInput, 1}][0].ts
		}, `^T\[1\]: record at offset 0 has timestamp \d+, not above T-ref\[1\]'s latest ref at \d+`},
		{"table offsets not committed", func(s *snapshot) { s.refCommitted[2] = 1 },
			`^group app: T-ref\[2\]: committed offset 1, want its end \d+$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base.clone()
			tt.alter(s)
			r := s.evaluate()
			if r.OK || !regexp.MustCompile(tt.want).MatchString(r.Violations[0]) {
				t.Fatalf("violations:\n%s\nwant first to match %s", strings.Join(r.Violations, "\n"), tt.want)
			}
		})
	}
}

// clone copies s deep enough for alter functions to change records and
// offsets.
func (s *snapshot) clone() *snapshot {
	c := *s
	c.records = map[topicPartition][]record{}
	for tp, recs := range s.records {
		c.records[tp] = append([]record(nil), recs...)
	}
	c.refCommitted = maps.Clone(s.refCommitted)
	c.refs = nil
	return &c
}

// allRecords returns every record of topic, partition by partition.
func (s *snapshot) allRecords(topic string) []record {
	var out []record
	for p := range s.counts[topic] {
		out = append(out, s.records[topicPartition{topic, p}]...)
	}
	return out
}

// dropRecord removes the i-th record of topic's partition 0.
func (s *snapshot) dropRecord(topic string, i int) {
	tp := topicPartition{topic, 0}
	s.records[tp] = append(s.records[tp][:i:i], s.records[tp][i+1:]...)
}

// duplicateRecord appends a copy of the i-th record of topic's partition 0
// at a new offset, as a transaction committed twice would.
func (s *snapshot) duplicateRecord(topic string, i int) {
	tp := topicPartition{topic, 0}
	dup := s.records[tp][i]
	dup.offset = s.records[tp][len(s.records[tp])-1].offset + 1
	s.records[tp] = append(s.records[tp], dup)
}
