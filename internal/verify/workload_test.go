package verify

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/processor"
)

// TestWorkload runs the whole workload against kfake: Generate writes the
// input, Topology() runs on processor.TestDriver (the runner's tasks and
// Pebble stores, no broker) with ManualCommit, one transaction per chunk of
// a partition's input, and the outputs of each are written to kfake in a
// transaction of their own; Check judges. So the topology and Check are
// proven to agree. The runs differ in how the input is partitioned (murmur2
// as Java's producer, crc32 as librdkafka's default, at random so that keys
// are spread over partitions) and in what happens when a transaction fails
// halfway: the exactly-once path passes with any input, the classic
// failures fail with any input. The driver plays each failure: Abort rolls
// the stores and stream time back and returns the outputs the transaction
// had produced, Commit applies the state.
func TestWorkload(t *testing.T) {
	const (
		n     = 1200
		keys  = 30
		chunk = 100 // input records per transaction
	)
	type onFailure int
	const (
		none          onFailure = iota
		exactlyOnce             // abort the transaction, drop pending state, reprocess
		atLeastOnce             // outputs already committed, state and offsets rolled back, reprocess
		stateTooEarly           // outputs aborted but state already applied, reprocess
		lost                    // outputs and state aborted, offsets committed past them: no reprocess
	)
	tests := []struct {
		name string
		fail onFailure
		// want are the output topics with violations; nil expects a pass.
		want []string
	}{
		{"no failure", none, nil},
		{"exactly once: abort and replay", exactlyOnce, nil},
		{"at least once: outputs committed, replay", atLeastOnce, OutputTopics(testInput)},
		{"state applied before the commit, replay", stateTooEarly, []string{"T-sum", "T-cnt"}},
		{"outputs aborted, offsets committed: lost", lost, OutputTopics(testInput)},
	}
	for _, partitioner := range partitioners {
		for _, tt := range tests {
			t.Run(partitioner+"/"+tt.name, func(t *testing.T) {
				brokers := newCluster(t, testPartitions, append(OutputTopics(testInput), WindowedOutputTopic(testInput))...)
				ctx := testContext(t)
				if _, err := Generate(ctx, GenerateConfig{Brokers: brokers, Topic: testInput, Records: n, Keys: keys,
					Partitions: testPartitions, Seed: 11, Partitioner: partitioner,
					// 12s of event time: windows close, and a late record.
					EventRate: n / 12, LateEvery: 100}); err != nil {
					t.Fatal(err)
				}
				topo, err := Topology(testInput)
				if err != nil {
					t.Fatal(err)
				}
				d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{ApplicationID: testGroup,
					Partitions: map[string]int{testInput: testPartitions}, OnError: processor.OnErrorFail, ManualCommit: true})
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				prod := newClient(t, brokers, kgo.TransactionalID("workload"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
				// outputs keeps the records of the topology's output topics
				// (not its changelogs), as kgo records in their partitions.
				outTopics := append(OutputTopics(testInput), WindowedOutputTopic(testInput))
				outputs := func(recs []processor.TestRecord) []*kgo.Record {
					var out []*kgo.Record
					for _, r := range recs {
						if slices.Contains(outTopics, r.Topic) {
							out = append(out, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp})
						}
					}
					return out
				}
				// committed commits the driver's transaction and returns its outputs.
				committed := func() []*kgo.Record {
					t.Helper()
					if err := d.Commit(); err != nil {
						t.Fatal(err)
					}
					var recs []processor.TestRecord
					for _, topic := range outTopics {
						recs = append(recs, d.ReadOutput(topic)...)
					}
					return outputs(recs)
				}
				txn := func(recs []*kgo.Record, commit kgo.TransactionEndTry) {
					t.Helper()
					if err := prod.BeginTransaction(); err != nil {
						t.Fatal(err)
					}
					if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
						t.Fatal(err)
					}
					if err := prod.EndTransaction(ctx, commit); err != nil {
						t.Fatal(err)
					}
				}

				commits := map[int32]int64{}
				failed := false
				input := consumeN(t, brokers, testInput, n)
				for p := range int32(testPartitions) {
					recs := input[p]
					for from := 0; from < len(recs); from += chunk {
						batch := recs[from:min(from+chunk, len(recs))]
						run := func() {
							for _, r := range batch {
								if err := d.PipeRecord(processor.TestRecord{Topic: testInput, Partition: p,
									Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}); err != nil {
									t.Fatal(err)
								}
							}
						}
						run()
						if !failed && tt.fail != none && from > 0 {
							// The transaction fails once, in the middle of the input.
							failed = true
							switch tt.fail {
							case exactlyOnce:
								txn(outputs(d.Abort()), kgo.TryAbort)
								run()
							case atLeastOnce:
								txn(outputs(d.Abort()), kgo.TryCommit)
								run()
							case stateTooEarly:
								txn(committed(), kgo.TryAbort)
								run()
							case lost:
								txn(outputs(d.Abort()), kgo.TryAbort)
							}
						}
						txn(committed(), kgo.TryCommit)
						commits[p] = batch[len(batch)-1].Offset + 1
					}
				}
				if tt.fail != none && !failed {
					t.Fatal("no partition had two transactions: no failure injected")
				}
				commitOffsets(t, brokers, testGroup, testInput, commits)

				r, err := Check(ctx, CheckConfig{Brokers: brokers, Input: testInput, Group: testGroup})
				if err != nil {
					t.Fatal(err)
				}
				if spread := r.SpreadKeys > 0; spread != (partitioner == PartitionRandom) {
					t.Errorf("SpreadKeys = %d with the %s partitioner", r.SpreadKeys, partitioner)
				}
				if tt.want == nil {
					if !r.OK {
						t.Fatalf("%s\n  %s", r.Verdict(), strings.Join(r.Violations, "\n  "))
					}
					if r.InputRecords != n || r.Keys != keys {
						t.Errorf("%s; want %d records, %d keys", r.Verdict(), n, keys)
					}
					if w := r.Windowed; w == nil || w.Closed < keys || w.Late == 0 {
						t.Errorf("%s; want closed windows for every key and late records", r.Verdict())
					}
					return
				}
				t.Logf("%s\n  %s", r.Verdict(), strings.Join(r.Violations[:min(len(r.Violations), 5)], "\n  "))
				if r.OK {
					t.Fatalf("want violations in %v, got %s", tt.want, r.Verdict())
				}
				seen := map[string]bool{}
				for _, v := range r.Violations {
					subj, _, _ := strings.Cut(v, ":")
					subj, _, _ = strings.Cut(subj, "[")
					seen[subj] = true
				}
				for _, topic := range tt.want {
					if !seen[topic] {
						t.Errorf("no violation on %s", topic)
					}
				}
				if tt.fail == stateTooEarly && seen["T-echo"] {
					t.Errorf("violations on T-echo, whose records are right: %v", r.Violations)
				}
			})
		}
	}
}
