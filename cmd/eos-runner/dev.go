package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/eos-runner/eos-runner/examples/pageviews"
	"github.com/eos-runner/eos-runner/internal/demo"
	"github.com/eos-runner/eos-runner/internal/devstack"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/schema/registry"
)

func devCmd(g *globals) *cobra.Command {
	var dir, listen, registryListen string
	var rate int
	var evolveAfter time.Duration
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the example topology end to end on the embedded stack, with a live table",
		Long: `Starts the embedded broker (data under DIR/broker) and the embedded schema
registry (DIR/registry), a page-view generator writing Avro, the
examples/pageviews topology under exactly_once_v2 with auto.register.schemas
on (dev only), and a live table of the committed results. After
--evolve-after the generator registers PageView v2 (a new optional field,
BACKWARD compatible) and writes it from then on; the topology keeps reading
both versions without a restart. A small share of the records is malformed
(not the wire format, an unknown schema id, a truncated payload, an empty
page) and lands in the dead-letter topic. Logs go to DIR/runner.log. Ctrl-C
stops everything; running it again resumes where it stopped: counts continue,
nothing is counted twice, and the registry keeps its schemas and ids.`,
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

			// The registry outlives the runner, generator and dashboard:
			// they may ask it for schemas until they return.
			srv, err := registry.Open(filepath.Join(dir, "registry"), registry.WithLogger(log))
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", registryListen)
			if err != nil {
				return fmt.Errorf("schema registry listen on %s: %w", registryListen, err)
			}
			regURL := "http://" + ln.Addr().String()
			regCtx, stopRegistry := context.WithCancel(context.WithoutCancel(ctx))
			served := make(chan error, 1)
			go func() { served <- srv.Serve(regCtx, ln) }()
			defer func() {
				stopRegistry()
				if err := <-served; err != nil {
					log.Warn("schema registry", "err", err)
				}
			}()
			fmt.Fprintf(g.stdout, "embedded broker at %s; schema registry at %s; logs in %s\n", b.Addr(), regURL, logf.Name())

			if err := demo.EnsureTopics(ctx, brokers, 4); err != nil {
				return err
			}
			// Each component has its own registry client, as separate
			// processes would.
			topo, err := pageviews.Topology(registry.NewClient(regURL), true)
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
				return demo.Generate(gctx, demo.GeneratorConfig{Brokers: brokers, Registry: registry.NewClient(regURL),
					Rate: rate, Users: 500, Pages: 40, BotShare: 0.05, BadShare: 0.005,
					EvolveAfter: evolveAfter, Seed: 1, Logger: log})
			})
			grp.Go(func() error {
				dlq := cfg.DLQTopic
				if dlq == "" {
					dlq = cfg.ApplicationID + "-dlq"
				}
				return demo.Dashboard(gctx, demo.DashboardConfig{Brokers: brokers, Registry: registry.NewClient(regURL),
					DLQTopic: dlq, Out: g.stdout, Interval: time.Second})
			})
			err = grp.Wait()
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			fmt.Fprintln(g.stdout, "stopped; state kept in", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".eos", "directory for the broker's data, the registry's, the state dir and logs")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "broker listen address")
	cmd.Flags().StringVar(&registryListen, "registry-listen", "127.0.0.1:0", "schema registry listen address")
	cmd.Flags().IntVar(&rate, "rate", 500, "generated page views per second")
	cmd.Flags().DurationVar(&evolveAfter, "evolve-after", 20*time.Second, "write PageView v1 this long, then register and write v2 (0: v2 from the start)")
	cf.add(cmd)
	return cmd
}
