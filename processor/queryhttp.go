package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/eos-runner/eos-runner/serde"
)

// The interactive query endpoints (query.go), on the runner's HTTP server
// (httpserver.go), under its authentication:
//
//	GET /stores/{store}/keys/{key}                       one key of a key-value store
//	GET /stores/{store}/keys?from=&to=                   a key range (from inclusive, to exclusive; either open)
//	GET /stores/{store}/keys/{key}/windows?from=&to=     a key's windows by start (epoch ms or RFC 3339; both inclusive)
//
// Keys in the path and in from/to are text, read as the store's key serde
// wants: a string as is, an integer in decimal, JSON for the rest. Values
// come back as JSON: deserialized with the store's serdes (Avro as its
// native form: records as objects, unions as {"type": value}), a
// timestamped value as {"value", "timestamp"} (epoch ms), bytes in base64.
//
// Status: 200 found; 404 not found (the key's task runs here, and has no
// such key); 421 the key's task runs on another instance, whose instance
// id and application.server the body names; 503 the task restores here;
// 400 an unknown or unqueryable store, or a key the serde refuses. With
// ?proxy=true a 421 is instead answered by forwarding the request to the
// owner's application.server (once: a forwarded request is never
// forwarded again), and a range query asks every other instance for its
// partitions.

// proxiedHeader marks a forwarded query, so that it is not forwarded again.
const proxiedHeader = "X-Eos-Runner-Proxied"

// routeQueries adds the query endpoints to mux.
func (r *Runner) routeQueries(mux *http.ServeMux) {
	mux.HandleFunc("GET /stores/{store}/keys/{key}", r.serveKey)
	mux.HandleFunc("GET /stores/{store}/keys", r.serveRange)
	mux.HandleFunc("GET /stores/{store}/keys/{key}/windows", r.serveWindows)
}

type jsonNotLocal struct {
	Error     string `json:"error"`
	Store     string `json:"store"`
	Partition int32  `json:"partition"`
	Instance  string `json:"instance"`
	Server    string `json:"server"`
}

