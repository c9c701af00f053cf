package verify

import (
	"regexp"
	"strings"
	"testing"
)

// memSnapshot builds, without a broker, the snapshot of a correct run over
// the input records given per partition ("key=value"; a key "<null>" is a
// null key): outputs from correctOutputs, every partition ending after its
// last record, commits at the input ends.
func memSnapshot(partitions int32, input map[int32][]string) *snapshot {
	s := &snapshot{
		input:     testInput,
		group:     testGroup,
		counts:    map[string]int32{testInput: partitions},
		ends:      map[topicPartition]ends{},
		records:   map[topicPartition][]record{},
		committed: map[int32]int64{},
	}
	var in []inRec
	for p := range partitions {
		for i, kv := range input[p] {
			k, v, _ := strings.Cut(kv, "=")
			in = append(in, inRec{p, int64(i), k, v})
		}
	}
	add := func(topic string, p int32, key, value string) {
		tp := topicPartition{topic, p}
		s.records[tp] = append(s.records[tp], record{
			offset: int64(len(s.records[tp])), key: key, nilKey: key == "<null>", value: value,
		})
	}
	for _, r := range in {
		add(testInput, r.p, r.key, r.value)
	}
	for _, topic := range OutputTopics(testInput) {
		s.counts[topic] = partitions
	}
	for topic, recs := range correctOutputs(in) {
		for _, r := range recs {
			add(topic, r.p, r.key, r.value)
		}
	}
	for topic, n := range s.counts {
		for p := range n {
			end := int64(len(s.records[topicPartition{topic, p}]))
			s.ends[topicPartition{topic, p}] = ends{0, end, end}
			if topic == testInput {
				s.committed[p] = end
			}
		}
	}
	return s
}

// moveKey moves key's records of topic to partition to, as a runner with
// another partitioner would write them.
func (s *snapshot) moveKey(topic, key string, to int32) {
	var moved []record
	for p := range s.counts[topic] {
		tp := topicPartition{topic, p}
		kept := s.records[tp][:0]
		for _, r := range s.records[tp] {
			if r.key == key {
				moved = append(moved, r)
			} else {
				kept = append(kept, r)
			}
		}
		s.records[tp] = kept
	}
	dst := topicPartition{topic, to}
	for _, r := range moved {
		r.offset = int64(len(s.records[dst])) + 100
		s.records[dst] = append(s.records[dst], r)
	}
}

