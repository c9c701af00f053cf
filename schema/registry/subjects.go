package registry

import (
	"net/http"
	"strings"

	"github.com/eos-runner/eos-runner/schema"
)

// schemaReply is one version of a subject, as GET .../versions/{v} and
// lookup answer. schemaType is omitted for Avro, as Confluent does.
type schemaReply struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
}

// resolveVersion finds a version of sub for a read (withDeleted: soft-deleted
// versions are visible). Callers hold s.mu.
func resolveVersion(subjectName string, sub *subject, v string, withDeleted bool) (*version, *apiError) {
	num, latest, e := parseVersion(v)
	if e != nil {
		return nil, e
	}
	if latest {
		ver := sub.latest(withDeleted)
		if ver == nil {
			return nil, errf(codeVersionNotFound, "Version latest not found for subject '%s'.", subjectName)
		}
		return ver, nil
	}
	ver := sub.find(num)
	if ver == nil || (ver.deleted && !withDeleted) {
		return nil, errVersionNotFound(subjectName, num)
	}
	return ver, nil
}

func getSubjects(s *Server, r *http.Request, _ []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	prefix := r.URL.Query().Get("subjectPrefix")
	out := []string{}
	for _, name := range s.st.subjectNames(queryBool(r, "deleted")) {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out, nil
}

func getVersions(s *Server, r *http.Request, args []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	withDeleted := queryBool(r, "deleted")
	sub := s.st.subject(args[0], withDeleted)
	if sub == nil {
		return nil, errSubjectNotFound(args[0])
	}
	out := []int{}
	for _, v := range sub.visible(withDeleted) {
		out = append(out, v.num)
	}
	return out, nil
}

func (s *Server) versionReply(r *http.Request, args []string) (*schemaReply, *apiError) {
	withDeleted := queryBool(r, "deleted")
	sub := s.st.subject(args[0], withDeleted)
	if sub == nil {
		return nil, errSubjectNotFound(args[0])
	}
	ver, e := resolveVersion(args[0], sub, args[1], withDeleted)
	if e != nil {
		return nil, e
	}
	return &schemaReply{Subject: args[0], Version: ver.num, ID: ver.id, Schema: s.st.schemas[ver.id].text}, nil
}

func getVersion(s *Server, r *http.Request, args []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rep, e := s.versionReply(r, args)
	if e != nil {
		return nil, e
	}
	return rep, nil
}

func getRawVersion(s *Server, r *http.Request, args []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rep, e := s.versionReply(r, args)
	if e != nil {
		return nil, e
	}
	return rawBody(rep.Schema), nil
}

// getReferencedBy answers which schemas reference a version: none ever, since
// references are refused.
func getReferencedBy(s *Server, r *http.Request, args []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, e := s.versionReply(r, args); e != nil {
		return nil, e
	}
	return []int{}, nil
}

// lookupSchema answers whether a schema is registered under a subject
// (matching by canonical form) and as which version.
func lookupSchema(s *Server, r *http.Request, args []string) (any, *apiError) {
	_, parsed, e := parseRequestSchema(r)
	if e != nil {
		return nil, e
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	withDeleted := queryBool(r, "deleted")
	sub := s.st.subject(args[0], withDeleted)
	if sub == nil {
		return nil, errSubjectNotFound(args[0])
	}
	id, ok := s.st.byCanonical[parsed.Canonical()]
	if ok {
		for i := len(sub.versions) - 1; i >= 0; i-- {
			v := sub.versions[i]
			if v.id == id && (withDeleted || !v.deleted) {
				return &schemaReply{Subject: args[0], Version: v.num, ID: id, Schema: s.st.schemas[id].text}, nil
			}
		}
	}
	return nil, errf(codeSchemaNotFound, "Schema not found")
}

// registerSchema registers a schema under a subject. The schema's id is the
// one its canonical form already has anywhere in the registry, else a new
// one. If the subject already holds it (not soft-deleted), nothing changes
// and its id is returned. Otherwise it must be compatible, at the subject's
// level, with the subject's live versions: else 409 with the reasons.
func registerSchema(s *Server, r *http.Request, args []string) (any, *apiError) {
	req, parsed, e := parseRequestSchema(r)
	if e != nil {
		return nil, e
	}
	name := args[0]
	canonical := parsed.Canonical()
	s.mu.Lock()
	defer s.mu.Unlock()
	id, known := s.st.byCanonical[canonical]
	sub := s.st.subjects[name]
	var live []*version
	if sub != nil {
		live = sub.visible(false)
		for _, v := range live {
			if known && v.id == id {
				return map[string]int{"id": id}, nil
			}
		}
	}
	level, err := schema.ParseLevel(s.st.level(name))
	if err != nil {
		return nil, errf(codeInternal, "Stored compatibility level is invalid: %v", err)
	}
	existing, e := s.existingSchemas(live)
	if e != nil {
		return nil, e
	}
	if problems := schema.CheckLevel(level, existing, parsed); len(problems) > 0 {
		return nil, errf(codeIncompatibleSchema,
			"Schema being registered is incompatible with an earlier schema for subject %q, details: [%s, {compatibility: '%s'}]",
			name, strings.Join(problemStrings(problems, versionNums(live)), ", "), level)
	}
	rec := &record{Op: opRegister, Subject: name, Version: 1}
	if sub != nil {
		rec.Version = sub.nextVersion()
	}
	if known {
		rec.ID = id
	} else {
		rec.ID = s.st.nextID
		rec.Schema, rec.Canonical = req.Schema, canonical
	}
	if e := s.commit(rec); e != nil {
		return nil, e
	}
	if !known {
		s.parsedMu.Lock()
		s.parsed[rec.ID] = parsed
		s.parsedMu.Unlock()
	}
	s.log.Info("schema registered", "subject", name, "version", rec.Version, "id", rec.ID, "new_id", !known)
	return map[string]int{"id": rec.ID}, nil
}

// deleteSubject soft-deletes every live version of a subject, or with
// ?permanent=true hard-deletes a subject that was soft-deleted first.
// Subject-level configuration is kept either way (DELETE /config/{s} drops
// it).
func deleteSubject(s *Server, r *http.Request, args []string) (any, *apiError) {
	name := args[0]
	permanent := queryBool(r, "permanent")
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.st.subjects[name]
	if sub == nil || len(sub.versions) == 0 {
		return nil, errSubjectNotFound(name)
	}
	live := sub.live()
	switch {
	case permanent && live:
		return nil, errf(codeSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", name)
	case !permanent && !live:
		return nil, errf(codeSubjectSoftDeleted, "Subject '%s' was soft deleted.Set permanent=true to delete permanently", name)
	}
	nums := []int{}
	for _, v := range sub.visible(permanent) {
		nums = append(nums, v.num)
	}
	if e := s.commit(&record{Op: opDelete, Subject: name, Versions: nums, Permanent: permanent}); e != nil {
		return nil, e
	}
	s.log.Info("subject deleted", "subject", name, "versions", nums, "permanent", permanent)
	return nums, nil
}

// deleteVersion soft-deletes one version, or with ?permanent=true
// hard-deletes a version that was soft-deleted first. "latest" names the
// latest live version for a soft delete and the latest stored one for a
// permanent delete.
func deleteVersion(s *Server, r *http.Request, args []string) (any, *apiError) {
	name := args[0]
	permanent := queryBool(r, "permanent")
	num, latest, e := parseVersion(args[1])
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.st.subjects[name]
	if sub == nil || len(sub.versions) == 0 {
		return nil, errSubjectNotFound(name)
	}
	var ver *version
	if latest {
		ver = sub.latest(permanent)
		if ver == nil {
			return nil, errf(codeVersionNotFound, "Version latest not found for subject '%s'.", name)
		}
	} else if ver = sub.find(num); ver == nil {
		return nil, errVersionNotFound(name, num)
	}
	switch {
	case permanent && !ver.deleted:
		return nil, errf(codeVersionNotSoftDeleted, "Subject '%s' Version %d was not deleted first before being permanently deleted", name, ver.num)
	case !permanent && ver.deleted:
		return nil, errf(codeVersionSoftDeleted, "Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", name, ver.num)
	}
	n := ver.num
	if e := s.commit(&record{Op: opDelete, Subject: name, Versions: []int{n}, Permanent: permanent}); e != nil {
		return nil, e
	}
	s.log.Info("version deleted", "subject", name, "version", n, "permanent", permanent)
	return n, nil
}
