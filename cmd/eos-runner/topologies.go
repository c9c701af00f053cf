package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/examples/enrichment"
	"github.com/eos-runner/eos-runner/examples/pageviews"
	"github.com/eos-runner/eos-runner/internal/bench"
	"github.com/eos-runner/eos-runner/internal/verify"
	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/topology"
)

// topoOptions is what a built-in topology may need to be built.
type topoOptions struct {
	// Input is the input topic, for topologies that take one.
	Input string
	// Registry is the schema registry client, nil without --registry.
	Registry *registry.Client
	// AutoRegister lets Avro sinks register their schemas
	// (auto.register.schemas); off by default outside `dev`.
	AutoRegister bool
}

// builtins are the topologies `run`, `describe` and `schema check` know. A
// user's own topology is a Go program calling processor.New (see examples/).
func builtins() map[string]func(o topoOptions) (*topology.Topology, error) {
	return map[string]func(o topoOptions) (*topology.Topology, error){
		"pageviews": func(o topoOptions) (*topology.Topology, error) { return pageviews.Topology(o.Registry, o.AutoRegister) },
		// Orders enriched with customers (a table) and matched with payments
		// (a windowed join): topics customers, orders, payments.
		"enrichment": func(topoOptions) (*topology.Topology, error) { return enrichment.Topology() },
		"verify":     func(o topoOptions) (*topology.Topology, error) { return verify.Topology(o.Input) },
		// verify with a stream-table join with <input>-ref and a windowed self-join.
		"verify-join": func(o topoOptions) (*topology.Topology, error) { return verify.JoinTopology(o.Input) },
		// The benchmark's topologies (eos-runner bench): filter + mapValues, and
		// count per key with its changelog; outputs <input>-stateless and <input>-counts.
		"bench-stateless": func(o topoOptions) (*topology.Topology, error) { return bench.StatelessTopology(o.Input) },
		"bench-stateful":  func(o topoOptions) (*topology.Topology, error) { return bench.StatefulTopology(o.Input) },
		// A count per key per tumbling 1-minute window, emitted on update: <input>-windowed.
		"bench-windowed": func(o topoOptions) (*topology.Topology, error) { return bench.WindowedTopology(o.Input) },
		// Dedup by record key with a 1-hour TTL, the kept records unchanged: <input>-dedup.
		"bench-dedup": func(o topoOptions) (*topology.Topology, error) { return bench.DedupTopology(o.Input) },
		// The input left-joined with the table read from <input>-table: <input>-joined.
		"bench-join": func(o topoOptions) (*topology.Topology, error) { return bench.JoinTopology(o.Input) },
	}
}

func topologyNames() string {
	var names []string
	for n := range builtins() {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// topoFlags are the flags that select and build a built-in topology.
type topoFlags struct {
	input        string
	registryURL  string
	autoRegister bool
	// registry is the schema registry's client settings from --config/--set
	// (credentials, TLS); --registry overrides its URL.
	registry registry.ClientConfig
}

func (f *topoFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.input, "input", "eos-input", "input topic, for topologies that take one (verify)")
	cmd.Flags().StringVar(&f.registryURL, "registry", "", "schema registry URL, for topologies with Avro serdes")
	cmd.Flags().BoolVar(&f.autoRegister, "auto-register", false, "let sinks register their schemas (auto.register.schemas)")
}

func (f *topoFlags) build(name string) (*topology.Topology, error) {
	fn, ok := builtins()[name]
	if !ok {
		return nil, usageError{fmt.Errorf("--topology %q: unknown (built in: %s)", name, topologyNames())}
	}
	o := topoOptions{Input: f.input, AutoRegister: f.autoRegister}
	var err error
	if o.Registry, err = f.registryClient(); err != nil {
		return nil, err
	}
	return fn(o)
}

// registryClient returns the schema registry client of the --registry flag
// and the config's schema.registry.* settings, after one request that
// proves the URL, the certificate and the credentials (registry.Client.Ping);
// nil without a URL.
func (f *topoFlags) registryClient() (*registry.Client, error) {
	rc := f.registry
	if f.registryURL != "" {
		rc.URL = f.registryURL
	}
	if rc.URL == "" {
		return nil, nil
	}
	c, err := registry.NewClientFromConfig(rc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		return nil, err
	}
	return c, nil
}
