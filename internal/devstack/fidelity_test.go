package devstack

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Pins of what the embedded broker does where the runner relies on it and
// it differs from Kafka, or might (docs/broker.md lists them all).

// TestTxnReinitLeavesTransactionOpen pins a difference from Kafka that the
// patch leaves alone (docs/broker.md): when a restarted producer
// re-initializes a transactional ID, Kafka aborts the previous producer's
// open transaction; kfake bumps the epoch and leaves that transaction open,
// now the new producer's. Its first commit then commits the dead producer's
// records too; an abort first discards them, which is why the runner begins
// and aborts one transaction right after InitTransactions
// (abortLeftoverTransaction, docs/exactly-once.md). If a kfake upgrade makes
// the first case fail, the broker now behaves as Kafka: update
// docs/broker.md.
func TestTxnReinitLeavesTransactionOpen(t *testing.T) {
	b, adm := startTestBroker(t)
	for _, abortFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("abort-first=%v", abortFirst), func(t *testing.T) {
			ctx := context.Background()
			topic, txid := fmt.Sprintf("reinit-%v", abortFirst), fmt.Sprintf("app-%v", abortFirst)
			create := kmsg.NewPtrCreateTopicsRequest()
			ct := kmsg.NewCreateTopicsRequestTopic()
			ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, 1, 1
			create.Topics = append(create.Topics, ct)
			if resp, err := create.RequestWith(ctx, adm); err != nil {
				t.Fatal(err)
			} else if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
				t.Fatal(err)
			}
			producer := func() *kgo.Client {
				cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID(txid),
					kgo.TransactionTimeout(time.Minute), kgo.DefaultProduceTopic(topic))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(cl.Close)
				return cl
			}

			dead := producer() // writes into a transaction and is never heard of again
			if err := dead.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := dead.ProduceSync(ctx, kgo.StringRecord("dead")).FirstErr(); err != nil {
				t.Fatal(err)
			}

			restarted := producer()
			if abortFirst { // what abortLeftoverTransaction amounts to (it sends offsets, not a record)
				if err := restarted.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				if err := restarted.ProduceSync(ctx, kgo.StringRecord("aborted")).FirstErr(); err != nil {
					t.Fatal(err)
				}
				if err := restarted.EndTransaction(ctx, kgo.TryAbort); err != nil {
					t.Fatal(err)
				}
			}
			if err := restarted.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := restarted.ProduceSync(ctx, kgo.StringRecord("restarted")).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if err := restarted.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}

			got := readCommitted(t, b, topic)
			want := []string{"dead", "restarted"} // Kafka: only "restarted"
			if abortFirst {
				want = []string{"restarted"}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("read_committed consumer saw %q, want %q", got, want)
			}
		})
	}
}

// readCommitted reads partition 0 of topic with read_committed from the
// start up to its first commit marker.
func readCommitted(t *testing.T, b *Broker, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed consumer saw %q and no commit marker within 10s", got)
		}
		committed := false
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				got = append(got, string(r.Value))
			} else if len(r.Key) >= 4 && r.Key[3] == 1 { // control type 1: commit
				committed = true
			}
		})
		if committed {
			return got
		}
	}
}

// TestCompactionKeepsLatestCommitted pins what a changelog restore relies on
// when kfake compacts (docs/broker.md: it compacts rarely, on a schedule of
// its own): read with read_committed from the start, a compacted
// transactional topic holds the latest committed value of each key, a
// tombstone where the key was deleted, nothing of an aborted transaction,
// and gaps in its offsets.
func TestCompactionKeepsLatestCommitted(t *testing.T) {
	b, adm := startTestBroker(t)
	ctx := context.Background()
	const topic = "store-changelog"
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, 1, 1
	compact := "compact"
	ct.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "cleanup.policy", Value: &compact}}
	create.Topics = append(create.Topics, ct)
	if resp, err := create.RequestWith(ctx, adm); err != nil {
		t.Fatal(err)
	} else if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("app-a"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	txn := func(end kgo.TransactionEndTry, kvs ...[2]string) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			r := &kgo.Record{Key: []byte(kv[0])}
			if kv[1] != "" {
				r.Value = []byte(kv[1])
			}
			if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	txn(kgo.TryCommit, [2]string{"a", "1"}, [2]string{"b", "1"})
	txn(kgo.TryCommit, [2]string{"a", "2"})
	txn(kgo.TryAbort, [2]string{"a", "aborted"}, [2]string{"b", "aborted"})
	txn(kgo.TryCommit, [2]string{"b", ""}) // delete b
	txn(kgo.TryCommit, [2]string{"c", "1"})
	b.c.Compact()

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const end = 11 // 7 records and 5 markers were written at offsets 0-11
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got []string
	var first, last int64 = -1, -1
	for last < end {
		fs := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("read %q up to offset %d, not %d, within 10s", got, last, end)
		}
		fs.EachRecord(func(r *kgo.Record) {
			last = r.Offset
			if r.Attrs.IsControl() {
				return
			}
			if first < 0 {
				first = r.Offset
			}
			v := string(r.Value)
			if r.Value == nil {
				v = "<tombstone>"
			}
			got = append(got, string(r.Key)+"="+v)
		})
	}
	if want := []string{"a=2", "b=<tombstone>", "c=1"}; !slices.Equal(got, want) {
		t.Fatalf("after compaction, read_committed sees %q, want %q", got, want)
	}
	if first == 0 {
		t.Fatalf("offset 0 (a=1, superseded) survived compaction")
	}
}

