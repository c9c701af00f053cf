package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/internal/progress"
	"github.com/eos-runner/eos-runner/topology"
)

// Phase names, for Config.Phases.
const (
	PhaseThroughput = "throughput"
	PhaseLatency    = "latency"
	PhaseRestore    = "restore"
)

// Config says what Run measures. Zero values mean the defaults given per
// field.
type Config struct {
	// Binary is the eos-runner executable the bench starts as broker, runner
	// and worker; default the running executable.
	Binary string
	// Brokers is an external cluster (BENCH_BROKERS); empty starts
	// `eos-runner broker` in memory, as its own process.
	Brokers string
	// Records is the input of each throughput run; default 1,000,000.
	Records int
	// Partitions of every input topic; default 8.
	Partitions int
	// Keys is the number of distinct keys of the throughput and latency
	// input; default 100,000.
	Keys int
	// ValueBytes is the size of each input value; default 100.
	ValueBytes int
	// Repeats is how many times each throughput configuration runs, each
	// time right after a raw copy of its own (raw, A, raw, B, ..., then
	// again); the table shows medians. Default 3.
	Repeats int
	// ZipfS is the exponent of the skewed input's key distribution; default
	// 1.1.
	ZipfS float64
	// CacheBytes is statestore.cache.max.bytes of the stateful runs with
	// the record cache; default 10 MiB (Kafka Streams' default).
	CacheBytes int64
	// BaselineBinary, if set, is a second eos-runner executable (an older
	// build) whose runs are interleaved with this one's, configuration by
	// configuration (its runs are labelled BinaryBaseline); configurations
	// it may not know (the record cache) are not run with it.
	BaselineBinary string
	// GokaBinary is the goka peer's executable (bench/goka; `make bench`
	// builds it); default DefaultGokaBinary if it exists. Without one the
	// goka runs are skipped, with a warning; a path given here must exist.
	GokaBinary string
	// Phases to run; default all: throughput, latency, restore, failover.
	Phases []string
	// Runs, if set, limits the throughput phase to the configurations
	// named here: by name (stateless, stateful, windowed, dedup, join,
	// goka), by name-guarantee (stateful-exactly_once_v2), or by the whole
	// id (stateful-exactly_once_v2-zipf-cache). Every configuration is paired
	// with a raw copy anyway; raw-copy alone runs only raw copies.
	Runs []string
	// RawCopyKafka are librdkafka properties (key=value) for the raw-copy
	// worker, for experiments with the baseline's client settings.
	RawCopyKafka []string
	// RunnerSets are settings (key=value, as `eos-runner run --set`) added
	// to every runner the bench starts, e.g.
	// kafka.consumer.fetch.queue.backoff.ms=10.
	RunnerSets []string
	// LatencyRate is the input rate of the latency phase; default 20,000/s.
	LatencyRate int
	// LatencyDuration is how long each latency run writes at that rate;
	// default 15s.
	LatencyDuration time.Duration
	// CommitIntervals are the commit.interval.ms values of the latency
	// phase; default 100ms and 1s.
	CommitIntervals []time.Duration
	// RestoreKeys is the number of keys of the restore phase's store (one
	// changelog record each); default 1,000,000.
	RestoreKeys int
	// CPUProfile, if set, adds a run of the stateful topology under
	// exactly_once_v2, not measured, whose runner writes a CPU profile here.
	CPUProfile string
	// WorkDir holds state dirs and the processes' logs; default a new
	// temporary directory, removed after a successful run unless KeepWorkDir.
	WorkDir     string
	KeepWorkDir bool
	// PollInterval is how often a run's committed offsets and the runner's
	// /proc entry are read; default 50ms. It bounds the precision of the
	// measurement window.
	PollInterval time.Duration
	// RunTimeout bounds each run; default 15m.
	RunTimeout time.Duration
	// Logger receives each phase's start, progress and end; nil discards.
	Logger *slog.Logger
	// Command is recorded in the results.
	Command string
}

