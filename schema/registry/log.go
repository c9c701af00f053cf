package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// On-disk format. The registry keeps one file, registry.log, in its
// directory: one JSON record per line, each line one whole mutation, written
// and fsynced before the HTTP response that reports it. The first record
// names the format. These names and fields are an on-disk format: never
// change their meaning, only add.
//
// A crash can leave the last line torn (no trailing newline, or not JSON).
// Such a tail was never acknowledged, so replay drops it; a bad line anywhere
// else is corruption and Open fails.
//
// On Open the replayed state is rewritten as a snapshot (temp file, fsync,
// rename, fsync of the directory), so the log only grows with the mutations
// of one run. Rejected: rewriting a whole JSON document per mutation is
// simpler to read but costs O(registry) per register.
const (
	logName   = "registry.log"
	logFormat = 1

	opFormat       = "format"        // Format
	opSchema       = "schema"        // ID, Schema, Canonical: define a global id
	opRegister     = "register"      // Subject, Version, ID, [Schema, Canonical: define], [Deleted]
	opDelete       = "delete"        // Subject, Versions, Permanent
	opConfig       = "config"        // Subject ("" = global), Level
	opConfigDelete = "config_delete" // Subject
)

// record is one line of the log.
type record struct {
	Op        string `json:"op"`
	Format    int    `json:"format,omitempty"`
	ID        int    `json:"id,omitempty"`
	Schema    string `json:"schema,omitempty"`
	Canonical string `json:"canonical,omitempty"`
	Subject   string `json:"subject,omitempty"`
	Version   int    `json:"version,omitempty"`
	Versions  []int  `json:"versions,omitempty"`
	Deleted   bool   `json:"deleted,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	Level     string `json:"level,omitempty"`
}

// wal is the open log file; nil-safe so the in-memory registry (Open("")) uses
// the same code path. Guarded by Server.mu.
type wal struct {
	f *os.File
	// broken is the first failed append. After it the file's tail is
	// unknown (the record may be whole on disk, torn, or absent), so the
	// in-memory state may no longer be what replay would give: one more
	// record computed from it could contradict the log (two registers of the
	// same version), so every later append fails until the registry is
	// reopened and replays what is really there. As Pebble treats a failed
	// WAL write.
	broken error
}

// append writes rec as one line and fsyncs it. On error the caller must not
// apply rec, and the log refuses all further appends (see broken).
func (w *wal) append(rec *record) error {
	if w == nil {
		return nil
	}
	if w.broken != nil {
		return fmt.Errorf("registry log unusable since an earlier failure, reopen the registry: %w", w.broken)
	}
	if w.f == nil {
		return errClosed
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode log record: %w", err)
	}
	line = append(line, '\n')
	if _, err := w.f.Write(line); err != nil {
		w.broken = fmt.Errorf("write %s: %w", w.f.Name(), err)
		return w.broken
	}
	if err := w.f.Sync(); err != nil {
		w.broken = fmt.Errorf("sync %s: %w", w.f.Name(), err)
		return w.broken
	}
	return nil
}

// errClosed is returned by appends after Close.
var errClosed = errors.New("registry log closed")

func (w *wal) close() error {
	if w == nil || w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// openLog replays dir/registry.log (if any) into a new state, rewrites it as a
// snapshot and returns the state with the log open for appending. torn
// reports whether a torn tail was dropped.
func openLog(dir string) (st *state, w *wal, torn bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, false, fmt.Errorf("create registry dir: %w", err)
	}
	path := filepath.Join(dir, logName)
	st = newState()
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, nil, false, fmt.Errorf("read registry log: %w", err)
	default:
		torn, err = replay(st, data)
		if err != nil {
			return nil, nil, false, fmt.Errorf("replay %s: %w", path, err)
		}
	}
	if err := writeSnapshot(dir, st); err != nil {
		return nil, nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, nil, false, fmt.Errorf("open registry log: %w", err)
	}
	return st, &wal{f: f}, torn, nil
}

// replay applies every whole line of data to st. A last line without its
// newline, or a last line that is not JSON, is a torn write and is dropped.
func replay(st *state, data []byte) (torn bool, err error) {
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		lineNo := i + 1
		if i == len(lines)-1 {
			// After the final newline: empty, or a write the crash tore.
			return len(line) > 0, nil
		}
		lastWhole := i == len(lines)-2 && len(lines[len(lines)-1]) == 0
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			if lastWhole {
				return true, nil
			}
			return false, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if i == 0 && rec.Op != opFormat {
			return false, fmt.Errorf("line 1: want a %q record, got %q", opFormat, rec.Op)
		}
		if err := st.apply(&rec); err != nil {
			return false, fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
	return false, nil
}

// writeSnapshot replaces dir/registry.log with st's snapshot atomically.
func writeSnapshot(dir string, st *state) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, rec := range st.snapshot() {
		if err := enc.Encode(rec); err != nil {
			return fmt.Errorf("encode snapshot: %w", err)
		}
	}
	tmp, err := os.CreateTemp(dir, logName+".tmp*")
	if err != nil {
		return fmt.Errorf("create snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, logName)); err != nil {
		return fmt.Errorf("install snapshot: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open registry dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync registry dir: %w", err)
	}
	return nil
}
