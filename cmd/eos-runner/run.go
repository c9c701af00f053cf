package main

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/topology"
)

// configFlags are the flags that make a processor.Config.
type configFlags struct {
	file string
	sets []string
}

func (f *configFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.file, "config", "", "YAML file of settings (application.id, bootstrap.servers, ...)")
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "a setting as key=value (repeatable; kafka.* passes through to librdkafka); overrides --config")
}

// addPersistent adds the flags to cmd and its subcommands.
func (f *configFlags) addPersistent(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.file, "config", "", "YAML file of settings (bootstrap.servers, kafka.security.protocol, kafka.sasl.*, ...)")
	cmd.PersistentFlags().StringArrayVar(&f.sets, "set", nil, "a setting as key=value (repeatable; kafka.* passes through to librdkafka); overrides --config")
}

func (f *configFlags) load(base processor.Config) (processor.Config, error) {
	cfg := base
	if len(base.Kafka) > 0 { // the file's kafka.* merge into a copy
		cfg.Kafka = maps.Clone(base.Kafka)
	}
	if f.file != "" {
		// Over base: a command's own flags (e.g. verify process --brokers)
		// stay unless the file names the setting.
		if err := processor.LoadConfigInto(f.file, &cfg); err != nil {
			return cfg, err
		}
	}
	for _, kv := range f.sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return cfg, usageError{fmt.Errorf("--set %q: want key=value", kv)}
		}
		if err := cfg.Set(k, v); err != nil {
			return cfg, usageError{err}
		}
	}
	return cfg, nil
}

func runCmd(g *globals) *cobra.Command {
	var name string
	var to topoFlags
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a built-in topology as a service until SIGTERM or SIGINT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(processor.Config{})
			if err != nil {
				return err
			}
			to.registry = cfg.SchemaRegistry
			topo, err := to.build(name)
			if err != nil {
				return err
			}
			r, err := processor.New(cfg, topo, processor.WithLogger(g.log))
			if err != nil {
				return err
			}
			return r.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&name, "topology", "pageviews", "built-in topology: "+topologyNames())
	to.add(cmd)
	cf.add(cmd)
	return cmd
}

// runTopology runs topo with base overridden by --config/--set until ctx is
// done or the runner fails.
func runTopology(ctx context.Context, g *globals, topo *topology.Topology, base processor.Config, cf *configFlags) error {
	cfg, err := cf.load(base)
	if err != nil {
		return err
	}
	r, err := processor.New(cfg, topo, processor.WithLogger(g.log))
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

func describeCmd(g *globals) *cobra.Command {
	var name string
	var to topoFlags
	cmd := &cobra.Command{
		Use:   "describe",
		Short: "Print a topology's sub-topologies, nodes, stores and topics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := to.build(name)
			if err != nil {
				return err
			}
			fmt.Fprint(g.stdout, topo.Describe())
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "topology", "pageviews", "built-in topology: "+topologyNames())
	to.add(cmd)
	return cmd
}
