package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/examples/pageviews"
	"github.com/eos-runner/eos-runner/internal/verify"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/topology"
)

// topologies are the built-in topologies `run` and `describe` know. A user's
// own topology is a Go program calling processor.New (see examples/).
var topologies = map[string]func(input string) (*topology.Topology, error){
	"pageviews": func(string) (*topology.Topology, error) { return pageviews.Topology() },
	"verify":    verify.Topology,
}

func topologyNames() string {
	names := make([]string, 0, len(topologies))
	for n := range topologies {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func buildTopology(name, input string) (*topology.Topology, error) {
	fn, ok := topologies[name]
	if !ok {
		return nil, usageError{fmt.Errorf("--topology %q: unknown (built in: %s)", name, topologyNames())}
	}
	return fn(input)
}

// configFlags are the flags that make a processor.Config.
type configFlags struct {
	file string
	sets []string
}

func (f *configFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.file, "config", "", "YAML file of settings (application.id, bootstrap.servers, ...)")
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "a setting as key=value (repeatable; kafka.* passes through to librdkafka); overrides --config")
}

func (f *configFlags) load(base processor.Config) (processor.Config, error) {
	cfg := base
	if f.file != "" {
		fileCfg, err := processor.LoadConfig(f.file)
		if err != nil {
			return cfg, err
		}
		cfg = fileCfg
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
	var name, input string
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a built-in topology as a service until SIGTERM or SIGINT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := buildTopology(name, input)
			if err != nil {
				return err
			}
			cfg, err := cf.load(processor.Config{})
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
	cmd.Flags().StringVar(&input, "input", "", "input topic, for topologies that take one (verify)")
	cf.add(cmd)
	return cmd
}

func describeCmd(g *globals) *cobra.Command {
	var name, input string
	cmd := &cobra.Command{
		Use:   "describe",
		Short: "Print a topology's sub-topologies, nodes, stores and topics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := buildTopology(name, input)
			if err != nil {
				return err
			}
			fmt.Fprint(g.stdout, topo.Describe())
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "topology", "pageviews", "built-in topology: "+topologyNames())
	cmd.Flags().StringVar(&input, "input", "input", "input topic, for topologies that take one (verify)")
	return cmd
}
