package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/internal/kafkasec"
	"github.com/eos-runner/eos-runner/internal/verify"
)

// The ACL stack: `eos-runner broker --acl` requiring SASL/SCRAM-SHA-256,
// with two users: "admin", a superuser that creates the topics, grants the
// ACLs and generates and checks the workload, and "app", the runner's
// user, which may do only what the ACLs of docs/security.md allow.
const (
	aclAdminPW = "acl-admin-pw-51c0e2"
	aclAppPW   = "acl-app-pw-0b7d94"
	aclApp     = "User:app"
)

type aclStack struct {
	brokers   string
	appConfig string // the runner's config file: user app
	admin     *kafka
	adminOpts []kgo.Opt
}

func startACLStack(t *testing.T) *aclStack {
	t.Helper()
	if externalBrokers() != "" {
		t.Skip("the ACL stack is the embedded one")
	}
	t.Setenv("EOS_IT_ACL_ADMIN_PW", aclAdminPW)
	t.Setenv("EOS_IT_ACL_APP_PW", aclAppPW)
	dir := t.TempDir()
	s := &aclStack{}
	s.brokers = startProc(t, "broker", "bootstrap: ", brokerBinary, "broker", "--listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "broker"), "--acl", "--superuser", "admin",
		"--sasl-user", "SCRAM-SHA-256:admin:${env:EOS_IT_ACL_ADMIN_PW}",
		"--sasl-user", "SCRAM-SHA-256:app:${env:EOS_IT_ACL_APP_PW}")
	s.appConfig = filepath.Join(dir, "app.yaml")
	write(t, s.appConfig, `kafka:
  security.protocol: SASL_PLAINTEXT
  sasl.mechanism: SCRAM-SHA-256
  sasl.username: app
  sasl.password: ${env:EOS_IT_ACL_APP_PW}
`)
	var err error
	s.adminOpts, err = kafkasec.FranzOpts(kafkasec.Settings{"security.protocol": "SASL_PLAINTEXT",
		"sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "admin", "sasl.password": aclAdminPW})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(s.adminOpts, kgo.SeedBrokers(s.brokers))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	s.admin = &kafka{cl: cl, adm: kadm.NewClient(cl)}
	return s
}

// aclGrant is one ACL binding of docs/security.md for the verify workload
// (application.id <input>-verify, instance id a, no repartition, table
// source, global table or DLQ topic outside the application's prefix).
type aclGrant struct {
	name string // the binding, as docs/security.md writes it
	b    *kadm.ACLBuilder
}

func q(s string) string { return fmt.Sprintf("%q", s) }

func runnerACLs(input, instance string) []aclGrant {
	app := input + "-verify"
	outputs := append(verify.OutputTopics(input), verify.WindowedOutputTopic(input))
	prefixed := func(op kadm.ACLOperation) aclGrant {
		return aclGrant{fmt.Sprintf("topic prefix %s- %s", app, op),
			kadm.NewACLs().Topics(app + "-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(op)}
	}
	grants := []aclGrant{
		{"group " + app + " READ", kadm.NewACLs().Groups(app).Operations(kadm.OpRead)},
		{"transactional id " + app + "-" + instance + " WRITE", kadm.NewACLs().TransactionalIDs(app + "-" + instance).Operations(kadm.OpWrite)},
		{"topic " + input + " READ", kadm.NewACLs().Topics(input).Operations(kadm.OpRead)},
		{"output topics WRITE", kadm.NewACLs().Topics(outputs...).Operations(kadm.OpWrite)},
		prefixed(kadm.OpCreate),
		prefixed(kadm.OpRead),
		prefixed(kadm.OpWrite),
		prefixed(kadm.OpDescribeConfigs),
	}
	for i := range grants {
		b := grants[i].b.Allow(aclApp).AllowHosts("*")
		if !strings.HasPrefix(grants[i].name, "topic prefix ") {
			b.ResourcePatternType(kadm.ACLPatternLiteral)
		}
	}
	return grants
}

// grant creates the ACLs, as the superuser.
func (s *aclStack) grant(t *testing.T, grants []aclGrant) {
	t.Helper()
	for _, g := range grants {
		res, err := s.admin.adm.CreateACLs(context.Background(), g.b)
		if err != nil {
			t.Fatalf("create ACL %s: %v", g.name, err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create ACL %s: %v", g.name, r.Err)
			}
		}
	}
}

// workload generates the input and creates the output topics, as the
// superuser: the runner's user needs no CREATE outside its prefix.
func (s *aclStack) workload(t *testing.T, input string, records int) {
	t.Helper()
	ctx := context.Background()
	if _, err := verify.Generate(ctx, verify.GenerateConfig{Brokers: []string{s.brokers}, ClientOpts: s.adminOpts,
		Topic: input, Records: records, Keys: 500, Partitions: 4, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	outputs := append(verify.OutputTopics(input), verify.WindowedOutputTopic(input))
	if _, err := s.admin.adm.CreateTopics(ctx, 4, 1, nil, outputs...); err != nil {
		t.Fatal(err)
	}
}

// TestACLVerifyExactlyOnce: the verify workload against the broker
// enforcing ACLs, the runner's user granted exactly runnerACLs; exactly
// once is checked.
func TestACLVerifyExactlyOnce(t *testing.T) {
	const records = 10_000
	s := startACLStack(t)
	input := uniqueTopic("acl")
	s.workload(t, input, records)
	s.grant(t, runnerACLs(input, "a"))

	ctx := context.Background()
	start := time.Now()
	r := startRunner(t, append(processArgs(s.brokers, input, "a", t.TempDir(), 100*time.Millisecond), "--config", s.appConfig)...)
	waitFor(t, 3*time.Minute, "all input committed", func() bool { return s.admin.committed(ctx, input+"-verify", input) == records })
	t.Logf("processed %d records exactly once with least-privilege ACLs in %v", records, time.Since(start).Round(time.Millisecond))
	if err := r.stop(); err != nil {
		t.Fatalf("runner exit: %v", err)
	}
	// A restart restores every store from its changelog (describing its
	// configs) and validates the existing changelogs' configs.
	r = startRunner(t, append(processArgs(s.brokers, input, "a", t.TempDir(), 100*time.Millisecond), "--config", s.appConfig)...)
	waitFor(t, time.Minute, "the restarted runner's tasks to restore", func() bool { return len(r.find("task running")) == 4 })
	if err := r.stop(); err != nil {
		t.Fatalf("restarted runner exit: %v", err)
	}
	rep, err := verify.Check(ctx, verify.CheckConfig{Brokers: []string{s.brokers}, ClientOpts: s.adminOpts, Input: input, Group: input + "-verify"})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Verdict())
	if !rep.OK {
		t.Fatalf("not exactly once: %v", rep.Violations)
	}
}

// TestACLMissing: for each of a few ACLs, the runner granted all the others
// stops within a bounded time, with one error naming the resource and the
// ACL it lacks.
func TestACLMissing(t *testing.T) {
	s := startACLStack(t)
	for _, c := range []struct {
		name         string
		kind, op     string // the grant left out: its name's prefix and suffix
		describeOnly bool   // grant DESCRIBE in its place
		wants        func(input string) []string
	}{
		{"group READ", "group ", " READ", false, func(in string) []string {
			return []string{"GROUP_AUTHORIZATION_FAILED", "ALLOW READ on group " + q(in+"-verify")}
		}},
		{"transactional id WRITE", "transactional id ", " WRITE", false, func(in string) []string {
			return []string{"TRANSACTIONAL_ID_AUTHORIZATION_FAILED", "ALLOW WRITE on transactional id " + q(in+"-verify-a")}
		}},
		{"input READ", "topic acl-", " READ", false, func(in string) []string {
			return []string{"TOPIC_AUTHORIZATION_FAILED", "ALLOW READ on topic " + q(in)}
		}},
		// Still visible (DESCRIBE), so the runner does not try to create
		// them: the WRITE alone is missing.
		{"output WRITE", "output topics", " WRITE", true, func(in string) []string {
			return []string{"TOPIC_AUTHORIZATION_FAILED", `ALLOW WRITE on topic "` + in + "-"}
		}},
		{"internal CREATE", "topic prefix ", " CREATE", false, func(in string) []string {
			return []string{"TOPIC_AUTHORIZATION_FAILED", `ALLOW CREATE on topic "` + in + "-verify-", "prefixed " + q(in+"-verify-")}
		}},
		{"internal WRITE", "topic prefix ", " WRITE", false, func(in string) []string {
			return []string{"TOPIC_AUTHORIZATION_FAILED", `ALLOW WRITE on topic "` + in + "-verify-", "prefixed " + q(in+"-verify-")}
		}},
		{"internal DESCRIBE_CONFIGS", "topic prefix ", " DESCRIBE_CONFIGS", false, func(in string) []string {
			return []string{"TOPIC_AUTHORIZATION_FAILED", `ALLOW DESCRIBE_CONFIGS on topic "` + in + "-verify-", "prefixed " + q(in+"-verify-")}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			input := uniqueTopic("acl")
			s.workload(t, input, 200)
			var grants []aclGrant
			removed := ""
			for _, g := range runnerACLs(input, "a") {
				if removed == "" && strings.HasPrefix(g.name, c.kind) && strings.HasSuffix(g.name, c.op) {
					removed = g.name
					if c.describeOnly {
						g.b.Operations(kadm.OpDescribe)
						grants = append(grants, g)
					}
					continue
				}
				grants = append(grants, g)
			}
			if removed == "" {
				t.Fatalf("no grant %s...%s", c.kind, c.op)
			}
			t.Logf("without: %s", removed)
			s.grant(t, grants)
			args := append(processArgs(s.brokers, input, "a", t.TempDir(), 100*time.Millisecond), "--config", s.appConfig)
			out, err, took := cli(t, 2*time.Minute, args...)
			checkClearError(t, out, err, took, c.wants(input))
		})
	}
}

// TestACLRevokedWhileRunning: the output topics' WRITE is revoked from a
// running runner. librdkafka reports the refusal only in its log (the
// records fail with "Erroneous state") and every transaction aborts; after
// the aborts in a row that stop it, the runner names the missing ACL.
func TestACLRevokedWhileRunning(t *testing.T) {
	s := startACLStack(t)
	input := uniqueTopic("acl")
	s.workload(t, input, 200)
	s.grant(t, runnerACLs(input, "a"))
	r := startRunner(t, append(processArgs(s.brokers, input, "a", t.TempDir(), 100*time.Millisecond), "--config", s.appConfig)...)
	ctx := context.Background()
	waitFor(t, time.Minute, "the first records committed", func() bool { return s.admin.committed(ctx, input+"-verify", input) == 200 })

	outputs := append(verify.OutputTopics(input), verify.WindowedOutputTopic(input))
	if _, err := s.admin.adm.DeleteACLs(ctx, kadm.NewACLs().Allow(aclApp).AllowHosts("*").Topics(outputs...).
		ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpWrite)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := verify.Generate(ctx, verify.GenerateConfig{Brokers: []string{s.brokers}, ClientOpts: s.adminOpts,
		Topic: input, Records: 200, Keys: 500, Partitions: 4, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		t.Fatal("the runner still runs a minute after its WRITE was revoked")
	}
	took := time.Since(start)
	if r.err == nil {
		t.Fatal("the runner exited 0")
	}
	var last string
	for _, l := range r.plainLines() {
		if strings.HasPrefix(l, "eos-runner:") {
			last = l
		}
	}
	t.Logf("exit after %v: %s", took.Round(time.Millisecond), last)
	for _, w := range []string{"TOPIC_AUTHORIZATION_FAILED", `ALLOW WRITE on topic "` + input + "-"} {
		if !strings.Contains(last, w) {
			t.Errorf("error line lacks %q", w)
		}
	}
	if c := s.admin.committed(ctx, input+"-verify", input); c != 200 {
		t.Errorf("committed %d input records after the revocation, want 200 (none of the new ones)", c)
	}
}
