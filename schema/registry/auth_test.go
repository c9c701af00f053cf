package registry

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eos-runner/eos-runner/internal/certs"
)

// TestServerBasicAuthOverTLS: the registry with basic auth and TLS answers
// 401 in Confluent's format without credentials, serves a client with
// them, and the client's Ping names the setting for a wrong password and
// the CA setting for an untrusted certificate.
func TestServerBasicAuthOverTLS(t *testing.T) {
	dir := t.TempDir()
	files, err := certs.Generate(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	tc, err := certs.ServerConfig(files.Server, files.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Open("", WithBasicAuth(map[string]string{"reg": "reg-pw-4242"}), WithTLS(tc))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, ln)
	url := "https://" + ln.Addr().String()

	pool, _ := certs.ClientConfig(files.CA, "", "", false)
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: pool}}).Get(url + "/subjects")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || strings.TrimSpace(string(body)) != `{"error_code":401,"message":"Unauthorized"}` {
		t.Fatalf("without credentials: %d %s", resp.StatusCode, body)
	}

	good := ClientConfig{URL: url, BasicAuthUserInfo: "reg:reg-pw-4242", SSLCALocation: files.CA}
	c, err := NewClientFromConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping with credentials: %v", err)
	}

	for _, tc := range []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		{"wrong password", ClientConfig{URL: url, BasicAuthUserInfo: "reg:wrong-pw", SSLCALocation: files.CA}, "basic.auth.user.info: schema registry " + url + " rejected the credentials"},
		{"no credentials", ClientConfig{URL: url, SSLCALocation: files.CA}, "requires credentials"},
		{"untrusted", ClientConfig{URL: url, BasicAuthUserInfo: "reg:reg-pw-4242"}, "schema.registry.ssl.ca.location: the certificate of schema registry " + url + " is not trusted"},
	} {
		c, err := NewClientFromConfig(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Ping = %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("%s: error shows the password: %v", tc.name, err)
		}
	}
	_, err = NewClientFromConfig(ClientConfig{URL: url, SSLCALocation: filepath.Join(dir, "missing.pem")})
	if err == nil || !strings.Contains(err.Error(), "schema.registry.ssl.ca.location") {
		t.Errorf("missing CA file: %v", err)
	}
}
