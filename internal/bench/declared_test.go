package bench

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/declare"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// TestDeclaredStatefulEqualsGo: the declared stateful topology counts as the
// Go one does, record for record, so the bench compares like with like.
func TestDeclaredStatefulEqualsGo(t *testing.T) {
	path, err := DeclaredStatefulFile(t.TempDir(), "in")
	if err != nil {
		t.Fatal(err)
	}
	f, err := declare.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	declared, err := declare.Compile(f, declare.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inGo, err := StatefulTopology("in")
	if err != nil {
		t.Fatal(err)
	}
	run := func(topo *topology.Topology) []string {
		d, err := processor.NewTestDriver(topo, processor.TestDriverConfig{Partitions: map[string]int{"in": 3}})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for i := range 300 {
			if err := d.PipeInput("in", fmt.Sprintf("k%d", i%17), []byte("v"), time.UnixMilli(int64(i))); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := d.ReadRecords(StatefulOutput("in"), serde.String{}, serde.Int64{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, fmt.Sprintf("%v=%v@%d", r.Key, r.Value, r.Timestamp.UnixMilli()))
		}
		return out
	}
	g, dcl := run(inGo), run(declared)
	if len(g) != 300 || !slices.Equal(g, dcl) {
		t.Fatalf("declared outputs differ from Go's (%d vs %d records)", len(dcl), len(g))
	}
}
