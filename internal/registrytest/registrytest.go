// Package registrytest serves an in-memory embedded schema registry over
// HTTP for tests, so that Avro serdes and the CLI talk to the real REST API.
package registrytest

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/eos-runner/eos-runner/schema/registry"
)

// Serve starts an in-memory registry for the life of the test and returns a
// client for it and its URL.
func Serve(tb testing.TB) (*registry.Client, string) {
	tb.Helper()
	srv, err := registry.Open("", registry.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	tb.Cleanup(func() {
		hs.Close()
		_ = srv.Close()
	})
	return registry.NewClient(hs.URL), hs.URL
}