func TestEvaluate(t *testing.T) {
	base := map[int32][]string{
		0: {"a=1", "b=-2", "a=3", "a=-4"},
		1: {"c=5", "c=0", "d=7"},
	}
	tests := []struct {
		name  string
		input map[int32][]string
		alter func(s *snapshot)
		want  []string // patterns, one per violation, in order
	}{
		{name: "correct", input: base},
		{
			name:  "empty input",
			input: map[int32][]string{},
			want:  []string{`^T: no committed input records; nothing to verify$`},
		},
		{
			name:  "input key in two partitions",
			input: map[int32][]string{0: {"a=1"}, 1: {"a=2"}},
			want:  []string{`^T: key "a" is in partitions 0 and 1; its order across partitions is undefined$`},
		},
		{
			name:  "null input key",
			input: map[int32][]string{0: {"a=1", "<null>=2"}},
			// Echo has it; the aggregates skip it, as the runner does.
			want: []string{`^T\[0\]: record at offset 1 has a null key; aggregations skip it$`},
		},
		{
			name:  "input value not decimal",
			input: map[int32][]string{0: {"a=1"}},
			alter: func(s *snapshot) {
				tp := topicPartition{testInput, 0}
				s.records[tp] = append(s.records[tp], record{offset: 1, key: "a", value: "x"})
			},
			want: []string{`^T\[0\]: record at offset 1: value "x" is not a decimal integer; the runner cannot deserialize it$`},
		},
		{
			name:  "aggregate key split over two partitions",
			input: base,
			alter: func(s *snapshot) {
				tp := topicPartition{"T-sum", 0}
				last := s.records[tp][len(s.records[tp])-1] // a=0
				s.records[tp] = s.records[tp][:len(s.records[tp])-1]
				s.records[topicPartition{"T-sum", 1}] = append(s.records[topicPartition{"T-sum", 1}], last)
			},
			want: []string{`^T-sum: key "a" is in partitions \[0 1\]; all of a key's records belong in one partition$`},
		},
		{
			name:  "outputs partitioned unlike the input",
			input: base,
			alter: func(s *snapshot) { s.moveKey("T-cnt", "d", 0) },
			want: []string{`^T-cnt: 1 key outside the partition of their input \(first: key "d": input partition 1, output partition 0\); ` +
				`outputs must be partitioned like the input \(murmur2\)$`},
		},
		{
			name:  "echo with another partition count is compared per key",
			input: base,
			alter: func(s *snapshot) {
				s.counts["T-echo"] = 3
				s.ends[topicPartition{"T-echo", 2}] = ends{}
				s.moveKey("T-echo", "d", 2)
			},
			want: []string{`^T-echo: 3 partitions, input has 2; records are compared per key only$`},
		},
		{
			name:  "echo with another partition count, one record lost",
			input: base,
			alter: func(s *snapshot) {
				s.counts["T-echo"] = 3
				s.ends[topicPartition{"T-echo", 2}] = ends{}
				tp := topicPartition{"T-echo", 1}
				s.records[tp] = s.records[tp][1:] // c=5
			},
			want: []string{
				`^T-echo: 3 partitions, input has 2; records are compared per key only$`,
				`^T-echo: key "c": missing record c=5 for input partition 1 offset 0 \(before partition 1 offset 1\); 1 records, want 2$`,
			},
		},
		{
			name:  "echo missing its last records",
			input: base,
			alter: func(s *snapshot) {
				tp := topicPartition{"T-echo", 0}
				s.records[tp] = s.records[tp][:1]
			},
			want: []string{`^T-echo\[0\]: 3 records missing, for input partition 0 offsets 1..3 \(first b=-2\) \(at the end\); 1 records, want 4$`},
		},
		{
			name:  "wrong values from a point on: a replay against stale state",
			input: base,
			alter: func(s *snapshot) {
				tp := topicPartition{"T-sum", 0}
				s.records[tp] = append(s.records[tp][:2:2],
					record{offset: 2, key: "a", value: "4"}, // a: 1+3
					record{offset: 3, key: "a", value: "7"}, // a=3 applied twice
					record{offset: 4, key: "a", value: "3"})
			},
			want: []string{`^T-sum: key "a": record #2 at partition 0 offset 3 is 7, want 0 \(input partition 0 offset 3\); 4 records, want 3$`},
		},
		{
			name:  "committed beyond the input end",
			input: base,
			alter: func(s *snapshot) { s.committed[1] = 9 },
			want:  []string{`^group app: T\[1\]: committed offset 9 > input end 3$`},
		},
		{
			name:  "empty partition needs no commit",
			input: map[int32][]string{0: {"a=1"}},
			alter: func(s *snapshot) { s.committed[1] = -1 },
		},
		{
			name:  "open transactions on the input and an output",
			input: base,
			alter: func(s *snapshot) {
				s.ends[topicPartition{testInput, 1}] = ends{0, 5, 3}
				s.ends[topicPartition{"T-max", 0}] = ends{0, 6, 4}
			},
			want: []string{
				`^T\[1\]: open transaction: last stable offset 3 < high watermark 5 \(2 offsets undecided\)$`,
				`^T-max\[0\]: open transaction: last stable offset 4 < high watermark 6 \(2 offsets undecided\)$`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memSnapshot(2, tt.input)
			if tt.alter != nil {
				tt.alter(s)
			}
			r := s.evaluate()
			if len(r.Violations) != len(tt.want) {
				t.Fatalf("%d violations, want %d:\n  %s", len(r.Violations), len(tt.want), strings.Join(r.Violations, "\n  "))
			}
			for i, w := range tt.want {
				if !regexp.MustCompile(w).MatchString(r.Violations[i]) {
					t.Errorf("violation %d = %q, want it to match %s", i, r.Violations[i], w)
				}
			}
			if r.OK != (len(tt.want) == 0) {
				t.Errorf("OK = %v with %d violations", r.OK, len(r.Violations))
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		r    Report
		want string
	}{
		{
			Report{InputRecords: 100000, Keys: 1000, OK: true,
				Outputs: map[string]int64{"a": 1e5, "b": 1e5, "c": 1e5, "d": 1e5, "e": 1e5}},
			"PASS: 100000 input records, 5 outputs x 100000, 1000 keys",
		},
		{
			Report{Violations: []string{"T-sum: key \"k1\": x", "T-echo[2]: y", "T-sum[0]: open transaction", "group app: T[1]: z"}},
			"FAIL: 4 violations (T-sum 2, T-echo 1, group app 1)",
		},
		{
			Report{Violations: []string{"T-max: topic does not exist"}},
			"FAIL: 1 violation (T-max 1)",
		},
	}
	for _, tt := range tests {
		if got := tt.r.Verdict(); got != tt.want {
			t.Errorf("Verdict() = %q, want %q", got, tt.want)
		}
	}
}

// BenchmarkEvaluate measures the checker's work after reading: 100,000 input
// records over 1,000 keys and their five outputs.
func BenchmarkEvaluate(b *testing.B) {
	seq := newSequence(1, 1000)
	input := map[int32][]string{}
	for range 100_000 {
		k, v := seq.next()
		p := javaPartition([]byte(k), 4)
		input[p] = append(input[p], k+"="+formatDecimal(v))
	}
	s := memSnapshot(4, input)
	if r := s.evaluate(); !r.OK {
		b.Fatal(r.Verdict())
	}
	b.ReportAllocs()
	for b.Loop() {
		s.evaluate()
	}
}
