package processor

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/changelog"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// countTableTopology counts `in` per key into store counts, emits the counts
// to `out`, and groups the count table by a constant key (which needs the
// table's old values: its first sub-topology writes each change, new and
// old, to a repartition topic).
func countTableTopology(t *testing.T) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	counts := b.Stream([]string{"in"}, topology.Consumed{Key: serde.String{}, Value: serde.String{}}).
		GroupByKey(topology.Grouped{Key: serde.String{}}).
		Count(topology.Materialized{Name: "counts", Key: serde.String{}, Value: serde.Int64{}})
	counts.ToStream().To("out", topology.Produced{Key: serde.String{}, Value: serde.Int64{}})
	counts.GroupBy(func(_, v any) (any, any, error) { return "all", v, nil }, topology.Grouped{Key: serde.String{}, Value: serde.Int64{}}).
		Count(topology.Materialized{Name: "all"})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// startCachedTask starts the count task of partition 0 with a record cache
// of budget bytes (0: none).
func startCachedTask(t *testing.T, topo *topology.Topology, db *changelog.DB, p *fakeProducer, budget int64) *task {
	t.Helper()
	coll := &collector{p: p, tracker: newDeliveryTracker(nil)}
	tk, err := newTask(topo, topo.SubTopologies[0], 0, "app", db, coll, OnErrorFail, "dlq", slog.New(slog.DiscardHandler), newMetrics("app"))
	if err != nil {
		t.Fatal(err)
	}
	tk.rc.enabled = budget > 0
	tk.rc.max.Store(budget)
	if err := tk.init(); err != nil {
		t.Fatal(err)
	}
	return tk
}

func keyed(offset int64, key string, tsMillis int64) *kafka.Message {
	m := inRecord(offset, "v", tsMillis)
	m.Key = []byte(key)
	return m
}

// decodeChange reads a repartition record's change (changeserde.go) of
// int64 values as "new/old" ("-" for absent).
func decodeChange(t *testing.T, b []byte) string {
	t.Helper()
	num := func(b []byte) string {
		if len(b) != 8 {
			t.Fatalf("change value %x: want 8 bytes", b)
		}
		return fmt.Sprint(int64(binary.BigEndian.Uint64(b)))
	}
	body, flag := b[:len(b)-1], b[len(b)-1]
	switch flag {
	case 0:
		return "-/" + num(body)
	case 1:
		return num(body) + "/-"
	case 2:
		n, k := binary.Varint(body)
		return num(body[k:k+int(n)]) + "/" + num(body[k+int(n):])
	}
	t.Fatalf("change flag %d", flag)
	return ""
}

// cacheOutputs prints and forgets what the task produced, one line per record:
// topic kind, key, value (changelog and out: the count; repartition: the
// change new/old) and timestamp.
func cacheOutputs(t *testing.T, p *fakeProducer) string {
	t.Helper()
	var lines []string
	for _, m := range p.produced {
		topic := *m.TopicPartition.Topic
		var v string
		switch {
		case strings.HasSuffix(topic, "-repartition"):
			topic, v = "repartition", decodeChange(t, m.Value)
		case strings.HasSuffix(topic, "-changelog"):
			topic, v = "changelog", fmt.Sprint(int64(binary.BigEndian.Uint64(m.Value)))
		default:
			v = fmt.Sprint(int64(binary.BigEndian.Uint64(m.Value)))
		}
		ts := ""
		if topic != "changelog" {
			ts = fmt.Sprintf("@%d", m.Timestamp.UnixMilli())
		}
		lines = append(lines, fmt.Sprintf("%s %s=%s%s", topic, m.Key, v, ts))
	}
	p.produced = nil
	return strings.Join(lines, "\n")
}

