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
		Short: "Print every setting, name=value, secrets shown as [redacted]",
		Long: `Prints the settings of --config and --set, one name=value a line, as the
runner would take them. Secret settings (sasl.password, ssl.key.password,
basic.auth.user.info, bearer.auth.token, ...) print as [redacted]; a
${env:NAME} or ${file:PATH} reference prints as written. With --check, the
references are resolved and the settings validated too (files readable,
mechanism known), exiting 1 on a problem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(processor.Config{})
			if err != nil {
				return err
			}
			fmt.Fprint(g.stdout, cfg.String())
			if check, _ := cmd.Flags().GetBool("check"); check {
				if err := cfg.Validate(); err != nil {
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
