package topology

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Topology is a validated, immutable graph ready to run.
type Topology struct {
	Nodes         []*Node
	Stores        map[string]StoreSpec
	SubTopologies []*SubTopology
	byName        map[string]*Node
}

// Build validates the graph and cuts it into sub-topologies. The error lists
// every problem found, each naming its node or store, and wraps ErrInvalid.
func (b *Builder) Build() (*Topology, error) {
	errs := append([]error(nil), b.errs...)
	nodes, stores := copyGraph(b.nodes), maps.Clone(b.stores)
	t := &Topology{Nodes: nodes, Stores: stores, byName: map[string]*Node{}}
	sourceOf := map[string]string{}
	storeUsers := map[string][]*Node{}
	for _, n := range nodes {
		if prev, dup := t.byName[n.Name]; dup && prev != n {
			errs = append(errs, fmt.Errorf("node %q: name used twice", n.Name))
		}
		t.byName[n.Name] = n
		switch n.Kind {
		case SourceNode:
			for _, topic := range n.Topics {
				if other, ok := sourceOf[topic]; ok {
					errs = append(errs, fmt.Errorf("source %q: topic %q is already read by source %q", n.Name, topic, other))
				}
				sourceOf[topic] = n.Name
			}
			if len(n.Children) == 0 {
				errs = append(errs, fmt.Errorf("source %q: nothing reads from it", n.Name))
			}
		case ProcessorNode:
			if n.Supplier == nil {
				errs = append(errs, fmt.Errorf("processor %q: no processor supplier", n.Name))
			}
		case SinkNode:
			if len(n.Topics) != 1 || n.Topics[0] == "" {
				errs = append(errs, fmt.Errorf("sink %q: no topic", n.Name))
			}
		}
		switch n.OnError {
		case "", "dlq", "skip", "fail":
		default:
			errs = append(errs, fmt.Errorf("node %q: error policy %q is not dlq, skip or fail", n.Name, n.OnError))
		}
		for _, s := range n.StoreNames {
			if _, ok := stores[s]; !ok {
				errs = append(errs, fmt.Errorf("processor %q: store %q is not declared", n.Name, s))
			}
			if !stores[s].Global { // a global store belongs to no sub-topology
				storeUsers[s] = append(storeUsers[s], n)
			}
		}
	}
	if len(nodes) == 0 {
		errs = append(errs, errors.New("no nodes: add a source with Builder.Stream"))
	}
	if cyc := findCycle(nodes); cyc != nil {
		errs = append(errs, fmt.Errorf("cycle through nodes %s", strings.Join(cyc, " -> ")))
	} else {
		t.SubTopologies = cut(nodes, storeUsers)
	}
	for _, name := range b.order {
		if len(storeUsers[name]) == 0 && !stores[name].Global { // a global table may be only read by queries
			errs = append(errs, fmt.Errorf("store %q: not connected to any processor", name))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return t, nil
}

// copyGraph copies nodes and their edges, so that a built Topology does not
// change when its Builder is used afterwards.
func copyGraph(nodes []*Node) []*Node {
	cp := make(map[*Node]*Node, len(nodes))
	out := make([]*Node, len(nodes))
	for i, n := range nodes {
		c := *n
		c.Topics = slices.Clone(n.Topics)
		c.StoreNames = slices.Clone(n.StoreNames)
		cp[n], out[i] = &c, &c
	}
	remap := func(ns []*Node) []*Node {
		res := make([]*Node, len(ns))
		for i, n := range ns {
			res[i] = cp[n]
		}
		return res
	}
	for _, c := range out {
		c.Children, c.Parents = remap(c.Children), remap(c.Parents)
	}
	return out
}

// Node returns the node named name, or nil.
func (t *Topology) Node(name string) *Node { return t.byName[name] }

// TopicName is the Kafka topic a source or sink topic refers to: internal
// topics are prefixed with the application.id.
func TopicName(applicationID, topic string, internal bool) string {
	if internal {
		return applicationID + "-" + topic
	}
	return topic
}

// ChangelogTopic is the changelog topic of a store.
func ChangelogTopic(applicationID, store string) string {
	return applicationID + "-" + store + "-changelog"
}

// findCycle returns the names along a cycle, or nil. The DSL cannot build one,
// but a hand-assembled graph could.
func findCycle(nodes []*Node) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[*Node]int{}
	var stack []string
	var visit func(n *Node) []string
	visit = func(n *Node) []string {
		color[n] = grey
		stack = append(stack, n.Name)
		for _, c := range n.Children {
			switch color[c] {
			case grey:
				from := slices.Index(stack, c.Name)
				return append(append([]string(nil), stack[from:]...), c.Name)
			case white:
				if cyc := visit(c); cyc != nil {
					return cyc
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return nil
	}
	for _, n := range nodes {
		if color[n] == white {
			if cyc := visit(n); cyc != nil {
				return cyc
			}
		}
	}
	return nil
}

// cut groups nodes into connected components (edges and shared stores join
// nodes; topics do not) and numbers them in the order of their first node.
// storeUsers holds the stores sub-topologies own (global stores are not
// among them).
func cut(nodes []*Node, storeUsers map[string][]*Node) []*SubTopology {
	parent := map[*Node]*Node{}
	var find func(n *Node) *Node
	find = func(n *Node) *Node {
		if p, ok := parent[n]; ok && p != n {
			r := find(p)
			parent[n] = r
			return r
		}
		parent[n] = n
		return n
	}
	union := func(a, b *Node) { parent[find(a)] = find(b) }
	for _, n := range nodes {
		find(n)
		for _, c := range n.Children {
			union(n, c)
		}
	}
	for _, users := range storeUsers {
		for _, u := range users[1:] {
			union(users[0], u)
		}
	}
	index := map[*Node]*SubTopology{}
	var subs []*SubTopology
	for _, n := range nodes {
		r := find(n)
		st, ok := index[r]
		if !ok {
			st = &SubTopology{ID: len(subs)}
			index[r] = st
			subs = append(subs, st)
		}
		n.subtopology = st.ID
		st.Nodes = append(st.Nodes, n)
		switch n.Kind {
		case SourceNode:
			st.Sources = append(st.Sources, n)
		case SinkNode:
			st.Sinks = append(st.Sinks, n)
		}
		for _, s := range n.StoreNames {
			if _, owned := storeUsers[s]; owned && !contains(st.Stores, s) {
				st.Stores = append(st.Stores, s)
			}
		}
	}
	for _, st := range subs {
		sort.Strings(st.Stores)
	}
	return subs
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Describe prints the topology as Kafka Streams' TopologyDescription does:
// sub-topologies, and for each node its kind, topics or stores, and children.
func (t *Topology) Describe() string {
	var sb strings.Builder
	sb.WriteString("Topologies:\n")
	for i, st := range t.SubTopologies {
		indent := "   "
		if i > 0 {
			indent = "  "
		}
		fmt.Fprintf(&sb, "%sSub-topology: %d\n", indent, st.ID)
		for _, n := range st.Nodes {
			switch n.Kind {
			case SourceNode:
				fmt.Fprintf(&sb, "    Source: %s (topics: [%s])\n", n.Name, strings.Join(displayTopics(n), ", "))
			case ProcessorNode:
				fmt.Fprintf(&sb, "    Processor: %s (stores: [%s])\n", n.Name, strings.Join(n.StoreNames, ", "))
			case SinkNode:
				fmt.Fprintf(&sb, "    Sink: %s (topic: %s)\n", n.Name, strings.Join(displayTopics(n), ", "))
			}
			if n.Kind != SinkNode {
				if len(n.Children) > 0 {
					fmt.Fprintf(&sb, "      --> %s\n", strings.Join(names(n.Children), ", "))
				} else {
					sb.WriteString("      --> none\n")
				}
			}
			if len(n.Parents) > 0 {
				fmt.Fprintf(&sb, "      <-- %s\n", strings.Join(names(n.Parents), ", "))
			}
		}
		for _, s := range st.Stores {
			if src := t.Stores[s].SourceTopic; src != "" {
				fmt.Fprintf(&sb, "    Store: %s (changelog: %s, the source topic)\n", s, src)
				continue
			}
			fmt.Fprintf(&sb, "    Store: %s (changelog: <application.id>-%s-changelog)\n", s, s)
		}
		sb.WriteString("\n")
	}
	for _, name := range t.globalStores() {
		fmt.Fprintf(&sb, "  Global store: %s (topic: %s; every instance holds all partitions)\n", name, t.Stores[name].SourceTopic)
	}
	return sb.String()
}

// globalStores lists the global tables' stores, sorted.
func (t *Topology) globalStores() []string {
	var out []string
	for name, spec := range t.Stores {
		if spec.Global {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func displayTopics(n *Node) []string {
	if !n.Internal {
		return n.Topics
	}
	out := make([]string, len(n.Topics))
	for i, tp := range n.Topics {
		out[i] = "<application.id>-" + tp
	}
	return out
}

func names(ns []*Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}