// TestRecordCache: with a cache, repeated updates of a key in a transaction
// are merged and only the last is written to the changelog and forwarded,
// at the flush, in first-update order, with the last update's timestamp;
// the old value forwarded is the one as of the previous flush (the
// committed one here), as Kafka Streams' TimestampedCacheFlushListener
// does. An abort drops the cache.
func TestRecordCache(t *testing.T) {
	p := &fakeProducer{}
	db := openTestDB(t)
	tk := startCachedTask(t, countTableTopology(t), db, p, 1<<20)
	ctx := context.Background()
	process := func(off int64, key string, ts int64) {
		t.Helper()
		if err := tk.process(ctx, keyed(off, key, ts)); err != nil {
			t.Fatal(err)
		}
	}
	commit := func() {
		t.Helper()
		if err := tk.flushCaches(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Commit(tk.appendCommits(nil, nil)); err != nil {
			t.Fatal(err)
		}
		tk.markCommitted()
	}
	check := func(what, want string) {
		t.Helper()
		if got := cacheOutputs(t, p); got != strings.TrimSpace(want) {
			t.Errorf("%s:\n%s\nwant:\n%s", what, got, strings.TrimSpace(want))
		}
	}

	process(0, "a", 1)
	process(1, "a", 2)
	process(2, "b", 3)
	process(3, "a", 4)
	check("before the flush", "")
	if n, _ := tk.stores["counts"].(*kvStore).Get("a"); n != int64(3) {
		t.Errorf("reads see the cache: a = %v, want 3", n)
	}
	commit()
	check("first flush", `
changelog a=3
out a=3@4
repartition all=3/-@4
changelog b=1
out b=1@3
repartition all=1/-@3
`)

	process(4, "a", 5)
	process(5, "a", 6)
	commit()
	check("second flush: old as of the first", `
changelog a=5
out a=5@6
repartition all=5/3@6
`)

	process(6, "a", 7)
	if err := tk.rollback(); err != nil {
		t.Fatal(err)
	}
	commit()
	check("after an abort", "")
	if n, _ := tk.stores["counts"].(*kvStore).Get("a"); n != int64(5) {
		t.Errorf("after the abort a = %v, want 5", n)
	}
}

// TestRecordCacheEvicts: a task whose share of the cache is full flushes it
// after the record that filled it; a share too small for one entry flushes
// after every record, which is the behaviour without a cache.
func TestRecordCacheEvicts(t *testing.T) {
	for _, c := range []struct {
		name   string
		budget int64
		want   string
	}{
		{"no cache (the changelog record after the outputs)", 0, `
out a=1@1
repartition all=1/-@1
changelog a=1
out a=2@2
repartition all=2/1@2
changelog a=2
out b=1@3
repartition all=1/-@3
changelog b=1`},
		{"a byte", 1, `
changelog a=1
out a=1@1
repartition all=1/-@1
changelog a=2
out a=2@2
repartition all=2/1@2
changelog b=1
out b=1@3
repartition all=1/-@3`},
		{"two entries", 2*cacheEntryOverhead + 20, `
changelog a=2
out a=2@2
repartition all=2/-@2
changelog b=1
out b=1@3
repartition all=1/-@3`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &fakeProducer{}
			tk := startCachedTask(t, countTableTopology(t), openTestDB(t), p, c.budget)
			ctx := context.Background()
			for i, k := range []string{"a", "a", "b"} {
				if err := tk.process(ctx, keyed(int64(i), k, int64(i+1))); err != nil {
					t.Fatal(err)
				}
			}
			if c.budget > 1 {
				// Under budget until b; the entries of a and b pass it.
				if err := tk.process(ctx, keyed(3, "c", 4)); err != nil {
					t.Fatal(err)
				}
			}
			got := cacheOutputs(t, p)
			if c.budget > 1 {
				// c's record filled the cache: everything flushed, c too.
				c.want += "\nchangelog c=1\nout c=1@4\nrepartition all=1/-@4"
			}
			if got != strings.TrimSpace(c.want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, strings.TrimSpace(c.want))
			}
		})
	}
}
