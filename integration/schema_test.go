package integration

import (
	"context"
	be "encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/riferrei/srclient"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eos-runner/eos-runner/examples/pageviews"
	"github.com/eos-runner/eos-runner/processor"
	"github.com/eos-runner/eos-runner/schema"
	"github.com/eos-runner/eos-runner/schema/registry"
	"github.com/eos-runner/eos-runner/serde"
	"github.com/eos-runner/eos-runner/topology"
)

// startRegistry returns the URL of SCHEMA_REGISTRY_URL when set, else of an
// embedded registry persisting under a temporary directory and served in
// this process for the test's duration.
func startRegistry(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("SCHEMA_REGISTRY_URL"); url != "" {
		return url
	}
	srv, err := registry.Open(t.TempDir(), registry.WithLogger(slog.New(slog.NewJSONHandler(logFile(t, "registry"), nil))))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("registry: %v", err)
		}
		_ = srv.Close()
	})
	return "http://" + ln.Addr().String()
}

// Order schemas of the startup tests' sink. orderBad changes qty's type
// (int -> string): at BACKWARD, a reader with it cannot read v1 data.
const (
	orderV1  = `{"type":"record","name":"Order","namespace":"it","fields":[{"name":"id","type":"string"},{"name":"qty","type":"int"}]}`
	orderV2  = `{"type":"record","name":"Order","namespace":"it","fields":[{"name":"id","type":"string"},{"name":"qty","type":"int"},{"name":"note","type":["null","string"],"default":null}]}`
	orderBad = `{"type":"record","name":"Order","namespace":"it","fields":[{"name":"id","type":"string"},{"name":"qty","type":"string"}]}`
)

// registerAt sets subject's compatibility level and registers text under it,
// returning its id.
func registerAt(t *testing.T, c *registry.Client, subject string, level srclient.CompatibilityLevel, text string) int {
	t.Helper()
	if _, err := c.SRClient().ChangeSubjectCompatibilityLevel(subject, level); err != nil {
		t.Fatalf("set level of %s: %v", subject, err)
	}
	s, err := schema.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.EnsureSchema(context.Background(), subject, s, true)
	if err != nil {
		t.Fatalf("register under %s: %v", subject, err)
	}
	return id
}

func subjectVersions(t *testing.T, c *registry.Client, subject string) []int {
	t.Helper()
	vs, err := c.SRClient().GetSchemaVersions(subject)
	if err != nil {
		t.Fatalf("versions of %s: %v", subject, err)
	}
	return vs
}

