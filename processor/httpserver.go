package processor

import (
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eos-runner/eos-runner/internal/certs"
	"github.com/eos-runner/eos-runner/internal/secret"
)

// HTTPConfig secures the runner's HTTP endpoints (httpMux) at metrics.addr
// and application.server. Names follow Confluent's for its REST clients, under
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

// httpMux routes the runner's endpoints:
//
//	/metrics   Prometheus text format (metrics.go, docs/operations.md)
//	/healthz   200 while the process is alive: its poll loop runs (or has not
//	           started yet) and its producer hit no fatal error; else 503.
//	           For a liveness probe.
//	/readyz    200 once every assigned task is restored and running; 503
//	           before the first assignment, while a restore or a rebalance is
//	           under way, and once stopping. JSON with the counts either way.
//	           For a readiness probe.
//	/topology  the topology as Describe prints it; ?format=mermaid for a
//	           Mermaid flowchart.
func (r *Runner) httpMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		status, body := http.StatusOK, map[string]string{"status": "ok"}
		if err := r.health.liveness(time.Now(), r.producerFatal.Load()); err != nil {
			status, body = http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "reason": err.Error()}
		}
		writeJSON(w, status, body)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		rd := r.health.readiness(time.Now(), r.producerFatal.Load())
		status := http.StatusOK
		if !rd.Ready {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, rd)
	})
	mux.HandleFunc("/topology", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch req.URL.Query().Get("format") {
		case "", "text":
			fmt.Fprint(w, r.topo.Describe())
		case "mermaid":
			fmt.Fprint(w, r.topo.Mermaid())
		default:
			http.Error(w, "format: want text or mermaid", http.StatusBadRequest)
		}
	})
	r.routeQueries(mux) // /stores/...: interactive queries (queryhttp.go)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// httpAddrs are the addresses the endpoints listen on: metrics.addr and
// application.server, each once.
func (c Config) httpAddrs() []string {
	var out []string
	for _, a := range []string{c.MetricsAddr, c.ApplicationServer} {
		if a != "" && !slices.Contains(out, loopbackDefault(a)) {
			out = append(out, loopbackDefault(a))
		}
	}
	return out
}

// serveHTTP starts the runner's HTTP endpoints on metrics.addr and
// application.server, when set, and returns the function that stops them.
// A bind failure or bad TLS files stop startup.
func (r *Runner) serveHTTP() (stop func(), err error) {
	addrs := r.cfg.httpAddrs()
	if len(addrs) == 0 {
		return func() {}, nil
	}
	h := r.cfg.HTTP
	var tc *tls.Config
	scheme := "http"
	if h.SSLCertificateLocation != "" {
		if tc, err = certs.ServerConfig(h.SSLCertificateLocation, h.SSLKeyLocation, ""); err != nil {
			return nil, fmt.Errorf("http.ssl.certificate.location: %w", err)
		}
		scheme = "https"
	}
	handler := h.guard(r.httpMux())
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			s.Close()
		}
	}
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			stop()
			setting := "metrics.addr"
			if addr == loopbackDefault(r.cfg.ApplicationServer) {
				setting = "application.server"
			}
			return nil, fmt.Errorf("%s: %w", setting, err)
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tc}
		servers = append(servers, srv)
		go func() {
			var err error
			if srv.TLSConfig != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("http server", "addr", ln.Addr().String(), "err", err)
			}
		}()
		r.log.Info("http endpoints listening", "url", scheme+"://"+ln.Addr().String()+"/",
			"endpoints", "/metrics /healthz /readyz /topology", "auth", h.BasicAuthUserInfo != "" || h.BearerAuthToken != "")
	}
	return stop, nil
}
