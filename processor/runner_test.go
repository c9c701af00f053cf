package processor_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/internal/devstack"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

func countSum(t *testing.T) *topology.Topology {
	b := topology.NewBuilder()
	in := b.Stream([]string{"in"}, topology.Consumed{Key: serde.String{}, Value: serde.DecimalString{}})
	g := in.GroupByKey(topology.Grouped{Key: serde.String{}, Value: serde.DecimalString{}})
	g.Count(topology.Materialized{Name: "cnt"}).ToStream().To("out-cnt", topology.Produced{Key: serde.String{}, Value: serde.DecimalString{}})
	g.Reduce(func(a, v any) (any, error) { return a.(int64) + v.(int64), nil }, topology.Materialized{Name: "sum"}).
		ToStream().To("out-sum", topology.Produced{Key: serde.String{}, Value: serde.DecimalString{}})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestRunnerSmoke(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	br, err := devstack.StartBroker(devstack.BrokerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopics(ctx, 4, 1, nil, "in", "out-cnt", "out-sum"); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: "in", Key: []byte("k" + strconv.Itoa(i%10)), Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := processor.New(processor.Config{ApplicationID: "smoke", BootstrapServers: br.Addr(), StateDir: t.TempDir(),
		InstanceID: "a", SessionTimeoutMs: 10000, TransactionTimeoutMs: 5000}, countSum(t), processor.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()

	rd, _ := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.ConsumeTopics("out-cnt", "out-sum"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer rd.Close()
	got := map[string]int{}
	last := map[string]string{}
	deadline := time.Now().Add(60 * time.Second)
	for got["out-cnt"] < n || got["out-sum"] < n {
		if time.Now().After(deadline) {
			t.Fatalf("timeout: got %v", got)
		}
		fctx, c := context.WithTimeout(ctx, time.Second)
		fs := rd.PollFetches(fctx)
		c()
		fs.EachRecord(func(rec *kgo.Record) {
			got[rec.Topic]++
			last[rec.Topic+"/"+string(rec.Key)] = string(rec.Value)
		})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for k := range 10 {
		want := 0
		for i := k; i < n; i += 10 {
			want += i
		}
		if s := last[fmt.Sprintf("out-sum/k%d", k)]; s != strconv.Itoa(want) {
			t.Errorf("sum k%d = %s, want %d", k, s, want)
		}
		if c := last[fmt.Sprintf("out-cnt/k%d", k)]; c != strconv.Itoa(n/10) {
			t.Errorf("cnt k%d = %s, want %d", k, c, n/10)
		}
	}
	t.Logf("outputs %v", got)
}
