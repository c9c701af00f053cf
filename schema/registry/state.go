package registry

import (
	"fmt"
	"slices"
	"sort"
)

// state is the registry's whole in-memory model: the global schema table, the
// subjects with their versions, and the compatibility configuration. It does
// no I/O and knows nothing about Avro: schemas are identified by the canonical
// form the HTTP layer computed, so it can be driven by replaying the log.
//
// Invariants:
//  1. An id, once given to a canonical form, belongs to it forever, even after
//     every version using it is hard-deleted: bytes written with that id keep
//     meaning the same schema, and re-registering the schema gets it back.
//  2. nextID is above every id ever given, so ids are never reused.
//  3. A subject's versions are ascending; a new version is one above the
//     highest version still stored (soft-deleted ones included), so a version
//     number is reused only after a hard delete, as in Confluent's registry.
//
// Guarded by Server.mu.
type state struct {
	schemas      map[int]*schemaEntry
	byCanonical  map[string]int
	subjects     map[string]*subject
	globalLevel  string
	subjectLevel map[string]string
	nextID       int
}

// schemaEntry is one entry of the global schema table.
type schemaEntry struct {
	id        int
	text      string // as first registered; what GET /schemas/ids/{id} returns
	canonical string
}

// subject holds the stored versions of one subject, ascending by number.
type subject struct {
	versions []*version
}

// version is one registered version of a subject.
type version struct {
	num     int
	id      int
	deleted bool // soft-deleted: hidden unless ?deleted=true, still resolvable by id
}

// defaultGlobalLevel is the registry's level until PUT /config changes it, as
// in Confluent's registry.
const defaultGlobalLevel = "BACKWARD"

func newState() *state {
	return &state{
		schemas:      make(map[int]*schemaEntry),
		byCanonical:  make(map[string]int),
		subjects:     make(map[string]*subject),
		globalLevel:  defaultGlobalLevel,
		subjectLevel: make(map[string]string),
		nextID:       1,
	}
}

// live reports whether the subject has at least one version that is not
// soft-deleted.
func (sub *subject) live() bool {
	for _, v := range sub.versions {
		if !v.deleted {
			return true
		}
	}
	return false
}

// find returns the stored version num, or nil.
func (sub *subject) find(num int) *version {
	i, ok := slices.BinarySearchFunc(sub.versions, num, func(v *version, n int) int { return v.num - n })
	if !ok {
		return nil
	}
	return sub.versions[i]
}

// latest returns the highest version, skipping soft-deleted ones unless
// withDeleted; nil if there is none.
func (sub *subject) latest(withDeleted bool) *version {
	for i := len(sub.versions) - 1; i >= 0; i-- {
		if withDeleted || !sub.versions[i].deleted {
			return sub.versions[i]
		}
	}
	return nil
}

// nextVersion is the number the next registration under this subject gets.
func (sub *subject) nextVersion() int {
	if len(sub.versions) == 0 {
		return 1
	}
	return sub.versions[len(sub.versions)-1].num + 1
}

// visible returns the versions a listing shows, ascending.
func (sub *subject) visible(withDeleted bool) []*version {
	var out []*version
	for _, v := range sub.versions {
		if withDeleted || !v.deleted {
			out = append(out, v)
		}
	}
	return out
}

// subject returns the subject if it has versions a caller may see (any
// version when withDeleted, else a live one), or nil.
func (st *state) subject(name string, withDeleted bool) *subject {
	sub := st.subjects[name]
	if sub == nil || len(sub.versions) == 0 {
		return nil
	}
	if !withDeleted && !sub.live() {
		return nil
	}
	return sub
}

