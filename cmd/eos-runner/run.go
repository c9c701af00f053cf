package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
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
	src, err := f.sources(base)
	return src.Config, err
}

// sources builds the configuration from base (a command's own flags), the
// --config file, the EOS_RUNNER_* environment and --set, in that order, and
// returns every problem of them at once.
func (f *configFlags) sources(base processor.Config) (*processor.ConfigSources, error) {
	if len(base.Kafka) > 0 { // the file's kafka.* merge into a copy
		base.Kafka = maps.Clone(base.Kafka)
	}
	src := processor.NewConfigSources(base)
	// Over base: a command's own flags (e.g. verify process --brokers)
	// stay unless the file names the setting.
	if f.file != "" {
		src.File(f.file)
	}
	src.Env(os.Environ())
	var usage []error
	for _, kv := range f.sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			usage = append(usage, fmt.Errorf("--set %q: want key=value", kv))
			continue
		}
		src.Set(k, v)
	}
	if err := errors.Join(append(usage, src.Err())...); err != nil {
		return src, usageError{err}
	}
	return src, nil
}

// loadValid is load, then Validate: every problem of the sources and of
// the settings they make, at once (an unknown setting does not hide a bad
// value elsewhere).
func (f *configFlags) loadValid(base processor.Config) (processor.Config, error) {
	src, err := f.sources(base)
	if verr := src.Config.Validate(); verr != nil {
		err = errors.Join(err, verr)
	}
	return src.Config, err
}

func runCmd(g *globals) *cobra.Command {
	var name, file, from string
	var to topoFlags
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a built-in topology or a topology file (-f) as a service until SIGTERM or SIGINT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var topo *topology.Topology
			if file != "" && cmd.Flags().Changed("topology") {
				return usageError{errors.New("run: give --topology or -f, not both")}
			}
			decl, base, err := loadDeclaredBase(g, file)
			if err != nil {
				return err
			}
			cfg, err := cf.loadValid(base)
			if err != nil {
				return err
			}
			if from != "" {
				if cfg.FromTime, err = parseDateTime(from); err != nil {
					return usageError{fmt.Errorf("--from-datetime: %w", err)}
				}
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
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file (YAML) instead of a built-in topology; its settings apply under --config, EOS_RUNNER_* variables and --set")
	cmd.Flags().StringVar(&from, "from-datetime", "", "backfill: partitions without a committed offset start at this time (RFC 3339, or 2006-01-02T15:04:05[.000] in UTC) instead of the log start")
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
