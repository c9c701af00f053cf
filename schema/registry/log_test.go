package registry

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// stateOf replays dir's log into a fresh state, as a restart would, without
// rewriting it.
func stateOf(t *testing.T, dir string) *state {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, logName))
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	st := newState()
	if torn, err := replay(st, data); err != nil || torn {
		t.Fatalf("replay: torn=%v err=%v", torn, err)
	}
	return st
}

// TestMutationDurableBeforeReply checks, after every mutating request and
// before anything else happens, that the log on disk already replays to the
// state the server answered from.
func TestMutationDurableBeforeReply(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir)
	steps := []struct{ method, target, body string }{
		{"POST", "/subjects/a/versions", schemaBody(`{"type":"record","name":"R","fields":[{"name":"x","type":"int"}]}`)},
		{"POST", "/subjects/a/versions", schemaBody(`{"type":"record","name":"R","fields":[{"name":"x","type":"int"},{"name":"y","type":"int","default":1}]}`)},
		{"POST", "/subjects/b/versions", schemaBody(`"string"`)},
		{"PUT", "/config", `{"compatibility":"NONE"}`},
		{"PUT", "/config/a", `{"compatibility":"FULL"}`},
		{"DELETE", "/subjects/a/versions/1", ""},
		{"DELETE", "/subjects/a/versions/1?permanent=true", ""},
		{"DELETE", "/subjects/b", ""},
		{"DELETE", "/subjects/b?permanent=true", ""},
		{"DELETE", "/config/a", ""},
		{"DELETE", "/config", ""},
	}
	for _, step := range steps {
		status, body := h.do(step.method, step.target, step.body)
		if status != 200 {
			t.Fatalf("%s %s: %d %s", step.method, step.target, status, body)
		}
		got := stateOf(t, dir)
		if !reflect.DeepEqual(got, h.srv.st) {
			t.Fatalf("after %s %s: log replays to\n%+v\nserver holds\n%+v", step.method, step.target, got, h.srv.st)
		}
	}
}

// TestSnapshotRoundTrip checks that Open's rewrite keeps every part of the
// state, including ids no version uses any more.
func TestSnapshotRoundTrip(t *testing.T) {
	st := newState()
	recs := []*record{
		{Op: opFormat, Format: logFormat},
		{Op: opRegister, Subject: "a", Version: 1, ID: 1, Schema: `"int"`, Canonical: `"int"`},
		{Op: opRegister, Subject: "a", Version: 2, ID: 2, Schema: `"long"`, Canonical: `"long"`},
		{Op: opRegister, Subject: "b", Version: 1, ID: 1},
		{Op: opRegister, Subject: "c", Version: 1, ID: 3, Schema: `"bytes"`, Canonical: `"bytes"`},
		{Op: opDelete, Subject: "a", Versions: []int{1}},
		{Op: opDelete, Subject: "c", Versions: []int{1}},
		{Op: opDelete, Subject: "c", Versions: []int{1}, Permanent: true},
		{Op: opConfig, Level: "FULL"},
		{Op: opConfig, Subject: "b", Level: "NONE"},
		{Op: opConfig, Subject: "gone", Level: "FORWARD"},
		{Op: opConfigDelete, Subject: "gone"},
	}
	for _, r := range recs {
		if err := st.apply(r); err != nil {
			t.Fatalf("apply %+v: %v", r, err)
		}
	}
	again := newState()
	for _, r := range st.snapshot() {
		if err := again.apply(r); err != nil {
			t.Fatalf("apply snapshot record %+v: %v", r, err)
		}
	}
	if !reflect.DeepEqual(st, again) {
		t.Fatalf("snapshot lost state:\n%+v\n%+v", st, again)
	}
	if again.nextID != 4 || again.schemas[3] == nil || again.referenced(3) {
		t.Fatalf("id 3 must stay taken but unreferenced: nextID=%d", again.nextID)
	}
}

