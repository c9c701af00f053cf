// Command eos-runner runs exactly-once stream-processing topologies against
// Kafka or Redpanda, and the embedded development stack.
//
//	eos-runner dev                     the example end to end on the embedded stack
//	eos-runner broker --listen ADDR    the embedded broker alone, as a process
//	eos-runner run --topology NAME     run a built-in topology as a service
//	eos-runner run -f topology.yaml    run a topology file as a service
//	eos-runner test -f FILE --input IN --expected OUT
//	eos-runner describe --topology NAME
//	eos-runner verify generate|process|check
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/internal/secret"
)

func main() {
	tuneGC()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI; its exit codes: 0 ok, 1 failure, 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "eos-runner",
		Short:         "Kafka-native exactly-once stream processor",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.setupLog()
		},
	}
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(brokerCmd(g), runCmd(g), devCmd(g), describeCmd(g), verifyCmd(g))
	root.AddCommand(registryCmd(g), schemaCmd(g), benchCmd(g), dlqCmd(g), configCmd(g), testCmd(g), resetCmd(g))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ec exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec) // the command printed its own verdict
	}
	fmt.Fprintln(stderr, "eos-runner:", secret.Scrub(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	return 1
}

// usageError makes run exit 2.
type usageError struct{ error }

// exitCode is returned by commands that choose their exit status and have
// printed their own message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

type globals struct {
	stdout, stderr      io.Writer
	logFormat, logLevel string
	log                 *slog.Logger
}

func (g *globals) setupLog() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level: %w", err)}
	}
	opts := &slog.HandlerOptions{Level: level}
	// Every handler scrubs secrets (internal/secret): a password resolved
	// from the environment or a file never reaches a log line.
	switch g.logFormat {
	case "json":
		g.log = slog.New(secret.Handler(slog.NewJSONHandler(g.stderr, opts)))
	case "text":
		g.log = slog.New(secret.Handler(slog.NewTextHandler(g.stderr, opts)))
	default:
		return usageError{fmt.Errorf("--log-format %q: want text or json", g.logFormat)}
	}
	return nil
}
