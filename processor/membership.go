package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Group membership as seen from outside the group protocol, for standby
// placement (standby.go) and interactive queries (query.go).
//
// Kafka Streams carries standby tasks and every instance's
// application.server in its own assignor's assignment. librdkafka's assignor
// cannot be replaced (cooperative-sticky is built in), so the runner derives
// the same facts from the group itself instead:
//
//   - Each instance's main consumer has client.id
//     "<instance.id>@<application.server>" (memberClientID), so a
//     DescribeConsumerGroups answer names every member's instance and query
//     address.
//   - The member whose assignment holds partition p of a sub-topology's
//     leader topic (copartition.go) runs task <sub>_<p>: followers are never
//     in the group's assignment, leaders always are.
//
// Every instance describes the group every groupWatchInterval and at once
// after each of its rebalances (kick), keeping only answers of a Stable
// group (mid-rebalance, assignments are half-empty and would move standbys
// for nothing). So the view lags a rebalance by up to one interval. Both
// users tolerate that: a standby placed on a stale view costs at most a
// longer restore, never correctness (the restore claims keep a standby and
// an active restore of one store partition apart); a query routed on a stale
// view is answered by the instance asked only if it runs the task itself
// (query.go checks its own running tasks, not the view).
type groupWatch struct {
	admin    *kafka.AdminClient
	group    string
	interval time.Duration
	log      *slog.Logger

	kickc chan struct{}
	// view is the last Stable description; nil before the first.
	view atomic.Pointer[groupView]
}

// groupWatchInterval is how often the group is described.
const groupWatchInterval = 2 * time.Second

// groupView is one description of the group. Immutable once published.
type groupView struct {
	// instances lists the members' instance ids, sorted, without repeats.
	instances []string
	// servers maps each instance to its application.server ("" if none).
	servers map[string]string
	// owner maps each assigned partition (leader topics only) to the
	// instance of the member it is assigned to.
	owner map[partitionKey]string
}

// memberClientID is the main consumer's client.id: instance.id and
// application.server (possibly empty) joined by '@', the last '@'.
func memberClientID(instance, server string) string { return instance + "@" + server }

// parseMemberClientID splits a client.id made by memberClientID. A client.id
// without '@' (another client in the group) is an instance with no server.
func parseMemberClientID(id string) (instance, server string) {
	i := strings.LastIndexByte(id, '@')
	if i < 0 {
		return id, ""
	}
	return id[:i], id[i+1:]
}

func newGroupWatch(admin *kafka.AdminClient, group string, log *slog.Logger) *groupWatch {
	return &groupWatch{admin: admin, group: group, interval: groupWatchInterval, log: log, kickc: make(chan struct{}, 1)}
}

// kick asks for a description now (after a rebalance). Never blocks; safe
// on a nil watch.
func (w *groupWatch) kick() {
	if w == nil {
		return
	}
	select {
	case w.kickc <- struct{}{}:
	default:
	}
}

// current returns the last Stable view, nil if none yet (or no watch).
func (w *groupWatch) current() *groupView {
	if w == nil {
		return nil
	}
	return w.view.Load()
}

// run describes the group until ctx is done. A kick is answered after a
// short delay, then again one interval later: right after our own
// rebalance callback the group is usually still completing the rebalance.
func (w *groupWatch) run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		v, err := w.describe(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			w.log.Debug("describe group failed; standby placement and query routing keep the last view", "err", err)
		case v != nil:
			w.view.Store(v)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kickc:
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// describe returns the group's view, or nil while it is not Stable.
func (w *groupWatch) describe(ctx context.Context) (*groupView, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := w.admin.DescribeConsumerGroups(ctx, []string{w.group})
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", w.group, err)
	}
	if len(res.ConsumerGroupDescriptions) != 1 {
		return nil, errors.New("describe group: no description")
	}
	d := res.ConsumerGroupDescriptions[0]
	if d.Error.Code() != kafka.ErrNoError {
		return nil, fmt.Errorf("describe group %s: %w", w.group, d.Error)
	}
	if d.State != kafka.ConsumerGroupStateStable {
		return nil, nil
	}
	return viewOf(d.Members), nil
}

// viewOf builds a view from the members of a description.
func viewOf(members []kafka.MemberDescription) *groupView {
	v := &groupView{servers: map[string]string{}, owner: map[partitionKey]string{}}
	for _, m := range members {
		inst, srv := parseMemberClientID(m.ClientID)
		if _, seen := v.servers[inst]; !seen {
			v.instances = append(v.instances, inst)
		}
		if srv != "" || v.servers[inst] == "" {
			v.servers[inst] = srv
		}
		for _, tp := range m.Assignment.TopicPartitions {
			if tp.Topic != nil {
				v.owner[partitionKey{*tp.Topic, tp.Partition}] = inst
			}
		}
	}
	sort.Strings(v.instances)
	return v
}
