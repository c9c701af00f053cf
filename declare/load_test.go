package declare

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrokenFiles loads every file of testdata/broken and compares the
// problems reported, each with its file:line:column and message, with the
// file's .errors golden (regenerate with -update and review the diff).
// Every file is loaded once: all its problems come together.
func TestBrokenFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("broken corpus: %d files, %v", len(files), err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, err := Load(path)
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("Load: got %v, want Errors", err)
			}
			got := list.Error() + "\n"
			golden := strings.TrimSuffix(path, ".yaml") + ".errors"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			for _, p := range list {
				if p.Pos.Line == 0 || p.Pos.Column == 0 {
					t.Errorf("problem without a position: %v", p)
				}
			}
		})
	}
}