func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Records, 1_000_000)
	def(&c.Partitions, 8)
	def(&c.Keys, 100_000)
	def(&c.ValueBytes, 100)
	def(&c.LatencyRate, 20_000)
	def(&c.RestoreKeys, 1_000_000)
	def(&c.Repeats, 3)
	if c.ZipfS == 0 {
		c.ZipfS = 1.1
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 10 << 20
	}
	if c.LatencyDuration == 0 {
		c.LatencyDuration = 15 * time.Second
	}
	if len(c.CommitIntervals) == 0 {
		c.CommitIntervals = []time.Duration{100 * time.Millisecond, time.Second}
	}
	if len(c.Phases) == 0 {
		c.Phases = []string{PhaseThroughput, PhaseLatency, PhaseRestore, PhaseFailover}
	}
	if c.PollInterval == 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.RunTimeout == 0 {
		c.RunTimeout = 15 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("bench: find the eos-runner executable: %w", err)
		}
		c.Binary = exe
	}
	var errs []error
	for name, v := range map[string]int{"records": c.Records, "partitions": c.Partitions, "keys": c.Keys,
		"value bytes": c.ValueBytes, "latency rate": c.LatencyRate, "restore keys": c.RestoreKeys, "repeats": c.Repeats} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d is negative", name, v))
		}
	}
	for _, p := range c.Phases {
		switch p {
		case PhaseThroughput, PhaseLatency, PhaseRestore, PhaseFailover:
		default:
			errs = append(errs, fmt.Errorf("phase %q: want %s, %s, %s or %s", p, PhaseThroughput, PhaseLatency, PhaseRestore, PhaseFailover))
		}
	}
	gokaBin, err := resolveGokaBinary(c.GokaBinary)
	if err != nil {
		errs = append(errs, err)
	}
	c.GokaBinary = gokaBin
	if c.ZipfS <= 1 {
		errs = append(errs, fmt.Errorf("zipf s: %g must be above 1", c.ZipfS))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("cache bytes: %d is negative", c.CacheBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("bench: config: %w", err)
	}
	return c, nil
}

// bench is one Run's state.
type bench struct {
	cfg     Config
	log     *slog.Logger
	brokers string
	broker  *child // nil with an external cluster
	k       *kafkaClient
	// prefix makes this Run's topics and groups unique on a shared cluster.
	prefix string
	work   string
}

// Run measures what Config says and returns the results (those gathered so
// far, with the error, if a phase fails). It writes nothing but logs; the
// caller writes the results.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	began := time.Now()
	res := &Results{
		Command:   cfg.Command,
		StartedAt: began.UTC().Truncate(time.Second),
		Environment: Environment{GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Broker: "embedded",
			LoadAvgStart: loadAverage()},
		Workload: Workload{Records: cfg.Records, Partitions: cfg.Partitions, Keys: cfg.Keys, ValueBytes: cfg.ValueBytes,
			ZipfS: cfg.ZipfS, Repeats: cfg.Repeats, CacheBytes: cfg.CacheBytes},
		Runs:    []RunResult{},
		Latency: map[string]LatencyResult{},
	}
	b := &bench{cfg: cfg, log: cfg.Logger, prefix: fmt.Sprintf("bench-%d", began.Unix()%1_000_000)}
	b.work = cfg.WorkDir
	if b.work == "" {
		if b.work, err = os.MkdirTemp("", "eos-bench-"); err != nil {
			return nil, fmt.Errorf("bench: work dir: %w", err)
		}
	} else if err := os.MkdirAll(b.work, 0o755); err != nil {
		return nil, fmt.Errorf("bench: work dir: %w", err)
	}
	b.log.Info("bench: work dir (state dirs and process logs)", "dir", b.work)

	if cfg.Brokers != "" {
		b.brokers = cfg.Brokers
		res.Environment.Broker = "external"
	} else {
		b.broker, b.brokers, err = startBroker(cfg.Binary, cfg.Partitions, filepath.Join(b.work, "broker.log"))
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := b.broker.stop(30 * time.Second); err != nil {
				b.log.Warn("bench: broker stop", "err", err)
			}
		}()
		b.log.Info("bench: embedded broker started", "bootstrap", b.brokers, "pid", b.broker.pid())
	}
	if b.k, err = newKafkaClient(strings.Split(b.brokers, ",")); err != nil {
		return nil, err
	}
	defer b.k.close()

	err = b.phases(ctx, res)
	res.setRatios()
	res.Seconds = round(time.Since(began).Seconds(), 1)
	res.Environment.LoadAvgEnd = loadAverage()
	if err == nil && cfg.WorkDir == "" && !cfg.KeepWorkDir {
		os.RemoveAll(b.work)
	} else if err != nil {
		b.log.Error("bench: failed; logs kept", "dir", b.work, "err", err)
	}
	return res, err
}

