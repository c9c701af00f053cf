package registry

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// populated returns an in-memory registry holding a little of everything, so
// requests reach past "subject not found".
func populated(t testing.TB) *Server {
	t.Helper()
	srv, err := Open("", WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][3]string{
		register("s", orderV1),
		register("s", orderV2),
		register("t", `"string"`),
		{"DELETE", "/subjects/t", ""},
		{"PUT", "/config/s", `{"compatibility":"FULL"}`},
	} {
		if rec := httptestDo(srv, r[0], r[1], r[2]); rec.Code != 200 {
			t.Fatalf("populate %s %s: %d %s", r[0], r[1], rec.Code, rec.Body.String())
		}
	}
	return srv
}

// checkReply asserts what every reply must satisfy whatever the request: no
// 5xx, the registry media type, and an error body in Confluent's shape.
func checkReply(t *testing.T, req string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s: %d %s", req, rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Fatalf("%s: Content-Type %q", req, ct)
	}
	if rec.Code >= 400 {
		var e apiError
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == 0 || e.Message == "" {
			t.Fatalf("%s: %d error body %q is not {error_code, message}", req, rec.Code, rec.Body.String())
		}
		if status := errf(e.Code, "").Status; status != rec.Code {
			t.Fatalf("%s: HTTP %d with error_code %d", req, rec.Code, e.Code)
		}
	}
}

// TestMalformedMatrix sends every method to every endpoint shape with odd
// path values and bodies: nothing may answer 5xx.
func TestMalformedMatrix(t *testing.T) {
	srv := populated(t)
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	values := []string{"s", "t", "nobody", "latest", "-1", "0", "1", "2", "x", "1.0", "99999999999", "%2F", "a%20b", "%00"}
	bodies := []string{"", "null", "[]", "{}", "not json", `{"schema":1}`, `{"schema":"\"int\""}`, `{"schema":"\"int\"","schemaType":"XML"}`,
		`{"schema":"{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":[]}"}`, `{"compatibility":"x"}`, `{"compatibility":"NONE"}`,
		`{"mode":"READONLY"}`, `{"schema":"\"int\"","references":"x"}`, `"just a string"`}
	var paths []string
	for _, rt := range routeTable() {
		n := strings.Count(strings.Join(rt.path, "/"), "*")
		for _, v1 := range values {
			for _, v2 := range values[:max(1, min(len(values), n*len(values)))] {
				p := "/" + strings.Join(rt.path, "/")
				p = strings.Replace(p, "*", v1, 1)
				p = strings.Replace(p, "*", v2, 1)
				paths = append(paths, p, p+"?deleted=true&permanent=true&verbose=true&defaultToGlobal=true")
				if n < 2 {
					break
				}
			}
			if n == 0 {
				break
			}
		}
	}
	count := 0
	for _, m := range methods {
		for _, p := range paths {
			for _, b := range bodies {
				// Mutations change the state under later requests, which
				// is the point: deletes and registers interleave.
				req := m + " " + p + " " + b
				checkReply(t, req, httptestDo(srv, m, p, b))
				count++
			}
		}
	}
	t.Logf("%d requests", count)
}

func TestBodyTooLarge(t *testing.T) {
	srv := populated(t)
	body := `{"schema":"` + strings.Repeat("x", maxBody) + `"}`
	rec := httptestDo(srv, "POST", "/subjects/s/versions", body)
	checkReply(t, "huge", rec)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("huge body: %d %s", rec.Code, rec.Body.String())
	}
}

// FuzzServeHTTP: any method, path and body gets a well-formed reply that is
// not a 5xx. `go test -fuzz FuzzServeHTTP ./schema/registry/` to explore;
// the seeds run with the ordinary tests.
func FuzzServeHTTP(f *testing.F) {
	seeds := [][3]string{
		{"GET", "/subjects/s/versions/latest", ""},
		{"POST", "/subjects/s/versions", `{"schema":"\"int\""}`},
		{"POST", "/subjects/s", `{"schema":"{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":[{\"name\":\"id\",\"type\":\"long\"}]}"}`},
		{"POST", "/compatibility/subjects/s/versions/1?verbose=true", `{"schema":"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}"}`},
		{"DELETE", "/subjects/t?permanent=true", ""},
		{"DELETE", "/subjects/s/versions/latest", ""},
		{"PUT", "/config/s", `{"compatibility":"BACKWARD"}`},
		{"GET", "/schemas/ids/1/versions?deleted=true", ""},
		{"GET", "/config/s?defaultToGlobal=true", ""},
		{"POST", "/subjects/s/versions", `{"schema":"[\"null\",{\"type\":\"map\",\"values\":\"long\"}]"}`},
		{"POST", "/subjects/s/versions", `{"schema":"{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}"}`},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if _, err := url.ParseRequestURI(target); err != nil || !strings.HasPrefix(target, "/") {
			t.Skip()
		}
		req, err := http.NewRequest(method, "http://registry"+target, strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		srv := populated(t)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		checkReply(t, method+" "+target+" "+body, rec)
	})
}
