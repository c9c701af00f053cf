package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/internal/devstack"
)

func brokerCmd(g *globals) *cobra.Command {
	var cfg devstack.BrokerConfig
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka-protocol broker (franz-go kfake) until SIGTERM or SIGINT",
		Long: `Runs a one-node Kafka-protocol broker. With --data-dir it keeps topics,
records, committed offsets and transaction state across restarts. It prints
"bootstrap: HOST:PORT" on stdout once it accepts connections.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = g.log
			b, err := devstack.StartBroker(cfg)
			if err != nil {
				return err
			}
			g.log.Info("broker listening", "addr", b.Addr(), "data_dir", cfg.DataDir)
			fmt.Fprintf(g.stdout, "bootstrap: %s\n", b.Addr())
			b.Run(cmd.Context())
			g.log.Info("broker stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "host:port to listen on (port 0 picks one)")
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", "", "directory persisting the broker's state (empty: in memory)")
	cmd.Flags().IntVar(&cfg.Partitions, "partitions", 4, "default partition count of auto-created topics")
	return cmd
}
