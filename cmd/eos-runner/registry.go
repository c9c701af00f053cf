package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/internal/secret"
	"github.com/eos-runner/eos-runner/schema/registry"
)

// registryCmd is `eos-runner registry`: the embedded schema registry as a
// process, as `broker` is the embedded broker.
func registryCmd(g *globals) *cobra.Command {
	var listen, dataDir, usersFile string
	var users []string
	var tf tlsFlags
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run the embedded Confluent-compatible schema registry until SIGTERM or SIGINT",
		Long: `Serves the Confluent Schema Registry REST API (Avro only) that srclient and
Confluent's serializers speak. With --data-dir it keeps schemas, ids, versions
and compatibility settings across restarts. It prints "registry: http://HOST:PORT"
(https with TLS) on stdout once it accepts connections.

Open by default. --basic-auth-user (or --basic-auth-users-file) makes it
require HTTP basic auth, answering 401 {"error_code":401,"message":"Unauthorized"}
without it, as Confluent's does; --tls-dir or --tls-cert/--tls-key make it
speak HTTPS. A password may be a ${env:NAME} or ${file:PATH} reference.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := []registry.Option{registry.WithLogger(g.log)}
			creds := map[string]string{}
			if usersFile != "" {
				fromFile, err := registry.ReadUsers(usersFile)
				if err != nil {
					return usageError{fmt.Errorf("--basic-auth-users-file: %w", err)}
				}
				for u, p := range fromFile {
					secret.Remember(p)
					creds[u] = p
				}
			}
			for i, e := range users {
				u, p, ok := strings.Cut(e, ":")
				if !ok || u == "" {
					return usageError{fmt.Errorf("--basic-auth-user %d: want USER:PASSWORD", i+1)}
				}
				p, err := secret.Resolve("basic.auth.password", p)
				if err != nil {
					return usageError{err}
				}
				creds[u] = p
			}
			if len(creds) > 0 {
				opts = append(opts, registry.WithBasicAuth(creds))
			}
			tc, err := tf.serverConfig(g)
			if err != nil {
				return err
			}
			scheme := "http"
			if tc != nil {
				opts = append(opts, registry.WithTLS(tc))
				scheme = "https"
			}
			srv, err := registry.Open(dataDir, opts...)
			if err != nil {
				return err
			}
			defer srv.Close()
			err = srv.ListenAndServe(cmd.Context(), listen, func(addr net.Addr) {
				fmt.Fprintf(g.stdout, "registry: %s://%s\n", scheme, addr)
			})
			if err != nil {
				return err
			}
			return srv.Close()
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "host:port to listen on (port 0 picks one)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "directory persisting the registry's schemas (empty: in memory)")
	cmd.Flags().StringArrayVar(&users, "basic-auth-user", nil, "require HTTP basic auth; a user as USER:PASSWORD (repeatable)")
	cmd.Flags().StringVar(&usersFile, "basic-auth-users-file", "", "require HTTP basic auth; users from a file, one USER:PASSWORD a line (# comments)")
	tf.add(cmd)
	return cmd
}
