package processor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/eos-runner/eos-runner/topology"
)

// topicPlan is what the runner needs to exist before it starts: the
// partition count of every source, and the internal topics to create.
type topicPlan struct {
	partitions map[int]int    // sub-topology -> partitions (tasks per sub-topology)
	subOf      map[string]int // full source topic name -> sub-topology
	changelogs map[string]bool
	// repartition holds the repartition topics this runner reads: their
	// consumed records are purged after commits (purge.go).
	repartition map[string]bool
	// copart is what the group subscribes to, and which partitions follow
	// the ones it assigns (copartition.go).
	copart copartitions
	// topics is the partition count of every existing topic (full name) at
	// startup, before anything was created.
	topics map[string]int
	// backfilled holds the external stream sources: the topics where
	// from-datetime applies (rebalance.go, fromTimeOffset).
	backfilled map[string]bool
}

// prepareTopics checks source topics, derives partition counts (through
// repartition topics too), and creates internal topics: repartition topics,
// compacted changelogs with as many partitions as their sub-topology's
// sources, and the dead-letter topic. A partition-count mismatch is an error
// naming both counts.
func (r *Runner) prepareTopics(ctx context.Context, admin *kafka.AdminClient) (*topicPlan, error) {
	md, err := admin.GetMetadata(nil, true, 15000)
	if err != nil {
		return nil, fmt.Errorf("metadata from %s: %w", r.cfg.BootstrapServers, err)
	}
	existing := map[string]int{}
	for name, t := range md.Topics {
		if t.Error.Code() == kafka.ErrNoError {
			existing[name] = len(t.Partitions)
		}
	}
	app := r.cfg.ApplicationID
	// Kafka lists only the topics the principal may describe: ask about
	// the others by name, so a missing ACL is not reported as a missing
	// topic (authz.go).
	hidden := map[string][]string{}
	for t, ops := range r.externalTopicNeeds() {
		if _, ok := existing[t]; !ok {
			hidden[t] = ops
		}
	}
	if err := r.checkTopicACLs(ctx, admin, hidden); err != nil {
		return nil, err
	}
	if err := r.chooseSourceChangelogs(ctx, admin, existing); err != nil {
		return nil, err
	}
	plan := &topicPlan{partitions: map[int]int{}, subOf: map[string]int{}, changelogs: map[string]bool{}, repartition: map[string]bool{}, topics: existing}
	var errs []error
	pp, err := planPartitions(r.topo, app, func(full string) (int, bool) { n, ok := existing[full]; return n, ok })
	if err != nil {
		errs = append(errs, err)
	}
	plan.partitions, plan.subOf = pp.sub, pp.subOf
	create := map[string]kafka.TopicSpecification{}
	for full, n := range pp.repartition {
		plan.repartition[full] = true
		// Kafka Streams' repartition topic settings: never expire a record
		// by time (one not yet processed would be lost); the runner deletes
		// what its commits consumed instead.
		create[full] = kafka.TopicSpecification{Topic: full, NumPartitions: n, ReplicationFactor: -1,
			Config: map[string]string{"cleanup.policy": "delete", "retention.ms": "-1"}}
	}
	maxParts := 1
	for _, st := range r.topo.SubTopologies {
		n, ok := plan.partitions[st.ID]
		if !ok {
			continue // planPartitions reported it
		}
		maxParts = max(maxParts, n)
		for _, s := range st.Stores {
			if r.topo.Stores[s].SourceTopic != "" {
				continue // its source topic is its changelog (sourcetopic.go)
			}
			cl := topology.ChangelogTopic(app, s)
			plan.changelogs[cl] = true
			create[cl] = kafka.TopicSpecification{Topic: cl, NumPartitions: n, ReplicationFactor: -1,
				Config: changelogConfig(r.topo.Stores[s], r.cfg.WindowChangelogAdditionalRetention)}
		}
		for _, sink := range st.Sinks {
			if sink.Internal {
				continue
			}
			if _, ok := existing[sink.Topics[0]]; !ok {
				if !r.cfg.CreateTopics {
					errs = append(errs, fmt.Errorf("sink topic %q of node %s does not exist (create it, or set create.topics)", sink.Topics[0], sink.Name))
					continue
				}
				create[sink.Topics[0]] = kafka.TopicSpecification{Topic: sink.Topics[0], NumPartitions: n, ReplicationFactor: -1}
			}
		}
	}
	if r.dlqUsed() {
		create[r.cfg.DLQTopic] = kafka.TopicSpecification{Topic: r.cfg.DLQTopic, NumPartitions: maxParts, ReplicationFactor: -1}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	plan.copart = planCopartitions(plan.subOf)
	plan.backfilled = backfilledTopics(r.topo)
	var specs []kafka.TopicSpecification
	names := make([]string, 0, len(create))
	for name := range create {
		names = append(names, name)
	}
	sort.Strings(names)
	var existingChangelogs []kafka.TopicSpecification
	for _, name := range names {
		spec := create[name]
		if n, ok := existing[name]; ok {
			if n != spec.NumPartitions && name != r.cfg.DLQTopic {
				errs = append(errs, fmt.Errorf("topic %q has %d partitions, the topology needs %d", name, n, spec.NumPartitions))
			}
			if plan.changelogs[name] {
				existingChangelogs = append(existingChangelogs, spec)
			}
			continue
		}
		specs = append(specs, spec)
	}
	if len(existingChangelogs) > 0 {
		errs = append(errs, validateChangelogConfigs(ctx, admin, existingChangelogs))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(specs) > 0 {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		res, err := admin.CreateTopics(cctx, specs)
		if err != nil {
			return nil, fmt.Errorf("create topics: %w", err)
		}
		for _, tr := range res {
			if c := tr.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrTopicAlreadyExists {
				errs = append(errs, fmt.Errorf("create topic %q: %w", tr.Topic, r.authorization(tr.Error, "topic", tr.Topic, "CREATE")))
			} else if c == kafka.ErrNoError {
				r.log.Info("created topic", "topic", tr.Topic)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return plan, r.checkTopicACLs(ctx, admin, r.topicNeeds(plan))
}

// dlqUsed reports whether anything may write the dead-letter topic: the
// application's on.error or late.records, or a node's own error policy
// (topology.OnError).
func (r *Runner) dlqUsed() bool {
	if r.cfg.OnError == OnErrorDLQ || r.cfg.LateRecords == LateRecordsDLQ {
		return true
	}
	for _, n := range r.topo.Nodes {
		if n.OnError == OnErrorDLQ {
			return true
		}
	}
	return false
}

// changelogConfig is a store's changelog topic configuration: compacted for a
// key-value store; for a window or session store also deleted by time
// (cleanup.policy=compact,delete) after the store's retention plus
// additional (Kafka Streams' windowstore.changelog.additional.retention.ms),
// so that expired windows leave the changelog as they leave the store.
func changelogConfig(spec topology.StoreSpec, additional time.Duration) map[string]string {
	if spec.Kind == topology.KeyValueStoreKind || spec.Retention == topology.RetainForever {
		return map[string]string{"cleanup.policy": "compact"}
	}
	return map[string]string{"cleanup.policy": "compact,delete",
		"retention.ms": strconv.FormatInt((spec.Retention + additional).Milliseconds(), 10)}
}

// backfilledTopics are the topology's external source topics that no table
// or global table reads as its store's source.
func backfilledTopics(topo *topology.Topology) map[string]bool {
	tables := map[string]bool{}
	for _, spec := range topo.Stores {
		if spec.SourceTopic != "" {
			tables[spec.SourceTopic] = true
		}
	}
	out := map[string]bool{}
	for _, st := range topo.SubTopologies {
		for _, src := range st.Sources {
			if src.Internal {
				continue
			}
			for _, t := range src.Topics {
				if !tables[t] {
					out[t] = true
				}
			}
		}
	}
	return out
}
