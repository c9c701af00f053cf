package registry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/riferrei/srclient"
)

// liveServer is a registry served over a real listener on 127.0.0.1:0.
type liveServer struct {
	srv  *Server
	url  string
	stop func() // cancels and waits for ListenAndServe; returns its error via t
}

func startServer(t *testing.T, dir string) *liveServer {
	t.Helper()
	srv, err := Open(dir, WithLogger(quietLogger()))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatalf("ListenAndServe: %v", err)
	}
	stopped := false
	ls := &liveServer{srv: srv, url: "http://" + addr.String()}
	ls.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ListenAndServe after cancel: %v, want nil", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	t.Cleanup(ls.stop)
	return ls
}

const (
	orderV1  = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"}]}`
	orderV2  = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"note","type":"string","default":""}]}`
	orderBad = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"qty","type":"int"}]}`
)

func srCode(t *testing.T, err error) int {
	t.Helper()
	var e srclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an srclient.Error", err, err)
	}
	return e.Code
}

// TestSrclient drives the registry with srclient itself, over HTTP, through
// every call the runner and its users make.
func TestSrclient(t *testing.T) {
	ls := startServer(t, t.TempDir())
	sr := srclient.NewSchemaRegistryClient(ls.url)
	sr.CachingEnabled(false)

	s1, err := sr.CreateSchema("orders-value", orderV1, srclient.Avro)
	if err != nil {
		t.Fatalf("CreateSchema v1: %v", err)
	}
	if s1.ID() != 1 {
		t.Fatalf("v1 id = %d, want 1", s1.ID())
	}
	again, err := sr.CreateSchema("orders-value", orderV1, srclient.Avro)
	if err != nil || again.ID() != 1 {
		t.Fatalf("CreateSchema v1 again: id %v err %v, want id 1", again, err)
	}
	s2, err := sr.CreateSchema("orders-value", orderV2, srclient.Avro)
	if err != nil || s2.ID() != 2 {
		t.Fatalf("CreateSchema v2: %v %v", s2, err)
	}

	latest, err := sr.GetLatestSchema("orders-value")
	if err != nil {
		t.Fatalf("GetLatestSchema: %v", err)
	}
	if latest.ID() != 2 || latest.Version() != 2 || latest.Schema() != orderV2 {
		t.Fatalf("latest = id %d version %d %s", latest.ID(), latest.Version(), latest.Schema())
	}
	byVersion, err := sr.GetSchemaByVersion("orders-value", 1)
	if err != nil || byVersion.ID() != 1 || byVersion.Schema() != orderV1 {
		t.Fatalf("GetSchemaByVersion 1: %v %v", byVersion, err)
	}
	byID, err := sr.GetSchema(1)
	if err != nil || byID.Schema() != orderV1 {
		t.Fatalf("GetSchema(1): %v %v", byID, err)
	}
	if byID.Codec() == nil {
		t.Fatal("srclient could not build a codec from the schema the registry returned")
	}
	if _, err := sr.GetSchema(99); srCode(t, err) != codeSchemaNotFound {
		t.Fatalf("GetSchema(99): %v", err)
	}

	versions, err := sr.GetSchemaVersions("orders-value")
	if err != nil || len(versions) != 2 || versions[0] != 1 || versions[1] != 2 {
		t.Fatalf("GetSchemaVersions: %v %v", versions, err)
	}
	subjects, err := sr.GetSubjects()
	if err != nil || len(subjects) != 1 || subjects[0] != "orders-value" {
		t.Fatalf("GetSubjects: %v %v", subjects, err)
	}
	found, err := sr.LookupSchema("orders-value", orderV1, srclient.Avro)
	if err != nil || found.ID() != 1 || found.Version() != 1 {
		t.Fatalf("LookupSchema: %v %v", found, err)
	}
	if _, err := sr.LookupSchema("orders-value", `"string"`, srclient.Avro); srCode(t, err) != codeSchemaNotFound {
		t.Fatalf("LookupSchema unknown: %v", err)
	}
	pairs, err := sr.GetSubjectVersionsById(2)
	if err != nil || len(pairs) != 1 {
		t.Fatalf("GetSubjectVersionsById: %v %v", pairs, err)
	}

	ok, err := sr.IsSchemaCompatible("orders-value", orderV2, "latest", srclient.Avro)
	if err != nil || !ok {
		t.Fatalf("IsSchemaCompatible(v2): %v %v", ok, err)
	}
	ok, err = sr.IsSchemaCompatible("orders-value", orderBad, "latest", srclient.Avro)
	if err != nil || ok {
		t.Fatalf("IsSchemaCompatible(bad): %v %v, want false", ok, err)
	}

	// 409 with the reasons: the field path and the rule.
	_, err = sr.CreateSchema("orders-value", orderBad, srclient.Avro)
	if srCode(t, err) != codeIncompatibleSchema {
		t.Fatalf("CreateSchema incompatible: %v", err)
	}
	for _, want := range []string{"/fields/qty", "READER_FIELD_MISSING_DEFAULT_VALUE", "BACKWARD", `subject \"orders-value\"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("409 message %q lacks %q", err.Error(), want)
		}
	}

	global, err := sr.GetGlobalCompatibilityLevel()
	if err != nil || *global != srclient.Backward {
		t.Fatalf("GetGlobalCompatibilityLevel: %v %v", global, err)
	}
	lvl, err := sr.ChangeSubjectCompatibilityLevel("orders-value", srclient.None)
	if err != nil || *lvl != srclient.None {
		t.Fatalf("ChangeSubjectCompatibilityLevel: %v %v", lvl, err)
	}
	lvl, err = sr.GetCompatibilityLevel("orders-value", false)
	if err != nil || *lvl != srclient.None {
		t.Fatalf("GetCompatibilityLevel: %v %v", lvl, err)
	}
	lvl, err = sr.GetCompatibilityLevel("other", true)
	if err != nil || *lvl != srclient.Backward {
		t.Fatalf("GetCompatibilityLevel(other, defaultToGlobal): %v %v", lvl, err)
	}
	s3, err := sr.CreateSchema("orders-value", orderBad, srclient.Avro)
	if err != nil || s3.ID() != 3 {
		t.Fatalf("CreateSchema at NONE: %v %v", s3, err)
	}

	if err := sr.DeleteSubjectByVersion("orders-value", 3, true); err != nil {
		t.Fatalf("DeleteSubjectByVersion(3, permanent): %v", err)
	}
	if err := sr.DeleteSubject("orders-value", false); err != nil {
		t.Fatalf("DeleteSubject soft: %v", err)
	}
	all, err := sr.GetSubjectsIncludingDeleted()
	if err != nil || len(all) != 1 {
		t.Fatalf("GetSubjectsIncludingDeleted: %v %v", all, err)
	}
	if subjects, err := sr.GetSubjects(); err != nil || len(subjects) != 0 {
		t.Fatalf("GetSubjects after soft delete: %v %v", subjects, err)
	}
	// srclient's permanent delete soft-deletes first, which 40404s on an
	// already soft-deleted subject, as it does against Confluent's.
	if err := sr.DeleteSubject("orders-value", true); srCode(t, err) != codeSubjectSoftDeleted {
		t.Fatalf("DeleteSubject permanent after soft: %v", err)
	}
	if _, err := sr.GetLatestSchema("orders-value"); srCode(t, err) != codeSubjectNotFound {
		t.Fatalf("GetLatestSchema after delete: %v", err)
	}
}

// TestServeRestart checks persistence through a real restart of the served
// registry: ids keep counting, and shutdown on cancel closes the listener.
func TestServeRestart(t *testing.T) {
	dir := t.TempDir()
	ls := startServer(t, dir)
	sr := srclient.NewSchemaRegistryClient(ls.url)
	if _, err := sr.CreateSchema("a-value", orderV1, srclient.Avro); err != nil {
		t.Fatal(err)
	}
	if _, err := sr.CreateSchema("a-value", orderV2, srclient.Avro); err != nil {
		t.Fatal(err)
	}
	ls.stop()
	if resp, err := http.Get(ls.url + "/subjects"); err == nil {
		resp.Body.Close()
		t.Fatal("registry still answering after its context was cancelled")
	}

	ls2 := startServer(t, dir)
	sr2 := srclient.NewSchemaRegistryClient(ls2.url)
	latest, err := sr2.GetLatestSchema("a-value")
	if err != nil || latest.ID() != 2 || latest.Version() != 2 || latest.Schema() != orderV2 {
		t.Fatalf("after restart, latest = %v %v", latest, err)
	}
	s, err := sr2.CreateSchema("b-value", `"string"`, srclient.Avro)
	if err != nil || s.ID() != 3 {
		t.Fatalf("after restart, new id = %v %v, want 3", s, err)
	}
}

func TestListenAndServeBadAddr(t *testing.T) {
	srv, err := Open("", WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	called := false
	err = srv.ListenAndServe(context.Background(), "127.0.0.1:-1", func(net.Addr) { called = true })
	if err == nil || called {
		t.Fatalf("ListenAndServe on a bad address: err %v, onListen called %v", err, called)
	}
}
