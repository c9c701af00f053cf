package processor

import (
	"errors"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestNodeErrorPolicy: a node's own error policy (topology.OnError) decides
// for the records that fail in it, whatever the application's on.error; a
// record failing in a node without one follows on.error.
func TestNodeErrorPolicy(t *testing.T) {
	str := serde.String{}
	fail := func(v any) (any, error) {
		if v == "bad" {
			return nil, errors.New("bad value")
		}
		return v, nil
	}
	build := func(policy string) *topology.Topology {
		b := topology.NewBuilder()
		b.Stream([]string{"in"}, topology.Consumed{Key: str, Value: str}).
			MapValues(fail, topology.Named("checked"), topology.OnError(policy)).
			To("out", topology.Produced{Key: str, Value: str})
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	tests := []struct {
		node, app string
		dlq       int  // records dead-lettered
		failed    bool // PipeInput returned the record's error
	}{
		{node: "", app: OnErrorDLQ, dlq: 1},
		{node: "skip", app: OnErrorDLQ},
		{node: "dlq", app: OnErrorSkip, dlq: 1},
		{node: "fail", app: OnErrorDLQ, failed: true},
		{node: "dlq", app: OnErrorFail, dlq: 1},
	}
	for _, tc := range tests {
		t.Run("node="+tc.node+",app="+tc.app, func(t *testing.T) {
			d, err := NewTestDriver(build(tc.node), TestDriverConfig{OnError: tc.app})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.PipeInput("in", "k", "ok", time.UnixMilli(1)); err != nil {
				t.Fatal(err)
			}
			err = d.PipeInput("in", "k", "bad", time.UnixMilli(2))
			var pe *ProcessingError
			if got := errors.As(err, &pe); got != tc.failed {
				t.Fatalf("PipeInput(bad) = %v, want a ProcessingError: %v", err, tc.failed)
			}
			if n := len(d.ReadOutput("test-driver-dlq")); n != tc.dlq {
				t.Errorf("dead-lettered %d, want %d", n, tc.dlq)
			}
			if n := len(d.ReadOutput("out")); n != 1 {
				t.Errorf("outputs %d, want 1 (the good record)", n)
			}
		})
	}
	b := topology.NewBuilder()
	b.Stream([]string{"in"}, topology.Consumed{Key: str, Value: str}).MapValues(fail, topology.OnError("retry")).
		To("out", topology.Produced{Key: str, Value: str})
	if _, err := b.Build(); err == nil {
		t.Error("Build accepted error policy retry")
	}
}