func (b *bench) phases(ctx context.Context, res *Results) error {
	if slices.Contains(b.cfg.Phases, PhaseThroughput) || b.cfg.CPUProfile != "" {
		input := b.prefix + "-input"
		// The join's table first: its records are older than the input's,
		// so a task taking its inputs in timestamp order reads it first.
		compact := "compact"
		if err := b.k.createTopicWith(ctx, JoinTableTopic(input), b.cfg.Partitions, map[string]*string{"cleanup.policy": &compact}); err != nil {
			return err
		}
		if err := b.k.produce(ctx, b.log, JoinTableTopic(input), b.cfg.Keys, b.cfg.ValueBytes, uniqueKeys(0)); err != nil {
			return err
		}
		if err := b.writeInput(ctx, input, b.cfg.Records, randomKeys(b.cfg.Keys)); err != nil {
			return err
		}
		if slices.Contains(b.cfg.Phases, PhaseThroughput) {
			if err := b.throughput(ctx, input, b.prefix+"-zipf-input", res); err != nil {
				return err
			}
		}
		if b.cfg.CPUProfile != "" {
			if err := b.profile(ctx, input); err != nil {
				return err
			}
		}
	}
	if slices.Contains(b.cfg.Phases, PhaseLatency) {
		// Each commit interval without and with the record cache: with it
		// the outputs are produced at commit, in one burst (issue: p99
		// within 1.5 × the interval with the cache on).
		for _, iv := range b.cfg.CommitIntervals {
			for _, cache := range []int64{0, b.cfg.CacheBytes} {
				l, err := b.latency(ctx, iv, cache)
				if err != nil {
					return err
				}
				res.Latency[latencyKey(iv, cache)] = l
			}
		}
	}
	if slices.Contains(b.cfg.Phases, PhaseRestore) {
		r, err := b.restore(ctx)
		res.Restore = r
		if err != nil {
			return err
		}
	}
	if slices.Contains(b.cfg.Phases, PhaseFailover) {
		f, err := b.failover(ctx) // failover.go
		res.Failover = f
		if err != nil {
			return err
		}
	}
	return nil
}

// writeInput creates topic and writes records to it.
func (b *bench) writeInput(ctx context.Context, topic string, records int, key keyFunc) error {
	if err := b.k.createTopic(ctx, topic, b.cfg.Partitions); err != nil {
		return err
	}
	return b.k.produce(ctx, b.log, topic, records, b.cfg.ValueBytes, key)
}

// rawCopyArgs are the arguments of the raw-copy worker (processor.RawCopy)
// copying input to out in group, each record copies times.
func (b *bench) rawCopyArgs(input, out, group string, copies int) []string {
	args := []string{"--log-format", "json", "bench", "worker", "--mode", "raw-copy", "--brokers", b.brokers,
		"--input", input, "--output", out, "--group", group, "--copies", strconv.Itoa(copies)}
	for _, kv := range b.cfg.RawCopyKafka {
		args = append(args, "--set", "kafka."+kv)
	}
	return args
}

// runnerArgs are the arguments of `eos-runner run` for a bench topology.
func (b *bench) runnerArgs(topo, input, app, guarantee, stateDir string, extra ...string) []string {
	return append([]string{"--log-format", "json", "run", "--topology", topo},
		b.topologyArgs(input, app, guarantee, stateDir, extra...)...)
}

// topologyArgs are the input and settings flags of `eos-runner run` (and of
// `eos-runner bench worker --mode topology`).
func (b *bench) topologyArgs(input, app, guarantee, stateDir string, extra ...string) []string {
	args := []string{"--input", input,
		"--set", "application.id=" + app,
		"--set", "bootstrap.servers=" + b.brokers,
		"--set", "processing.guarantee=" + guarantee,
		"--set", "state.dir=" + stateDir,
		"--set", "instance.id=bench",
		"--set", "create.topics=true",
	}
	for _, e := range append(slices.Clone(b.cfg.RunnerSets), extra...) {
		args = append(args, "--set", e)
	}
	return args
}

// quickFailover are settings that make a killed runner's partitions move
// quickly on restart: its member leaves the group after the session
// timeout, and the transaction timeout must stay below it.
func quickFailover() []string {
	return []string{"session.timeout.ms=6000", "transaction.timeout.ms=5000", "kafka.consumer.heartbeat.interval.ms=500"}
}

