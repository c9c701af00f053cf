package processor

import (
	"errors"
	"fmt"
	"sort"

	"github.com/eos-runner/eos-runner/topology"
)

// partitionPlan is the partition count of every sub-topology (its number of
// tasks) and of every repartition topic, derived from the external source
// topics, as Kafka Streams derives them. The runner (prepareTopics) and the
// test driver (planTopics) both use it, so a topology gets the same tasks in
// both.
type partitionPlan struct {
	sub         map[int]int    // sub-topology -> partitions
	subOf       map[string]int // full source topic name -> sub-topology
	repartition map[string]int // full repartition topic name -> partitions
}

// planPartitions derives the plan. external gives an external topic's
// partition count (false: it does not exist). Rules:
//
//   - The sources of one sub-topology must have the same count
//     (co-partitioning); a mismatch is an error naming both topics and both
//     counts.
//   - A repartition topic read by a sub-topology that has external sources
//     takes that sub-topology's count, so that it is co-partitioned with
//     them (a join of a re-keyed stream with a table, the response topic of
//     a foreign-key join); otherwise the count of the sub-topology writing
//     it, first writer wins, to a fixed point for chains.
//
// Every problem is reported at once.
func planPartitions(topo *topology.Topology, app string, external func(full string) (int, bool)) (partitionPlan, error) {
	p := partitionPlan{sub: map[int]int{}, subOf: map[string]int{}, repartition: map[string]int{}}
	var errs []error
	firstTopic := map[int]string{}
	for _, st := range topo.SubTopologies {
		for _, src := range st.Sources {
			topics := append([]string(nil), src.Topics...)
			sort.Strings(topics)
			for _, tp := range topics {
				full := topology.TopicName(app, tp, src.Internal)
				p.subOf[full] = st.ID
				if src.Internal {
					continue
				}
				n, ok := external(full)
				if !ok {
					errs = append(errs, fmt.Errorf("source topic %q of node %s does not exist", full, src.Name))
					continue
				}
				if prev, ok := p.sub[st.ID]; ok && prev != n {
					errs = append(errs, fmt.Errorf("sub-topology %d: source topics are not co-partitioned: %q has %d partitions, %q has %d (repartition one of them to join or merge them)",
						st.ID, firstTopic[st.ID], prev, full, n))
					continue
				}
				if _, ok := p.sub[st.ID]; !ok {
					p.sub[st.ID], firstTopic[st.ID] = n, full
				}
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, st := range topo.SubTopologies {
			n, ok := p.sub[st.ID]
			if !ok {
				continue
			}
			for _, sink := range st.Sinks {
				if !sink.Internal {
					continue
				}
				full := topology.TopicName(app, sink.Topics[0], true)
				count := n
				if reader, ok := p.subOf[full]; ok {
					if m, known := p.sub[reader]; known {
						count = m
					} else {
						p.sub[reader] = n
						changed = true
					}
				}
				if prev, ok := p.repartition[full]; !ok || prev != count {
					p.repartition[full] = count
				}
			}
		}
	}
	for _, st := range topo.SubTopologies {
		if _, ok := p.sub[st.ID]; !ok {
			errs = append(errs, fmt.Errorf("sub-topology %d: cannot derive its partition count", st.ID))
		}
	}
	return p, errors.Join(errs...)
}
