package registry

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/eos-runner/eos-runner/schema"
)

// routeTable is the REST API, in Confluent's shapes. Paths are matched segment
// by segment on the unescaped segments; "*" captures one.
func routeTable() []route {
	return []route{
		{"GET", nil, getRoot},
		{"GET", []string{"schemas", "types"}, getSchemaTypes},
		{"GET", []string{"schemas", "ids", "*"}, getSchemaByID},
		{"GET", []string{"schemas", "ids", "*", "schema"}, getRawSchemaByID},
		{"GET", []string{"schemas", "ids", "*", "versions"}, getVersionsByID},
		{"GET", []string{"schemas", "ids", "*", "subjects"}, getSubjectsByID},
		{"GET", []string{"subjects"}, getSubjects},
		{"POST", []string{"subjects", "*"}, lookupSchema},
		{"DELETE", []string{"subjects", "*"}, deleteSubject},
		{"GET", []string{"subjects", "*", "versions"}, getVersions},
		{"POST", []string{"subjects", "*", "versions"}, registerSchema},
		{"GET", []string{"subjects", "*", "versions", "*"}, getVersion},
		{"DELETE", []string{"subjects", "*", "versions", "*"}, deleteVersion},
		{"GET", []string{"subjects", "*", "versions", "*", "schema"}, getRawVersion},
		{"GET", []string{"subjects", "*", "versions", "*", "referencedby"}, getReferencedBy},
		{"POST", []string{"compatibility", "subjects", "*", "versions"}, checkCompatibilityAll},
		{"POST", []string{"compatibility", "subjects", "*", "versions", "*"}, checkCompatibility},
		{"GET", []string{"config"}, getGlobalConfig},
		{"PUT", []string{"config"}, putGlobalConfig},
		{"DELETE", []string{"config"}, deleteGlobalConfig},
		{"GET", []string{"config", "*"}, getSubjectConfig},
		{"PUT", []string{"config", "*"}, putSubjectConfig},
		{"DELETE", []string{"config", "*"}, deleteSubjectConfig},
		{"GET", []string{"mode"}, getMode},
		{"PUT", []string{"mode"}, putMode},
		{"GET", []string{"mode", "*"}, getMode},
		{"PUT", []string{"mode", "*"}, putMode},
	}
}

// schemaRequest is the body of register, lookup and compatibility requests.
// Fields newer clients send (metadata, ruleSet) are ignored.
type schemaRequest struct {
	Schema     string            `json:"schema"`
	SchemaType string            `json:"schemaType"`
	References []json.RawMessage `json:"references"`
}

func queryBool(r *http.Request, name string) bool {
	return strings.EqualFold(r.URL.Query().Get(name), "true")
}

// decodeBody reads a JSON object into v; any failure is the client's (400).
func decodeBody(r *http.Request, v any) *apiError {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errf(codeRequestEntityTooLarge, "Request body larger than %d bytes", tooBig.Limit)
		}
		return errf(codeBadRequest, "Bad request body: %v", err)
	}
	if dec.More() {
		return errf(codeBadRequest, "Bad request body: trailing data after the JSON object")
	}
	return nil
}

// parseRequestSchema decodes a schema request and parses its Avro schema.
// References are refused: this registry stores self-contained schemas only.
func parseRequestSchema(r *http.Request) (*schemaRequest, *schema.Schema, *apiError) {
	var req schemaRequest
	if e := decodeBody(r, &req); e != nil {
		return nil, nil, e
	}
	if t := strings.ToUpper(req.SchemaType); t != "" && t != "AVRO" {
		return nil, nil, errf(codeInvalidSchema, "Invalid schema type %q: this registry supports AVRO only", req.SchemaType)
	}
	if len(req.References) > 0 {
		return nil, nil, errf(codeInvalidSchema, "Invalid schema: schema references are not supported by this registry; inline the referenced types")
	}
	if strings.TrimSpace(req.Schema) == "" {
		return nil, nil, errf(codeInvalidSchema, "Invalid schema: empty schema")
	}
	parsed, err := schema.Parse(req.Schema)
	if err != nil {
		return nil, nil, errf(codeInvalidSchema, "Invalid schema %s: %v", req.Schema, err)
	}
	return &req, parsed, nil
}

// parseVersion reads a version path segment: a number in [1, 2^31-1],
// "latest" or -1 (both meaning the latest). latest reports the latter.
func parseVersion(v string) (num int, latest bool, e *apiError) {
	if v == "latest" {
		return 0, true, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err == nil && n == -1:
		return 0, true, nil
	case err == nil && n >= 1 && n <= math.MaxInt32:
		return int(n), false, nil
	}
	return 0, false, errf(codeInvalidVersion, "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", v)
}

// parseID reads a schema id path segment; anything but a positive number is
// an id that does not exist.
func parseID(v string) (int, *apiError) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > math.MaxInt32 {
		return 0, errf(codeSchemaNotFound, "Schema %s not found", v)
	}
	return int(n), nil
}

func getRoot(*Server, *http.Request, []string) (any, *apiError) {
	return struct{}{}, nil
}
