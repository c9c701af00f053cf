package verify

import (
	"slices"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestTopologyDescribe pins Describe() of the verification topology; run with
// -rewrite to regenerate testdata/describe and review the diff.
func TestTopologyDescribe(t *testing.T) {
	datadriven.RunTest(t, "testdata/describe", func(t *testing.T, d *datadriven.TestData) string {
		var input string
		d.ScanArgs(t, "input", &input)
		topo, err := Topology(input)
		if err != nil {
			return "error: " + err.Error()
		}
		return topo.Describe()
	})
}

func TestTopologyShape(t *testing.T) {
	topo, err := Topology("T")
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.SubTopologies) != 1 {
		t.Fatalf("%d sub-topologies, want 1:\n%s", len(topo.SubTopologies), topo.Describe())
	}
	st := topo.SubTopologies[0]
	if want := []string{"cnt", "max", "min", "sum", "win", "win-emit-final"}; !slices.Equal(st.Stores, want) {
		t.Errorf("stores %v, want %v", st.Stores, want)
	}
	if got := st.SourceTopics(); !slices.Equal(got, []string{"T"}) {
		t.Errorf("source topics %v, want [T]", got)
	}
	var sinks []string
	for _, n := range st.Sinks {
		sinks = append(sinks, n.Topics...)
	}
	slices.Sort(sinks)
	want := append(OutputTopics("T"), WindowedOutputTopic("T"))
	slices.Sort(want)
	if !slices.Equal(sinks, want) {
		t.Errorf("sink topics %v, want %v", sinks, want)
	}
	for _, name := range st.Stores {
		if spec := topo.Stores[name]; spec.KeySerde == nil || spec.ValueSerde == nil {
			t.Errorf("store %s has no serdes", name)
		}
	}
	for _, n := range topo.Nodes {
		if n.Internal {
			t.Errorf("node %s uses an internal topic: the verification topology must not repartition", n.Name)
		}
	}
}

func TestTopologyErrors(t *testing.T) {
	if _, err := Topology(""); err == nil {
		t.Error("Topology(\"\") succeeded, want an error")
	}
}

func TestOutputTopics(t *testing.T) {
	want := []string{"in-echo", "in-sum", "in-min", "in-max", "in-cnt"}
	if got := OutputTopics("in"); !slices.Equal(got, want) {
		t.Errorf("OutputTopics(in) = %v, want %v", got, want)
	}
}
