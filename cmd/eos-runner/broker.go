package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eos-runner/eos-runner/internal/certs"
	"github.com/eos-runner/eos-runner/internal/devstack"
	"github.com/eos-runner/eos-runner/internal/secret"
)

func brokerCmd(g *globals) *cobra.Command {
	var cfg devstack.BrokerConfig
	var tf tlsFlags
	var saslUsers []string
	var saslFile string
	var superusers []string
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka-protocol broker (franz-go kfake) until SIGTERM or SIGINT",
		Long: `Runs a one-node Kafka-protocol broker. With --data-dir it keeps topics,
records, committed offsets and transaction state across restarts. It prints
"bootstrap: HOST:PORT" on stdout once it accepts connections.

Open by default. --sasl-user (or --sasl-users-file) makes it require SASL
(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); --tls-dir or --tls-cert/--tls-key make
it speak TLS. With both, clients use security.protocol=SASL_SSL. A password
may be a ${env:NAME} or ${file:PATH} reference, so it need not be on the
command line.

--acl makes it enforce Kafka ACLs: every SASL user except the --superuser ones
is refused everything until a superuser grants it ACLs (kafka-acls.sh, or any
admin client's CreateAcls). docs/security.md lists the ACLs a runner needs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = g.log
			users, err := parseSASLUsers(saslUsers, saslFile)
			if err != nil {
				return usageError{err}
			}
			cfg.SASLUsers = users
			if len(superusers) > 0 && !cfg.ACLs {
				return usageError{fmt.Errorf("--superuser needs --acl")}
			}
			if cfg.ACLs && len(users) == 0 {
				return usageError{fmt.Errorf("--acl needs SASL users (--sasl-user or --sasl-users-file)")}
			}
			if cfg.ACLs && len(superusers) == 0 {
				return usageError{fmt.Errorf("--acl needs a --superuser to grant ACLs")}
			}
			cfg.Superusers = superusers
			if cfg.TLS, err = tf.serverConfig(g); err != nil {
				return err
			}
			b, err := devstack.StartBroker(cfg)
			if err != nil {
				return err
			}
			g.log.Info("broker listening", "addr", b.Addr(), "data_dir", cfg.DataDir, "security.protocol", cfg.Protocol())
			fmt.Fprintf(g.stdout, "bootstrap: %s\n", b.Addr())
			b.Run(cmd.Context())
			g.log.Info("broker stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "host:port to listen on (port 0 picks one)")
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", "", "directory persisting the broker's state (empty: in memory)")
	cmd.Flags().IntVar(&cfg.Partitions, "partitions", 4, "default partition count of auto-created topics")
	cmd.Flags().StringArrayVar(&saslUsers, "sasl-user", nil, "require SASL; a user as MECHANISM:USER:PASSWORD, MECHANISM one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (repeatable)")
	cmd.Flags().StringVar(&saslFile, "sasl-users-file", "", "require SASL; users from a file, one MECHANISM:USER:PASSWORD a line (# comments)")
	cmd.Flags().BoolVar(&cfg.ACLs, "acl", false, "enforce Kafka ACLs: SASL users other than --superuser ones may do only what ACLs allow (none at first)")
	cmd.Flags().StringArrayVar(&superusers, "superuser", nil, "with --acl, a SASL user (by name) that bypasses ACLs and can grant them (repeatable)")
	tf.add(cmd)
	return cmd
}

// parseSASLUsers reads MECHANISM:USER:PASSWORD entries from flags and a file.
func parseSASLUsers(flags []string, file string) ([]devstack.SASLUser, error) {
	entries := append([]string(nil), flags...)
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--sasl-users-file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
				entries = append(entries, l)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("--sasl-users-file: %w", err)
		}
	}
	var users []devstack.SASLUser
	for i, e := range entries {
		parts := strings.SplitN(e, ":", 3)
		if len(parts) != 3 || parts[1] == "" {
			// The entry is not shown: it may hold a password.
			return nil, fmt.Errorf("SASL user entry %d: want MECHANISM:USER:PASSWORD", i+1)
		}
		pass, err := secret.Resolve("sasl.password", parts[2])
		if err != nil {
			return nil, fmt.Errorf("SASL user %s: %w", parts[1], err)
		}
		users = append(users, devstack.SASLUser{Mechanism: strings.ToUpper(parts[0]), User: parts[1], Password: pass})
	}
	return users, nil
}

// tlsFlags make a listener's TLS config: generated into a directory for
// tests, or given files.
type tlsFlags struct {
	dir, cert, key, clientCA string
}

func (f *tlsFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dir, "tls-dir", "", "speak TLS with a certificate from this directory, generating a CA, a server and a client certificate there if missing (ca.pem, server.pem, server-key.pem, client.pem, client-key.pem); clients trust ca.pem")
	cmd.Flags().StringVar(&f.cert, "tls-cert", "", "speak TLS with this server certificate (PEM; with --tls-key)")
	cmd.Flags().StringVar(&f.key, "tls-key", "", "the server certificate's key (PEM)")
	cmd.Flags().StringVar(&f.clientCA, "tls-client-ca", "", "require client certificates signed by this CA (PEM; mutual TLS)")
}

// serverConfig is nil without TLS flags.
func (f *tlsFlags) serverConfig(g *globals) (*tls.Config, error) {
	cert, key := f.cert, f.key
	switch {
	case f.dir != "" && (cert != "" || key != ""):
		return nil, usageError{fmt.Errorf("--tls-dir and --tls-cert/--tls-key: give one or the other")}
	case f.dir != "":
		files, err := certs.Generate(f.dir)
		if err != nil {
			return nil, fmt.Errorf("--tls-dir: %w", err)
		}
		cert, key = files.Server, files.ServerKey
		g.log.Info("tls certificates", "dir", f.dir, "ca", files.CA)
	case (cert == "") != (key == ""):
		return nil, usageError{fmt.Errorf("--tls-cert and --tls-key: give both")}
	case cert == "":
		if f.clientCA != "" {
			return nil, usageError{fmt.Errorf("--tls-client-ca needs --tls-dir or --tls-cert/--tls-key")}
		}
		return nil, nil
	}
	return certs.ServerConfig(cert, key, f.clientCA)
}