// subjectNames lists subjects a caller may see, sorted.
func (st *state) subjectNames(withDeleted bool) []string {
	out := []string{}
	for name := range st.subjects {
		if st.subject(name, withDeleted) != nil {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// referenced reports whether any stored version (soft-deleted included) uses
// id; an id nobody references any more is answered "not found" even though
// the table keeps it (invariant 1).
func (st *state) referenced(id int) bool {
	for _, sub := range st.subjects {
		for _, v := range sub.versions {
			if v.id == id {
				return true
			}
		}
	}
	return false
}

// subjectVersion names one version of one subject.
type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// usesOf lists the versions that use id, sorted by subject then version.
func (st *state) usesOf(id int, withDeleted bool) []subjectVersion {
	out := []subjectVersion{}
	for name, sub := range st.subjects {
		for _, v := range sub.versions {
			if v.id == id && (withDeleted || !v.deleted) {
				out = append(out, subjectVersion{Subject: name, Version: v.num})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Subject != out[j].Subject {
			return out[i].Subject < out[j].Subject
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// level returns the subject's configured level, else the global one.
func (st *state) level(subjectName string) string {
	if l, ok := st.subjectLevel[subjectName]; ok {
		return l
	}
	return st.globalLevel
}

// apply changes the state by one log record. Live mutations are validated
// before their record is written, so an error here means a log that does not
// describe a possible history: corruption, or a bug.
func (st *state) apply(rec *record) error {
	switch rec.Op {
	case opFormat:
		if rec.Format != logFormat {
			return fmt.Errorf("log format %d, this build reads %d", rec.Format, logFormat)
		}
	case opSchema:
		return st.define(rec.ID, rec.Schema, rec.Canonical)
	case opRegister:
		if rec.Schema != "" {
			if err := st.define(rec.ID, rec.Schema, rec.Canonical); err != nil {
				return err
			}
		}
		if st.schemas[rec.ID] == nil {
			return fmt.Errorf("register %q version %d: schema id %d undefined", rec.Subject, rec.Version, rec.ID)
		}
		sub := st.subjects[rec.Subject]
		if sub == nil {
			sub = &subject{}
			st.subjects[rec.Subject] = sub
		}
		if rec.Version < sub.nextVersion() {
			return fmt.Errorf("register %q version %d: not above stored version %d", rec.Subject, rec.Version, sub.nextVersion()-1)
		}
		sub.versions = append(sub.versions, &version{num: rec.Version, id: rec.ID, deleted: rec.Deleted})
	case opDelete:
		sub := st.subjects[rec.Subject]
		if sub == nil {
			return fmt.Errorf("delete %q: no such subject", rec.Subject)
		}
		for _, num := range rec.Versions {
			v := sub.find(num)
			if v == nil {
				return fmt.Errorf("delete %q version %d: no such version", rec.Subject, num)
			}
			if !rec.Permanent {
				v.deleted = true
				continue
			}
			sub.versions = slices.DeleteFunc(sub.versions, func(x *version) bool { return x.num == num })
		}
		if len(sub.versions) == 0 {
			delete(st.subjects, rec.Subject)
		}
	case opConfig:
		if rec.Subject == "" {
			st.globalLevel = rec.Level
		} else {
			st.subjectLevel[rec.Subject] = rec.Level
		}
	case opConfigDelete:
		delete(st.subjectLevel, rec.Subject)
	default:
		return fmt.Errorf("unknown op %q", rec.Op)
	}
	return nil
}

// define adds id to the schema table; redefining an id identically is allowed
// (a snapshot followed by nothing else may repeat nothing, but be lenient).
func (st *state) define(id int, text, canonical string) error {
	if id <= 0 || canonical == "" {
		return fmt.Errorf("define schema id %d: id and canonical form required", id)
	}
	if old := st.schemas[id]; old != nil {
		if old.canonical != canonical {
			return fmt.Errorf("define schema id %d: already defined as another schema", id)
		}
		return nil
	}
	if other, ok := st.byCanonical[canonical]; ok {
		return fmt.Errorf("define schema id %d: schema already has id %d", id, other)
	}
	st.schemas[id] = &schemaEntry{id: id, text: text, canonical: canonical}
	st.byCanonical[canonical] = id
	if id >= st.nextID {
		st.nextID = id + 1
	}
	return nil
}

// snapshot returns records that rebuild this state from nothing: the format,
// the whole schema table (so ids stay taken), every stored version, and the
// configuration.
func (st *state) snapshot() []*record {
	recs := []*record{{Op: opFormat, Format: logFormat}}
	ids := make([]int, 0, len(st.schemas))
	for id := range st.schemas {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		e := st.schemas[id]
		recs = append(recs, &record{Op: opSchema, ID: id, Schema: e.text, Canonical: e.canonical})
	}
	names := make([]string, 0, len(st.subjects))
	for name := range st.subjects {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range st.subjects[name].versions {
			recs = append(recs, &record{Op: opRegister, Subject: name, Version: v.num, ID: v.id, Deleted: v.deleted})
		}
	}
	if st.globalLevel != defaultGlobalLevel {
		recs = append(recs, &record{Op: opConfig, Level: st.globalLevel})
	}
	cfg := make([]string, 0, len(st.subjectLevel))
	for name := range st.subjectLevel {
		cfg = append(cfg, name)
	}
	sort.Strings(cfg)
	for _, name := range cfg {
		recs = append(recs, &record{Op: opConfig, Subject: name, Level: st.subjectLevel[name]})
	}
	return recs
}
