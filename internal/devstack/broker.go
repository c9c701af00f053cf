// Package devstack runs the embedded development stack: franz-go's kfake
// Kafka-protocol broker with on-disk persistence (and, with package
// schema/registry, the embedded schema registry). It is what `eos-runner
// broker` and `eos-runner dev` start, and what the integration tests talk to
// when no external cluster is configured.
package devstack

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerConfig configures an embedded broker.
type BrokerConfig struct {
	// Listen is host:port; port 0 picks a free one.
	Listen string
	// DataDir keeps topics, records, committed offsets and transaction state
	// across restarts; empty keeps everything in memory.
	DataDir string
	// Partitions is the default partition count of auto-created topics (default 4).
	Partitions int
	Logger     *slog.Logger
	// SASLUsers, when any, make the broker require SASL authentication
	// (SASL_PLAINTEXT, or SASL_SSL with TLS); each user may log in with its
	// mechanism only. Without ACLs they are all superusers.
	SASLUsers []SASLUser
	// ACLs, with SASLUsers, make the broker enforce Kafka ACLs as Kafka's
	// StandardAuthorizer does: a request is allowed only by an ALLOW ACL
	// on its resource (or when its user is a superuser), and there are
	// none at first. Superusers (users of SASLUsers, at least one) bypass
	// ACLs and create the others with CreateAcls (kafka-acls.sh, kadm).
	ACLs       bool
	Superusers []string
	// TLS, when set, makes the listener speak TLS (SSL, or SASL_SSL with
	// SASLUsers); with ClientCAs and RequireAndVerifyClientCert, clients
	// need a certificate.
	TLS *tls.Config
}

// SASLUser is one SASL login of the broker.
type SASLUser struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism, User, Password string
}

// Protocol is the security.protocol a client needs for cfg's broker.
func (cfg BrokerConfig) Protocol() string {
	switch {
	case cfg.TLS != nil && len(cfg.SASLUsers) > 0:
		return "SASL_SSL"
	case cfg.TLS != nil:
		return "SSL"
	case len(cfg.SASLUsers) > 0:
		return "SASL_PLAINTEXT"
	}
	return "PLAINTEXT"
}

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	addr string
}

// StartBroker starts a one-node kfake cluster and returns once it accepts
// connections.
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker --listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("broker --listen %q: bad port: %w", cfg.Listen, err)
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 4
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, portStr))
		}),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.AllowAutoTopicCreation(),
		// Tests and dev use short session timeouts so a killed runner's
		// partitions move quickly.
		kfake.GroupMinSessionTimeout(500_000_000),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	aclOpts, err := cfg.aclOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts, aclOpts...)
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if cfg.Logger != nil {
		opts = append(opts, kfake.WithLogger(&kfakeLogger{l: cfg.Logger}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, fmt.Errorf("start broker: no listener")
	}
	return &Broker{c: c, addr: addrs[0]}, nil
}

// aclOpts are the SASL users' options and, with ACLs, their enforcement.
func (cfg BrokerConfig) aclOpts() ([]kfake.Opt, error) {
	if cfg.ACLs && len(cfg.SASLUsers) == 0 {
		return nil, fmt.Errorf("broker: ACLs need SASL users (an anonymous client has no principal to grant to)")
	}
	if !cfg.ACLs && len(cfg.Superusers) > 0 {
		return nil, fmt.Errorf("broker: superusers without ACLs: every user is one")
	}
	super := map[string]bool{}
	for _, u := range cfg.Superusers {
		super[u] = true
	}
	if len(cfg.SASLUsers) == 0 {
		return nil, nil
	}
	opts := []kfake.Opt{kfake.EnableSASL()}
	if cfg.ACLs {
		opts = append(opts, kfake.EnableACLs())
	}
	for _, u := range cfg.SASLUsers {
		switch u.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return nil, fmt.Errorf("broker: SASL user %q: mechanism %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", u.User, u.Mechanism)
		}
		if cfg.ACLs && !super[u.User] {
			opts = append(opts, kfake.User(u.Mechanism, u.User, u.Password))
			continue
		}
		delete(super, u.User)
		opts = append(opts, kfake.Superuser(u.Mechanism, u.User, u.Password))
	}
	for u := range super {
		return nil, fmt.Errorf("broker: superuser %q is not a SASL user", u)
	}
	if cfg.ACLs && len(cfg.Superusers) == 0 {
		return nil, fmt.Errorf("broker: ACLs need a superuser, or no one can grant any")
	}
	return opts, nil
}

// Addr is the bootstrap address.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, persisting its state when it has a data dir.
func (b *Broker) Close() { b.c.Close() }

// Run serves until ctx is done, then closes.
func (b *Broker) Run(ctx context.Context) {
	<-ctx.Done()
	b.Close()
}

// kfakeLogger adapts kfake's logger to slog, at warn level and above.
type kfakeLogger struct{ l *slog.Logger }

func (k *kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		k.l.Error("broker: " + fmt.Sprintf(msg, args...))
	case kfake.LogLevelWarn:
		k.l.Warn("broker: " + fmt.Sprintf(msg, args...))
	}
}
