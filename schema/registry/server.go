package registry

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eos-runner/eos-runner/schema"
)

// ContentType is the media type of the Confluent Schema Registry API, v1.
// Replies carry it; requests may also send application/json or nothing.
const ContentType = "application/vnd.schemaregistry.v1+json"

// maxBody bounds a request body; a schema larger than this is refused with
// 413 rather than read into memory.
const maxBody = 16 << 20

// Server is an embedded, Confluent-compatible schema registry: an
// http.Handler over an in-memory model that every mutation reaches only after
// its record is durable in the registry directory.
//
// The order on every mutation is: validate against the state, append the
// record and fsync it, apply it to the state, answer. A failed write answers
// 50001 and leaves the state as it was, so what a client was told always
// survives a crash, and what survives is always a state the API could reach.
type Server struct {
	log    *slog.Logger
	routes []route

	// mu guards st and wal. Mutations hold it across the fsync: the registry
	// sees few writes, and one writer at a time keeps id and version
	// assignment trivially ordered.
	mu  sync.RWMutex
	st  *state
	wal *wal // nil when in memory

	// parsed caches each schema id's parsed form for compatibility checks;
	// its own lock so read-only handlers can fill it under mu.RLock.
	parsedMu sync.Mutex
	parsed   map[int]*schema.Schema

	// users, when not nil, are the only credentials accepted (WithBasicAuth);
	// tls, when not nil, makes Serve speak HTTPS (WithTLS). Set by Open only.
	users map[string]string
	tls   *tls.Config
}

// Option configures Open.
type Option func(*Server)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.log = l
		}
	}
}

// Open returns a registry that keeps its schemas, ids, versions, deletions
// and configuration in dir, reloading what a previous run left there; dir is
// created if missing. Open("") keeps everything in memory. Close releases the
// directory.
//
// Open rewrites the log as a snapshot of the replayed state, so it needs
// write access to dir even when nothing changes.
func Open(dir string, opts ...Option) (*Server, error) {
	s := &Server{log: slog.Default(), routes: routeTable(), parsed: make(map[int]*schema.Schema)}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("component", "schema-registry")
	if dir == "" {
		s.st = newState()
		return s, nil
	}
	st, w, torn, err := openLog(dir)
	if err != nil {
		return nil, fmt.Errorf("open schema registry in %s: %w", dir, err)
	}
	if torn {
		s.log.Warn("dropped a torn last record of the registry log (a write the crash interrupted; it was never acknowledged)", "dir", dir)
	}
	s.st, s.wal = st, w
	s.log.Info("schema registry opened", "dir", dir, "schemas", len(st.schemas), "subjects", len(st.subjects), "next_id", st.nextID)
	return s, nil
}

// Close closes the registry's log. Requests after Close that mutate fail with
// 50001; reads still work.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.wal.close(); err != nil {
		return fmt.Errorf("close schema registry log: %w", err)
	}
	return nil
}

// commit makes rec durable, then applies it. Callers hold s.mu and have
// validated rec against the state.
func (s *Server) commit(rec *record) *apiError {
	if err := s.wal.append(rec); err != nil {
		s.log.Error("registry log write failed; mutation refused", "op", rec.Op, "subject", rec.Subject, "err", err)
		return errf(codeInternal, "Error while storing the change: %v", err)
	}
	if err := s.st.apply(rec); err != nil {
		// Validated before writing, so this is a bug; the state is unchanged
		// but the log now holds a record replay will refuse. Stop writing.
		if s.wal != nil {
			s.wal.broken = fmt.Errorf("state refused logged record %+v: %w", rec, err)
		}
		s.log.Error("registry state refused a validated record", "op", rec.Op, "subject", rec.Subject, "err", err)
		return errf(codeInternal, "Internal error applying the change: %v", err)
	}
	return nil
}

// parsedSchema returns id's parsed schema, parsing and caching it on first use.
// Callers hold s.mu (read or write).
func (s *Server) parsedSchema(id int) (*schema.Schema, error) {
	s.parsedMu.Lock()
	defer s.parsedMu.Unlock()
	if p := s.parsed[id]; p != nil {
		return p, nil
	}
	e := s.st.schemas[id]
	if e == nil {
		return nil, fmt.Errorf("schema id %d not in the table", id)
	}
	p, err := schema.Parse(e.text)
	if err != nil {
		return nil, fmt.Errorf("stored schema id %d no longer parses: %w", id, err)
	}
	s.parsed[id] = p
	return p, nil
}

