// Package registry is the embedded schema registry that `eos-runner dev` and
// `eos-runner registry` serve, and the client helpers the runner uses against
// any Confluent-compatible registry.
//
// # Server
//
// Server speaks the Confluent Schema Registry REST API (v1) that srclient and
// Confluent's serializers use, for Avro schemas:
//
//	GET    /                                         {}
//	GET    /schemas/types                            ["AVRO"]
//	GET    /schemas/ids/{id}[/schema|/versions|/subjects]
//	GET    /subjects[?deleted=true][&subjectPrefix=p]
//	POST   /subjects/{s}                             lookup: subject, version, id, schema
//	DELETE /subjects/{s}[?permanent=true]
//	GET    /subjects/{s}/versions[?deleted=true]
//	POST   /subjects/{s}/versions                    register: {"id": N}
//	GET    /subjects/{s}/versions/{v|latest}[/schema|/referencedby]
//	DELETE /subjects/{s}/versions/{v|latest}[?permanent=true]
//	POST   /compatibility/subjects/{s}/versions[/{v|latest}][?verbose=true]
//	GET|PUT|DELETE /config[/{s}]                     GET /config/{s}?defaultToGlobal=true
//	GET|PUT /mode[/{s}]                              READWRITE only
//
// The model, as Confluent's: a schema's global id is fixed by its Parsing
// Canonical Form, so the same schema under two subjects has one id, and
// registering a schema a subject already holds answers its id without a new
// version. A new version must be compatible, at the subject's level (default
// BACKWARD, from the global config), with the subject's versions that are
// not soft-deleted, else 409 with every incompatibility's path and rule.
// Deletes are soft first (hidden, ids still resolvable, so old data still
// decodes); ?permanent=true removes only what was soft-deleted first (40405,
// 40407 otherwise). Errors are Confluent's JSON {"error_code","message"} with
// its codes; a malformed request is always a 4xx.
//
// Departures from Confluent, deliberate: only AVRO (other schemaTypes are
// 42201); schema references are refused with 42201 (inline the types); mode
// is always READWRITE; an id belongs to its canonical form for good, so a
// hard-deleted schema registered again gets its old id back (ids are never
// reused for another schema); subject-level config survives subject deletes.
//
// # Persistence
//
// Open(dir) keeps everything in dir/registry.log, an append-only JSON-lines
// log: each mutation is one line, fsynced before the reply, and Open replays
// it and rewrites it as a compact snapshot (see log.go for the format).
// Open("") is in memory. One process per directory: nothing locks it.
//
// # Client
//
// Client wraps srclient with a cache of schemas by id (parsed and as goavro
// codecs) for the read path, and EnsureSchema for the write path: at startup
// the runner asks it whether each sink's schema may be written under its
// subject, and gets the id, a *schema.IncompatibilityError naming subject,
// level, field path and rule, or ErrNotRegistered when the schema is
// compatible but auto.register.schemas is off.
package registry