// runSpec is one throughput configuration.
type runSpec struct {
	name, guarantee, topo string
	keys                  string // KeysUniform or KeysZipf
	cache                 int64  // statestore.cache.max.bytes; 0: none
	binary                string // "" or BinaryBaseline
	declared              bool   // run the topology from its file (DeclaredStatefulFile), not --topology
	peer                  bool   // not eos-runner: Config.GokaBinary (goka.go), no topology
	copies                int    // a raw copy producing each record this many times (RunRawCopy2x), no topology
	build                 func(input string) (*topology.Topology, error)
	output                func(input string) string
}

// id names the configuration in logs, groups and Config.Runs.
func (s runSpec) id() string {
	id := s.name + "-" + s.guarantee
	if s.keys == KeysZipf {
		id += "-zipf"
	}
	if s.cache > 0 {
		id += "-cache"
	}
	if s.binary != "" {
		id += "-" + s.binary
	}
	return id
}

// fullID names the configuration with its keys always spelled out
// (stateful-exactly_once_v2-uniform), so that Config.Runs can select the
// uniform run without the cached and skewed ones its id() also prefixes.
func (s runSpec) fullID() string {
	id := s.name + "-" + s.guarantee + "-" + s.keys
	if s.cache > 0 {
		id += "-cache"
	}
	return id
}

// specs lists the throughput configurations Config.Runs selects.
func (b *bench) specs() []runSpec {
	var (
		out     []runSpec
		skipped []string // goka's, without its binary
	)
	add := func(s runSpec) {
		base := s.name + "-" + s.guarantee
		if len(b.cfg.Runs) > 0 && !slices.Contains(b.cfg.Runs, s.name) && !slices.Contains(b.cfg.Runs, base) &&
			!slices.Contains(b.cfg.Runs, s.id()) && !slices.Contains(b.cfg.Runs, s.fullID()) {
			return
		}
		if s.peer && b.cfg.GokaBinary == "" {
			skipped = append(skipped, s.id())
			return
		}
		out = append(out, s)
		if b.cfg.BaselineBinary != "" && s.cache == 0 && !s.declared && !s.peer && s.copies == 0 {
			s.binary = BinaryBaseline
			out = append(out, s)
		}
	}
	for _, t := range []struct {
		name, topo string
		output     func(string) string
		build      func(string) (*topology.Topology, error)
	}{
		{RunStateless, "bench-stateless", StatelessOutput, StatelessTopology},
		{RunStateful, "bench-stateful", StatefulOutput, StatefulTopology},
		{RunWindowed, "bench-windowed", WindowedOutput, WindowedTopology},
		{RunDedup, "bench-dedup", DedupOutput, DedupTopology},
		{RunJoin, "bench-join", JoinOutput, JoinTopology},
	} {
		for _, g := range []string{"at_least_once", "exactly_once_v2"} {
			s := runSpec{name: t.name, guarantee: g, topo: t.topo, keys: KeysUniform, build: t.build, output: t.output}
			add(s)
			if t.name != RunStateful || g != "exactly_once_v2" {
				continue
			}
			// Stateful exactly-once, the yardstick, also with the
			// record cache and on skewed keys.
			for _, v := range []struct {
				keys  string
				cache int64
			}{{KeysUniform, b.cfg.CacheBytes}, {KeysZipf, 0}, {KeysZipf, b.cfg.CacheBytes}} {
				s.keys, s.cache = v.keys, v.cache
				add(s)
			}
			// And declared in a file instead of built in Go: what a
			// declared topology costs (issue: within 10 %).
			add(runSpec{name: RunStatefulDeclared, guarantee: g, keys: KeysUniform, declared: true, build: t.build, output: t.output})
		}
	}
	// The client's floor for a stateful record: two produces per record.
	add(runSpec{name: RunRawCopy2x, guarantee: GuaranteeNone, keys: KeysUniform, copies: 2,
		output: func(input string) string { return input + "-copy2x" }})
	// The goka peer: the stateful topology's job, at-least-once (goka has
	// no transactions), on both inputs.
	for _, keys := range []string{KeysUniform, KeysZipf} {
		add(runSpec{name: RunGoka, guarantee: "at_least_once", keys: keys, peer: true, output: StatefulOutput})
	}
	if len(skipped) > 0 {
		b.log.Warn("bench: no goka binary; its runs are skipped", "runs", skipped, "want", DefaultGokaBinary,
			"build", gokaBuildHint)
	}
	return out
}

