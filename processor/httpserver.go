package processor

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eos-runner/eos-runner/internal/certs"
	"github.com/eos-runner/eos-runner/internal/secret"
)

// HTTPConfig secures the runner's HTTP endpoints (today /metrics at
// metrics.addr). Names follow Confluent's for its REST clients, under
// http.; every value may be a ${env:NAME} or ${file:PATH} reference.
//
// The endpoints bind loopback unless metrics.addr names a host: ":9090"
// listens on 127.0.0.1:9090, "0.0.0.0:9090" on every interface. With
// basic auth or a bearer token set, a request needs one of them (either
// passes) or is answered 401.
type HTTPConfig struct {
	// SSLCertificateLocation and SSLKeyLocation (PEM) make the endpoints
	// HTTPS; http.ssl.certificate.location, http.ssl.key.location.
	SSLCertificateLocation string `yaml:"http.ssl.certificate.location"`
	SSLKeyLocation         string `yaml:"http.ssl.key.location"`
	// BasicAuthUserInfo is "user:password"; http.basic.auth.user.info. A secret.
	BasicAuthUserInfo string `yaml:"http.basic.auth.user.info"`
	// BearerAuthToken is accepted as "Authorization: Bearer <token>";
	// http.bearer.auth.token. A secret.
	BearerAuthToken string `yaml:"http.bearer.auth.token"`
}

func (h *HTTPConfig) fields() map[string]*string {
	return map[string]*string{
		"http.ssl.certificate.location": &h.SSLCertificateLocation,
		"http.ssl.key.location":         &h.SSLKeyLocation,
		"http.basic.auth.user.info":     &h.BasicAuthUserInfo,
		"http.bearer.auth.token":        &h.BearerAuthToken,
	}
}

func (h *HTTPConfig) set(key, value string) bool {
	if p, ok := h.fields()[key]; ok {
		*p = value
		return true
	}
	return false
}

func (h HTTPConfig) resolve() (HTTPConfig, error) {
	var errs []error
	for name, p := range h.fields() {
		v, err := secret.Resolve(name, *p)
		if err != nil {
			errs = append(errs, err)
		}
		*p = v
	}
	sortErrs(errs)
	return h, errors.Join(errs...)
}

func (h HTTPConfig) validate() []error {
	var errs []error
	if (h.SSLCertificateLocation == "") != (h.SSLKeyLocation == "") {
		errs = append(errs, errors.New("http.ssl.certificate.location and http.ssl.key.location: give both or neither"))
	}
	for _, f := range []struct{ name, path string }{
		{"http.ssl.certificate.location", h.SSLCertificateLocation}, {"http.ssl.key.location", h.SSLKeyLocation}} {
		if f.path != "" {
			if _, err := os.ReadFile(f.path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", f.name, err))
			}
		}
	}
	if h.BasicAuthUserInfo != "" && !strings.Contains(h.BasicAuthUserInfo, ":") {
		errs = append(errs, errors.New("http.basic.auth.user.info: want user:password"))
	}
	return errs
}

// loopbackDefault returns addr with 127.0.0.1 as its host when it names none.
func loopbackDefault(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// guard wraps next with the configured authentication.
func (h HTTPConfig) guard(next http.Handler) http.Handler {
	if h.BasicAuthUserInfo == "" && h.BearerAuthToken == "" {
		return next
	}
	wantUser, wantPass, _ := strings.Cut(h.BasicAuthUserInfo, ":")
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := false
		if tok, isBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); isBearer && h.BearerAuthToken != "" {
			ok = eq(tok, h.BearerAuthToken)
		} else if u, p, isBasic := r.BasicAuth(); isBasic && h.BasicAuthUserInfo != "" {
			ok = eq(u, wantUser) && eq(p, wantPass)
		}
		if !ok {
			if h.BasicAuthUserInfo != "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="eos-runner"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="eos-runner"`)
			}
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serveHTTP starts the runner's HTTP endpoints when metrics.addr is set and
// returns the function that stops them. A bind failure or bad TLS files
// stop startup.
func (r *Runner) serveHTTP() (stop func(), err error) {
	listen := r.cfg.MetricsAddr
	if listen == "" {
		listen = r.cfg.ApplicationServer
	}
	if listen == "" {
		return func() {}, nil
	}
	h := r.cfg.HTTP
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.m.reg, promhttp.HandlerOpts{}))
	r.routeQueries(mux) // queryhttp.go
	addr := loopbackDefault(listen)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.addr: %w", err)
	}
	srv := &http.Server{Handler: h.guard(mux), ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if h.SSLCertificateLocation != "" {
		tc, err := certs.ServerConfig(h.SSLCertificateLocation, h.SSLKeyLocation, "")
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("http.ssl.certificate.location: %w", err)
		}
		srv.TLSConfig, scheme = tc, "https"
	}
	go func() {
		var err error
		if srv.TLSConfig != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("metrics server", "err", err)
		}
	}()
	r.log.Info("http endpoints listening", "url", scheme+"://"+ln.Addr().String()+"/metrics",
		"auth", h.BasicAuthUserInfo != "" || h.BearerAuthToken != "")
	return func() { srv.Close() }, nil
}
