package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eos-runner/eos-runner/internal/registrytest"
	"github.com/eos-runner/eos-runner/schema"
	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// avsc names a schema fixture; they are shared with the serde tests.
func avsc(name string) string {
	return filepath.Join("..", "..", "serde", "testdata", name)
}

// runCLI runs the command line as main does and returns its exit status and
// output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSchemaCompat(t *testing.T) {
	v1, v2, v3, bad := avsc("order_v1.avsc"), avsc("order_v2.avsc"), avsc("order_v3.avsc"), avsc("order_bad.avsc")
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // the whole stdout
	}{
		{"new reads old", []string{"--reader", v2, "--writer", v1}, 0, "compatible\n"},
		{"old reads new", []string{"--reader", v1, "--writer", v2}, 0, "compatible\n"},
		{"narrowing", []string{"--reader", bad, "--writer", v1}, 1,
			"incompatible: 1 problem\n  /fields/amount/type: reader int cannot read writer long (TYPE_MISMATCH)\n"},
		{"promotion", []string{"--reader", v1, "--writer", bad}, 0, "compatible\n"},
		{"dropped field", []string{"--reader", v3, "--writer", v2}, 0, "compatible\n"},
		{"field without default", []string{"--reader", v1, "--writer", v3}, 1,
			"incompatible: 1 problem\n  /fields/tags: reader field \"tags\" of record com.example.Order has no default and the writer has no such field (READER_FIELD_MISSING_DEFAULT_VALUE)\n"},
		{"backward", []string{"--level", "BACKWARD", "--existing", v1, "--candidate", v2}, 0, "compatible\n"},
		{"backward history", []string{"--level", "backward", "--existing", v1 + "," + v2, "--candidate", v3}, 0, "compatible\n"},
		{"forward", []string{"--level", "FORWARD", "--existing", v1, "--existing", v2, "--candidate", v3}, 1,
			"incompatible: 1 problem\n  /fields/tags: version 2, forward (version 2 reads data written with new schema): reader field \"tags\" of record com.example.Order has no default and the writer has no such field (READER_FIELD_MISSING_DEFAULT_VALUE)\n"},
		{"forward transitive", []string{"--level", "FORWARD_TRANSITIVE", "--existing", v1 + "," + v2, "--candidate", v3}, 1, ""},
		{"full", []string{"--level", "FULL", "--existing", v1, "--candidate", bad}, 1,
			"incompatible: 1 problem\n  /fields/amount/type: version 1, backward (new schema reads data written with version 1): reader int cannot read writer long (TYPE_MISMATCH)\n"},
		{"forward allows narrowing writer", []string{"--level", "FORWARD", "--existing", v1, "--candidate", bad}, 0, "compatible\n"},
		{"none", []string{"--level", "NONE", "--existing", v1, "--candidate", v3}, 0, "compatible\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"schema", "compat"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, out, errOut)
			}
			if tc.out != "" && out != tc.out {
				t.Fatalf("stdout:\n%s\nwant:\n%s", out, tc.out)
			}
		})
	}
	// Transitive: one problem per earlier version, oldest first.
	_, out, _ := runCLI(t, "schema", "compat", "--level", "FORWARD_TRANSITIVE", "--existing", v1+","+v2, "--candidate", v3)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || lines[0] != "incompatible: 2 problems" ||
		!strings.Contains(lines[1], "version 1, forward") || !strings.Contains(lines[2], "version 2, forward") {
		t.Fatalf("forward transitive output:\n%s", out)
	}
}

