package registry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eos-runner/eos-runner/schema"
)

func mustParse(t *testing.T, text string) *schema.Schema {
	t.Helper()
	s, err := schema.Parse(text)
	if err != nil {
		t.Fatalf("Parse(%s): %v", text, err)
	}
	return s
}

// setup sends requests to the server in-process, failing on a non-200.
func setup(t *testing.T, srv *Server, reqs ...[3]string) {
	t.Helper()
	for _, r := range reqs {
		rec := httptestDo(srv, r[0], r[1], r[2])
		if rec.Code != 200 {
			t.Fatalf("setup %s %s: %d %s", r[0], r[1], rec.Code, rec.Body.String())
		}
	}
}

func register(subject, text string) [3]string {
	return [3]string{"POST", "/subjects/" + subject + "/versions", schemaBody(text)}
}

func TestEnsureSchema(t *testing.T) {
	// orderFwdBad reads v1 data (backward-compatible) but drops "id", which
	// v1 readers need: not forward-compatible.
	const orderFwdBad = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"note","type":"string","default":""}]}`
	tests := []struct {
		name     string
		setup    [][3]string
		subject  string
		schema   string
		auto     bool
		wantID   int
		wantErr  error  // errors.Is target
		wantRule string // for incompatibility errors
		wantPath string
		level    schema.Level
		// after, if set, must list the subject's versions afterwards.
		after string
	}{
		{name: "new subject, auto registers", subject: "o-value", schema: orderV1, auto: true, wantID: 1, after: "[1]\n"},
		{name: "new subject, no auto", subject: "o-value", schema: orderV1, wantErr: ErrNotRegistered},
		{name: "registered, no auto", setup: [][3]string{register("o-value", orderV1)}, subject: "o-value", schema: orderV1, wantID: 1},
		{name: "registered in other spelling", setup: [][3]string{register("o-value", orderV1)}, subject: "o-value",
			schema: "{\n  \"name\": \"Order\", \"namespace\": \"shop\", \"type\": \"record\",\n  \"fields\": [{\"name\": \"id\", \"type\": \"long\", \"doc\": \"key\"}]\n}", wantID: 1},
		{name: "registered under another subject only, no auto", setup: [][3]string{register("a-value", orderV1)}, subject: "o-value", schema: orderV1, wantErr: ErrNotRegistered},
		{name: "registered under another subject only, auto reuses id", setup: [][3]string{register("a-value", `"int"`), register("b-value", orderV1)}, subject: "o-value", schema: orderV1, auto: true, wantID: 2},
		{name: "compatible new version, auto", setup: [][3]string{register("o-value", orderV1)}, subject: "o-value", schema: orderV2, auto: true, wantID: 2, after: "[1,2]\n"},
		{name: "compatible new version, no auto", setup: [][3]string{register("o-value", orderV1)}, subject: "o-value", schema: orderV2, wantErr: ErrNotRegistered, after: "[1]\n"},
		{name: "incompatible at global BACKWARD", setup: [][3]string{register("o-value", orderV1)}, subject: "o-value", schema: orderBad, auto: true,
			wantErr: schema.ErrIncompatible, wantRule: schema.RuleMissingDefault, wantPath: "/fields/qty", level: schema.Backward, after: "[1]\n"},
		{name: "subject level FORWARD overrides global", setup: [][3]string{register("o-value", orderV1), {"PUT", "/config/o-value", `{"compatibility":"FORWARD"}`}},
			subject: "o-value", schema: orderFwdBad, auto: true, wantErr: schema.ErrIncompatible, wantRule: schema.RuleMissingDefault, wantPath: "/fields/id", level: schema.Forward},
		{name: "global level NONE allows anything", setup: [][3]string{register("o-value", orderV1), {"PUT", "/config", `{"compatibility":"NONE"}`}},
			subject: "o-value", schema: orderBad, auto: true, wantID: 2},
		{name: "transitive level checks every version", setup: [][3]string{
			{"PUT", "/config/o-value", `{"compatibility":"BACKWARD_TRANSITIVE"}`},
			register("o-value", `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`),
			register("o-value", `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}`)},
			subject: "o-value", schema: `{"type":"record","name":"R","fields":[{"name":"b","type":"int"}]}`, auto: true,
			wantErr: schema.ErrIncompatible, wantRule: schema.RuleMissingDefault, wantPath: "/fields/b", level: schema.BackwardTransitive},
		{name: "soft-deleted versions are not checked", setup: [][3]string{register("o-value", orderV1), {"DELETE", "/subjects/o-value", ""}},
			subject: "o-value", schema: orderBad, auto: true, wantID: 2, after: "[2]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ls := startServer(t, "")
			setup(t, ls.srv, tc.setup...)
			c := NewClient(ls.url + "/")
			id, err := c.EnsureSchema(context.Background(), tc.subject, mustParse(t, tc.schema), tc.auto)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("EnsureSchema: %v", err)
			case tc.wantErr == nil && id != tc.wantID:
				t.Fatalf("EnsureSchema id = %d, want %d", id, tc.wantID)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("EnsureSchema err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantRule != "" {
				var ie *schema.IncompatibilityError
				if !errors.As(err, &ie) {
					t.Fatalf("err %T is not *schema.IncompatibilityError", err)
				}
				if ie.Subject != tc.subject || ie.Level != tc.level || len(ie.Problems) == 0 {
					t.Fatalf("IncompatibilityError = %+v, want subject %q level %s", ie, tc.subject, tc.level)
				}
				if p := ie.Problems[0]; p.Rule != tc.wantRule || p.Path != tc.wantPath {
					t.Fatalf("problem = %+v, want rule %s path %s", p, tc.wantRule, tc.wantPath)
				}
			}
			if tc.after != "" {
				if got := httptestDo(ls.srv, "GET", "/subjects/"+tc.subject+"/versions", "").Body.String(); got != tc.after {
					t.Fatalf("versions after = %s, want %s", got, tc.after)
				}
			}
		})
	}
}

func TestEnsureSchemaFailures(t *testing.T) {
	ls := startServer(t, "")
	c := NewClient(ls.url)
	s := mustParse(t, orderV1)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.EnsureSchema(ctx, "o-value", s, true); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: err = %v", err)
	}
	if _, err := c.EnsureSchema(context.Background(), "o-value", nil, true); err == nil {
		t.Fatal("nil schema: no error")
	}
	if got := httptestDo(ls.srv, "GET", "/subjects", "").Body.String(); got != "[]\n" {
		t.Fatalf("failed calls registered something: %s", got)
	}

	ls.stop()
	down := NewClient(ls.url)
	down.SRClient().SetTimeout(2 * time.Second)
	_, err := down.EnsureSchema(context.Background(), "o-value", s, true)
	if err == nil || errors.Is(err, ErrNotRegistered) || !strings.Contains(err.Error(), ls.url) {
		t.Fatalf("unreachable registry: err = %v, want a connection error naming the URL", err)
	}
}

func TestSchemaByID(t *testing.T) {
	ls := startServer(t, "")
	const withLogical = `{"type":"record","name":"Ev","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
	setup(t, ls.srv, register("ev-value", withLogical))
	c := NewClient(ls.url)
	ctx := context.Background()

	got, err := c.SchemaByID(ctx, 1)
	if err != nil {
		t.Fatalf("SchemaByID(1): %v", err)
	}
	if want := mustParse(t, withLogical).Canonical(); got.Canonical() != want {
		t.Fatalf("SchemaByID(1) = %s, want %s", got.Canonical(), want)
	}
	codec, err := c.CodecByID(ctx, 1)
	if err != nil {
		t.Fatalf("CodecByID(1): %v", err)
	}
	// The codec comes from the registry's text, so the logical type is
	// kept: goavro decodes timestamp-millis to time.Time.
	at := time.UnixMilli(1_700_000_000_123).UTC()
	bin, err := codec.BinaryFromNative(nil, map[string]any{"at": at})
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	native, _, err := codec.NativeFromBinary(bin)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if back, ok := native.(map[string]any)["at"].(time.Time); !ok || !back.Equal(at) {
		t.Fatalf("round trip = %#v, want time %v", native, at)
	}

	if _, err := c.SchemaByID(ctx, 42); !errors.Is(err, ErrSchemaNotFound) {
		t.Fatalf("SchemaByID(42): err = %v, want ErrSchemaNotFound", err)
	}

	// Cached: answered with the registry gone.
	ls.stop()
	if again, err := c.SchemaByID(ctx, 1); err != nil || again != got {
		t.Fatalf("cached SchemaByID(1) = %p %v, want the same %p", again, err, got)
	}
	if _, err := c.SchemaByID(ctx, 2); err == nil || errors.Is(err, ErrSchemaNotFound) {
		t.Fatalf("uncached id with registry down: err = %v, want a connection error", err)
	}
}