// throughput runs, Repeats times, a raw copy before each configuration
// (raw, A, raw, B, ...), so that every configuration has a baseline taken
// under the load of the moment; the table reports medians. input has
// uniform keys; zipfInput, written only when a configuration needs it,
// Zipf-distributed ones.
func (b *bench) throughput(ctx context.Context, input, zipfInput string, res *Results) error {
	specs := b.specs()
	if len(specs) == 0 {
		if !slices.Contains(b.cfg.Runs, RunRawCopy) {
			return fmt.Errorf("bench: --runs %v selects no throughput run", b.cfg.Runs)
		}
		specs = nil // raw copies only
	}
	totals := map[string]int64{}
	inputOf := map[string]string{KeysUniform: input, KeysZipf: zipfInput}
	for _, s := range specs {
		if s.keys == KeysZipf && totals[KeysZipf] == 0 {
			if err := b.writeInput(ctx, zipfInput, b.cfg.Records, zipfKeys(b.cfg.Keys, b.cfg.ZipfS)); err != nil {
				return err
			}
			total, err := b.k.endOffsets(ctx, zipfInput)
			if err != nil {
				return err
			}
			totals[KeysZipf] = total
		}
	}
	total, err := b.k.endOffsets(ctx, input)
	if err != nil {
		return err
	}
	totals[KeysUniform] = total
	for round := range b.cfg.Repeats {
		if len(specs) == 0 {
			if _, err := b.rawCopy(ctx, input, KeysUniform, totals[KeysUniform], round, res); err != nil {
				return err
			}
			continue
		}
		for _, s := range specs {
			in := inputOf[s.keys]
			pair, err := b.rawCopy(ctx, in, s.keys, totals[s.keys], round, res)
			if err != nil {
				return err
			}
			if err := b.configRun(ctx, s, in, totals[s.keys], round, pair, res); err != nil {
				return err
			}
		}
	}
	return nil
}

// rawCopy runs the raw-copy baseline over input and returns its index in
// res.Runs.
func (b *bench) rawCopy(ctx context.Context, input, keys string, total int64, round int, res *Results) (int, error) {
	id := fmt.Sprintf("%s-%s-r%d-%d", RunRawCopy, keys, round, len(res.Runs))
	app := b.prefix + "-" + id
	out := input + "-copy"
	if err := b.k.createTopic(ctx, out, b.cfg.Partitions); err != nil {
		return 0, err
	}
	r, err := b.measuredRun(ctx, id, b.cfg.Binary, b.rawCopyArgs(input, out, app, 1), app, input, total)
	if err != nil {
		return 0, fmt.Errorf("bench: run %s: %w", id, err)
	}
	r.Name, r.Guarantee, r.Keys, r.Round, r.Pair = RunRawCopy, GuaranteeNone, keys, round, len(res.Runs)
	res.Runs = append(res.Runs, r)
	if err := b.k.deleteTopics(ctx, out, app+"-dlq"); err != nil {
		b.log.Warn("bench: cleanup", "err", err)
	}
	return r.Pair, nil
}