// route is one endpoint: a method and a path whose "*" segments are captured
// (path-unescaped, non-empty) and passed to h in order.
type route struct {
	method string
	path   []string
	h      func(s *Server, r *http.Request, args []string) (any, *apiError)
}

// rawBody is a reply written as is (the .../schema endpoints answer the
// schema text itself, not a JSON string holding it).
type rawBody string

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	segs, ok := splitPath(r.URL.EscapedPath())
	var (
		body     any
		apiErr   *apiError
		matched  bool
		methodOK bool
	)
	if ok {
		for _, rt := range s.routes {
			args, m := matchPath(rt.path, segs)
			if !m {
				continue
			}
			matched = true
			if rt.method != r.Method {
				continue
			}
			methodOK = true
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			body, apiErr = s.safeCall(rt, r, args)
			break
		}
	}
	switch {
	case !matched:
		apiErr = errf(codeNotFound, "HTTP 404 Not Found: no endpoint %s %s", r.Method, r.URL.Path)
	case !methodOK:
		apiErr = errf(codeMethodNotAllowed, "HTTP 405 Method Not Allowed: %s %s", r.Method, r.URL.Path)
	}
	w.Header().Set("Content-Type", ContentType)
	if apiErr != nil {
		if apiErr.Status >= 500 {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", apiErr.Code, "message", apiErr.Message)
		} else {
			s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "code", apiErr.Code, "message", apiErr.Message)
		}
		w.WriteHeader(apiErr.Status)
		_ = json.NewEncoder(w).Encode(apiErr)
		return
	}
	if raw, ok := body.(rawBody); ok {
		_, _ = w.Write([]byte(raw))
		return
	}
	_ = json.NewEncoder(w).Encode(body)
}

// safeCall runs a handler and turns a panic into 50001, so a bug in one
// request never takes the embedded registry (and the dev process) down.
func (s *Server) safeCall(rt route, r *http.Request, args []string) (body any, apiErr *apiError) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
			body, apiErr = nil, errf(codeInternal, "Internal error: %v", p)
		}
	}()
	return rt.h(s, r, args)
}

// splitPath splits an escaped URL path into unescaped segments, so a subject
// holding "/" (sent as %2F) stays one segment. A trailing slash is ignored.
func splitPath(escaped string) ([]string, bool) {
	escaped = strings.TrimPrefix(escaped, "/")
	escaped = strings.TrimSuffix(escaped, "/")
	if escaped == "" {
		return nil, true
	}
	parts := strings.Split(escaped, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

func matchPath(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var args []string
	for i, p := range pattern {
		switch {
		case p == "*":
			if segs[i] == "" {
				return nil, false
			}
			args = append(args, segs[i])
		case p != segs[i]:
			return nil, false
		}
	}
	return args, true
}

// ListenAndServe binds addr (host:port; port 0 picks a free one), calls
// onListen (if not nil) with the bound address before serving, and serves
// until ctx is done, then shuts down gracefully, letting requests in flight
// finish for up to five seconds. It returns nil after a shutdown caused by
// ctx, else the error that stopped it. It does not Close the registry.
func (s *Server) ListenAndServe(ctx context.Context, addr string, onListen func(net.Addr)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("schema registry listen on %s: %w", addr, err)
	}
	if onListen != nil {
		onListen(ln.Addr())
	}
	return s.Serve(ctx, ln)
}

// Serve serves the registry on ln until ctx is done (see ListenAndServe). It
// takes ownership of ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	scheme := "http://"
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
		scheme = "https://"
	}
	s.log.Info("schema registry listening", "addr", ln.Addr().String(), "url", scheme+ln.Addr().String(),
		"tls", s.tls != nil, "basic_auth", s.users != nil)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("schema registry serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(shutCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		// A connection stayed busy (or was opened and never used) past the
		// grace period. Every change is durable before its response, so a
		// forced close loses nothing.
		s.log.Warn("schema registry: closing connections still open after the shutdown grace period")
		err = hs.Close()
	}
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	s.log.Info("schema registry stopped", "addr", ln.Addr().String())
	if err != nil {
		return fmt.Errorf("schema registry shutdown: %w", err)
	}
	return nil
}
