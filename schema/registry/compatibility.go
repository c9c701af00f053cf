package registry

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/eos-runner/eos-runner/schema"
)

// existingSchemas returns the parsed schemas of vers, oldest first.
func (s *Server) existingSchemas(vers []*version) ([]*schema.Schema, *apiError) {
	out := make([]*schema.Schema, 0, len(vers))
	for _, v := range vers {
		p, err := s.parsedSchema(v.id)
		if err != nil {
			return nil, errf(codeInternal, "Error reading stored schema: %v", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// problemStrings renders incompatibilities for messages. schema.CheckLevel
// names the version a problem concerns by its 1-based index in the history it
// was given ("version 2, backward (... version 2): ..."); nums are the real
// version numbers of that history, which differ once versions are deleted or
// when one version is checked alone, so the prefix is renumbered.
func problemStrings(problems []schema.Incompatibility, nums []int) []string {
	out := make([]string, 0, len(problems))
	for _, p := range problems {
		p.Message = renumber(p.Message, nums)
		out = append(out, p.String())
	}
	return out
}

// renumber rewrites "version <i>" to "version <nums[i-1]>" in msg's prefix,
// up to the first ": ". Text it does not recognise is left alone.
func renumber(msg string, nums []int) string {
	head, tail, ok := strings.Cut(msg, ": ")
	if !ok {
		return msg
	}
	var b strings.Builder
	for {
		i := strings.Index(head, "version ")
		if i < 0 {
			b.WriteString(head)
			break
		}
		i += len("version ")
		b.WriteString(head[:i])
		head = head[i:]
		j := 0
		for j < len(head) && head[j] >= '0' && head[j] <= '9' {
			j++
		}
		idx, err := strconv.Atoi(head[:j])
		if err == nil && idx >= 1 && idx <= len(nums) {
			b.WriteString(strconv.Itoa(nums[idx-1]))
		} else {
			b.WriteString(head[:j])
		}
		head = head[j:]
	}
	return b.String() + ": " + tail
}

// versionNums returns the version numbers of vers.
func versionNums(vers []*version) []int {
	out := make([]int, len(vers))
	for i, v := range vers {
		out[i] = v.num
	}
	return out
}

// compatReply is the answer of the compatibility endpoints; messages only
// with ?verbose=true.
type compatReply struct {
	IsCompatible bool     `json:"is_compatible"`
	Messages     []string `json:"messages,omitempty"`
}

func (s *Server) compat(r *http.Request, level schema.Level, vers []*version, existing []*schema.Schema, candidate *schema.Schema) compatReply {
	problems := schema.CheckLevel(level, existing, candidate)
	rep := compatReply{IsCompatible: len(problems) == 0}
	if queryBool(r, "verbose") {
		rep.Messages = problemStrings(problems, versionNums(vers))
		if rep.Messages == nil {
			rep.Messages = []string{}
		}
	}
	return rep
}

// checkCompatibility tests a schema against one version of a subject, or for
// "latest" against the versions the subject's level compares with on
// register (the latest, or all for a transitive level), at the subject's
// level.
func checkCompatibility(s *Server, r *http.Request, args []string) (any, *apiError) {
	_, parsed, e := parseRequestSchema(r)
	if e != nil {
		return nil, e
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sub := s.st.subject(args[0], false)
	if sub == nil {
		return nil, errSubjectNotFound(args[0])
	}
	_, latest, e := parseVersion(args[1])
	if e != nil {
		return nil, e
	}
	vers := sub.visible(false)
	if !latest {
		v, e := resolveVersion(args[0], sub, args[1], false)
		if e != nil {
			return nil, e
		}
		vers = []*version{v}
	}
	return s.checkAgainst(r, args[0], vers, parsed)
}

// checkCompatibilityAll tests a schema against all the subject's live
// versions at its level (POST /compatibility/subjects/{s}/versions); a
// subject with no versions accepts anything.
func checkCompatibilityAll(s *Server, r *http.Request, args []string) (any, *apiError) {
	_, parsed, e := parseRequestSchema(r)
	if e != nil {
		return nil, e
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var vers []*version
	if sub := s.st.subject(args[0], false); sub != nil {
		vers = sub.visible(false)
	}
	return s.checkAgainst(r, args[0], vers, parsed)
}

func (s *Server) checkAgainst(r *http.Request, name string, vers []*version, parsed *schema.Schema) (any, *apiError) {
	level, err := schema.ParseLevel(s.st.level(name))
	if err != nil {
		return nil, errf(codeInternal, "Stored compatibility level is invalid: %v", err)
	}
	existing, e := s.existingSchemas(vers)
	if e != nil {
		return nil, e
	}
	return s.compat(r, level, vers, existing, parsed), nil
}
