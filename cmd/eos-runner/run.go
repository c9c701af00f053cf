package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/declare"
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
	var name, file string
	var to topoFlags
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a built-in topology or a topology file (-f) as a service until SIGTERM or SIGINT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var topo *topology.Topology
			base := processor.Config{}
			var decl *declare.File
			if file != "" {
				if cmd.Flags().Changed("topology") {
					return usageError{errors.New("run: give --topology or -f, not both")}
				}
				f, err := loadDeclared(g, file)
				if err != nil {
					return err
				}
				if base, err = declaredConfig(f); err != nil {
					return usageError{err}
				}
				decl = f
			}
			cfg, err := cf.load(base)
			if err != nil {
				return err
			}
			to.registry = cfg.SchemaRegistry
			if decl != nil {
				topo, err = compileDeclared(decl, &to)
			} else {
				topo, err = to.build(name)
			}
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
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file (YAML) instead of a built-in topology; its settings apply under EOS_CONFIG_* variables, --config and --set")
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
	var name, file, format string
	var to topoFlags
	cmd := &cobra.Command{
		Use:   "describe",
		Short: "Print a topology's sub-topologies, nodes, stores and topics, and its diagram",
		Long: `Prints the sub-topologies as text (Kafka Streams' TopologyDescription) and as a
Mermaid flowchart; --format mermaid or dot prints only the diagram (Mermaid, or
Graphviz DOT). Takes a built-in topology (--topology) or a topology file (-f),
which is checked first: its problems are printed with file:line:column.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var topo *topology.Topology
			var err error
			if file != "" {
				f, err := loadDeclared(g, file)
				if err != nil {
					return err
				}
				topo, err = declare.Compile(f, declare.Options{})
				if err != nil {
					return err
				}
			} else if topo, err = to.build(name); err != nil {
				return err
			}
			return printDescription(g, topo, format)
		},
	}
	cmd.Flags().StringVar(&name, "topology", "pageviews", "built-in topology: "+topologyNames())
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file (YAML) instead of a built-in topology")
	cmd.Flags().StringVar(&format, "format", "text", "text (with a Mermaid diagram), mermaid or dot")
	to.add(cmd)
	return cmd
}
