package registry

import (
	"net/http"
	"strings"

	"github.com/eos-runner/eos-runner/schema"
)

type configReply struct {
	CompatibilityLevel string `json:"compatibilityLevel"`
}

type configRequest struct {
	Compatibility string `json:"compatibility"`
}

type modeBody struct {
	Mode string `json:"mode"`
}

// readLevel decodes a PUT /config body and validates its level.
func readLevel(r *http.Request) (schema.Level, *apiError) {
	var req configRequest
	if e := decodeBody(r, &req); e != nil {
		return "", e
	}
	level, err := schema.ParseLevel(req.Compatibility)
	if err != nil || req.Compatibility == "" {
		return "", errf(codeInvalidCompatibility, "Invalid compatibility level %q. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive", req.Compatibility)
	}
	return level, nil
}

func getGlobalConfig(s *Server, _ *http.Request, _ []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return configReply{CompatibilityLevel: s.st.globalLevel}, nil
}

func putGlobalConfig(s *Server, r *http.Request, _ []string) (any, *apiError) {
	return s.putConfig(r, "")
}

// deleteGlobalConfig resets the global level to the default, answering the
// level it replaced.
func deleteGlobalConfig(s *Server, _ *http.Request, _ []string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.st.globalLevel
	if e := s.commit(&record{Op: opConfig, Level: defaultGlobalLevel}); e != nil {
		return nil, e
	}
	return configReply{CompatibilityLevel: old}, nil
}

// getSubjectConfig answers the subject's own level; without one, the global
// level if ?defaultToGlobal=true, else 40408.
func getSubjectConfig(s *Server, r *http.Request, args []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l, ok := s.st.subjectLevel[args[0]]; ok {
		return configReply{CompatibilityLevel: l}, nil
	}
	if queryBool(r, "defaultToGlobal") {
		return configReply{CompatibilityLevel: s.st.globalLevel}, nil
	}
	return nil, errf(codeSubjectLevelNotSet, "Subject '%s' does not have subject-level compatibility configured", args[0])
}

func putSubjectConfig(s *Server, r *http.Request, args []string) (any, *apiError) {
	return s.putConfig(r, args[0])
}

func (s *Server) putConfig(r *http.Request, name string) (any, *apiError) {
	level, e := readLevel(r)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.commit(&record{Op: opConfig, Subject: name, Level: string(level)}); e != nil {
		return nil, e
	}
	s.log.Info("compatibility level set", "subject", name, "level", level)
	return configRequest{Compatibility: string(level)}, nil
}

// deleteSubjectConfig drops the subject's own level (it falls back to the
// global one), answering the level it had; 40401 if it had none.
func deleteSubjectConfig(s *Server, _ *http.Request, args []string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.st.subjectLevel[args[0]]
	if !ok {
		return nil, errSubjectNotFound(args[0])
	}
	if e := s.commit(&record{Op: opConfigDelete, Subject: args[0]}); e != nil {
		return nil, e
	}
	return configReply{CompatibilityLevel: old}, nil
}

// getMode answers READWRITE: the embedded registry has no import or
// read-only mode.
func getMode(*Server, *http.Request, []string) (any, *apiError) {
	return modeBody{Mode: "READWRITE"}, nil
}

// putMode accepts READWRITE only.
func putMode(_ *Server, r *http.Request, _ []string) (any, *apiError) {
	var req modeBody
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if !strings.EqualFold(req.Mode, "READWRITE") {
		return nil, errf(codeInvalidMode, "Invalid mode %q: this registry supports READWRITE only", req.Mode)
	}
	return modeBody{Mode: "READWRITE"}, nil
}
