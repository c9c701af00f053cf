package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/eos-runner/eos-runner/examples/pageviews"
	"github.com/eos-runner/eos-runner/internal/demo"
	"github.com/eos-runner/eos-runner/internal/devstack"
	"github.com/eos-runner/eos-runner/processor"
)

func devCmd(g *globals) *cobra.Command {
	var dir, listen string
	var rate int
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the example topology end to end on the embedded stack, with a live table",
		Long: `Starts the embedded broker (data under --dir), a page-view generator, the
examples/pageviews topology under exactly_once_v2, and a live table of the
committed results. Logs go to DIR/runner.log. Ctrl-C stops everything; running
it again resumes where it stopped: counts continue and nothing is counted twice.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			logf, err := os.OpenFile(filepath.Join(dir, "runner.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			defer logf.Close()
			log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))

			b, err := devstack.StartBroker(devstack.BrokerConfig{Listen: listen, DataDir: filepath.Join(dir, "broker"), Logger: log})
			if err != nil {
				return err
			}
			defer b.Close()
			brokers := []string{b.Addr()}
			fmt.Fprintf(g.stdout, "embedded broker at %s; logs in %s\n", b.Addr(), logf.Name())
			if err := demo.EnsureTopics(ctx, brokers, 4); err != nil {
				return err
			}
			topo, err := pageviews.Topology()
			if err != nil {
				return err
			}
			cfg, err := cf.load(processor.Config{
				ApplicationID:    "pageviews-app",
				BootstrapServers: b.Addr(),
				StateDir:         filepath.Join(dir, "state"),
				InstanceID:       "dev",
				CreateTopics:     true,
			})
			if err != nil {
				return err
			}
			r, err := processor.New(cfg, topo, processor.WithLogger(log))
			if err != nil {
				return err
			}
			grp, gctx := errgroup.WithContext(ctx)
			grp.Go(func() error { return r.Run(gctx) })
			grp.Go(func() error {
				return demo.Generate(gctx, demo.GeneratorConfig{Brokers: brokers, Rate: rate, Users: 500, Pages: 40,
					BotShare: 0.05, BadShare: 0.005, Seed: 1, Logger: log})
			})
			grp.Go(func() error {
				dlq := cfg.DLQTopic
				if dlq == "" {
					dlq = cfg.ApplicationID + "-dlq"
				}
				return demo.Dashboard(gctx, brokers, dlq, g.stdout, time.Second)
			})
			err = grp.Wait()
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			fmt.Fprintln(g.stdout, "stopped; state kept in", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".eos", "directory for the broker's data, the state dir and logs")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "broker listen address")
	cmd.Flags().IntVar(&rate, "rate", 500, "generated page views per second")
	cf.add(cmd)
	return cmd
}