func TestSchemaCompatUsage(t *testing.T) {
	v1 := avsc("order_v1.avsc")
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"nothing", nil, "give --reader and --writer"},
		{"reader alone", []string{"--reader", v1}, "go together"},
		{"both forms", []string{"--reader", v1, "--writer", v1, "--level", "FULL"}, "not both"},
		{"no candidate", []string{"--level", "FULL", "--existing", v1}, "go together"},
		{"bad level", []string{"--level", "SIDEWAYS", "--existing", v1, "--candidate", v1}, "unknown compatibility level"},
		{"missing file", []string{"--reader", v1, "--writer", avsc("nope.avsc")}, "nope.avsc"},
		{"unparsable", []string{"--reader", avsc("not_a_schema.avsc"), "--writer", v1}, "not_a_schema.avsc"},
		{"unparsable history", []string{"--level", "FULL", "--existing", v1 + "," + avsc("not_a_schema.avsc"), "--candidate", v1}, "not_a_schema.avsc"},
		{"stray argument", []string{"x.avsc"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"schema", "compat"}, tc.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stdout %q stderr %q", code, out, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr %q lacks %q", errOut, tc.want)
			}
		})
	}
	if code, _, _ := runCLI(t, "schema"); code != 2 {
		t.Fatalf("bare `schema`: exit %d, want 2", code)
	}
}

// testRegistry serves an in-memory embedded registry.
func testRegistry(t *testing.T) (*registry.Client, string) { return registrytest.Serve(t) }

