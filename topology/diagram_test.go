package topology

import (
	"strings"
	"testing"
)

// TestMermaid: a repartitioned count draws as two sub-topologies joined by
// the repartition topic, with the store beside its processor; every node
// and topic is declared once and every edge joins declared ids.
func TestMermaid(t *testing.T) {
	b := NewBuilder()
	describeTopologies["selectkey-groupbykey-count"](b)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	got := topo.Mermaid()
	if got != topo.Mermaid() {
		t.Fatal("Mermaid is not deterministic")
	}
	t.Log("\n" + got)
	for _, want := range []string{"flowchart TB\n", `subgraph sub0["Sub-topology 0"]`, `subgraph sub1["Sub-topology 1"]`,
		`[/"orders"/]`, `-repartition"/]`, "-.-", "[(", "--> "} {
		if !strings.Contains(got, want) {
			t.Errorf("Mermaid lacks %q", want)
		}
	}
	declared := map[string]bool{}
	for _, line := range strings.Split(got, "\n") {
		f := strings.Fields(line)
		if len(f) == 1 || (len(f) > 0 && !strings.Contains(line, "--") && f[0] != "subgraph") {
			id, _, _ := strings.Cut(f[0], "[")
			id, _, _ = strings.Cut(id, "(")
			declared[id] = true
		}
	}
	for _, line := range strings.Split(got, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && (f[1] == "-->" || f[1] == "-.-") {
			for _, id := range []string{f[0], f[2]} {
				if !declared[id] {
					t.Errorf("edge %q: %s is not declared", line, id)
				}
			}
		}
	}
}