// TestOffsetFetchMetadataNeverNull pins Kafka's answer for an offset's
// metadata (third_party/kfake/PATCH.md, third patch): "" where there is no
// committed offset, or one committed with null metadata, never null. Some
// clients (sarama from protocol version 2.4) reject a null and stop.
func TestOffsetFetchMetadataNeverNull(t *testing.T) {
	ctx := context.Background()
	_, adm := startTestBroker(t)
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "meta", 2, 1
	create.Topics = append(create.Topics, ct)
	created, err := create.RequestWith(ctx, adm)
	if err != nil {
		t.Fatal(err)
	} else if err := kerr.ErrorForCode(created.Topics[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
	id := created.Topics[0].TopicID // newer versions name topics by ID
	// Partition 0 committed with null metadata (a simple, memberless
	// commit); partition 1 never.
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "g", -1
	mt := kmsg.NewOffsetCommitRequestTopic()
	mt.Topic, mt.TopicID = "meta", id
	mp := kmsg.NewOffsetCommitRequestTopicPartition()
	mp.Partition, mp.Offset, mp.Metadata = 0, 5, nil
	mt.Partitions = append(mt.Partitions, mp)
	commit.Topics = append(commit.Topics, mt)
	if resp, err := commit.RequestWith(ctx, adm); err != nil {
		t.Fatal(err)
	} else if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatalf("commit: %v", err)
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Group = "g"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "meta", []int32{0, 1}
	fetch.Topics = append(fetch.Topics, ft)
	fg := kmsg.NewOffsetFetchRequestGroup()
	fg.Group = "g"
	gt := kmsg.NewOffsetFetchRequestGroupTopic()
	gt.Topic, gt.TopicID, gt.Partitions = "meta", id, []int32{0, 1}
	fg.Topics = append(fg.Topics, gt)
	fetch.Groups = append(fetch.Groups, fg)
	resp, err := fetch.RequestWith(ctx, adm)
	if err != nil {
		t.Fatal(err)
	}
	// One of the two shapes answers, by the version the client chose.
	topics := resp.Topics
	if len(resp.Groups) > 0 {
		topics = nil
		for _, gt := range resp.Groups[0].Topics {
			tr := kmsg.NewOffsetFetchResponseTopic()
			for _, p := range gt.Partitions {
				tr.Partitions = append(tr.Partitions, kmsg.OffsetFetchResponseTopicPartition{Partition: p.Partition,
					Offset: p.Offset, Metadata: p.Metadata})
			}
			topics = append(topics, tr)
		}
	}
	version := resp.GetVersion()
	got := map[int32]int64{}
	for _, tr := range topics {
		for _, p := range tr.Partitions {
			if p.Metadata == nil {
				t.Errorf("v%d partition %d: metadata null, Kafka answers \"\"", version, p.Partition)
			} else if *p.Metadata != "" {
				t.Errorf("v%d partition %d: metadata %q, want \"\"", version, p.Partition, *p.Metadata)
			}
			got[p.Partition] = p.Offset
		}
	}
	if got[0] != 5 || got[1] != -1 {
		t.Errorf("v%d: offsets %v, want partition 0 at 5 and 1 at -1", version, got)
	}
}
