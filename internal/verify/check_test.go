package verify

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	testInput      = "T"
	testGroup      = "app"
	testPartitions = 4
)

// inRec is an input record as the test wrote it.
type inRec struct {
	p          int32
	off        int64
	key, value string
}

// outRec is an output record the test writes in place of a runner.
type outRec struct {
	p          int32
	key, value string
}

// writeInput writes n records over keys keys, drawn from the test's own
// random source, with kgo's default (murmur2) partitioner, and returns them
// in partition, then offset, order.
func writeInput(t *testing.T, brokers []string, n, keys int) []inRec {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Topic: testInput,
			Key:   []byte("k" + strconv.Itoa(rng.IntN(keys))),
			Value: []byte(strconv.Itoa(rng.IntN(2001) - 1000)),
		}
	}
	if err := newClient(t, brokers).ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
		t.Fatalf("write input: %v", err)
	}
	in := make([]inRec, n)
	for i, r := range recs {
		in[i] = inRec{r.Partition, r.Offset, string(r.Key), string(r.Value)}
	}
	slices.SortFunc(in, func(a, b inRec) int {
		if a.p != b.p {
			return int(a.p - b.p)
		}
		return int(a.off - b.off)
	})
	return in
}

// correctOutputs is what a correct run writes for in over output topics of
// partitions partitions: per output topic, one record per input record, in
// input order, in the partition murmur2 of its key gives (a null key's echo
// stays in its input partition: murmur2_random sends it anywhere). Each input
// partition aggregates its own records, as the runner's tasks do, so a key in
// several input partitions has a running aggregate per input partition. The
// aggregates are computed here, independently of Check.
func correctOutputs(in []inRec, partitions int32) map[string][]outRec {
	type agg struct{ sum, min, max, cnt int64 }
	type keyInPartition struct {
		key string
		p   int32
	}
	state := map[keyInPartition]*agg{}
	out := map[string][]outRec{}
	for _, r := range in {
		q := r.p
		if r.key != "<null>" {
			q = murmur2Partition([]byte(r.key), partitions)
		}
		add := func(topic string, value string) {
			out[topic] = append(out[topic], outRec{q, r.key, value})
		}
		add("T-echo", r.value)
		if r.key == "<null>" {
			continue // a null key is echoed but not aggregated
		}
		v, _ := strconv.ParseInt(r.value, 10, 64)
		a := state[keyInPartition{r.key, r.p}]
		if a == nil {
			a = &agg{min: v, max: v}
			state[keyInPartition{r.key, r.p}] = a
		}
		a.sum += v
		a.cnt++
		if v < a.min {
			a.min = v
		}
		if v > a.max {
			a.max = v
		}
		add("T-sum", strconv.FormatInt(a.sum, 10))
		add("T-min", strconv.FormatInt(a.min, 10))
		add("T-max", strconv.FormatInt(a.max, 10))
		add("T-cnt", strconv.FormatInt(a.cnt, 10))
	}
	return out
}

// writeOutputs writes out as an exactly-once runner would: in transactions
// of up to 50 records per topic, each preceded by an aborted transaction of
// junk on every partition, so that the outputs carry commit and abort
// markers and aborted records, which Check must step over.
func writeOutputs(t *testing.T, brokers []string, out map[string][]outRec) {
	t.Helper()
	ctx := testContext(t)
	cl := newClient(t, brokers, kgo.TransactionalID("test-runner"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	txn := func(recs []*kgo.Record, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end transaction: %v", err)
		}
	}
	longest := 0
	for _, recs := range out {
		longest = max(longest, len(recs))
	}
	const chunk = 50
	for from := 0; from < longest; from += chunk {
		var junk, recs []*kgo.Record
		for _, topic := range OutputTopics(testInput) {
			if _, ok := out[topic]; !ok {
				continue
			}
			for p := range int32(testPartitions) {
				junk = append(junk, &kgo.Record{Topic: topic, Partition: p, Key: []byte("junk"), Value: []byte("junk")})
			}
			for _, r := range out[topic][min(from, len(out[topic])):min(from+chunk, len(out[topic]))] {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: r.p, Key: []byte(r.key), Value: []byte(r.value)})
			}
		}
		txn(junk, kgo.TryAbort)
		txn(recs, kgo.TryCommit)
	}
}

// inputEnds is the end offset of each input partition.
func inputEnds(in []inRec) map[int32]int64 {
	ends := map[int32]int64{}
	for p := range int32(testPartitions) {
		ends[p] = 0
	}
	for _, r := range in {
		ends[r.p] = max(ends[r.p], r.off+1)
	}
	return ends
}

// fixture is one Check scenario: the input, the outputs and commits a
// correct run would leave, which a fault then alters.
type fixture struct {
	in      []inRec
	out     map[string][]outRec
	commits map[int32]int64
	topics  []string // output topics to create
}

// keyPos returns the position of in[i] among its key's records, and the
// key's record count.
func (f *fixture) keyPos(i int) (pos, n int) {
	for j, r := range f.in {
		if r.key == f.in[i].key {
			if j < i {
				pos++
			}
			n++
		}
	}
	return pos, n
}

