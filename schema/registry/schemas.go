package registry

import (
	"net/http"
)

func getSchemaTypes(*Server, *http.Request, []string) (any, *apiError) {
	return []string{"AVRO"}, nil
}

// liveSchema returns the table entry for id if some stored version uses it.
func (s *Server) liveSchema(idArg string) (*schemaEntry, *apiError) {
	id, e := parseID(idArg)
	if e != nil {
		return nil, e
	}
	entry := s.st.schemas[id]
	if entry == nil || !s.st.referenced(id) {
		return nil, errSchemaNotFound(id)
	}
	return entry, nil
}

func getSchemaByID(s *Server, _ *http.Request, args []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	entry, e := s.liveSchema(args[0])
	if e != nil {
		return nil, e
	}
	return struct {
		Schema string `json:"schema"`
	}{entry.text}, nil
}

func getRawSchemaByID(s *Server, _ *http.Request, args []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	entry, e := s.liveSchema(args[0])
	if e != nil {
		return nil, e
	}
	return rawBody(entry.text), nil
}

func getVersionsByID(s *Server, r *http.Request, args []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	entry, e := s.liveSchema(args[0])
	if e != nil {
		return nil, e
	}
	return s.st.usesOf(entry.id, queryBool(r, "deleted")), nil
}

func getSubjectsByID(s *Server, r *http.Request, args []string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	entry, e := s.liveSchema(args[0])
	if e != nil {
		return nil, e
	}
	out := []string{}
	for _, u := range s.st.usesOf(entry.id, queryBool(r, "deleted")) {
		if len(out) == 0 || out[len(out)-1] != u.Subject {
			out = append(out, u.Subject)
		}
	}
	return out, nil
}