// orderTopology reads decimal quantities keyed by order id from in and
// writes Order records to out with an Avro value serde declaring sinkSchema.
func orderTopology(t *testing.T, c *registry.Client, in, out, sinkSchema string, autoRegister bool) *topology.Topology {
	t.Helper()
	sink, err := serde.NewAvro(c, sinkSchema, serde.Value, serde.AutoRegister(autoRegister))
	if err != nil {
		t.Fatal(err)
	}
	qtyString := strings.Contains(sinkSchema, `"name":"qty","type":"string"`)
	hasNote := strings.Contains(sinkSchema, `"name":"note"`)
	b := topology.NewBuilder()
	b.Stream([]string{in}, topology.Consumed{Key: serde.String{}, Value: serde.DecimalString{}}).
		Map(func(k, v any) (any, any, error) {
			rec := map[string]any{"id": k, "qty": int32(v.(int64))}
			if qtyString {
				rec["qty"] = fmt.Sprint(v)
			}
			if hasNote {
				rec["note"] = nil
			}
			return k, rec, nil
		}).
		To(out, topology.Produced{Key: serde.String{}, Value: sink}, topology.Named("order-sink"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// runToError runs the topology and returns Run's error; a runner that keeps
// running for a minute fails the test.
func runToError(t *testing.T, cfg processor.Config, topo *topology.Topology) error {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(logFile(t, "refused"), nil))
	r, err := processor.New(cfg, topo, processor.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = r.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("runner did not refuse to start within a minute (Run: %v)", err)
	}
	return err
}

// TestSchemaIncompatibleSinkRefusesStart: a sink whose declared schema is
// incompatible with its subject's latest at the subject's level stops the
// runner at startup, with an error naming subject, level, field path and
// rule, before anything is written (even with auto-registration on).
func TestSchemaIncompatibleSinkRefusesStart(t *testing.T) {
	b := startBroker(t)
	k := newKafka(t, b.addr)
	c := registry.NewClient(startRegistry(t))
	ctx := context.Background()
	in := uniqueTopic("schema-refuse")
	out := in + "-out"
	subject := out + "-value"
	v1 := registerAt(t, c, subject, srclient.Backward, orderV1)
	produceInput(t, k, in, 2, 5, []string{"1", "2", "3", "4", "5", "6"})
	if _, err := k.adm.CreateTopics(ctx, 2, 1, nil, out); err != nil {
		t.Fatal(err)
	}

	cfg := baseConfig(b.addr, in+"-app", t)
	err := runToError(t, cfg, orderTopology(t, c, in, out, orderBad, true))
	if err == nil {
		t.Fatal("Run returned nil: the runner accepted an incompatible sink schema")
	}
	var ie *schema.IncompatibilityError
	if !errors.As(err, &ie) || !errors.Is(err, schema.ErrIncompatible) {
		t.Errorf("error %T is not a *schema.IncompatibilityError: %v", err, err)
	}
	for _, want := range []string{subject, "BACKWARD", "/fields/qty/type", schema.RuleTypeMismatch, "order-sink"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if recs := k.readCommitted(t, ctx, out); len(recs) != 0 {
		t.Errorf("%d records on %s after a refused start, want 0", len(recs), out)
	}
	if end := k.endOffsets(ctx, out); end != 0 {
		t.Errorf("end offset of %s = %d, want 0: something was written, even if aborted", out, end)
	}
	if got := k.committed(ctx, cfg.ApplicationID, in); got != 0 {
		t.Errorf("the refused runner committed %d input offsets", got)
	}
	if vs := subjectVersions(t, c, subject); len(vs) != 1 {
		t.Errorf("subject %s has versions %v, want only v1 (id %d)", subject, vs, v1)
	}
	t.Logf("refused: %v", err)
}

// TestSchemaAutoRegisterOnlyWhereAllowed: a compatible sink schema absent
// from its subject stops startup when auto.register.schemas is off, naming
// the setting; with it on, the runner registers it and writes with its id.
func TestSchemaAutoRegisterOnlyWhereAllowed(t *testing.T) {
	b := startBroker(t)
	k := newKafka(t, b.addr)
	c := registry.NewClient(startRegistry(t))
	ctx := context.Background()
	in := uniqueTopic("schema-autoreg")
	out := in + "-out"
	subject := out + "-value"
	registerAt(t, c, subject, srclient.Backward, orderV1)
	values := []string{"10", "20", "30", "40", "50", "60", "70", "80"}
	produceInput(t, k, in, 2, len(values), values)

	cfg := baseConfig(b.addr, in+"-app", t)
	refused := runToError(t, cfg, orderTopology(t, c, in, out, orderV2, false))
	switch {
	case refused == nil:
		t.Fatal("Run returned nil: the runner wrote with an unregistered schema while auto.register.schemas is off")
	case !errors.Is(refused, registry.ErrNotRegistered) || !strings.Contains(refused.Error(), "auto.register.schemas") || !strings.Contains(refused.Error(), subject):
		t.Fatalf("error %v: want registry.ErrNotRegistered naming auto.register.schemas and %s", refused, subject)
	}
	if vs := subjectVersions(t, c, subject); len(vs) != 1 {
		t.Fatalf("subject %s has versions %v after a refused start, want 1", subject, vs)
	}
	if end := k.endOffsets(ctx, out); end > 0 {
		t.Fatalf("end offset of %s = %d after a refused start, want 0", out, end)
	}

	_, stop := runInProcess(t, cfg, orderTopology(t, c, in, out, orderV2, true))
	waitFor(t, 2*time.Minute, "all input committed", func() bool { return k.committed(ctx, cfg.ApplicationID, in) == int64(len(values)) })
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}
	vs := subjectVersions(t, c, subject)
	if len(vs) != 2 {
		t.Fatalf("subject %s has versions %v, want 2 (v2 auto-registered)", subject, vs)
	}
	latest, err := c.SRClient().GetLatestSchema(subject)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := serde.NewAvro(c, orderV2, serde.Value)
	if err != nil {
		t.Fatal(err)
	}
	recs := k.readCommitted(t, ctx, out)
	if len(recs) != len(values) {
		t.Fatalf("%d outputs, want %d", len(recs), len(values))
	}
	for _, r := range recs {
		if id := int(be.BigEndian.Uint32(r.Value[1:5])); r.Value[0] != 0 || id != latest.ID() {
			t.Errorf("output %s: header % x, want magic 0 and the registered id %d", r.Key, r.Value[:5], latest.ID())
		}
		if _, err := reader.Deserialize(out, r.Value); err != nil {
			t.Errorf("output %s: %v", r.Key, err)
		}
	}
	t.Logf("refused without auto-registration (%v); with it, registered id %d as version %d and wrote %d records", refused, latest.ID(), latest.Version(), len(recs))
}

// TestSchemaBadWireFormatToDLQ: records that are not in the Confluent wire
// format, name an unknown schema id or are truncated go to the dead-letter
// topic exactly once each, with class deserialization and the reason; v1
// and v2 records are both read, projected into the v2 reader schema (a v1
// record gets referrer's default), and written out exactly once.
func TestSchemaBadWireFormatToDLQ(t *testing.T) {
	b := startBroker(t)
	k := newKafka(t, b.addr)
	c := registry.NewClient(startRegistry(t))
	ctx := context.Background()
	in := uniqueTopic("schema-dlq")
	out := in + "-out"
	registerAt(t, c, in+"-value", srclient.Backward, pageviews.ViewSchemaV1)
	w1, err := serde.NewAvro(c, pageviews.ViewSchemaV1, serde.Value)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := serde.NewAvro(c, pageviews.ViewSchemaV2, serde.Value, serde.AutoRegister(true))
	if err != nil {
		t.Fatal(err)
	}

	const perVersion = 300
	type input struct {
		key   string
		value []byte
	}
	var inputs []input
	ts := time.Now().UnixMilli()
	wantRef := map[string]any{} // good key -> expected referrer after projection
	for i := range perVersion {
		v := pageviews.View{User: fmt.Sprintf("v1-%d", i), Page: "/p", TS: ts}
		val, err := w1.Serialize(in, v.Native(1))
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, input{v.User, val})
		wantRef[v.User] = nil
	}
	for i := range perVersion {
		v := pageviews.View{User: fmt.Sprintf("v2-%d", i), Page: "/p", TS: ts, Referrer: "ref-" + fmt.Sprint(i)}
		val, err := w2.Serialize(in, v.Native(2))
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, input{v.User, val})
		wantRef[v.User] = map[string]any{"string": v.Referrer}
	}
	good, err := w1.Serialize(in, pageviews.View{User: "bad", Page: "/p", TS: ts}.Native(1))
	if err != nil {
		t.Fatal(err)
	}
	unknown := append([]byte(nil), good...)
	be.BigEndian.PutUint32(unknown[1:5], 0x7fff_fff0)
	badReason := map[string]string{
		"bad-magic":          "wrong magic byte",
		"bad-json":           "wrong magic byte",
		"bad-unknown-id":     "schema id not found",
		"bad-truncated-body": "truncated",
		"bad-short-header":   "truncated",
	}
	bad := []input{
		{"bad-magic", append([]byte{1}, good[1:]...)},
		{"bad-json", []byte(`{"user":"u1","page":"/p"}`)},
		{"bad-unknown-id", unknown},
		{"bad-truncated-body", good[:len(good)-3]},
		{"bad-short-header", good[:3]},
	}
	// Bad records among the good ones, on every partition.
	for i, r := range bad {
		at := (i + 1) * len(inputs) / (len(bad) + 1)
		inputs = append(inputs[:at], append([]input{r}, inputs[at:]...)...)
	}
	if _, err := k.adm.CreateTopics(ctx, 3, 1, nil, in); err != nil {
		t.Fatal(err)
	}
	for _, r := range inputs {
		k.cl.Produce(ctx, &kgo.Record{Topic: in, Key: []byte(r.key), Value: r.value}, nil)
	}
	if err := k.cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// The runner reads with v2 and writes v2 (registering it under the
	// output's subject).
	reader, err := serde.NewAvro(c, pageviews.ViewSchemaV2, serde.Value)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := serde.NewAvro(c, pageviews.ViewSchemaV2, serde.Value, serde.AutoRegister(true))
	if err != nil {
		t.Fatal(err)
	}
	tb := topology.NewBuilder()
	tb.Stream([]string{in}, topology.Consumed{Key: serde.String{}, Value: reader}).
		To(out, topology.Produced{Key: serde.String{}, Value: sink})
	topo, err := tb.Build()
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(b.addr, in+"-app", t)
	r, stop := runInProcess(t, cfg, topo)
	waitFor(t, 2*time.Minute, "all input committed", func() bool { return k.committed(ctx, cfg.ApplicationID, in) == int64(len(inputs)) })
	if err := stop(); err != nil {
		t.Fatalf("runner: %v", err)
	}

	dlq := k.readCommitted(t, ctx, cfg.ApplicationID+"-dlq")
	seen := map[string]int{}
	for _, d := range dlq {
		key := string(d.Key)
		seen[key]++
		h := map[string]string{}
		for _, hd := range d.Headers {
			h[hd.Key] = string(hd.Value)
		}
		reason, ok := badReason[key]
		if !ok {
			t.Errorf("good record %s dead-lettered: %v", key, h[processor.HeaderErrorMessage])
			continue
		}
		if h[processor.HeaderErrorClass] != "deserialization" || !strings.Contains(h[processor.HeaderErrorMessage], reason) ||
			h[processor.HeaderSourceTopic] != in {
			t.Errorf("DLQ %s: class %q message %q topic %q; want deserialization, a message naming %q, topic %s",
				key, h[processor.HeaderErrorClass], h[processor.HeaderErrorMessage], h[processor.HeaderSourceTopic], reason, in)
		}
		for _, orig := range bad {
			if orig.key == key && string(orig.value) != string(d.Value) {
				t.Errorf("DLQ %s: value % x, want the original % x", key, d.Value, orig.value)
			}
		}
	}
	for _, r := range bad {
		if seen[r.key] != 1 {
			t.Errorf("%s dead-lettered %d times, want once", r.key, seen[r.key])
		}
	}
	if len(dlq) != len(bad) {
		t.Errorf("%d DLQ records, want %d", len(dlq), len(bad))
	}

	outs := k.readCommitted(t, ctx, out)
	got := map[string]int{}
	for _, o := range outs {
		key := string(o.Key)
		got[key]++
		want, ok := wantRef[key]
		if !ok {
			t.Errorf("output for %s, which is not a good input", key)
			continue
		}
		v, err := reader.Deserialize(out, o.Value)
		if err != nil {
			t.Errorf("output %s: %v", key, err)
			continue
		}
		m := v.(map[string]any)
		if fmt.Sprint(m["referrer"]) != fmt.Sprint(want) || m["user"] != key {
			t.Errorf("output %s: %v, want user %s and referrer %v", key, m, key, want)
		}
	}
	var missing []string
	for key := range wantRef {
		if got[key] != 1 {
			missing = append(missing, fmt.Sprintf("%s×%d", key, got[key]))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d good inputs not written exactly once: %v", len(missing), missing[:min(10, len(missing))])
	}
	if len(outs) != len(wantRef) {
		t.Errorf("%d outputs, want %d", len(outs), len(wantRef))
	}
	t.Logf("%d inputs (%d v1, %d v2, %d bad): %d outputs, %d dead-lettered once each; eos_records_dead_lettered_total %v",
		len(inputs), perVersion, perVersion, len(bad), len(outs), len(dlq), counter(t, r, "eos_records_dead_lettered_total"))
}
