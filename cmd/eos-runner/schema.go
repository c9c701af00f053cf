package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/declare"
	"github.com/eos-runner/eos-runner/schema"
	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// schemaCmd is `eos-runner schema`: the compatibility checks the runner does
// at startup, offline (compat) or against a registry (check), for CI.
func schemaCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Check Avro schema compatibility, offline or against a schema registry",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("schema: want a subcommand: compat or check")}
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cmd.AddCommand(schemaCompatCmd(g), schemaCheckCmd(g))
	return cmd
}

// noArgs is cobra.NoArgs as a usage error (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return usageError{err}
	}
	return nil
}

func schemaCompatCmd(g *globals) *cobra.Command {
	var reader, writer, level, candidate string
	var existing []string
	cmd := &cobra.Command{
		Use:   "compat",
		Short: "Say whether one schema reads another's data, or a candidate fits a subject's history",
		Long: `Two forms:

  schema compat --reader R.avsc --writer W.avsc
      Can data written with W be read with R, by the Avro specification's
      resolution rules?
  schema compat --level LEVEL --existing A.avsc[,B.avsc,...] --candidate C.avsc
      May C be registered after A, B, ... (oldest first) under a subject at
      LEVEL (BACKWARD, FORWARD_TRANSITIVE, ...), as Confluent's registry decides?

Prints "compatible" or "incompatible: N problems" and every problem with its
path into the reader schema and its rule. Exit status: 0 compatible, 1
incompatible, 2 usage or schema parse error.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pairMode := reader != "" || writer != ""
			levelMode := level != "" || len(existing) > 0 || candidate != ""
			var problems []schema.Incompatibility
			switch {
			case pairMode && levelMode:
				return usageError{errors.New("schema compat: use either --reader/--writer or --level/--existing/--candidate, not both")}
			case pairMode:
				if reader == "" || writer == "" {
					return usageError{errors.New("schema compat: --reader and --writer go together")}
				}
				r, err := readSchemaFile(reader)
				if err != nil {
					return err
				}
				w, err := readSchemaFile(writer)
				if err != nil {
					return err
				}
				problems = schema.CheckCompatibility(r, w)
			case levelMode:
				if level == "" || len(existing) == 0 || candidate == "" {
					return usageError{errors.New("schema compat: --level, --existing and --candidate go together")}
				}
				lvl, err := schema.ParseLevel(level)
				if err != nil {
					return usageError{fmt.Errorf("--level: %w", err)}
				}
				var history []*schema.Schema
				for _, path := range existing {
					s, err := readSchemaFile(path)
					if err != nil {
						return err
					}
					history = append(history, s)
				}
				c, err := readSchemaFile(candidate)
				if err != nil {
					return err
				}
				problems = schema.CheckLevel(lvl, history, c)
			default:
				return usageError{errors.New("schema compat: give --reader and --writer, or --level, --existing and --candidate")}
			}
			if len(problems) == 0 {
				fmt.Fprintln(g.stdout, "compatible")
				return nil
			}
			fmt.Fprintf(g.stdout, "incompatible: %s\n", countProblems(len(problems)))
			writeProblems(g.stdout, problems)
			return exitCode(1)
		},
	}
	cmd.Flags().StringVar(&reader, "reader", "", "reader schema file (.avsc)")
	cmd.Flags().StringVar(&writer, "writer", "", "writer schema file (.avsc)")
	cmd.Flags().StringVar(&level, "level", "", "compatibility level: NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE")
	cmd.Flags().StringSliceVar(&existing, "existing", nil, "the subject's schema files, oldest first (comma-separated or repeated)")
	cmd.Flags().StringVar(&candidate, "candidate", "", "the new schema file (.avsc)")
	return cmd
}

func schemaCheckCmd(g *globals) *cobra.Command {
	var url, name, input, file string
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check a built-in topology's or a topology file's Avro sink schemas against a schema registry, registering nothing",
		Long: `For every sink of the topology whose key or value serde is Avro, checks the
sink's schema against its subject (<topic>-key or <topic>-value) at the
subject's compatibility level, as the runner does at startup, but never
registers. Prints one line per subject: registered (with its id), compatible
but not registered yet (OK to register), or incompatible with every problem.
Internal topics are named with application.id from --config/--set. Exit
status: 0 all OK, 1 any incompatible or unreachable, 2 usage error.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			decl, base, err := loadDeclaredBase(g, file)
			if err != nil {
				return err
			}
			cfg, err := cf.load(base)
			if err != nil {
				return err
			}
			if url == "" && cfg.SchemaRegistry.URL == "" {
				return usageError{errors.New("schema check: --registry URL (or schema.registry.url in --config/--set) is required")}
			}
			tf := &topoFlags{input: input, registryURL: url, registry: cfg.SchemaRegistry}
			client, err := tf.registryClient()
			if err != nil {
				return err
			}
			var topo *topology.Topology
			if decl != nil {
				topo, err = declare.Compile(decl, declare.Options{Registry: client})
			} else {
				topo, err = tf.build(name)
			}
			if err != nil {
				return err
			}
			ok, err := checkTopologySchemas(cmd.Context(), g.stdout, client, topo, cfg.ApplicationID)
			if err != nil {
				return err
			}
			if !ok {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "registry", "", "schema registry URL, e.g. http://127.0.0.1:8081")
	cmd.Flags().StringVar(&name, "topology", "pageviews", "built-in topology: "+topologyNames())
	cmd.Flags().StringVar(&input, "input", "input", "input topic, for topologies that take one (verify)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file (YAML) instead of a built-in topology")
	cf.add(cmd)
	return cmd
}

// avroSink is one Avro serde of a sink: what `schema check` checks.
type avroSink struct {
	node  *topology.Node
	topic string
	serde *serde.Avro
}

// avroSinks lists the Avro key and value serdes of topo's sinks, in node
// order, key before value, with their full topic names. An internal topic
// needs applicationID; its absence is a usage error.
func avroSinks(topo *topology.Topology, applicationID string) ([]avroSink, error) {
	var out []avroSink
	for _, n := range topo.Nodes {
		if n.Kind != topology.SinkNode || len(n.Topics) == 0 {
			continue
		}
		for _, s := range []serde.Serde{n.KeySerde, n.ValueSerde} {
			a, ok := s.(*serde.Avro)
			if !ok {
				continue
			}
			if n.Internal && applicationID == "" {
				return nil, usageError{fmt.Errorf("sink %s writes internal topic %q, named after application.id: give it with --set application.id=ID or --config", n.Name, n.Topics[0])}
			}
			out = append(out, avroSink{node: n, topic: topology.TopicName(applicationID, n.Topics[0], n.Internal), serde: a})
		}
	}
	return out, nil
}

// checkTopologySchemas checks every Avro sink serde of topo against the
// registry without registering, printing one line per subject (and the
// problems under an incompatible one). It reports whether all may be written.
// An error is returned only for a usage problem; a registry that cannot be
// reached is reported per subject and makes the result false.
func checkTopologySchemas(ctx context.Context, w io.Writer, client *registry.Client, topo *topology.Topology, applicationID string) (bool, error) {
	sinks, err := avroSinks(topo, applicationID)
	if err != nil {
		return false, err
	}
	if len(sinks) == 0 {
		fmt.Fprintln(w, "no Avro sinks: nothing to check")
		return true, nil
	}
	allOK := true
	for _, s := range sinks {
		subject := s.serde.Subject(s.topic)
		id, err := client.EnsureSchema(ctx, subject, s.serde.Schema(), false)
		var ie *schema.IncompatibilityError
		switch {
		case err == nil:
			fmt.Fprintf(w, "%s: ok: registered as id %d (sink %s)\n", subject, id, s.node.Name)
		case errors.Is(err, registry.ErrNotRegistered):
			fmt.Fprintf(w, "%s: ok: compatible, not registered yet: OK to register (sink %s)\n", subject, s.node.Name)
		case errors.As(err, &ie):
			allOK = false
			fmt.Fprintf(w, "%s: incompatible at level %s: %s (sink %s)\n", subject, ie.Level, countProblems(len(ie.Problems)), s.node.Name)
			writeProblems(w, ie.Problems)
		default:
			allOK = false
			fmt.Fprintf(w, "%s: error: %v (sink %s)\n", subject, strings.TrimSpace(err.Error()), s.node.Name)
		}
	}
	return allOK, nil
}

// readSchemaFile reads and parses an .avsc file; failures are usage errors
// (exit 2), as a schema that does not parse cannot be judged.
func readSchemaFile(path string) (*schema.Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{err}
	}
	s, err := schema.Parse(string(b))
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", path, err)}
	}
	return s, nil
}

func countProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

func writeProblems(w io.Writer, ps []schema.Incompatibility) {
	for _, p := range ps {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
