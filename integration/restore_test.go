package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// keyCounter counts records per key in store "cnt" and forwards the count.
type keyCounter struct {
	ctx   topology.ProcessorContext
	store topology.KeyValueStore
}

func (p *keyCounter) Init(ctx topology.ProcessorContext) error {
	p.ctx, p.store = ctx, ctx.Store("cnt")
	return nil
}

func (p *keyCounter) Process(r topology.Record) error {
	old, err := p.store.Get(r.Key)
	if err != nil {
		return err
	}
	n, _ := old.(int64)
	if err := p.store.Put(r.Key, n+1); err != nil {
		return err
	}
	return p.ctx.Forward(r.WithValue(n + 1))
}

func (p *keyCounter) Close() error { return nil }

func keyCounterTopology(t *testing.T, topic string) *topology.Topology {
	b := topology.NewBuilder()
	b.AddStore(topology.StoreSpec{Name: "cnt", KeySerde: serde.String{}, ValueSerde: serde.Int64{}})
	b.Stream([]string{topic}, topology.Consumed{Key: serde.String{}, Value: serde.DecimalString{}}).
		Process(func() topology.Processor { return &keyCounter{} }, topology.Named("counter"), topology.WithStores("cnt")).
		To(topic+"-out", topology.Produced{Key: serde.String{}, Value: serde.DecimalString{}})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// logSink keeps an in-process runner's JSON log lines, parsed, and copies
// them to the test's log file.
type logSink struct {
	f    *os.File
	mu   sync.Mutex
	logs []map[string]any
}

func (s *logSink) Write(p []byte) (int, error) {
	s.f.Write(p)
	var m map[string]any
	if json.Unmarshal(bytes.TrimSpace(p), &m) == nil {
		s.mu.Lock()
		s.logs = append(s.logs, m)
		s.mu.Unlock()
	}
	return len(p), nil
}

// restoreView is what a runner's log says of its partitions, in order: a
// partition is restoring from its assignment until its task runs.
type restoreView struct {
	owned, restoring map[int32]bool
	// revokedMid counts partitions revoked while their task was restoring;
	// backMid, those of them assigned back later.
	revokedMid, backMid int
}

func (s *logSink) view() restoreView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := restoreView{owned: map[int32]bool{}, restoring: map[int32]bool{}}
	cut := map[int32]bool{}
	for _, l := range s.logs {
		ps, _ := l["partitions"].([]any)
		switch l["msg"] {
		case "partitions assigned":
			for _, p := range ps {
				n := partitionNumber(fmt.Sprint(p))
				if cut[n] {
					v.backMid++
					delete(cut, n)
				}
				v.owned[n], v.restoring[n] = true, true
			}
		case "partitions revoked":
			for _, p := range ps {
				n := partitionNumber(fmt.Sprint(p))
				if v.restoring[n] {
					v.revokedMid++
					cut[n] = true
				}
				delete(v.owned, n)
				delete(v.restoring, n)
			}
		case "task running":
			task, _ := l["task"].(string)
			if _, p, ok := strings.Cut(task, "_"); ok {
				n, _ := strconv.Atoi(p)
				delete(v.restoring, int32(n))
			}
		}
	}
	return v
}

// partitionNumber reads p from "topic[p]".
func partitionNumber(tp string) int32 {
	i := strings.LastIndexByte(tp, '[')
	n, _ := strconv.Atoi(strings.TrimSuffix(tp[i+1:], "]"))
	return int32(n)
}

// startInProcess runs a topology in this process as one instance until its
// stop is called; its log is kept in the returned sink.
func startInProcess(t *testing.T, cfg processor.Config, topo *topology.Topology) (*logSink, func() error) {
	t.Helper()
	sink := &logSink{f: logFile(t, "inproc-"+cfg.InstanceID)}
	_, stop := runLogged(t, cfg, topo, slog.New(slog.NewJSONHandler(sink, nil)))
	return sink, stop
}