func TestReplay(t *testing.T) {
	const (
		format = `{"op":"format","format":1}` + "\n"
		reg1   = `{"op":"register","subject":"a","version":1,"id":1,"schema":"\"int\"","canonical":"\"int\""}` + "\n"
	)
	tests := []struct {
		name     string
		data     string
		wantTorn bool
		wantErr  string
		subjects int
	}{
		{name: "empty", data: ""},
		{name: "whole", data: format + reg1, subjects: 1},
		{name: "torn tail without newline", data: format + reg1[:20], wantTorn: true},
		{name: "torn tail garbage line", data: format + "{\"op\":\n", wantTorn: true},
		{name: "corrupt middle", data: format + "garbage\n" + reg1, wantErr: "line 2"},
		{name: "no format record", data: reg1, wantErr: "line 1"},
		{name: "future format", data: `{"op":"format","format":99}` + "\n", wantErr: "format 99"},
		{name: "unknown op", data: format + `{"op":"frobnicate"}` + "\n", wantErr: "unknown op"},
		{name: "undefined id", data: format + `{"op":"register","subject":"a","version":1,"id":7}` + "\n", wantErr: "undefined"},
		{name: "version not ascending", data: format + reg1 + `{"op":"register","subject":"a","version":1,"id":1}` + "\n", wantErr: "not above"},
		{name: "id redefined", data: format + reg1 + `{"op":"schema","id":1,"schema":"\"long\"","canonical":"\"long\""}` + "\n", wantErr: "already defined"},
		{name: "delete unknown version", data: format + reg1 + `{"op":"delete","subject":"a","versions":[5]}` + "\n", wantErr: "no such version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newState()
			torn, err := replay(st, []byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			if torn != tc.wantTorn {
				t.Fatalf("torn = %v, want %v", torn, tc.wantTorn)
			}
			if len(st.subjects) != tc.subjects {
				t.Fatalf("subjects = %d, want %d", len(st.subjects), tc.subjects)
			}
		})
	}
}

// TestOpenTornTailThenAppend checks that a torn tail is cut off by Open, so
// the next record does not land after garbage.
func TestOpenTornTailThenAppend(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir)
	if status, body := h.do("POST", "/subjects/a/versions", schemaBody(`"int"`)); status != 200 {
		t.Fatalf("register: %d %s", status, body)
	}
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"op":"register","subj`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	h.open()
	if status, body := h.do("POST", "/subjects/b/versions", schemaBody(`"long"`)); status != 200 || body != "{\"id\":2}\n" {
		t.Fatalf("register after torn tail: %d %s", status, body)
	}
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	h.open()
	if status, body := h.do("GET", "/subjects", ""); body != "[\"a\",\"b\"]\n" {
		t.Fatalf("subjects after reopen: %d %s", status, body)
	}
}

// TestOpenCorruptLog checks that corruption is reported, not silently reset.
func TestOpenCorruptLog(t *testing.T) {
	dir := t.TempDir()
	data := `{"op":"format","format":1}` + "\nnot json\n" + `{"op":"config","level":"NONE"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, logName), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, WithLogger(quietLogger())); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("Open corrupt log: err = %v, want line 2", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, logName))
	if err != nil || string(got) != data {
		t.Fatalf("a failed Open must leave the log untouched: %v %q", err, got)
	}
}

// TestClosedRefusesWrites checks that a mutation after Close is a 50001, not
// a panic or a silent in-memory-only change.
func TestClosedRefusesWrites(t *testing.T) {
	h := newHarness(t, t.TempDir())
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	req := schemaBody(`"int"`)
	rec := httptestDo(h.srv, "POST", "/subjects/a/versions", req)
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "50001") {
		t.Fatalf("register after Close: %d %s", rec.Code, rec.Body.String())
	}
	if got := httptestDo(h.srv, "GET", "/subjects", "").Body.String(); got != "[]\n" {
		t.Fatalf("state changed after a refused write: %s", got)
	}
}
