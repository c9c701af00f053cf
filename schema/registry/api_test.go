package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestAPI runs the scripts in testdata/api against a registry on disk. Each
// file starts from an empty registry. Commands:
//
//	req                      input: "METHOD PATH" line, then the body (verbatim)
//	register subject=s       input: an Avro schema; POST /subjects/s/versions
//	lookup subject=s [deleted]
//	check subject=s [version=v] [verbose]   POST /compatibility/...
//	restart                  close the registry and Open its directory again
//
// Every reply prints as "<status> <body>", JSON compacted.
func TestAPI(t *testing.T) {
	datadriven.Walk(t, "testdata/api", func(t *testing.T, path string) {
		h := newHarness(t, t.TempDir())
		datadriven.RunTest(t, path, h.run)
	})
}

// harness drives a Server in-process, as an http.Handler.
type harness struct {
	t   *testing.T
	dir string
	srv *Server
}

func newHarness(t *testing.T, dir string) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir}
	h.open()
	t.Cleanup(func() { _ = h.srv.Close() })
	return h
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (h *harness) open() {
	h.t.Helper()
	srv, err := Open(h.dir, WithLogger(quietLogger()))
	if err != nil {
		h.t.Fatalf("Open(%q): %v", h.dir, err)
	}
	h.srv = srv
}

// do sends one request and returns status and body, checking what every
// reply must satisfy: the registry media type, and no 5xx.
func (h *harness) do(method, target, body string) (int, string) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Header.Set("Content-Type", ContentType)
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		h.t.Errorf("%s %s: Content-Type %q, want %q", method, target, ct, ContentType)
	}
	if rec.Code >= 500 {
		h.t.Errorf("%s %s: status %d: %s", method, target, rec.Code, rec.Body.String())
	}
	return rec.Code, rec.Body.String()
}

func compact(s string) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return strings.TrimSpace(s)
	}
	return buf.String()
}

func schemaBody(schemaText string) string {
	b, err := json.Marshal(map[string]string{"schema": compact(schemaText)})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	var (
		method, target, body string
		q                    = url.Values{}
	)
	arg := func(key string) string {
		var v string
		d.ScanArgs(t, key, &v)
		return v
	}
	for _, flag := range []string{"deleted", "verbose", "permanent"} {
		if d.HasArg(flag) {
			q.Set(flag, "true")
		}
	}
	switch d.Cmd {
	case "restart":
		if err := h.srv.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		h.open()
		return "ok"
	case "req":
		line, rest, _ := strings.Cut(d.Input, "\n")
		var ok bool
		method, target, ok = strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			d.Fatalf(t, "req: first input line must be METHOD PATH, got %q", line)
		}
		body = rest
	case "register":
		method, target, body = "POST", "/subjects/"+url.PathEscape(arg("subject"))+"/versions", schemaBody(d.Input)
	case "lookup":
		method, target, body = "POST", "/subjects/"+url.PathEscape(arg("subject")), schemaBody(d.Input)
	case "check":
		target = "/compatibility/subjects/" + url.PathEscape(arg("subject")) + "/versions"
		if d.HasArg("version") {
			target += "/" + arg("version")
		}
		method, body = "POST", schemaBody(d.Input)
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	if len(q) > 0 {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + q.Encode()
	}
	status, out := h.do(method, target, body)
	return fmt.Sprintf("%d %s\n", status, compact(out))
}

// httptestDo sends one request to h without the harness's checks.
func httptestDo(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, rd))
	return rec
}