// queryFailed answers a query error, forwarding it to the owner when the
// request asks for it.
func (r *Runner) queryFailed(w http.ResponseWriter, req *http.Request, err error) {
	var nl *NotLocalError
	switch {
	case errors.As(err, &nl):
		if req.URL.Query().Get("proxy") == "true" && req.Header.Get(proxiedHeader) == "" && nl.Server != "" {
			r.forward(w, req, nl.Server)
			return
		}
		writeJSON(w, http.StatusMisdirectedRequest, jsonNotLocal{Error: "not local", Store: nl.Store, Partition: nl.Partition,
			Instance: nl.Instance, Server: nl.Server})
	case errors.Is(err, ErrNotRunning):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
}

// forward sends the request to another instance's application.server and
// copies its answer back.
func (r *Runner) forward(w http.ResponseWriter, req *http.Request, server string) {
	resp, err := r.ask(req.Context(), req, server, req.URL.Path, req.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error(), "server": server})
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// ask makes a query of another instance, marked as forwarded, with the
// original request's credentials.
func (r *Runner) ask(ctx context.Context, req *http.Request, server, path string, q url.Values) (*http.Response, error) {
	q = maps.Clone(q)
	q.Del("proxy")
	scheme := "http"
	if r.cfg.HTTP.SSLCertificateLocation != "" {
		scheme = "https"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	u := scheme + "://" + server + path
	if enc := q.Encode(); enc != "" {
		u += "?" + enc
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	out.Header.Set(proxiedHeader, "1")
	if a := req.Header.Get("Authorization"); a != "" {
		out.Header.Set("Authorization", a)
	}
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("forward to %s: %w", server, err)
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error { err := c.ReadCloser.Close(); c.cancel(); return err }

// keyFromText reads a key given as text as the store's key serde wants it.
func (r *Runner) keyFromText(store, text string) (any, error) {
	qs, err := r.queryState()
	if err != nil {
		return nil, err
	}
	spec, ok := qs.topo.Stores[store]
	if !ok {
		return nil, fmt.Errorf("store %q: %w: no such store", store, ErrNotQueryable)
	}
	return parseKeyText(spec.KeySerde, text)
}

// parseKeyText turns text into a value of the kind s serializes.
func parseKeyText(s serde.Serde, text string) (any, error) {
	switch s.(type) {
	case serde.String, *serde.String:
		return text, nil
	case serde.Bytes, *serde.Bytes:
		return []byte(text), nil
	case serde.Int64, *serde.Int64, serde.DecimalString, *serde.DecimalString:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("key %q: not an integer", text)
		}
		return n, nil
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return text, nil // a bare string
	}
	return v, nil
}

// jsonValue prepares a deserialized value for encoding/json.
func jsonValue(v any) any {
	switch x := v.(type) {
	case serde.ValueAndTimestamp:
		return map[string]any{"value": jsonValue(x.Value), "timestamp": x.Timestamp.UnixMilli()}
	case *serde.ValueAndTimestamp:
		if x == nil {
			return nil
		}
		return jsonValue(*x)
	}
	return v
}

// queryTime reads a time parameter: epoch milliseconds or RFC 3339.
func queryTime(q url.Values, name string, def time.Time) (time.Time, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s=%q: want epoch milliseconds or RFC 3339", name, s)
	}
	return t, nil
}

func (r *Runner) serveKey(w http.ResponseWriter, req *http.Request) {
	store := req.PathValue("store")
	key, err := r.keyFromText(store, req.PathValue("key"))
	if err != nil {
		r.queryFailed(w, req, err)
		return
	}
	res, err := r.Query(req.Context(), store, key)
	if err != nil {
		r.queryFailed(w, req, err)
		return
	}
	status := http.StatusOK
	if !res.Found {
		status = http.StatusNotFound
	}
	writeJSON(w, status, map[string]any{"store": store, "partition": res.Partition, "key": jsonValue(key),
		"found": res.Found, "value": jsonValue(res.Value), "instance": r.cfg.InstanceID})
}

type jsonEntry struct {
	Partition int32 `json:"partition"`
	Key       any   `json:"key"`
	Value     any   `json:"value"`
}

type jsonRange struct {
	Store     string         `json:"store"`
	Entries   []jsonEntry    `json:"entries"`
	Elsewhere []jsonNotLocal `json:"elsewhere"`
}

func (r *Runner) serveRange(w http.ResponseWriter, req *http.Request) {
	store := req.PathValue("store")
	q := req.URL.Query()
	var from, to any
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = r.keyFromText(store, s); err != nil {
			r.queryFailed(w, req, err)
			return
		}
	}
	if s := q.Get("to"); s != "" {
		if to, err = r.keyFromText(store, s); err != nil {
			r.queryFailed(w, req, err)
			return
		}
	}
	res, err := r.QueryRange(req.Context(), store, from, to)
	if err != nil {
		r.queryFailed(w, req, err)
		return
	}
	out := jsonRange{Store: store, Entries: []jsonEntry{}, Elsewhere: []jsonNotLocal{}}
	for _, e := range res.Entries {
		out.Entries = append(out.Entries, jsonEntry{Partition: e.Partition, Key: jsonValue(e.Key), Value: jsonValue(e.Value)})
	}
	missing := map[int32]*NotLocalError{}
	for _, nl := range res.Elsewhere {
		missing[nl.Partition] = nl
	}
	if q.Get("proxy") == "true" && req.Header.Get(proxiedHeader) == "" {
		// Ask each other instance once, and keep its answer for the
		// partitions we lack (entries stay grouped by partition).
		asked := map[string]bool{}
		for _, nl := range res.Elsewhere {
			if nl.Server == "" || asked[nl.Server] {
				continue
			}
			asked[nl.Server] = true
			var theirs jsonRange
			if err := r.askJSON(req, nl.Server, req.URL.Path, q, &theirs); err != nil {
				writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error(), "server": nl.Server})
				return
			}
			got := map[int32]bool{}
			for _, e := range theirs.Entries {
				if missing[e.Partition] != nil {
					out.Entries = append(out.Entries, e)
					got[e.Partition] = true
				}
			}
			// A partition it runs but holds no entry of in the range is
			// answered too: it is not among its own elsewhere list.
			elsewhere := map[int32]bool{}
			for _, o := range theirs.Elsewhere {
				elsewhere[o.Partition] = true
			}
			for p, m := range missing {
				if m.Server == nl.Server && !elsewhere[p] {
					delete(missing, p)
				}
			}
		}
		sortEntries(out.Entries)
	}
	for _, p := range slices.Sorted(maps.Keys(missing)) {
		nl := missing[p]
		out.Elsewhere = append(out.Elsewhere, jsonNotLocal{Error: "not local", Store: store, Partition: p, Instance: nl.Instance, Server: nl.Server})
	}
	writeJSON(w, http.StatusOK, out)
}

// sortEntries orders entries by partition, keeping each partition's
// key-byte order.
func sortEntries(es []jsonEntry) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Partition < es[j].Partition })
}

// askJSON makes a forwarded query and decodes its 200 answer.
func (r *Runner) askJSON(req *http.Request, server, path string, q url.Values, into any) error {
	resp, err := r.ask(req.Context(), req, server, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s answered %s: %s", server, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

func (r *Runner) serveWindows(w http.ResponseWriter, req *http.Request) {
	store := req.PathValue("store")
	key, err := r.keyFromText(store, req.PathValue("key"))
	if err != nil {
		r.queryFailed(w, req, err)
		return
	}
	q := req.URL.Query()
	from, err := queryTime(q, "from", time.UnixMilli(0))
	if err == nil {
		var to time.Time
		if to, err = queryTime(q, "to", time.Now()); err == nil {
			var res WindowsResult
			if res, err = r.QueryWindows(req.Context(), store, key, from, to); err == nil {
				ws := make([]map[string]any, 0, len(res.Windows))
				for _, wv := range res.Windows {
					ws = append(ws, map[string]any{"start": wv.Start.UnixMilli(), "value": jsonValue(wv.Value)})
				}
				writeJSON(w, http.StatusOK, map[string]any{"store": store, "partition": res.Partition, "key": jsonValue(key),
					"windows": ws, "instance": r.cfg.InstanceID})
				return
			}
		}
	}
	r.queryFailed(w, req, err)
}
