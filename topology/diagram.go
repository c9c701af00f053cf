package topology

import (
	"fmt"
	"strings"
)

// DiagramFormat is a graph language Diagram writes.
type DiagramFormat string

const (
	// Mermaid is a Mermaid flowchart, which GitHub and GitLab render in
	// Markdown (```mermaid blocks).
	Mermaid DiagramFormat = "mermaid"
	// DOT is Graphviz's language (dot -Tsvg).
	DOT DiagramFormat = "dot"
)

// Diagram draws the topology: one box (cluster) per sub-topology holding its
// nodes, topics as parallelograms outside them (a topic written by one
// sub-topology and read by another joins them, as a repartition topic
// does), stores as cylinders linked to the nodes that use them, and global
// stores beside their topic. Internal topics are named
// `<application.id>-...`, as in Describe. Node, topic and store identifiers
// are numbered in Describe's order, so the output is deterministic.
func (t *Topology) Diagram(format DiagramFormat) string {
	g := t.graph()
	if format == DOT {
		return g.dot()
	}
	return g.mermaid()
}

// DescribeWithDiagram is Describe followed by the Mermaid diagram in a
// fenced block, what `eos-runner describe` prints. Describe itself keeps
// Kafka Streams' TopologyDescription text exactly, which tools parse.
func (t *Topology) DescribeWithDiagram() string {
	return t.Describe() + "```mermaid\n" + t.Diagram(Mermaid) + "```\n"
}

type diagram struct {
	subs    []diagramSub
	topics  []string // display names
	stores  []string
	edges   [][2]string // from, to ids
	uses    [][2]string // node id, store id
	globals map[string]string
	labels  map[string]string // id -> label
	shapes  map[string]string // id -> topic, store, source, sink, processor
}

type diagramSub struct {
	id    int
	nodes []string
}

func (t *Topology) graph() *diagram {
	g := &diagram{labels: map[string]string{}, shapes: map[string]string{}, globals: map[string]string{}}
	topicID := map[string]string{}
	topic := func(name string) string {
		if id, ok := topicID[name]; ok {
			return id
		}
		id := fmt.Sprintf("t%d", len(g.topics))
		topicID[name] = id
		g.topics = append(g.topics, name)
		g.labels[id], g.shapes[id] = name, "topic"
		return id
	}
	storeID := map[string]string{}
	store := func(name string) string {
		if id, ok := storeID[name]; ok {
			return id
		}
		id := fmt.Sprintf("s%d", len(g.stores))
		storeID[name] = id
		g.stores = append(g.stores, name)
		g.labels[id], g.shapes[id] = name, "store"
		return id
	}
	nodeID := map[*Node]string{}
	i := 0
	for _, st := range t.SubTopologies {
		for _, n := range st.Nodes {
			nodeID[n] = fmt.Sprintf("n%d", i)
			i++
		}
	}
	for _, st := range t.SubTopologies {
		sub := diagramSub{id: st.ID}
		for _, n := range st.Nodes {
			id := nodeID[n]
			sub.nodes = append(sub.nodes, id)
			g.labels[id], g.shapes[id] = n.Name, strings.ToLower(n.Kind.String())
			switch n.Kind {
			case SourceNode:
				for _, tp := range displayTopics(n) {
					g.edges = append(g.edges, [2]string{topic(tp), id})
				}
			case SinkNode:
				for _, tp := range displayTopics(n) {
					g.edges = append(g.edges, [2]string{id, topic(tp)})
				}
			}
			for _, c := range n.Children {
				g.edges = append(g.edges, [2]string{id, nodeID[c]})
			}
			for _, s := range n.StoreNames {
				g.uses = append(g.uses, [2]string{id, store(s)})
			}
		}
		g.subs = append(g.subs, sub)
	}
	for _, name := range t.globalStores() {
		g.edges = append(g.edges, [2]string{topic(t.Stores[name].SourceTopic), store(name)})
		g.globals[storeID[name]] = name
	}
	return g
}

// mermaidText escapes a label for a quoted Mermaid label.
func mermaidText(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;").Replace(s)
}

func (g *diagram) mermaid() string {
	var sb strings.Builder
	sb.WriteString("flowchart TB\n")
	shape := func(id string) string {
		l := mermaidText(g.labels[id])
		switch g.shapes[id] {
		case "topic":
			return fmt.Sprintf(`%s[/"%s"/]`, id, l)
		case "store":
			if _, ok := g.globals[id]; ok {
				return fmt.Sprintf(`%s[("%s (global)")]`, id, l)
			}
			return fmt.Sprintf(`%s[("%s")]`, id, l)
		case "source":
			return fmt.Sprintf(`%s(["%s"])`, id, l)
		case "sink":
			return fmt.Sprintf(`%s(["%s"])`, id, l)
		}
		return fmt.Sprintf(`%s["%s"]`, id, l)
	}
	for i := range g.topics {
		fmt.Fprintf(&sb, "  %s\n", shape(fmt.Sprintf("t%d", i)))
	}
	for _, sub := range g.subs {
		fmt.Fprintf(&sb, "  subgraph sub%d[\"Sub-topology %d\"]\n", sub.id, sub.id)
		for _, id := range sub.nodes {
			fmt.Fprintf(&sb, "    %s\n", shape(id))
		}
		sb.WriteString("  end\n")
	}
	for i := range g.stores {
		fmt.Fprintf(&sb, "  %s\n", shape(fmt.Sprintf("s%d", i)))
	}
	for _, e := range g.edges {
		fmt.Fprintf(&sb, "  %s --> %s\n", e[0], e[1])
	}
	for _, u := range g.uses {
		fmt.Fprintf(&sb, "  %s -.- %s\n", u[0], u[1])
	}
	return sb.String()
}

func dotText(s string) string { return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) }

func (g *diagram) dot() string {
	var sb strings.Builder
	sb.WriteString("digraph topology {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n")
	attrs := func(id string) string {
		l := dotText(g.labels[id])
		switch g.shapes[id] {
		case "topic":
			return fmt.Sprintf(`label="%s", shape=parallelogram`, l)
		case "store":
			if _, ok := g.globals[id]; ok {
				l += " (global)"
			}
			return fmt.Sprintf(`label="%s", shape=cylinder`, l)
		case "source", "sink":
			return fmt.Sprintf(`label="%s", shape=box, style=rounded`, l)
		}
		return fmt.Sprintf(`label="%s", shape=box`, l)
	}
	for i := range g.topics {
		id := fmt.Sprintf("t%d", i)
		fmt.Fprintf(&sb, "  %s [%s];\n", id, attrs(id))
	}
	for _, sub := range g.subs {
		fmt.Fprintf(&sb, "  subgraph cluster_%d {\n    label=\"Sub-topology %d\";\n", sub.id, sub.id)
		for _, id := range sub.nodes {
			fmt.Fprintf(&sb, "    %s [%s];\n", id, attrs(id))
		}
		sb.WriteString("  }\n")
	}
	for i := range g.stores {
		id := fmt.Sprintf("s%d", i)
		fmt.Fprintf(&sb, "  %s [%s];\n", id, attrs(id))
	}
	for _, e := range g.edges {
		fmt.Fprintf(&sb, "  %s -> %s;\n", e[0], e[1])
	}
	for _, u := range g.uses {
		fmt.Fprintf(&sb, "  %s -> %s [style=dashed, arrowhead=none];\n", u[0], u[1])
	}
	sb.WriteString("}\n")
	return sb.String()
}

// Mermaid is Diagram(Mermaid), what the runner's /topology?format=mermaid
// serves.
func (t *Topology) Mermaid() string { return t.Diagram(Mermaid) }
