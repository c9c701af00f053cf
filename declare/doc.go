// Package declare makes a topology out of a YAML file: `eos-runner run -f
// topology.yaml`. A file is compiled to the very topology.Builder calls a Go
// program would make (one node per step, the same processors, stores and
// record path); nothing interprets records beside it.
//
// # The file
//
//	application: {id: orders-app, settings: {commit.interval.ms: 100}}
//	sources:  NAME: {topic, key, value, timestamp, partitions}
//	tables:   NAME: {topic, key, value, store, global, partitions}
//	sinks:    NAME: {topic, key, value}
//	streams:  NAME: {from: NAME | [NAMES], steps: [STEP, ...]}
//
// A format is string, json, bytes, int64, decimal, or {format: avro, schema:
// FILE.avsc} (the reader schema; relative to the file) or {format: avro,
// subject: latest} (read from the registry when compiling to run). A step is
// one operation, with optional name (the node's, and the store's unless
// store is given), store, onError (skip, dlq, fail, or default: the
// application's on.error), keyFormat and valueFormat (the serdes of what the step
// produces, where a topic or store needs them): filter, filterNot, map,
// mapValues, selectKey, flatMap, flatMapValues, project, rename, merge,
// branch (arms {when, to} or {when, as: a stream name}), groupByKey, groupBy,
// windowedBy (tumbling, hopping, sliding, session; emit update or final),
// count, sum, min, max, avg, reduce, aggregate, toStream, join (a table, a
// global table with key, a stream within a window, a table by key or by
// foreignKey; inner, left or outer), dedup (by record key, field, header or
// expression, with a ttl), repartition, to. topology.schema.json describes
// the file for editors; Load checks more (references, expressions, windows,
// partition counts).
//
// # Errors
//
// Load reports every problem of a file at once, as Errors, each with
// file:line:column, what is wrong and what was expected: first the shape
// (unknown keys, wrong types, missing fields, unreadable schema files), then,
// on a well-formed file, the meaning (unknown names, cycles, a step applied
// to the wrong kind of stream, windows, joins of topics with different
// partition counts, expressions that do not compile or read fields the Avro
// schema lacks). It never contacts a broker or a registry.
//
// # Expressions
//
// Predicates, mappers, key selectors, aggregators and joiners are
// expressions of github.com/expr-lang/expr (pinned in go.mod), chosen over
// google/cel-go for three reasons: it compiles to a small bytecode VM that
// evaluates a predicate in a few hundred nanoseconds with a pooled VM and a
// struct environment (no allocation of an environment map per record), it
// is pure Go with no dependencies (cel-go brings protobuf and ANTLR), and it
// is safe by construction: no side effects, no unbounded loops, bounded
// memory per evaluation, and here now() is disabled so that a replay
// computes what the first attempt did. Expressions are compiled when the
// file is loaded, and type-checked against Avro schemas where the file
// names them (a record's fields become struct fields of their Avro types).
//
// Variables: key and value; agg too in reduce and aggregate (merge sees two
// sessions' aggregates as agg and value); key, left and right in a join's
// value; only value where the Go DSL passes only the value (a stream's
// mapValues and flatMapValues, a foreign key). A function merge(a, b, ...)
// merges records. A run-time failure (an *ExprError naming the expression
// and its position) fails the record, which goes to the error policy: the
// dead-letter topic by default; with onError: skip on the step the record is
// dropped (a failing aggregator leaves the aggregate unchanged), with dlq or
// fail the step's node applies that policy whatever the application's
// on.error (topology.OnError).
//
// # Testing
//
// RunTest runs a file on processor.TestDriver with JSON-lines inputs and
// compares every output topic with the expected records (`eos-runner test`).
package declare
