package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/internal/verify"
	"github.com/eos-runner/eos-runner/processor"
)

func verifyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove exactly-once on a cluster: generate input, process it, check every output",
	}
	var brokers string
	cmd.PersistentFlags().StringVar(&brokers, "brokers", "127.0.0.1:9092", "bootstrap servers")
	split := func() []string { return strings.Split(brokers, ",") }
	// --config/--set hold the Kafka security settings (kafka.security.protocol,
	// kafka.sasl.*, kafka.ssl.*) every subcommand's clients use.
	var cf configFlags
	cf.addPersistent(cmd)
	clientOpts := func() ([]kgo.Opt, error) {
		cfg, err := cf.load(processor.Config{})
		if err != nil {
			return nil, err
		}
		return kafkaOpts(cfg)
	}

	var gen verify.GenerateConfig
	generate := &cobra.Command{
		Use:   "generate",
		Short: "Write N keyed records (key k<i>, value a decimal integer) with an idempotent producer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			gen.Brokers, gen.Logger = split(), g.log
			var err error
			if gen.ClientOpts, err = clientOpts(); err != nil {
				return err
			}
			res, err := verify.Generate(cmd.Context(), gen)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "generated %d records into %s in %s\n", res.Records, gen.Topic, res.Elapsed.Round(time.Millisecond))
			return nil
		},
	}
	generate.Flags().StringVar(&gen.Topic, "topic", "eos-input", "input topic (created if missing)")
	generate.Flags().IntVar(&gen.Records, "records", 100000, "records to write")
	generate.Flags().IntVar(&gen.Keys, "keys", 1000, "distinct keys")
	generate.Flags().IntVar(&gen.Partitions, "partitions", 4, "partitions when creating the topic")
	generate.Flags().Int64Var(&gen.Seed, "seed", 1, "random seed")
	generate.Flags().IntVar(&gen.Rate, "rate", 0, "records per second (0: as fast as possible)")
	generate.Flags().IntVar(&gen.EventRate, "event-rate", 1000, "records per second of event time (record timestamps)")
	generate.Flags().DurationVar(&gen.Disorder, "disorder", 500*time.Millisecond, "timestamps lie up to this much before their nominal time (within the windows' grace; -1ns: none)")
	generate.Flags().IntVar(&gen.LateEvery, "late-every", 2000, "about one record in this many is late on purpose (-1: none)")
	generate.Flags().BoolVar(&gen.Joins, "joins", false, "first write <topic>-ref (compacted, at timestamp 0), the table that verify process --joins joins with")
	generate.Flags().StringVar(&gen.Partitioner, "partitioner", verify.PartitionMurmur2,
		"how records are spread over partitions: murmur2 (Java's producer), crc32 (librdkafka's default, as kcat), random (keys spread over partitions)")

	var input, instance string
	var commitInterval time.Duration
	var stateDir string
	var joins bool
	process := &cobra.Command{
		Use:   "process",
		Short: "Run the verification topology (echo, sum, min, max, cnt, windowed count and sum; with --joins a stream-table and a stream-stream join) on the normal runtime",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			build := verify.Topology
			if joins {
				build = verify.JoinTopology
			}
			topo, err := build(input)
			if err != nil {
				return err
			}
			return runTopology(cmd.Context(), g, topo, processor.Config{
				ApplicationID:    input + "-verify",
				BootstrapServers: brokers,
				InstanceID:       instance,
				CommitInterval:   commitInterval,
				StateDir:         stateDir,
				CreateTopics:     true,
			}, &cf)
		},
	}
	process.Flags().StringVar(&input, "input", "eos-input", "input topic")
	process.Flags().StringVar(&instance, "instance-id", "", "instance id (transactional.id suffix); default the host name")
	process.Flags().DurationVar(&commitInterval, "commit-interval", 100*time.Millisecond, "commit.interval.ms")
	process.Flags().StringVar(&stateDir, "state-dir", "", "state.dir")
	process.Flags().BoolVar(&joins, "joins", false, "add the joins with <input>-ref (written by verify generate --joins) and of the input with itself")

	var checkInput, group string
	var cached bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Read input and outputs with read_committed; exit 0 only if every output is exact",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group == "" {
				group = checkInput + "-verify"
			}
			opts, err := clientOpts()
			if err != nil {
				return err
			}
			rep, err := verify.Check(cmd.Context(), verify.CheckConfig{Brokers: split(), Input: checkInput, Group: group, Logger: g.log, ClientOpts: opts,
				Cached: cached})
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, rep.Verdict())
			for i, v := range rep.Violations {
				if i == 20 {
					fmt.Fprintf(g.stdout, "  ... and %d more\n", len(rep.Violations)-20)
					break
				}
				fmt.Fprintln(g.stdout, "  "+v)
			}
			if !rep.OK {
				return exitCode(1)
			}
			return nil
		},
	}
	check.Flags().StringVar(&checkInput, "input", "eos-input", "input topic")
	check.Flags().StringVar(&group, "group", "", "application.id of the processors (default <input>-verify)")
	check.Flags().BoolVar(&cached, "cached", false, "the processors had a record cache (statestore.cache.max.bytes): check sum, min, max and cnt as emitted on flush")
	cmd.AddCommand(generate, process, check)
	return cmd
}
