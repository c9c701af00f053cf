package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/declare"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/topology"
)

// Declared topologies (package declare): `run -f`, `describe -f`, `schema
// check -f` and `test -f` take a topology file instead of --topology.

// loadDeclared loads a topology file; its problems are printed, every one
// with file:line:column, and make the command exit 1 before anything
// connects anywhere.
func loadDeclared(g *globals, path string) (*declare.File, error) {
	f, err := declare.Load(path)
	var list declare.Errors
	if errors.As(err, &list) {
		for _, p := range list {
			fmt.Fprintln(g.stderr, p)
		}
		fmt.Fprintf(g.stderr, "%s: %d problems\n", path, len(list))
		return nil, exitCode(1)
	}
	if err != nil {
		return nil, usageError{err}
	}
	return f, nil
}

// loadDeclaredBase loads a topology file (when path is set) and returns it
// with the base configuration its settings make; without a file, a zero
// Config and no file.
func loadDeclaredBase(g *globals, path string) (*declare.File, processor.Config, error) {
	if path == "" {
		return nil, processor.Config{}, nil
	}
	f, err := loadDeclared(g, path)
	if err != nil {
		return nil, processor.Config{}, err
	}
	base, err := declaredConfig(f)
	if err != nil {
		return nil, base, usageError{err}
	}
	return f, base, nil
}

// declaredConfig is the processor.Config of a file: its application.id and
// settings; --config, EOS_RUNNER_* environment variables and --set apply
// over it (configFlags.sources).
func declaredConfig(f *declare.File) (processor.Config, error) {
	var cfg processor.Config
	cfg.ApplicationID = f.AppID
	for _, s := range f.Settings {
		if err := cfg.Set(s.Key, s.Value); err != nil {
			return cfg, fmt.Errorf("%s: %w", s.Pos, err)
		}
	}
	return cfg, nil
}

// compileDeclared compiles a loaded file with the registry of --registry
// and the settings.
func compileDeclared(f *declare.File, to *topoFlags) (*topology.Topology, error) {
	reg, err := to.registryClient()
	if err != nil {
		return nil, err
	}
	return declare.Compile(f, declare.Options{Registry: reg, AutoRegister: to.autoRegister})
}

func printDescription(g *globals, topo *topology.Topology, format string) error {
	switch format {
	case "", "text":
		fmt.Fprint(g.stdout, topo.DescribeWithDiagram())
	case "mermaid":
		fmt.Fprint(g.stdout, topo.Diagram(topology.Mermaid))
	case "dot":
		fmt.Fprint(g.stdout, topo.Diagram(topology.DOT))
	default:
		return usageError{fmt.Errorf("--format %q: want text (with a Mermaid diagram), mermaid or dot", format)}
	}
	return nil
}

// testCmd is `eos-runner test`: a declared topology on the test driver.
func testCmd(g *globals) *cobra.Command {
	var file, input, expected string
	var update bool
	cmd := &cobra.Command{
		Use:   "test -f FILE --input IN --expected OUT",
		Short: "Run a topology file on the test driver (no broker) and compare its outputs with the expected ones",
		Long: `Loads FILE, runs its topology on the test driver (the runner's own record path,
no broker; Avro through an in-memory schema registry), pipes the records of
--input in order, and compares every output topic's records (sinks and the
dead-letter topic), in order, with --expected: key, value, and, where the
expected record gives them, timestamp, window and error.

Both files are JSON lines:
  {"topic": "orders", "key": "o1", "value": {"total": 3}, "timestamp": 1000, "headers": {"h": "v"}}
Expected records may give "window": {"start": ms, "end": ms} for windowed keys
and "error": a text the dead-letter reason must contain.

Prints PASS, or FAIL and a diff. Exit status: 0 match, 1 mismatch or a
problem in the file, 2 usage error. --update writes the outputs to --expected
instead (review the diff).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" || input == "" || expected == "" {
				return usageError{errors.New("test: -f FILE, --input and --expected are required")}
			}
			f, err := loadDeclared(g, file)
			if err != nil {
				return err
			}
			in, err := declare.ReadTestRecords(input)
			if err != nil {
				return usageError{err}
			}
			var want []declare.TestRecord
			if !update {
				if want, err = declare.ReadTestRecords(expected); err != nil {
					return usageError{err}
				}
			}
			res, err := declare.RunTest(f, in, want)
			if err != nil {
				return err
			}
			if update {
				var buf bytes.Buffer
				if err := declare.WriteTestRecords(&buf, res.Actual); err != nil {
					return err
				}
				if err := os.WriteFile(expected, buf.Bytes(), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "wrote %d records to %s\n", len(res.Actual), expected)
				return nil
			}
			declare.WriteTestReport(g.stdout, file, res)
			if !res.Passed {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file (YAML)")
	cmd.Flags().StringVar(&input, "input", "", "input records (JSON lines)")
	cmd.Flags().StringVar(&expected, "expected", "", "expected output records (JSON lines)")
	cmd.Flags().BoolVar(&update, "update", false, "write the outputs to --expected instead of comparing")
	return cmd
}
