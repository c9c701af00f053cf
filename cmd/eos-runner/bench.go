package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/internal/bench"
	"github.com/eos-runner/eos-runner/processor"
)

// benchCmd is `eos-runner bench`, with its hidden `bench worker` subcommand
// (the raw-copy baseline and profiled runs, as their own processes).
func benchCmd(g *globals) *cobra.Command {
	var (
		cfg       bench.Config
		quick     bool
		out, from string
		phases    string
		runs      string
		intervals []time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput, CPU per record, latency and restore speed against a raw-copy baseline",
		Long: `Starts the embedded broker as its own process (or uses BENCH_BROKERS), writes
the input, and measures, each runner as its own process:

  raw copy (a plain librdkafka consume-then-produce loop, no transactions),
  stateless (filter + mapValues), stateful (count per key, with changelog),
  windowed (count per key per tumbling 1-minute window, emit on update),
  dedup (dedup by record key, 1-hour TTL, the kept records emitted) and
  join (the input left-joined with a table read from a compacted topic)
  under at_least_once and exactly_once_v2, stateful exactly_once_v2 also
  with the record cache, on Zipf-distributed keys, and declared in a file
  (run -f) instead of built in Go; and goka (github.com/lovoo/goka, the
  stateful job, at-least-once; --goka-binary, built by make bench from
  bench/goka, skipped when absent), on both inputs: each configuration
  --repeats times, each run right after a raw copy of its own (raw, A, raw,
  B, ...); the table shows medians of records/s, runner CPU µs per record,
  peak RSS, and of each pair's ratio to its raw copy with the ratios'
  spread ((max - min) / median; "!" past 10%);
  latency at a fixed input rate for each commit interval: input timestamp
  to output visible to a read_committed reader, p50/p99/max;
  restore: records/s into an empty state dir, and records restored after a
  clean restart and after a SIGKILL.

Prints a table and writes the figures to --out (bench/results.json).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from != "" {
				res, err := bench.ReadJSON(from)
				if err != nil {
					return err
				}
				return res.WriteTable(g.stdout)
			}
			if quick {
				def := func(name string, v *int, q int) {
					if !cmd.Flags().Changed(name) {
						*v = q
					}
				}
				def("records", &cfg.Records, 100_000)
				def("restore-keys", &cfg.RestoreKeys, 100_000)
				def("keys", &cfg.Keys, 10_000)
				def("repeats", &cfg.Repeats, 1)
				if !cmd.Flags().Changed("latency-duration") {
					cfg.LatencyDuration = 5 * time.Second
				}
			}
			cfg.Brokers = os.Getenv("BENCH_BROKERS")
			cfg.Logger = g.log
			cfg.CommitIntervals = intervals
			cfg.Command = "eos-runner " + strings.Join(os.Args[1:], " ")
			if phases != "" {
				cfg.Phases = strings.Split(phases, ",")
			}
			if runs != "" {
				cfg.Runs = strings.Split(runs, ",")
			}
			res, err := bench.Run(cmd.Context(), cfg)
			if res != nil {
				if terr := res.WriteTable(g.stdout); terr != nil {
					err = errors.Join(err, terr)
				}
				if err == nil {
					if werr := res.WriteJSON(out); werr != nil {
						return werr
					}
					fmt.Fprintf(g.stdout, "\nwrote %s\n", out)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Records, "records", 1_000_000, "input records of each throughput run")
	f.IntVar(&cfg.Partitions, "partitions", 8, "partitions of every input topic")
	f.IntVar(&cfg.Keys, "keys", 100_000, "distinct keys of the throughput and latency input")
	f.IntVar(&cfg.Repeats, "repeats", 3, "runs of each throughput configuration, each after a raw copy of its own; the table shows medians")
	f.Float64Var(&cfg.ZipfS, "zipf-s", 1.1, "exponent of the skewed input's Zipf key distribution")
	f.Int64Var(&cfg.CacheBytes, "cache-bytes", 10<<20, "statestore.cache.max.bytes of the stateful runs with the record cache")
	f.StringVar(&cfg.BaselineBinary, "baseline-binary", "", "another eos-runner build to run beside this one, configuration by configuration (before/after in one run)")
	f.IntVar(&cfg.ValueBytes, "value-bytes", 100, "bytes per input value")
	f.IntVar(&cfg.LatencyRate, "latency-rate", 20_000, "input records per second of the latency runs")
	f.DurationVar(&cfg.LatencyDuration, "latency-duration", 15*time.Second, "how long each latency run writes")
	f.DurationSliceVar(&intervals, "commit-intervals", []time.Duration{100 * time.Millisecond, time.Second}, "commit.interval.ms values of the latency runs")
	f.IntVar(&cfg.RestoreKeys, "restore-keys", 1_000_000, "keys of the store the restore phase rebuilds")
	f.StringVar(&phases, "phases", "", "comma-separated subset of throughput,latency,restore,failover (default all)")
	f.StringVar(&runs, "runs", "", "comma-separated throughput runs: raw-copy, raw-copy-2x, stateless, stateful, stateful-declared, windowed, dedup, join, goka, NAME-GUARANTEE, or one configuration as NAME-GUARANTEE-KEYS[-cache] (e.g. stateful-exactly_once_v2-uniform, stateful-exactly_once_v2-zipf-cache) (default all)")
	f.StringVar(&cfg.GokaBinary, "goka-binary", "", "the goka peer's executable (bench/goka) (default "+bench.DefaultGokaBinary+" if it exists; without it the goka runs are skipped)")
	f.StringArrayVar(&cfg.RawCopyKafka, "raw-copy-kafka", nil, "a librdkafka property key=value for the raw-copy baseline (repeatable; for experiments)")
	f.StringArrayVar(&cfg.RunnerSets, "runner-set", nil, "a setting key=value added to every runner (as run --set; repeatable)")
	f.BoolVar(&quick, "quick", false, "a small smoke run: 100k records, 10k keys, 1 repeat, 100k restore keys, 5s latency runs (flags set explicitly win)")
	f.StringVar(&out, "out", "bench/results.json", "where to write the results as JSON")
	f.StringVar(&from, "from", "", "print the tables of a results file instead of running")
	f.StringVar(&cfg.CPUProfile, "cpuprofile", "", "also run the stateful exactly_once_v2 topology once more, unmeasured, writing the runner's CPU profile here")
	f.StringVar(&cfg.WorkDir, "work-dir", "", "directory for state dirs and process logs (default a temporary one, removed on success)")
	f.BoolVar(&cfg.KeepWorkDir, "keep-work-dir", false, "keep the temporary work dir")
	cmd.AddCommand(benchWorkerCmd(g))
	return cmd
}

// benchWorkerCmd is the process the bench measures for the raw-copy
// baseline (processor.RawCopy) and for profiled topology runs. Hidden: its
// flags are the bench's business.
func benchWorkerCmd(g *globals) *cobra.Command {
	var (
		mode, name, cpuprofile string
		rc                     processor.RawCopyConfig
		to                     topoFlags
		cf                     configFlags
	)
	cmd := &cobra.Command{
		Use:    "worker",
		Short:  "A process eos-runner bench measures (raw-copy baseline or profiled topology)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if cpuprofile != "" {
				f, err := os.Create(cpuprofile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer func() {
					pprof.StopCPUProfile()
					if cerr := f.Close(); cerr != nil && err == nil {
						err = fmt.Errorf("--cpuprofile: %w", cerr)
					}
				}()
			}
			switch mode {
			case "raw-copy":
				rc.Logger = g.log
				for _, kv := range cf.sets {
					k, v, ok := strings.Cut(kv, "=")
					k, isKafka := strings.CutPrefix(k, "kafka.")
					if !ok || !isKafka {
						return usageError{fmt.Errorf("--set %q: raw-copy takes kafka.KEY=VALUE only", kv)}
					}
					if rc.Kafka == nil {
						rc.Kafka = map[string]string{}
					}
					rc.Kafka[k] = v
				}
				_, err := processor.RawCopy(cmd.Context(), rc)
				return err
			case "topology":
				topo, err := to.build(name)
				if err != nil {
					return err
				}
				return runTopology(cmd.Context(), g, topo, processor.Config{}, &cf)
			}
			return usageError{fmt.Errorf("--mode %q: want raw-copy or topology", mode)}
		},
	}
	f := cmd.Flags()
	f.StringVar(&mode, "mode", "raw-copy", "raw-copy or topology")
	f.StringVar(&rc.Brokers, "brokers", "", "raw-copy: bootstrap servers")
	f.StringVar(&rc.Output, "output", "", "raw-copy: output topic")
	f.StringVar(&rc.Group, "group", "", "raw-copy: consumer group")
	f.IntVar(&rc.Copies, "copies", 1, "raw-copy: times each record is produced")
	f.StringVar(&name, "topology", "bench-stateful", "topology: built-in topology")
	f.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of this process here")
	to.add(cmd)
	cf.add(cmd)
	cmd.PreRun = func(*cobra.Command, []string) { rc.Input = to.input }
	return cmd
}