// nextOfKey is the index of the key's next record after in[i], or -1.
func (f *fixture) nextOfKey(i int) int {
	for j := i + 1; j < len(f.in); j++ {
		if f.in[j].key == f.in[i].key {
			return j
		}
	}
	return -1
}

func TestCheck(t *testing.T) {
	q := regexp.QuoteMeta
	tests := []struct {
		name string
		// fault alters f before anything is written and returns the
		// pattern of the single violation expected; "" expects a pass.
		fault func(f *fixture) string
		// after, if set, runs once the outputs and commits are written.
		after func(t *testing.T, brokers []string)
		// report, if set, checks more of the report.
		report func(t *testing.T, r *Report)
	}{
		{
			name:  "correct",
			fault: func(f *fixture) string { return "" },
		},
		{
			name: "duplicate output record",
			fault: func(f *fixture) string {
				const i = 20
				dup := f.out["T-sum"][i]
				f.out["T-sum"] = slices.Insert(f.out["T-sum"], i+1, dup)
				_, n := f.keyPos(i)
				return fmt.Sprintf(`^T-sum: key %s: duplicate record at partition %d offset \d+: %s repeats offset \d+; %d records, want %d$`,
					q(strconv.Quote(dup.key)), dup.p, q(dup.value), n+1, n)
			},
		},
		{
			name: "missing output record",
			fault: func(f *fixture) string {
				// A record whose max differs from the key's next one, so
				// the loss is seen at this very record.
				i := 30
				for ; ; i++ {
					if j := f.nextOfKey(i); j < 0 || f.out["T-max"][j].value != f.out["T-max"][i].value {
						break
					}
				}
				lost := f.out["T-max"][i]
				f.out["T-max"] = slices.Delete(f.out["T-max"], i, i+1)
				_, n := f.keyPos(i)
				return fmt.Sprintf(`^T-max: key %s: missing record %s for input partition %d offset %d \((before partition %d offset \d+|at the end)\); %d records, want %d$`,
					q(strconv.Quote(lost.key)), q(lost.value), f.in[i].p, f.in[i].off, lost.p, n-1, n)
			},
		},
		{
			name: "wrong aggregate value",
			fault: func(f *fixture) string {
				const i = 40
				want := f.out["T-min"][i].value
				f.out["T-min"][i].value = "12345"
				pos, n := f.keyPos(i)
				return fmt.Sprintf(`^T-min: key %s: record #%d at partition %d offset \d+ is 12345, want %s \(input partition %d offset %d\); %d records, want %d$`,
					q(strconv.Quote(f.in[i].key)), pos, f.in[i].p, q(want), f.in[i].p, f.in[i].off, n, n)
			},
		},
		{
			name: "extra record of a key not in the input",
			fault: func(f *fixture) string {
				f.out["T-cnt"] = append(f.out["T-cnt"], outRec{p: 3, key: "intruder", value: "1"})
				return `^T-cnt: key "intruder" is not in the input: 1 extra record \(first at partition 3 offset \d+, value 1\)$`
			},
		},
		{
			name: "extra record of an input key",
			fault: func(f *fixture) string {
				r := f.in[len(f.in)-1]
				f.out["T-cnt"] = append(f.out["T-cnt"], outRec{p: r.p, key: r.key, value: "0"})
				_, n := f.keyPos(len(f.in) - 1)
				return fmt.Sprintf(`^T-cnt: key %s: extra record at partition %d offset \d+: 0; %d records, want %d$`,
					q(strconv.Quote(r.key)), r.p, n+1, n)
			},
		},
		{
			name: "echo reordered",
			fault: func(f *fixture) string {
				i := 10
				for f.in[i].p != f.in[i+1].p || f.in[i].key == f.in[i+1].key {
					i++
				}
				echo := f.out["T-echo"]
				echo[i], echo[i+1] = echo[i+1], echo[i]
				a, b := f.in[i], f.in[i+1]
				return fmt.Sprintf(`^T-echo\[%d\]: records at partition %d offsets \d+ and \d+ are out of order: got %s, %s; want %s, %s \(input offsets %d, %d\)$`,
					a.p, a.p, q(b.key+"="+b.value), q(a.key+"="+a.value), q(a.key+"="+a.value), q(b.key+"="+b.value), a.off, b.off)
			},
		},
		{
			name: "open transaction on an output",
			fault: func(f *fixture) string {
				return `^T-sum\[2\]: open transaction: last stable offset \d+ < high watermark \d+ \(1 offset undecided\)$`
			},
			after: func(t *testing.T, brokers []string) {
				// A producer that begins, produces and neither commits
				// nor aborts, as a runner killed mid-transaction.
				cl := newClient(t, brokers, kgo.TransactionalID("zombie"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
				if err := cl.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				rec := &kgo.Record{Topic: "T-sum", Partition: 2, Key: []byte("k0"), Value: []byte("999999")}
				if err := cl.ProduceSync(testContext(t), rec).FirstErr(); err != nil {
					t.Fatal(err)
				}
			},
			report: func(t *testing.T, r *Report) {
				// The undecided record is not read: it is past the last
				// stable offset.
				if r.Outputs["T-sum"] != 200 {
					t.Errorf("Outputs[T-sum] = %d, want 200", r.Outputs["T-sum"])
				}
			},
		},
		{
			name: "committed offsets short of the input end",
			fault: func(f *fixture) string {
				end := f.commits[1]
				f.commits[1] = end - 3
				return fmt.Sprintf(`^group app: T\[1\]: committed offset %d < input end %d \(3 offsets not committed as processed\)$`, end-3, end)
			},
		},
		{
			name: "no committed offset for a partition",
			fault: func(f *fixture) string {
				p := f.in[len(f.in)-1].p // a partition that has records
				end := f.commits[p]
				delete(f.commits, p)
				return fmt.Sprintf(`^group app: T\[%d\]: no committed offset; input end is %d$`, p, end)
			},
		},
		{
			name: "output topic missing",
			fault: func(f *fixture) string {
				f.topics = slices.DeleteFunc(f.topics, func(s string) bool { return s == "T-max" })
				delete(f.out, "T-max")
				return `^T-max: topic does not exist$`
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			brokers := newCluster(t, testPartitions, testInput)
			f := &fixture{in: writeInput(t, brokers, 200, 10), topics: OutputTopics(testInput)}
			f.out = correctOutputs(f.in, testPartitions)
			f.commits = inputEnds(f.in)
			want := tt.fault(f)
			createTopics(t, brokers, f.topics)
			writeOutputs(t, brokers, f.out)
			commitOffsets(t, brokers, testGroup, testInput, f.commits)
			if tt.after != nil {
				tt.after(t, brokers)
			}

			r, err := Check(testContext(t), CheckConfig{Brokers: brokers, Input: testInput, Group: testGroup})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tt.report != nil {
				tt.report(t, r)
			}
			if r.InputRecords != 200 || r.Keys != 10 {
				t.Errorf("InputRecords, Keys = %d, %d; want 200, 10", r.InputRecords, r.Keys)
			}
			if want == "" {
				if !r.OK || len(r.Violations) != 0 {
					t.Fatalf("want a pass, got %s:\n%s", r.Verdict(), strings.Join(r.Violations, "\n"))
				}
				if got, w := r.Verdict(), "PASS: 200 input records, 5 outputs x 200, 10 keys"; got != w {
					t.Errorf("Verdict = %q, want %q", got, w)
				}
				for _, topic := range OutputTopics(testInput) {
					if r.Outputs[topic] != 200 {
						t.Errorf("Outputs[%s] = %d, want 200", topic, r.Outputs[topic])
					}
				}
				return
			}
			if r.OK {
				t.Fatalf("want a failure matching %s, got %s", want, r.Verdict())
			}
			if len(r.Violations) != 1 || !regexp.MustCompile(want).MatchString(r.Violations[0]) {
				t.Fatalf("want one violation matching\n  %s\ngot %d:\n  %s", want, len(r.Violations), strings.Join(r.Violations, "\n  "))
			}
			t.Logf("%s\n%s", r.Verdict(), r.Violations[0])
			if v := r.Verdict(); !strings.HasPrefix(v, "FAIL: 1 violation (") {
				t.Errorf("Verdict = %q, want FAIL: 1 violation (...)", v)
			}
		})
	}
}

// createTopics creates topics with testPartitions partitions each.
func createTopics(t *testing.T, brokers []string, topics []string) {
	t.Helper()
	cl := newClient(t, brokers)
	for _, topic := range topics {
		if _, _, err := createTopic(testContext(t), cl, topic, testPartitions, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDescribeFlushed(t *testing.T) {
	want := func(texts ...string) []expected {
		var out []expected
		for i, s := range texts {
			out = append(out, expected{0, int64(i), s})
		}
		return out
	}
	got := func(texts ...string) []observed {
		var out []observed
		for i, s := range texts {
			out = append(out, observed{0, int64(i), "k", false, s})
		}
		return out
	}
	for _, c := range []struct {
		name string
		got  []observed
		want []expected
		bad  bool
	}{
		{"every update", got("1", "2", "3"), want("1", "2", "3"), false},
		{"merged", got("2", "3"), want("1", "2", "3"), false},
		{"final only", got("3"), want("1", "2", "3"), false},
		{"a repeated running value (sum back to 0)", got("0", "5", "0"), want("5", "0", "5", "0"), false},
		{"final missing", got("1", "2"), want("1", "2", "3"), true},
		{"duplicate (processed twice)", got("1", "2", "2", "3"), want("1", "2", "3"), true},
		{"out of order", got("2", "1", "3"), want("1", "2", "3"), true},
		{"nothing", nil, want("1"), true},
		{"none wanted", got("1"), nil, true},
		{"none", nil, nil, false},
	} {
		if _, bad := describeFlushed("sum: key \"k\"", c.got, c.want); bad != c.bad {
			t.Errorf("%s: bad = %v, want %v", c.name, bad, c.bad)
		}
	}
}