// configRun runs one configuration over input, paired with the raw copy at
// res.Runs[pair].
func (b *bench) configRun(ctx context.Context, s runSpec, input string, total int64, round, pair int, res *Results) error {
	id := fmt.Sprintf("%s-r%d", s.id(), round)
	app := b.prefix + "-" + id
	out := s.output(input)
	if err := b.k.createTopic(ctx, out, b.cfg.Partitions); err != nil {
		return err
	}
	var extra []string
	if s.cache > 0 {
		extra = append(extra, "statestore.cache.max.bytes="+strconv.FormatInt(s.cache, 10))
	}
	bin := b.cfg.Binary
	if s.binary == BinaryBaseline {
		bin = b.cfg.BaselineBinary
	}
	stateDir := filepath.Join(b.work, id)
	args := b.runnerArgs(s.topo, input, app, s.guarantee, stateDir, extra...)
	cleanup := []string{out, app + "-dlq"}
	switch {
	case s.copies > 0:
		args = b.rawCopyArgs(input, out, app, s.copies)
	case s.peer:
		// goka's group table, created here as goka wants it (compacted,
		// co-partitioned with the input): goka would create it with its
		// own replication factor, which a one-broker cluster refuses.
		table := GokaTableTopic(app)
		compact := "compact"
		if err := b.k.createTopicWith(ctx, table, b.cfg.Partitions, map[string]*string{"cleanup.policy": &compact}); err != nil {
			return err
		}
		bin, args, cleanup = b.cfg.GokaBinary, gokaArgs(b.brokers, input, out, app, stateDir), []string{out, table}
	case s.declared:
		path, err := DeclaredStatefulFile(b.work, input)
		if err != nil {
			return err
		}
		args = append([]string{"--log-format", "json", "run", "-f", path}, b.topologyArgs(input, app, s.guarantee, stateDir, extra...)...)
	}
	if s.build != nil {
		topo, err := s.build(input)
		if err != nil {
			return err
		}
		cleanup = append(cleanup, changelogTopics(topo, app)...)
	}
	r, err := b.measuredRun(ctx, id, bin, args, app, input, total)
	if err != nil {
		return fmt.Errorf("bench: run %s: %w", id, err)
	}
	if !b.cfg.KeepWorkDir && b.cfg.WorkDir == "" {
		os.RemoveAll(stateDir)
	}
	r.Name, r.Guarantee, r.Keys, r.CacheBytes, r.Binary, r.Round, r.Pair = s.name, s.guarantee, s.keys, s.cache, s.binary, round, pair
	if s.peer {
		r.Binary = BinaryPeer
	}
	res.Runs = append(res.Runs, r)
	res.setRatios()
	last := res.Runs[len(res.Runs)-1]
	b.log.Info("bench: pair", "run", id, "ratio_to_raw", last.RatioToRaw, "cpu_ratio_to_raw", last.CPURatioToRaw)
	if err := b.k.deleteTopics(ctx, cleanup...); err != nil {
		b.log.Warn("bench: cleanup", "err", err)
	}
	return nil
}

// profile runs the stateful topology under exactly_once_v2 in a bench
// worker that writes a CPU profile.
func (b *bench) profile(ctx context.Context, input string) error {
	total, err := b.k.endOffsets(ctx, input)
	if err != nil {
		return err
	}
	app := b.prefix + "-profile"
	out := StatefulOutput(input)
	if err := b.k.createTopic(ctx, out, b.cfg.Partitions); err != nil {
		return err
	}
	args := append([]string{"--log-format", "json", "bench", "worker", "--mode", "topology", "--topology", "bench-stateful",
		"--cpuprofile", b.cfg.CPUProfile}, b.topologyArgs(input, app, "exactly_once_v2", filepath.Join(b.work, "profile"))...)
	r, err := b.measuredRun(ctx, "profile", b.cfg.Binary, args, app, input, total)
	if err != nil {
		return fmt.Errorf("bench: profiled run: %w", err)
	}
	b.log.Info("bench: CPU profile written (profiled run, not in the results)", "file", b.cfg.CPUProfile,
		"records_per_sec", r.RecordsPerSec, "cpu_us_per_record", r.CPUMicrosPerRecord)
	return b.k.deleteTopics(ctx, out, ChangelogTopic(app), app+"-dlq")
}

// measuredRun starts a process and measures it until group has committed
// total records of input, then stops it with SIGTERM.
func (b *bench) measuredRun(ctx context.Context, id, bin string, args []string, group, input string, total int64) (RunResult, error) {
	b.log.Info("bench: run start", "run", id, "records", total)
	c, _, err := startChild(id, bin, args, filepath.Join(b.work, id+".log"), false)
	if err != nil {
		return RunResult{}, err
	}
	defer c.kill()
	w, peak, brokerCPU, err := b.watch(ctx, id, c, group, input, total)
	if err != nil {
		return RunResult{}, err
	}
	if err := c.stop(60 * time.Second); err != nil {
		return RunResult{}, fmt.Errorf("stop: %w", err)
	}
	if w.t0.Equal(c.started) {
		b.log.Warn("bench: run done at the first poll; its window starts at process start (startup included)", "run", id)
	}
	r := RunResult{
		Records:            total,
		RecordsPerSec:      round(w.recordsPerSec(), 0),
		CPUMicrosPerRecord: round(w.cpuPerRecord(), 2),
		PeakRSSBytes:       peak,
		WindowSeconds:      round(w.t1.Sub(w.t0).Seconds(), 3),
		WallSeconds:        round(w.t1.Sub(c.started).Seconds(), 3),
	}
	if n := w.rec1 - w.rec0; n > 0 {
		r.BrokerCPUMicrosPerRecord = round(float64(brokerCPU)/float64(time.Microsecond)/float64(n), 2)
	}
	r.OtherCores = round(w.otherCores(brokerCPU), 2)
	b.log.Info("bench: run end", "run", id, "records_per_sec", r.RecordsPerSec, "cpu_us_per_record", r.CPUMicrosPerRecord,
		"peak_rss_mib", r.PeakRSSBytes>>20, "broker_cpu_us_per_record", r.BrokerCPUMicrosPerRecord, "other_cores", r.OtherCores,
		"window_sec", r.WindowSeconds, "wall_sec", r.WallSeconds)
	return r, nil
}