// avroTopology is a small topology with Avro sinks: orders written with
// value schema valueText and a string Avro key, through an internal
// repartition topic with an Avro value.
func avroTopology(t *testing.T, c *registry.Client, valueText string) *topology.Topology {
	t.Helper()
	mk := func(text string, side serde.Side) *serde.Avro {
		a, err := serde.NewAvro(c, text, side)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	b := topology.NewBuilder()
	s := b.Stream([]string{"in"}, topology.Consumed{Key: serde.String{}, Value: serde.JSON{}})
	s = s.Repartition("by-user", topology.Produced{Key: serde.String{}, Value: mk(`"long"`, serde.Value)})
	s.To("orders", topology.Produced{Key: mk(`"string"`, serde.Key), Value: mk(valueText, serde.Value)})
	s.To("plain", topology.Produced{Key: serde.String{}, Value: serde.JSON{}})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	s, err := readSchemaFile(avsc(name))
	if err != nil {
		t.Fatal(err)
	}
	return s.String()
}

func TestSchemaCheck(t *testing.T) {
	ctx := context.Background()
	c, _ := testRegistry(t)
	v1, v2, bad := readFixture(t, "order_v1.avsc"), readFixture(t, "order_v2.avsc"), readFixture(t, "order_bad.avsc")

	check := func(valueText string) (bool, string) {
		t.Helper()
		var out bytes.Buffer
		ok, err := checkTopologySchemas(ctx, &out, c, avroTopology(t, c, valueText), "app")
		if err != nil {
			t.Fatalf("checkTopologySchemas: %v", err)
		}
		return ok, out.String()
	}

	// Empty registry: everything may be registered; nothing is.
	ok, out := check(v1)
	want := "app-by-user-repartition-value: ok: compatible, not registered yet: OK to register (sink by-user-repartition-sink)\n" +
		"orders-key: ok: compatible, not registered yet: OK to register (sink KSTREAM-SINK-0000000003)\n" +
		"orders-value: ok: compatible, not registered yet: OK to register (sink KSTREAM-SINK-0000000003)\n"
	if !ok || out != want {
		t.Fatalf("empty registry: ok=%v\n%s\nwant:\n%s", ok, out, want)
	}
	subjects, err := c.SRClient().GetSubjects()
	if err != nil || len(subjects) != 0 {
		t.Fatalf("check registered something: %v %v", subjects, err)
	}

	// v1 registered: v1 is "registered", v2 compatible, bad incompatible.
	s1, err := schema.Parse(v1)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.EnsureSchema(ctx, "orders-value", s1, true)
	if err != nil {
		t.Fatal(err)
	}
	if ok, out := check(v1); !ok || !strings.Contains(out, "orders-value: ok: registered as id ") {
		t.Fatalf("registered v1 (id %d): ok=%v\n%s", id, ok, out)
	}
	if ok, out := check(v2); !ok || !strings.Contains(out, "orders-value: ok: compatible, not registered yet") {
		t.Fatalf("v2 after v1: ok=%v\n%s", ok, out)
	}
	ok, out = check(bad)
	if ok {
		t.Fatalf("bad after v1 passed:\n%s", out)
	}
	for _, s := range []string{
		"orders-value: incompatible at level BACKWARD: 1 problem (sink KSTREAM-SINK-0000000003)\n",
		"  /fields/amount/type: version 1, backward (new schema reads data written with version 1): reader int cannot read writer long (TYPE_MISMATCH)\n",
		"orders-key: ok:", // the others are still checked and printed
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestSchemaCheckErrors(t *testing.T) {
	ctx := context.Background()
	c, _ := testRegistry(t)
	topo := avroTopology(t, c, readFixture(t, "order_v1.avsc"))

	// Internal topics are named after application.id.
	var out bytes.Buffer
	_, err := checkTopologySchemas(ctx, &out, c, topo, "")
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "application.id") {
		t.Fatalf("no application.id: %v, want a usage error naming application.id", err)
	}

	// An unreachable registry is a failed check per subject, not a crash.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	out.Reset()
	ok, err := checkTopologySchemas(ctx, &out, registry.NewClient(dead.URL), topo, "app")
	if err != nil || ok {
		t.Fatalf("dead registry: ok=%v err=%v", ok, err)
	}
	if got := strings.Count(out.String(), ": error: "); got != 3 {
		t.Fatalf("dead registry: %d error lines, want 3:\n%s", got, out.String())
	}
}

// TestSchemaCheckCLI runs `schema check` on a built-in topology and its usage
// errors through run.
func TestSchemaCheckCLI(t *testing.T) {
	_, url := testRegistry(t)
	code, out, errOut := runCLI(t, "schema", "check", "--registry", url, "--topology", "pageviews", "--set", "application.id=pv")
	if code != 0 || out == "" {
		t.Fatalf("pageviews: exit %d stdout %q stderr %q", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "schema", "check", "--topology", "pageviews"); code != 2 || !strings.Contains(errOut, "--registry") {
		t.Fatalf("no --registry: exit %d stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "schema", "check", "--registry", url, "--topology", "nope"); code != 2 || !strings.Contains(errOut, "unknown") {
		t.Fatalf("unknown topology: exit %d stderr %q", code, errOut)
	}
}

// TestRegistryCmd serves the registry command with a data directory, registers
// a schema, stops it, and finds the schema again after a restart.
func TestRegistryCmd(t *testing.T) {
	dir := t.TempDir()
	s1, err := schema.Parse(readFixture(t, "order_v1.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	var firstID int
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		g := &globals{stdout: pw, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}
		cmd := registryCmd(g)
		cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--data-dir", dir})
		done := make(chan error, 1)
		go func() {
			done <- cmd.ExecuteContext(ctx)
			pw.Close()
		}()
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err != nil {
			cancel()
			t.Fatalf("round %d: reading the listening line: %v (command: %v)", round, err, <-done)
		}
		url, ok := strings.CutPrefix(strings.TrimSpace(line), "registry: ")
		if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
			cancel()
			t.Fatalf("round %d: listening line %q", round, line)
		}
		go io.Copy(io.Discard, pr) // nothing more is printed, but never block the command
		c := registry.NewClient(url)
		id, err := c.EnsureSchema(ctx, "orders-value", s1, round == 0)
		if err != nil {
			cancel()
			t.Fatalf("round %d: EnsureSchema: %v", round, err)
		}
		if round == 0 {
			firstID = id
		} else if id != firstID {
			t.Errorf("after restart: id %d, want %d", id, firstID)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: registry command returned %v after cancel, want nil", round, err)
		}
	}
}
