package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/internal/dlqreplay"
	"github.com/eos-runner/eos-runner/processor"
)

// dlqCmd groups the dead-letter topic commands: list and replay.
func dlqCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect a dead-letter topic, or replay it exactly once after a fix",
	}
	cmd.AddCommand(dlqListCmd(g), dlqReplayCmd(g))
	return cmd
}

func dlqListCmd(g *globals) *cobra.Command {
	var brokers, dlq string
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print one line per committed DLQ record: DLQ partition@offset, source topic[partition]@offset, class, message",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if brokers == "" || dlq == "" {
				return usageError{fmt.Errorf("--brokers and --dlq are required")}
			}
			cfg, err := cf.load(processor.Config{})
			if err != nil {
				return err
			}
			opts, err := kafkaOpts(cfg)
			if err != nil {
				return err
			}
			n := 0
			_, err = dlqreplay.Scan(cmd.Context(), brokers, dlq, nil, func(e dlqreplay.Entry) error {
				n++
				msg := strings.ReplaceAll(e.Message, "\n", " ")
				if len(msg) > 100 {
					msg = msg[:100]
				}
				_, err := fmt.Fprintf(g.stdout, "%d@%d\t%s[%d]@%d\t%s\t%s\n", e.Partition, e.Offset,
					e.SourceTopic, e.SourcePartition, e.SourceOffset, e.Class, msg)
				return err
			}, opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "%d records in %s\n", n, dlq)
			return nil
		},
	}
	cmd.Flags().StringVar(&brokers, "brokers", "", "bootstrap servers, comma-separated")
	cmd.Flags().StringVar(&dlq, "dlq", "", "the dead-letter topic")
	cf.add(cmd)
	return cmd
}

func dlqReplayCmd(g *globals) *cobra.Command {
	var brokers, appID string
	cfg := dlqreplay.Config{FromOffset: dlqreplay.Open, ToOffset: dlqreplay.Open}
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Replay matching DLQ records into a topic exactly once, then stop",
		Long: `Replay reads the DLQ with its own consumer group (application.id, default
<dlq>-replay) and writes the records that match the filters to --to, with
their original key, value, headers and timestamp, minus the eos.* headers.
Offsets and outputs commit in one transaction, so running the command again
replays nothing twice. Records that do not match are passed over for good
under this application.id: to replay them later, use another
--application-id with filters that exclude what was already replayed.
It stops once everything the DLQ held at start is committed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DLQ == "" || cfg.To == "" {
				return usageError{fmt.Errorf("--dlq and --to are required (--to is usually the records' eos.source.topic)")}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			rc, err := cf.load(processor.Config{})
			if err != nil {
				return err
			}
			if brokers != "" {
				rc.BootstrapServers = brokers
			}
			if rc.BootstrapServers == "" {
				return usageError{fmt.Errorf("--brokers is required")}
			}
			if appID != "" {
				rc.ApplicationID = appID
			}
			if rc.ApplicationID == "" {
				rc.ApplicationID = dlqreplay.DefaultApplicationID(cfg.DLQ)
			}
			res, err := dlqreplay.Run(cmd.Context(), cfg, rc, processor.WithLogger(g.log))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "replayed %d, skipped %d records of %s into %s (application.id %s)\n",
				res.Replayed, res.Skipped, cfg.DLQ, cfg.To, rc.ApplicationID)
			return nil
		},
	}
	cmd.Flags().StringVar(&brokers, "brokers", "", "bootstrap servers, comma-separated (or bootstrap.servers in --config/--set)")
	cmd.Flags().StringVar(&cfg.DLQ, "dlq", "", "the dead-letter topic to replay")
	cmd.Flags().StringVar(&cfg.To, "to", "", "the topic to write to; usually the records' eos.source.topic")
	cmd.Flags().StringArrayVar(&cfg.Classes, "class", nil, "replay only this error class: deserialization, processing, panic (repeatable; default all)")
	cmd.Flags().StringVar(&cfg.Source, "source-topic", "", "replay only records whose eos.source.topic is this")
	cmd.Flags().Int64Var(&cfg.FromOffset, "from-offset", dlqreplay.Open, "replay only records whose eos.source.offset is at least this (-1: open)")
	cmd.Flags().Int64Var(&cfg.ToOffset, "to-offset", dlqreplay.Open, "replay only records whose eos.source.offset is at most this (-1: open)")
	cmd.Flags().StringVar(&appID, "application-id", "", "the replay's application.id and group; default <dlq>-replay")
	cf.add(cmd)
	return cmd
}