// watch polls group's committed offsets on input and the runner's /proc
// entry every PollInterval until the committed offsets reach total. It
// returns the measurement window, the runner's peak RSS, and the broker's
// CPU in the window.
func (b *bench) watch(ctx context.Context, id string, c *child, group, input string, total int64) (window, int64, time.Duration, error) {
	var (
		w                  window
		first              bool
		brokerCPU0         time.Duration
		lastLog, lastCount = time.Now(), int64(0)
	)
	deadline := time.Now().Add(b.cfg.RunTimeout)
	tick := time.NewTicker(b.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return w, 0, 0, ctx.Err()
		case <-tick.C:
		}
		if ok, why := c.exited(); ok {
			return w, 0, 0, fmt.Errorf("%w: %w", errExitedEarly, why)
		}
		if time.Now().After(deadline) {
			return w, 0, 0, fmt.Errorf("not done after %v", b.cfg.RunTimeout)
		}
		n, err := b.k.committed(ctx, group, input)
		if err != nil {
			b.log.Debug("bench: committed offsets", "err", err)
			continue
		}
		now := time.Now()
		s, err := c.sample()
		if err != nil {
			return w, 0, 0, err
		}
		var brokerCPU time.Duration
		if b.broker != nil {
			if bs, err := b.broker.sample(); err == nil {
				brokerCPU = bs.CPU
			}
		}
		busy, _ := machineBusy() // 0 without /proc/stat: otherCores then reads 0
		if !first && n > 0 {
			first = true
			w.t0, w.rec0, w.cpu0, w.busy0, brokerCPU0 = now, n, s.CPU, busy, brokerCPU
		}
		if n >= total {
			w.t1, w.rec1, w.cpu1, w.busy1 = now, n, s.CPU, busy
			if w.rec0 >= w.rec1 {
				// Done at the first look (a tiny run): measure from the
				// process start instead; startup is then inside the window.
				// busy1 = 0: the machine was not sampled at the start, so
				// otherCores reports 0 (unknown).
				w.t0, w.rec0, w.cpu0, w.busy1, brokerCPU0 = c.started, 0, 0, 0, 0
			}
			return w, s.PeakRSS, brokerCPU - brokerCPU0, nil
		}
		if now.Sub(lastLog) >= 2*time.Second {
			b.log.Info("bench: run progress", "run", id, "committed", n, "of", total,
				"percent", strconv.FormatFloat(float64(n)*100/float64(max(total, 1)), 'f', 1, 64),
				"rate", progress.Rate(n-lastCount, now.Sub(lastLog)), "rss_mib", s.RSS>>20)
			lastLog, lastCount = now, n
		}
	}
}

