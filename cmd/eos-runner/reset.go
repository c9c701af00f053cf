package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/processor"
)

// resetCmd is Kafka Streams' application reset tool (kafka-streams-application-reset)
// for an eos-runner application: its input offsets back to a point, its
// internal topics and its local state gone, so that the next run
// reprocesses the input from there as a new application would.
func resetCmd(g *globals) *cobra.Command {
	var o resetOptions
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Reset an application to reprocess its input: offsets back, internal topics and local state deleted",
		Long: `Reset does what Kafka Streams' application reset tool does, for the
application (consumer group) --application-id:

  1. Its committed offsets on the input topics go to the earliest offset, or
     to the first at or after --to-datetime, or --by-duration before now, or
     to --to-offset (clamped to each partition's log), with no metadata: the
     tasks' stream time starts over too.
  2. Its internal topics are deleted, with the group's offsets on them:
     changelogs <id>-*-changelog, repartition topics <id>-*-repartition and
     foreign-key join topics <id>-*-subscription-registration-topic and
     <id>-*-subscription-response-topic. The next run creates them again.
  3. The local state <state-dir>/<id>/ is removed (--state-dir; on every
     machine that ran the application, or the runner finds its checkpoints
     past the new changelogs' end and restores from scratch anyway).

The input topics are those the group has committed offsets on, other than
internal ones, unless --input-topics names them. Output topics and the
dead-letter topic are not touched: the rerun appends its results after the
first run's. It refuses while the group has active members, naming them.
--dry-run prints the plan and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(processor.Config{})
			if err != nil {
				return err
			}
			if o.brokers == "" {
				o.brokers = cfg.BootstrapServers
			}
			if o.app == "" {
				o.app = cfg.ApplicationID
			}
			if o.stateDir == "" && cmd.Flags().Changed("state-dir") {
				return usageError{errors.New("--state-dir: empty")}
			}
			if o.app == "" || o.brokers == "" {
				return usageError{errors.New("--application-id and --brokers are required (or application.id and bootstrap.servers in --config/--set)")}
			}
			if err := o.target.parse(); err != nil {
				return usageError{err}
			}
			opts, err := kafkaOpts(cfg)
			if err != nil {
				return err
			}
			cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(strings.Split(o.brokers, ",")...))...)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			adm := kadm.NewClient(cl)
			plan, err := planReset(ctx, adm, o, time.Now())
			if err != nil {
				return err
			}
			plan.print(g.stdout)
			if o.dryRun {
				fmt.Fprintln(g.stdout, "dry run: nothing changed")
				return nil
			}
			return plan.apply(ctx, adm, g.stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.app, "application-id", "", "the application to reset (its consumer group and internal topics' prefix)")
	f.StringVar(&o.brokers, "brokers", "", "bootstrap servers, comma-separated (or bootstrap.servers in --config/--set)")
	f.StringSliceVar(&o.inputs, "input-topics", nil, "input topics to reset (default: every non-internal topic the group has committed offsets on)")
	f.StringVar(&o.stateDir, "state-dir", "", "state.dir of this machine's runner: <state-dir>/<application-id>/ is removed")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan, change nothing")
	f.StringVar(&o.target.datetime, "to-datetime", "", "reset to the first offset at or after this time (RFC 3339, or 2006-01-02T15:04:05[.000] in UTC)")
	f.StringVar(&o.target.duration, "by-duration", "", "reset to this long before now (Go duration like 36h, or ISO 8601 like P1DT12H)")
	f.Int64Var(&o.target.offset, "to-offset", -1, "reset every input partition to this offset (clamped to the partition's log)")
	cf.add(cmd)
	return cmd
}

type resetOptions struct {
	app, brokers, stateDir string
	inputs                 []string
	dryRun                 bool
	target                 resetTarget
}

// resetTarget is where input offsets go: the earliest, a time, or an offset.
type resetTarget struct {
	datetime, duration string
	offset             int64
	at                 time.Time // from datetime or duration (relative to now), when set
	shift              time.Duration
}

func (t *resetTarget) parse() error {
	n := 0
	if t.datetime != "" {
		n++
		at, err := parseDateTime(t.datetime)
		if err != nil {
			return fmt.Errorf("--to-datetime: %w", err)
		}
		t.at = at
	}
	if t.duration != "" {
		n++
		d, err := parseDuration(t.duration)
		if err != nil {
			return fmt.Errorf("--by-duration: %w", err)
		}
		t.shift = d
	}
	if t.offset >= 0 {
		n++
	}
	if n > 1 {
		return errors.New("--to-datetime, --by-duration and --to-offset exclude each other")
	}
	return nil
}

func (t resetTarget) String() string {
	switch {
	case !t.at.IsZero():
		return "first offset at or after " + t.at.UTC().Format(time.RFC3339Nano)
	case t.shift != 0:
		return fmt.Sprintf("first offset at or after now - %v", t.shift)
	case t.offset >= 0:
		return fmt.Sprintf("offset %d", t.offset)
	}
	return "earliest"
}

// parseDateTime reads RFC 3339, or Kafka's reset tool's
// yyyy-MM-ddTHH:mm:ss[.SSS] (UTC), or a bare date (UTC midnight).
func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2024-05-01T12:00:00Z) or 2024-05-01T12:00:00[.000] (UTC)", s)
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseDuration reads a positive Go duration (36h) or an ISO 8601 one
// (P1DT12H, PT30M), as Kafka's reset tool takes it.
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return 0, fmt.Errorf("%q: want a positive duration", s)
		}
		return d, nil
	}
	m := isoDuration.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		return 0, fmt.Errorf("%q: want a Go duration (36h) or ISO 8601 (P1DT12H)", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, _ := strconv.Atoi(m[i+1])
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		f, _ := strconv.ParseFloat(m[4], 64)
		d += time.Duration(f * float64(time.Second))
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration", s)
	}
	return d, nil
}

// internalSuffixes name the topics the runner creates for an application,
// after "<application.id>-" and a store or node name (topology.TopicName).
var internalSuffixes = []string{"-changelog", "-repartition", "-subscription-registration-topic", "-subscription-response-topic"}

func isInternal(app, topic string) bool {
	if !strings.HasPrefix(topic, app+"-") {
		return false
	}
	for _, s := range internalSuffixes {
		if strings.HasSuffix(topic, s) && len(topic) > len(app)+1+len(s) {
			return true
		}
	}
	return false
}

// resetPlan is what reset will do, printed before (or instead of) doing it.
type resetPlan struct {
	app      string
	target   resetTarget
	offsets  []offsetMove // input partitions, by topic and partition
	internal []string     // topics to delete, sorted
	// internalOffsets are the group's committed offsets on internal topics,
	// deleted with them: a topic created again must not inherit them.
	internalOffsets kadm.TopicsSet
	stateDir        string // "" when not removing local state
	stateExists     bool
}

type offsetMove struct {
	topic     string
	partition int32
	from, to  int64 // from -1: none committed
}

// planReset reads the group, its offsets and the cluster's topics and
// decides what reset does. An active member stops it.
func planReset(ctx context.Context, adm *kadm.Client, o resetOptions, now time.Time) (*resetPlan, error) {
	groups, err := adm.DescribeGroups(ctx, o.app)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", o.app, err)
	}
	if dg, ok := groups[o.app]; ok {
		if dg.Err != nil {
			return nil, fmt.Errorf("describe group %s: %w", o.app, dg.Err)
		}
		if len(dg.Members) > 0 {
			var who []string
			for _, m := range dg.Members {
				id := m.MemberID
				if m.InstanceID != nil {
					id += " (instance " + *m.InstanceID + ")"
				}
				who = append(who, fmt.Sprintf("%s client %s on %s", id, m.ClientID, m.ClientHost))
			}
			sort.Strings(who)
			return nil, fmt.Errorf("group %s has %d active member(s); stop every instance first (a static member stays until its session times out):\n  %s",
				o.app, len(who), strings.Join(who, "\n  "))
		}
	}
	committed, err := adm.FetchOffsets(ctx, o.app)
	if err != nil {
		return nil, fmt.Errorf("offsets of group %s: %w", o.app, err)
	}
	if err := committed.Error(); err != nil {
		return nil, fmt.Errorf("offsets of group %s: %w", o.app, err)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	plan := &resetPlan{app: o.app, target: o.target, internalOffsets: kadm.TopicsSet{}}
	for _, name := range topics.Names() {
		if isInternal(o.app, name) {
			plan.internal = append(plan.internal, name)
		}
	}
	sort.Strings(plan.internal)
	committed.Each(func(r kadm.OffsetResponse) {
		if isInternal(o.app, r.Topic) {
			plan.internalOffsets.Add(r.Topic, r.Partition)
		}
	})
	inputs := o.inputs
	if len(inputs) == 0 {
		seen := map[string]bool{}
		committed.Each(func(r kadm.OffsetResponse) {
			if !isInternal(o.app, r.Topic) && !seen[r.Topic] {
				seen[r.Topic] = true
				inputs = append(inputs, r.Topic)
			}
		})
	}
	sort.Strings(inputs)
	if len(inputs) > 0 {
		var errs []error
		for _, t := range inputs {
			if d, ok := topics[t]; !ok || d.Err != nil {
				errs = append(errs, fmt.Errorf("input topic %s does not exist", t))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		starts, err := adm.ListStartOffsets(ctx, inputs...)
		if err != nil {
			return nil, fmt.Errorf("start offsets: %w", err)
		}
		ends, err := adm.ListEndOffsets(ctx, inputs...)
		if err != nil {
			return nil, fmt.Errorf("end offsets: %w", err)
		}
		var at kadm.ListedOffsets
		if !o.target.at.IsZero() || o.target.shift != 0 {
			when := o.target.at
			if o.target.shift != 0 {
				when = now.Add(-o.target.shift)
			}
			if at, err = adm.ListOffsetsAfterMilli(ctx, when.UnixMilli(), inputs...); err != nil {
				return nil, fmt.Errorf("offsets at %v: %w", when, err)
			}
		}
		starts.Each(func(s kadm.ListedOffset) {
			mv := offsetMove{topic: s.Topic, partition: s.Partition, from: -1, to: s.Offset}
			if c, ok := committed.Lookup(s.Topic, s.Partition); ok && c.Err == nil {
				mv.from = c.At
			}
			end, _ := ends.Lookup(s.Topic, s.Partition)
			switch {
			case at != nil:
				if a, ok := at.Lookup(s.Topic, s.Partition); ok && a.Err == nil && a.Offset >= 0 {
					mv.to = a.Offset
				} else {
					mv.to = end.Offset // no record at or after the time
				}
			case o.target.offset >= 0:
				mv.to = max(s.Offset, min(o.target.offset, end.Offset))
			}
			plan.offsets = append(plan.offsets, mv)
		})
		sort.Slice(plan.offsets, func(i, j int) bool {
			a, b := plan.offsets[i], plan.offsets[j]
			return a.topic < b.topic || a.topic == b.topic && a.partition < b.partition
		})
	}
	if o.stateDir != "" {
		plan.stateDir = filepath.Join(o.stateDir, o.app)
		_, err := os.Stat(plan.stateDir)
		plan.stateExists = err == nil
	}
	return plan, nil
}

func (p *resetPlan) print(w io.Writer) {
	fmt.Fprintf(w, "reset application %s: input offsets to %s\n", p.app, p.target)
	if len(p.offsets) == 0 {
		fmt.Fprintln(w, "  no input offsets to reset (the group has none; name topics with --input-topics)")
	}
	for _, m := range p.offsets {
		from := "none"
		if m.from >= 0 {
			from = strconv.FormatInt(m.from, 10)
		}
		fmt.Fprintf(w, "  offset %s[%d]: %s -> %d\n", m.topic, m.partition, from, m.to)
	}
	for _, t := range p.internal {
		fmt.Fprintf(w, "  delete internal topic %s\n", t)
	}
	for _, t := range p.internalOffsets.Sorted() {
		fmt.Fprintf(w, "  delete the group's offsets on %s %v\n", t.Topic, t.Partitions)
	}
	switch {
	case p.stateDir == "":
		fmt.Fprintln(w, "  local state: not touched (no --state-dir)")
	case p.stateExists:
		fmt.Fprintf(w, "  remove local state %s\n", p.stateDir)
	default:
		fmt.Fprintf(w, "  local state %s: absent\n", p.stateDir)
	}
}

// apply carries the plan out: offsets first (nothing is deleted when the
// commit fails), then the internal topics' offsets and topics, then local
// state.
func (p *resetPlan) apply(ctx context.Context, adm *kadm.Client, w io.Writer) error {
	if len(p.offsets) > 0 {
		var offs kadm.Offsets
		for _, m := range p.offsets {
			// No metadata: the runner reads a task's stream time from it,
			// and the reprocessing starts with none.
			offs.Add(kadm.Offset{Topic: m.topic, Partition: m.partition, At: m.to, LeaderEpoch: -1})
		}
		res, err := adm.CommitOffsets(ctx, p.app, offs)
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			return fmt.Errorf("commit offsets of group %s: %w", p.app, err)
		}
		fmt.Fprintf(w, "committed %d input offsets\n", len(p.offsets))
	}
	if len(p.internalOffsets) > 0 {
		res, err := adm.DeleteOffsets(ctx, p.app, p.internalOffsets)
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			return fmt.Errorf("delete offsets of group %s on internal topics: %w", p.app, err)
		}
	}
	if len(p.internal) > 0 {
		res, err := adm.DeleteTopics(ctx, p.internal...)
		if err != nil {
			return fmt.Errorf("delete internal topics: %w", err)
		}
		var errs []error
		for _, r := range res.Sorted() {
			if r.Err != nil {
				errs = append(errs, fmt.Errorf("delete topic %s: %w", r.Topic, r.Err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		fmt.Fprintf(w, "deleted %d internal topics\n", len(p.internal))
	}
	if p.stateDir != "" && p.stateExists {
		if err := os.RemoveAll(p.stateDir); err != nil {
			return fmt.Errorf("remove local state: %w", err)
		}
		fmt.Fprintf(w, "removed %s\n", p.stateDir)
	}
	fmt.Fprintf(w, "application %s reset; its next run reprocesses from the new offsets\n", p.app)
	return nil
}
