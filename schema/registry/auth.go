package registry

import (
	"bufio"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// WithBasicAuth makes the server require HTTP basic auth from one of users
// (user name to password) on every request. A request without valid
// credentials is answered 401 in Confluent's error format,
// {"error_code":401,"message":"Unauthorized"}, with a WWW-Authenticate
// header, before any handler runs.
func WithBasicAuth(users map[string]string) Option {
	return func(s *Server) { s.users = users }
}

// WithTLS makes Serve and ListenAndServe speak HTTPS with c.
func WithTLS(c *tls.Config) Option {
	return func(s *Server) { s.tls = c }
}

// authorized reports whether r carries the credentials of one of s.users
// (always true without WithBasicAuth). Passwords are compared in constant
// time.
func (s *Server) authorized(r *http.Request) bool {
	if s.users == nil {
		return true
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	want, known := s.users[user]
	match := subtle.ConstantTimeCompare([]byte(pass), []byte(want)) == 1
	return known && match
}

// unauthorized answers 401 as Confluent's registry does.
func unauthorized(w http.ResponseWriter) {
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("WWW-Authenticate", `Basic realm="schema-registry"`)
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(&apiError{Status: http.StatusUnauthorized, Code: http.StatusUnauthorized, Message: "Unauthorized"})
}

// ReadUsers reads a users file: one "user:password" a line; blank lines and
// lines starting with # are skipped.
func ReadUsers(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	users := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, p, ok := strings.Cut(line, ":")
		if !ok || u == "" {
			return nil, fmt.Errorf("%s:%d: want user:password", path, n)
		}
		users[u] = p
	}
	return users, sc.Err()
}