// latency runs the stateful topology under exactly_once_v2 with commit
// interval iv and statestore.cache.max.bytes cache, at a fixed input rate,
// and measures input timestamp to read_committed visibility of the output.
func (b *bench) latency(ctx context.Context, iv time.Duration, cache int64) (LatencyResult, error) {
	ms := int(iv.Milliseconds())
	id := "latency-" + latencyKey(iv, cache)
	input := b.prefix + "-" + id
	app := input
	out := StatefulOutput(input)
	lr := LatencyResult{CommitIntervalMs: ms, CacheBytes: cache, InputRate: b.cfg.LatencyRate}
	for _, t := range []string{input, out} {
		if err := b.k.createTopic(ctx, t, b.cfg.Partitions); err != nil {
			return lr, err
		}
	}
	defer func() {
		if err := b.k.deleteTopics(context.WithoutCancel(ctx), input, out, ChangelogTopic(app), app+"-dlq"); err != nil {
			b.log.Warn("bench: cleanup", "err", err)
		}
	}()
	b.log.Info("bench: latency run start", "run", id, "rate", b.cfg.LatencyRate, "duration", b.cfg.LatencyDuration.String())
	c, _, err := startChild(id, b.cfg.Binary, b.runnerArgs("bench-stateful", input, app, "exactly_once_v2",
		filepath.Join(b.work, id), "commit.interval.ms="+strconv.Itoa(ms), "statestore.cache.max.bytes="+strconv.FormatInt(cache, 10)),
		filepath.Join(b.work, id+".log"), false)
	if err != nil {
		return lr, err
	}
	defer c.kill()

	var (
		seen, measured atomic.Int64
		from           atomic.Int64 // unix ms; 0 while warming up
		mu             sync.Mutex   // guards samples
		samples        []float64
	)
	rctx, stopReader := context.WithCancel(ctx)
	readerDone := make(chan error, 1)
	go func() {
		readerDone <- readCommitted(rctx, b.k.brokers, out, func(r *kgo.Record, received time.Time) {
			seen.Add(1)
			if f := from.Load(); f == 0 || r.Timestamp.UnixMilli() < f {
				return
			}
			mu.Lock()
			samples = append(samples, float64(received.Sub(r.Timestamp))/float64(time.Millisecond))
			mu.Unlock()
			measured.Add(1)
		})
	}()
	defer func() { stopReader(); <-readerDone }()

	// Warm up: probe records until one comes out, so that group join, topic
	// creation and restore are not measured.
	warm := time.Now()
	for seen.Load() == 0 {
		if ok, why := c.exited(); ok {
			return lr, fmt.Errorf("bench: %s: %w: %w", id, errExitedEarly, why)
		}
		if time.Since(warm) > 2*time.Minute {
			return lr, fmt.Errorf("bench: %s: no output two minutes after start", id)
		}
		if _, err := b.k.produceAtRate(ctx, input, 1000, 2*time.Millisecond, b.cfg.ValueBytes, func(int) string { return "probe" }); err != nil {
			return lr, err
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond) // the last probe's millisecond is over
	from.Store(time.Now().UnixMilli() + 1)
	time.Sleep(2 * time.Millisecond)
	b.log.Info("bench: latency runner ready; writing at a fixed rate", "run", id, "warmup", time.Since(warm).Round(time.Millisecond).String())
	stop := progress.Every(2*time.Second, func(time.Time) {
		b.log.Info("bench: latency progress", "run", id, "outputs_seen", measured.Load())
	})
	sent, err := b.k.produceAtRate(ctx, input, b.cfg.LatencyRate, b.cfg.LatencyDuration, b.cfg.ValueBytes, randomKeys(b.cfg.Keys))
	stop()
	if err != nil {
		return lr, err
	}
	// Done when every input record is committed and the reader has seen
	// what that made visible: one output per input record without the
	// cache; with it, fewer (a key's updates within one commit merge into
	// one output), so then when the reader has seen nothing new for two
	// commit intervals after the input was committed.
	total, err := b.k.endOffsets(ctx, input)
	if err != nil {
		return lr, err
	}
	deadline := time.Now().Add(30*time.Second + 3*iv)
	var inputDone time.Time
	lastSeen, lastChange := int64(-1), time.Now()
	for measured.Load() < int64(sent) && time.Now().Before(deadline) {
		if ok, why := c.exited(); ok {
			return lr, fmt.Errorf("bench: %s: %w: %w", id, errExitedEarly, why)
		}
		now := time.Now()
		if n := seen.Load(); n != lastSeen {
			lastSeen, lastChange = n, now
		}
		if inputDone.IsZero() {
			if n, err := b.k.committed(ctx, app, input); err == nil && n >= total {
				inputDone = now
			}
		} else if cache > 0 && now.Sub(lastChange) >= 2*iv && now.Sub(inputDone) >= 2*iv {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.stop(60 * time.Second); err != nil {
		return lr, fmt.Errorf("bench: %s: stop: %w", id, err)
	}
	mu.Lock()
	s := Summarize(samples)
	mu.Unlock()
	if s.Count < sent && cache == 0 {
		b.log.Warn("bench: not every output arrived; the missing ones are not in the percentiles",
			"run", id, "sent", sent, "received", s.Count)
	}
	lr.Records, lr.P50Ms, lr.P99Ms, lr.MaxMs = s.Count, round(s.P50, 1), round(s.P99, 1), round(s.Max, 1)
	b.log.Info("bench: latency run end", "run", id, "records", lr.Records, "p50_ms", lr.P50Ms, "p99_ms", lr.P99Ms, "max_ms", lr.MaxMs)
	return lr, nil
}