// TestRevokeDuringLargeRestoreThenAssign: instance b starts with no state
// and restores two large changelog partitions; instance c joins and takes a
// partition from b in the middle of its restore; c leaves, and the partition
// is assigned back to b. Each time, b's restores must finish and its tasks
// run. Once a revoked restore left the restore consumer's dispatcher blocked
// on a channel nobody read, b's later restores never finished: paused, with
// no error. The cycle runs a few times, since a revoke catches the
// dispatcher on the revoked restore's channel only some of the time.
//
// The changelog records carry 4 KiB values, so that writing them to Pebble,
// not fetching them, bounds the restore: the restores' channels then fill up
// and the dispatcher waits on them, as in a real restore of large state.
// (With small values the fetch is the slower side, the channels stay almost
// empty, and the revoke never finds the dispatcher waiting.)
func TestRevokeDuringLargeRestoreThenAssign(t *testing.T) {
	const (
		partitions  = 2
		bulk        = 30_000 // changelog records per partition, restored by b
		valueSize   = 4096
		records     = 2000 // input records
		keys        = 20
		cycles      = 3
		restoreWait = 3 * time.Minute
	)
	br := startBroker(t)
	k := newKafka(t, br.addr)
	ctx := context.Background()
	topic := uniqueTopic("restore-revoke")
	app := topic + "-app"
	topo := keyCounterTopology(t, topic)

	// The changelog, written directly: keys the input never uses, so the
	// counts of the input keys start at zero (and their values, opaque to a
	// restore, are never read as counts).
	changelog := topology.ChangelogTopic(app, "cnt")
	if _, err := k.adm.CreateTopics(ctx, partitions, 1, map[string]*string{"cleanup.policy": ptr("compact")}, changelog); err != nil {
		t.Fatal(err)
	}
	pcl, err := kgo.NewClient(kgo.SeedBrokers(br.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	for p := range int32(partitions) {
		for i := range bulk {
			v := make([]byte, valueSize)
			rand.Read(v)
			pcl.Produce(ctx, &kgo.Record{Topic: changelog, Partition: p, Key: []byte(fmt.Sprintf("bulk-%d-%d", p, i)), Value: v}, nil)
		}
	}
	if err := pcl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	produceInput(t, k, topic, partitions, keys, seqValues(records))

	config := func(instance string) processor.Config {
		cfg := baseConfig(br.addr, app, t)
		cfg.InstanceID = instance
		return cfg
	}
	b, stopB := startInProcess(t, config("b"), topo)
	waitFor(t, time.Minute, "b to own every partition", func() bool { return len(b.view().owned) == partitions })
	var revokedMid int
	for cycle := range cycles {
		// c joins while b restores, and takes a partition.
		if len(b.view().restoring) == 0 {
			t.Logf("cycle %d: b's restores finished before c joined", cycle)
		}
		c, stopC := startInProcess(t, config(fmt.Sprintf("c%d", cycle)), topo)
		waitFor(t, time.Minute, "c to take a partition from b", func() bool { return len(c.view().owned) > 0 })
		// c leaves: the partition goes back to b, whose restores must all
		// finish.
		if err := stopC(); err != nil {
			t.Fatalf("cycle %d: c: %v", cycle, err)
		}
		waitFor(t, restoreWait, "b to own every partition again and run every task", func() bool {
			v := b.view()
			return len(v.owned) == partitions && len(v.restoring) == 0
		})
		v := b.view()
		revokedMid += v.revokedMid
		t.Logf("cycle %d: %d of b's partitions revoked mid-restore, %d of them assigned back", cycle, v.revokedMid, v.backMid)
		if cycle < cycles-1 {
			// Next cycle: b restores from scratch again, on a fresh state dir.
			if err := stopB(); err != nil {
				t.Fatalf("b: %v", err)
			}
			b, stopB = startInProcess(t, config("b"), topo)
			waitFor(t, time.Minute, "b to own every partition", func() bool { return len(b.view().owned) == partitions })
		}
	}
	if revokedMid == 0 {
		t.Errorf("no partition was revoked while b restored it: the test did not reach its path (restores too fast?)")
	}
	waitFor(t, 3*time.Minute, "all input committed", func() bool { return k.committed(ctx, app, topic) == records })
	if err := stopB(); err != nil {
		t.Fatalf("b: %v", err)
	}
	// Each key's counts run 1, 2, 3, ... exactly once.
	out := k.readCommitted(t, ctx, topic+"-out")
	next := map[string]int{}
	for _, rec := range out {
		next[string(rec.Key)]++
		if got, want := string(rec.Value), strconv.Itoa(next[string(rec.Key)]); got != want {
			t.Fatalf("key %s: count %s, want %s", rec.Key, got, want)
		}
	}
	if len(out) != records {
		t.Errorf("%d outputs, want %d", len(out), records)
	}
}
