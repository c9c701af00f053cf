package verify

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// memSnapshot builds, without a broker, the snapshot of a correct run over
// the input records given per partition ("key=value"; a key "<null>" is a
// null key), however they are partitioned: outputs from correctOutputs (in
// murmur2 partitions, as the runner writes them), every partition ending
// after its last record, commits at the input ends.
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
	for topic, recs := range correctOutputs(in, partitions) {
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

// repartition moves every record of topic to the partition murmur2 of its key
// gives over n partitions, keeping their order, as the runner writes a topic
// of n partitions.
func (s *snapshot) repartition(topic string, n int32) {
	var all []record
	for p := range s.counts[topic] {
		all = append(all, s.records[topicPartition{topic, p}]...)
		delete(s.records, topicPartition{topic, p})
		delete(s.ends, topicPartition{topic, p})
	}
	s.counts[topic] = n
	for _, r := range all {
		tp := topicPartition{topic, murmur2Partition([]byte(r.key), n)}
		r.offset = int64(len(s.records[tp]))
		s.records[tp] = append(s.records[tp], r)
	}
	for p := range n {
		end := int64(len(s.records[topicPartition{topic, p}]))
		s.ends[topicPartition{topic, p}] = ends{0, end, end}
	}
}

// keyIndexes returns the indexes in partition p of topic of key's records.
func (s *snapshot) keyIndexes(topic string, p int32, key string) []int {
	var out []int
	for i, r := range s.records[topicPartition{topic, p}] {
		if r.key == key {
			out = append(out, i)
		}
	}
	return out
}

func TestEvaluate(t *testing.T) {
	// base is not partitioned by murmur2, as a librdkafka producer
	// (crc32) or a hand-written one may leave it: c is in partition 1,
	// while murmur2 sends a, b and c to 0 and d to 1 (of 2). So T-echo[0]
	// holds records from T[0] (a, b) and from T[1] (c).
	base := map[int32][]string{
		0: {"a=1", "b=-2", "a=3", "a=-4"},
		1: {"c=5", "c=0", "d=7"},
	}
	// spread has key a in both partitions, as a random partitioner writes:
	// the runner's task for each partition sums its own records of a, so
	// T-sum has a's running sums 1, 3 (from T[0]) and 5, 4 (from T[1]).
	spread := map[int32][]string{
		0: {"a=1", "b=3", "a=2"},
		1: {"a=5", "a=-1", "d=7"},
	}
	tests := []struct {
		name   string
		input  map[int32][]string
		alter  func(s *snapshot)
		want   []string // patterns, one per violation, in order
		spread int      // Report.SpreadKeys
	}{
		{name: "correct", input: base},
		{
			name: "input in crc32 partitions, as librdkafka's default partitioner writes",
			// crc32 of 2: a, b, c and h to 1; d, e, f and g to 0.
			input: map[int32][]string{0: {"d=1", "e=2", "d=3", "f=-4", "g=0"}, 1: {"a=5", "b=0", "a=7", "c=1", "h=-9"}},
		},
		{
			name:  "empty input",
			input: map[int32][]string{},
			want:  []string{`^T: no committed input records; nothing to verify$`},
		},
		{name: "input key in two partitions, aggregated per partition", input: spread, spread: 1},
		{
			name:  "key in two partitions: outputs of the two partitions interleaved otherwise",
			input: spread,
			alter: func(s *snapshot) {
				// a's sums in T-sum[0] are 1, 3, 5, 4: make them 5, 1, 4, 3.
				tp := topicPartition{"T-sum", 0}
				ix := s.keyIndexes("T-sum", 0, "a")
				for i, v := range []string{"5", "1", "4", "3"} {
					s.records[tp][ix[i]].value = v
				}
			},
			spread: 1,
		},
		{
			name:  "key in two partitions: out of order within one",
			input: spread,
			alter: func(s *snapshot) {
				// 3 before 1: T[0]'s sums reversed.
				tp := topicPartition{"T-sum", 0}
				ix := s.keyIndexes("T-sum", 0, "a")
				for i, v := range []string{"3", "1", "5", "4"} {
					s.records[tp][ix[i]].value = v
				}
			},
			want: []string{`^T-sum: key "a" \(in input partitions 0 and 1\): record at partition 0 offset 0 is 3, not the next record of any input partition ` +
				`\(next: 1 for input partition 0 offset 0; 5 for input partition 1 offset 0\): out of order; 4 records$`},
			spread: 1,
		},
		{
			name:  "key in two partitions: a record lost",
			input: spread,
			alter: func(s *snapshot) {
				tp := topicPartition{"T-sum", 0}
				ix := s.keyIndexes("T-sum", 0, "a")
				s.records[tp] = slices.Delete(s.records[tp], ix[2], ix[2]+1) // T[1]'s first: 5
			},
			want:   []string{`^T-sum: key "a" \(in input partitions 0 and 1\): 1 record missing \(first: 5 for input partition 1 offset 0\); 3 records, want 4$`},
			spread: 1,
		},
		{
			name:  "key in two partitions: a record processed twice",
			input: spread,
			alter: func(s *snapshot) {
				// T[1]'s a=5 twice: echo has it twice, the count runs 1, 2, 3.
				for _, topic := range []string{"T-echo", "T-cnt"} {
					tp := topicPartition{topic, 0}
					ix := s.keyIndexes(topic, 0, "a")
					s.records[tp] = slices.Insert(s.records[tp], ix[3], s.records[tp][ix[2]])
				}
				tp := topicPartition{"T-cnt", 0}
				for i, n := range s.keyIndexes("T-cnt", 0, "a") {
					s.records[tp][n].value = []string{"1", "2", "1", "2", "3"}[i]
				}
			},
			want: []string{
				`^T-echo: key "a" \(in input partitions 0 and 1\): 1 extra \(first at partition 0 offset \d+: a=5, repeated\); 5 records, want 4$`,
				`^T-cnt: key "a" \(in input partitions 0 and 1\): 1 extra \(first at partition 0 offset \d+: 3\); 5 records, want 4$`,
			},
			spread: 1,
		},
		{
			name:  "null input key",
			input: map[int32][]string{0: {"a=1", "<null>=2"}},
			// Echo has it; the aggregates skip it, as the runner does.
			want: []string{`^T\[0\]: record at offset 1 has a null key; aggregations skip it$`},
		},
		{
			name:  "null input key: echo in another partition, one lost",
			input: map[int32][]string{0: {"a=1", "<null>=2"}, 1: {"<null>=3"}},
			alter: func(s *snapshot) {
				// murmur2_random sends a null key anywhere.
				s.records[topicPartition{"T-echo", 0}] = append(s.records[topicPartition{"T-echo", 0}], s.records[topicPartition{"T-echo", 1}]...)
				s.records[topicPartition{"T-echo", 1}] = nil
				s.records[topicPartition{"T-echo", 0}] = slices.DeleteFunc(s.records[topicPartition{"T-echo", 0}],
					func(r record) bool { return r.value == "2" })
			},
			want: []string{
				`^T\[0\]: record at offset 1 has a null key; aggregations skip it$`,
				`^T\[1\]: record at offset 0 has a null key; aggregations skip it$`,
				`^T-echo: records with a null key: 1 record missing \(first: <null>=2 for input partition 0 offset 1\); 1 records, want 2$`,
			},
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
				from := topicPartition{"T-sum", 0}
				ix := s.keyIndexes("T-sum", 0, "a")
				last := s.records[from][ix[len(ix)-1]] // a's last sum, 0
				s.records[from] = slices.Delete(s.records[from], ix[len(ix)-1], ix[len(ix)-1]+1)
				s.records[topicPartition{"T-sum", 1}] = append(s.records[topicPartition{"T-sum", 1}], last)
			},
			want: []string{`^T-sum: key "a" is in partitions \[0 1\]; all of a key's records belong in one partition$`},
		},
		{
			name:  "outputs not partitioned by murmur2",
			input: base,
			alter: func(s *snapshot) { s.moveKey("T-cnt", "d", 0) },
			want: []string{`^T-cnt: 1 key outside the partition murmur2 gives \(first: key "d" in partition 0, murmur2 gives 1\); ` +
				`the runner partitions outputs by murmur2 of the key, as Java's producer does$`},
		},
		{
			name:  "echo with another partition count",
			input: base,
			alter: func(s *snapshot) { s.repartition("T-echo", 3) },
		},
		{
			name:  "echo with another partition count, one record lost",
			input: base,
			alter: func(s *snapshot) {
				s.repartition("T-echo", 3)
				tp := topicPartition{"T-echo", 1} // murmur2 of 3: a and c to 1
				ix := s.keyIndexes("T-echo", 1, "c")
				s.records[tp] = slices.Delete(s.records[tp], ix[0], ix[0]+1) // c=5
			},
			want: []string{
				`^T-echo\[1\]: missing record c=5 for input partition 1 offset 0 \(before partition 1 offset 4\); 1 records, want 2$`,
			},
		},
		{
			name:  "echo missing its last records",
			input: base,
			alter: func(s *snapshot) {
				tp := topicPartition{"T-echo", 0}
				s.records[tp] = s.records[tp][:1]
			},
			want: []string{
				`^T-echo\[0\]: 3 records missing, for input partition 0 offsets 1..3 \(first b=-2\) \(at the end\); 1 records, want 4$`,
				`^T-echo\[0\]: records from T\[1\]: 2 records missing, for input partition 1 offsets 0..1 \(first c=5\) \(at the end\); 0 records, want 2$`,
			},
		},
		{
			name:  "echo reordered across keys of one input partition",
			input: base,
			alter: func(s *snapshot) {
				recs := s.records[topicPartition{"T-echo", 0}]
				recs[0].value, recs[1].value, recs[0].key, recs[1].key = recs[1].value, recs[0].value, recs[1].key, recs[0].key
			},
			want: []string{`^T-echo\[0\]: records at partition 0 offsets 0 and 1 are out of order: got b=-2, a=1; want a=1, b=-2 \(input offsets 0, 1\)$`},
		},
		{
			name:  "wrong values from a point on: a replay against stale state",
			input: base,
			alter: func(s *snapshot) {
				tp := topicPartition{"T-sum", 0}
				ix := s.keyIndexes("T-sum", 0, "a")
				s.records[tp][ix[1]].value = "4" // a: 1+3
				s.records[tp][ix[2]].value = "7" // a=3 applied twice
				s.records[tp] = slices.Insert(s.records[tp], ix[2]+1, record{key: "a", value: "3"})
				for i := range s.records[tp] {
					s.records[tp][i].offset = int64(i)
				}
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
			if r.SpreadKeys != tt.spread {
				t.Errorf("SpreadKeys = %d, want %d", r.SpreadKeys, tt.spread)
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
			Report{InputRecords: 10, Keys: 3, SpreadKeys: 2, OK: true,
				Outputs: map[string]int64{"a": 10, "b": 10, "c": 10, "d": 10, "e": 10}},
			"PASS: 10 input records, 5 outputs x 10, 3 keys (2 in several input partitions)",
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
// records over 1,000 keys and their five outputs, with the input partitioned
// by murmur2 (each key in one partition) and at random (each key in all four,
// checked as interleavings).
func BenchmarkEvaluate(b *testing.B) {
	for _, name := range []string{PartitionMurmur2, PartitionRandom} {
		b.Run(name, func(b *testing.B) {
			seq := newSequence(1, 1000)
			partition := recordPartitioner(name, 1, 4)
			input := map[int32][]string{}
			for range 100_000 {
				k, v := seq.next()
				p := partition([]byte(k))
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
		})
	}
}
