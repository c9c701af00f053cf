package topology

import (
	"fmt"
	"sort"
	"strings"
)

// Mermaid draws the topology as a Mermaid flowchart (https://mermaid.js.org):
// a subgraph per sub-topology with its nodes, topics as rounded nodes
// between them, and each store as a cylinder beside the processors that use
// it. Internal topics are shown as in Describe, under
// "<application.id>-". The output is deterministic, so it can be diffed.
func (t *Topology) Mermaid() string {
	var sb strings.Builder
	sb.WriteString("flowchart TD\n")
	ids := map[string]string{} // node, topic or store -> mermaid id
	id := func(kind, name string) string {
		key := kind + ":" + name
		if v, ok := ids[key]; ok {
			return v
		}
		v := fmt.Sprintf("%s%d", kind, len(ids))
		ids[key] = v
		return v
	}
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, "#quot;") + `"` }
	var edges []string
	topics := map[string]bool{}
	for _, st := range t.SubTopologies {
		fmt.Fprintf(&sb, "  subgraph sub%d [\"Sub-topology %d\"]\n", st.ID, st.ID)
		for _, n := range st.Nodes {
			nid := id("n", n.Name)
			switch n.Kind {
			case SourceNode:
				fmt.Fprintf(&sb, "    %s[/%s/]\n", nid, quote(n.Name))
				for _, tp := range displayTopics(n) {
					topics[tp] = true
					edges = append(edges, fmt.Sprintf("  %s --> %s", id("t", tp), nid))
				}
			case SinkNode:
				fmt.Fprintf(&sb, "    %s[\\%s\\]\n", nid, quote(n.Name))
				for _, tp := range displayTopics(n) {
					topics[tp] = true
					edges = append(edges, fmt.Sprintf("  %s --> %s", nid, id("t", tp)))
				}
			default:
				fmt.Fprintf(&sb, "    %s[%s]\n", nid, quote(n.Name))
			}
			for _, c := range n.Children {
				edges = append(edges, fmt.Sprintf("  %s --> %s", nid, id("n", c.Name)))
			}
			for _, s := range n.StoreNames {
				edges = append(edges, fmt.Sprintf("  %s -.- %s", nid, id("s", s)))
			}
		}
		for _, s := range st.Stores {
			fmt.Fprintf(&sb, "    %s[(%s)]\n", id("s", s), quote(s))
		}
		sb.WriteString("  end\n")
	}
	var globals []string
	for name, spec := range t.Stores {
		if spec.Global {
			globals = append(globals, name)
		}
	}
	sort.Strings(globals)
	for _, name := range globals {
		fmt.Fprintf(&sb, "  %s[(%s)]\n", id("s", name), quote(name+" (global)"))
		topics[t.Stores[name].SourceTopic] = true
		edges = append(edges, fmt.Sprintf("  %s --> %s", id("t", t.Stores[name].SourceTopic), id("s", name)))
	}
	names := make([]string, 0, len(topics))
	for tp := range topics {
		names = append(names, tp)
	}
	sort.Strings(names)
	for _, tp := range names {
		fmt.Fprintf(&sb, "  %s([%s])\n", id("t", tp), quote(tp))
	}
	for _, e := range edges {
		sb.WriteString(e + "\n")
	}
	return sb.String()
}
