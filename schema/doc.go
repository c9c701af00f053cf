// Package schema analyses Avro schemas: it parses and validates them, computes
// their Parsing Canonical Form and fingerprint, decides whether one schema can
// read data written with another, checks a new schema against a subject's
// history at a compatibility level, and projects decoded values from a writer
// schema into a reader schema. It speaks neither Kafka nor HTTP; the embedded
// registry (schema/registry) and the serde package build on it.
//
// # Reader and writer
//
// Avro data carries no schema. Bytes are decoded with the schema they were
// written with, the writer schema (for us: the one whose ID the Confluent
// wire format names), and the application wants values shaped by its own
// schema, the reader schema. The specification's "Schema Resolution" section
// says when a reader can read a writer's data and what it then sees. Every
// check here is stated as "reader reads writer", and every Incompatibility's
// path points into the reader schema.
//
// # Where each check comes from in the Avro 1.11 specification
//
//   - Parse: "Schema Declaration", "Names" (full names, namespaces, aliases,
//     the name grammar), the complex types' attributes, the table of field
//     default values (a union's default belongs to its first branch), and
//     "Logical Types" (an invalid logical type is ignored, not an error).
//   - Canonical, Fingerprint: "Parsing Canonical Form for Schemas" (the
//     PRIMITIVES, FULLNAMES, STRIP, ORDER, STRINGS, INTEGERS and WHITESPACE
//     transforms) and "Schema Fingerprints" (CRC-64-AVRO). Tested against the
//     vectors of Avro's own test suite.
//   - CheckCompatibility: "Schema Resolution": matching kinds and names, the
//     promotions (int to long, float, double; long to float, double; float
//     to double; string and bytes both ways), record fields by name or reader
//     alias with reader defaults for missing fields, enum symbols with the
//     reader's enum default, fixed sizes, union branch matching in all three
//     shapes, and "Aliases". Rule ids follow Avro Java's
//     SchemaIncompatibilityType, the checker Confluent Schema Registry uses.
//     Two deliberate differences from Java: two decimals must agree on
//     precision and scale (the specification's rule; Java ignores logical
//     types), and when a reader union has a branch of the writer's type that
//     still cannot read it, that branch's own problems are reported rather
//     than only MISSING_UNION_BRANCH.
//   - Resolve, Project: the same section, applied to values in goavro's
//     native form, since goavro (our codec) does not resolve schemas.
//
// # The seven levels
//
// A subject (Confluent's TopicNameStrategy: "<topic>-value") has a history of
// schemas, oldest first, and a Level that each new schema must meet:
//
//	NONE                 no check
//	BACKWARD             new reads the latest's data (upgrade consumers first)
//	BACKWARD_TRANSITIVE  new reads every earlier version's data
//	FORWARD              the latest reads new data (upgrade producers first)
//	FORWARD_TRANSITIVE   every earlier version reads new data
//	FULL                 BACKWARD and FORWARD
//	FULL_TRANSITIVE      BACKWARD_TRANSITIVE and FORWARD_TRANSITIVE
//
// CheckLevel applies a level; IncompatibilityError carries a refusal (subject,
// level, every problem's path and rule) up to the runner or to the registry's
// HTTP 409.
//
// # Reading with evolution, step by step
//
//  1. Parse the reader schema once at startup.
//  2. For each record, fetch the writer schema by ID (cached) and Parse it.
//  3. Get the Resolution from a shared Resolver (built once per pair; an
//     error here means the pair is incompatible: dead-letter the record).
//  4. Decode the bytes with goavro using the writer schema, then Project the
//     value; the result is what goavro would decode with the reader schema.
package schema
