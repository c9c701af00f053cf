package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/internal/kafkasec"
	"github.com/eos-runner/eos-runner/processor"
)

// configCmd is `eos-runner config print`: the settings --config and --set
// make, secrets redacted.
func configCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the settings a --config file and --set flags make",
	}
	var cf configFlags
	print := &cobra.Command{
		Use:   "print",
		Short: "Print every effective setting with where it came from, secrets shown as [redacted]",
		Long: `Prints the settings the runner would use, defaults included, one a line:
name=value and, after "#", where the value came from: default, file
(--config), env (an EOS_RUNNER_* variable: the name upper-cased, "." as
"_", "_" as "__") or flag (--set). Later sources win: default < file < env
< flag. Secret settings (sasl.password, ssl.key.password,
basic.auth.user.info, bearer.auth.token, ...) print as [redacted]; a
${env:NAME} or ${file:PATH} reference prints as written. Every problem of
the sources is listed at once. With --check, the references are resolved
and the settings validated too (files readable, mechanism known), exiting 1
on a problem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src, err := cf.sources(processor.Config{})
			if err != nil {
				return err
			}
			w := 0
			settings := src.Config.EffectiveSettings(src.Origins)
			for _, s := range settings {
				w = max(w, len(s.Name)+1+len(s.Value))
			}
			for _, s := range settings {
				kv := s.Name + "=" + s.Value
				fmt.Fprintf(g.stdout, "%-*s  # %s\n", w, kv, s.Source)
			}
			if check, _ := cmd.Flags().GetBool("check"); check {
				if err := src.Config.Validate(); err != nil {
					return err
				}
			}
			return nil
		},
	}
	print.Flags().Bool("check", false, "also resolve references and validate")
	cf.add(print)
	cmd.AddCommand(print)
	return cmd
}

// kafkaOpts are the franz-go options for cfg's Kafka security settings
// (kafka.security.protocol, kafka.sasl.*, kafka.ssl.*), for the commands'
// own clients.
func kafkaOpts(cfg processor.Config) ([]kgo.Opt, error) {
	sec, err := cfg.KafkaSecurity()
	if err != nil {
		return nil, err
	}
	return kafkasec.FranzOpts(sec)
}
