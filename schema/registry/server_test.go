package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// TestBrokenLogRefusesWrites checks that after one failed log write every
// later mutation is refused, even once the file would accept writes again,
// and that reopening recovers what was durable.
func TestBrokenLogRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir)
	if status, body := h.do("POST", "/subjects/a/versions", schemaBody(`"int"`)); status != 200 {
		t.Fatalf("register: %d %s", status, body)
	}
	good := h.srv.wal.f
	ro, err := os.Open(filepath.Join(dir, logName)) // read-only: Write fails
	if err != nil {
		t.Fatal(err)
	}
	h.srv.wal.f = ro
	rec := httptestDo(h.srv, "POST", "/subjects/b/versions", schemaBody(`"long"`))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "50001") {
		t.Fatalf("register on a failing log: %d %s", rec.Code, rec.Body.String())
	}
	ro.Close()
	h.srv.wal.f = good
	rec = httptestDo(h.srv, "PUT", "/config", `{"compatibility":"NONE"}`)
	if rec.Code != 500 {
		t.Fatalf("write after a log failure: %d %s, want 500", rec.Code, rec.Body.String())
	}
	if got := httptestDo(h.srv, "GET", "/subjects", "").Body.String(); got != "[\"a\"]\n" {
		t.Fatalf("refused writes changed the state: %s", got)
	}
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	h.open()
	if status, body := h.do("POST", "/subjects/b/versions", schemaBody(`"long"`)); status != 200 || body != "{\"id\":2}\n" {
		t.Fatalf("register after reopen: %d %s", status, body)
	}
}

// TestConcurrentRegister registers from many goroutines at once (run with
// -race): every schema gets one id, ids are dense, each subject's versions
// are 1..n, and the log replays to the same state.
func TestConcurrentRegister(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir)
	if status, body := h.do("PUT", "/config", `{"compatibility":"NONE"}`); status != 200 {
		t.Fatalf("config: %d %s", status, body)
	}
	const workers, perWorker, schemas = 8, 20, 10
	var wg sync.WaitGroup
	ids := make([][]int, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				n := (w + i) % schemas
				body := schemaBody(fmt.Sprintf(`{"type":"fixed","name":"F%d","size":%d}`, n, n+1))
				rec := httptestDo(h.srv, "POST", fmt.Sprintf("/subjects/s%d/versions", w%3), body)
				var got struct{ ID int }
				if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
					t.Errorf("register: %d %s", rec.Code, rec.Body.String())
					return
				}
				ids[w] = append(ids[w], got.ID)
			}
		}()
	}
	wg.Wait()
	byCanonical := map[int]int{} // schema n -> id
	for w := range workers {
		for i, id := range ids[w] {
			n := (w + i) % schemas
			if old, ok := byCanonical[n]; ok && old != id {
				t.Fatalf("schema %d got ids %d and %d", n, old, id)
			}
			byCanonical[n] = id
		}
	}
	seen := map[int]bool{}
	for _, id := range byCanonical {
		seen[id] = true
	}
	for id := 1; id <= schemas; id++ {
		if !seen[id] {
			t.Fatalf("ids not dense: %v", byCanonical)
		}
	}
	for name, sub := range h.srv.st.subjects {
		for i, v := range sub.versions {
			if v.num != i+1 {
				t.Fatalf("subject %s versions not 1..n: version %d at %d", name, v.num, i)
			}
		}
	}
	if got := stateOf(t, dir); !reflect.DeepEqual(got, h.srv.st) {
		t.Fatalf("log replays to a different state")
	}
}
