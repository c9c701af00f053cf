package registry

import (
	"fmt"
	"net/http"
)

// Confluent Schema Registry error codes. The HTTP status is the code's first
// three digits; clients (srclient, Confluent's serializers) switch on the
// code, so these numbers are part of the API.
const (
	codeSubjectNotFound       = 40401
	codeVersionNotFound       = 40402
	codeSchemaNotFound        = 40403
	codeSubjectSoftDeleted    = 40404
	codeSubjectNotSoftDeleted = 40405
	codeVersionSoftDeleted    = 40406
	codeVersionNotSoftDeleted = 40407
	codeSubjectLevelNotSet    = 40408
	codeIncompatibleSchema    = 409
	codeInvalidSchema         = 42201
	codeInvalidVersion        = 42202
	codeInvalidCompatibility  = 42203
	codeInvalidMode           = 42204
	codeInternal              = 50001
	codeBadRequest            = 400 // bad JSON, unreadable body: Jersey's plain 400
	codeNotFound              = 404 // no such endpoint
	codeMethodNotAllowed      = 405
	codeRequestEntityTooLarge = 413
)

// apiError is an error answer: HTTP status plus Confluent's JSON body
// {"error_code": ..., "message": ...}.
type apiError struct {
	Status  int    `json:"-"`
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

// errf builds an apiError whose HTTP status is derived from code.
func errf(code int, format string, args ...any) *apiError {
	status := code
	for status >= 1000 {
		status /= 10
	}
	if http.StatusText(status) == "" {
		status = http.StatusInternalServerError
	}
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errSubjectNotFound(s string) *apiError {
	return errf(codeSubjectNotFound, "Subject '%s' not found.", s)
}

func errVersionNotFound(s string, v int) *apiError {
	return errf(codeVersionNotFound, "Version %d not found for subject '%s'.", v, s)
}

func errSchemaNotFound(id int) *apiError {
	return errf(codeSchemaNotFound, "Schema %d not found", id)
}
