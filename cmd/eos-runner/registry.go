package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/schema/registry"
)

// registryCmd is `eos-runner registry`: the embedded schema registry as a
// process, as `broker` is the embedded broker.
func registryCmd(g *globals) *cobra.Command {
	var listen, dataDir string
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run the embedded Confluent-compatible schema registry until SIGTERM or SIGINT",
		Long: `Serves the Confluent Schema Registry REST API (Avro only) that srclient and
Confluent's serializers speak. With --data-dir it keeps schemas, ids, versions
and compatibility settings across restarts. It prints "registry: http://HOST:PORT"
on stdout once it accepts connections.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := registry.Open(dataDir, registry.WithLogger(g.log))
			if err != nil {
				return err
			}
			defer srv.Close()
			err = srv.ListenAndServe(cmd.Context(), listen, func(addr net.Addr) {
				fmt.Fprintf(g.stdout, "registry: http://%s\n", addr)
			})
			if err != nil {
				return err
			}
			return srv.Close()
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "host:port to listen on (port 0 picks one)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "directory persisting the registry's schemas (empty: in memory)")
	return cmd
}
