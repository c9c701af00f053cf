package declare

import "time"

// File is a loaded topology file: what it declares, with every item's
// position. Load fills it; Compile turns it into a topology.
type File struct {
	Path string
	Dir  string // relative schema paths are read from here

	AppID    string
	AppIDPos Pos
	// Settings are the application's settings (processor.Config names),
	// in file order; --set and EOS_* environment variables override them.
	Settings []Setting

	Sources []*Source
	Tables  []*Table
	Sinks   []*Sink
	Streams []*Stream
}

// Setting is one application setting.
type Setting struct {
	Key, Value string
	Pos        Pos
}

// Format is how a key or value is (de)serialized.
type Format struct {
	Pos  Pos
	Kind string // string, json, bytes, int64, avro
	// Schema is an Avro schema file (relative to the topology file), read at
	// load; Latest asks the registry for the subject's latest schema.
	Schema     string
	SchemaText string
	Latest     bool
}

// Source is a stream read from topics.
type Source struct {
	Name       string
	Pos        Pos
	Topics     []string
	Key, Value Format
	// Timestamp is a value field holding event time (epoch ms or RFC 3339).
	Timestamp  string
	Partitions int // 0: unknown
}

// Table is a table read from a topic (Builder.Table), or a global table.
type Table struct {
	Name       string
	Pos        Pos
	Topic      string
	Key, Value Format
	Store      string
	Global     bool
	Partitions int
}

// Sink is a topic written to.
type Sink struct {
	Name       string
	Pos        Pos
	Topic      string
	Key, Value *Format // nil: the stream's current format
}

// Stream is a named pipeline: inputs, then steps.
type Stream struct {
	Name  string
	Pos   Pos
	From  []Ref
	Steps []*Step
}

// Ref names a source, table, stream or sink.
type Ref struct {
	Name string
	Pos  Pos
}

// Step is one operation of a pipeline.
type Step struct {
	Op      string
	Pos     Pos
	Name    string // node (and store) name; default generated
	OnError string // "" (the application's on.error), "skip", "dlq" or "fail"
	// KeyFormat and ValueFormat give the serdes of the records after the
	// step where a topic or store needs them (repartition, stores).
	KeyFormat, ValueFormat *Format

	Expr        *Expr // filter, filterNot, mapValues, selectKey, flatMap, flatMapValues, groupBy, sum, min, max, avg, reduce
	Key, Value  *Expr // map, table groupBy
	Fields      []string
	Renames     [][2]string
	Refs        []Ref // merge
	Branches    []*Branch
	Window      *Window
	Store       string
	TTL         time.Duration
	Retention   time.Duration
	Agg         *Aggregate
	Join        *Join
	Dedup       *Dedup
	To          *Sink // to
	Repartition string
}

// Branch is one arm of a branch step.
type Branch struct {
	Pos  Pos
	When *Expr  // nil: the default branch
	To   *Sink  // write the arm to a topic
	As   string // or name it as a stream others read
}

// Window is a windowedBy step's windows.
type Window struct {
	Pos                       Pos
	Type                      string // tumbling, hopping, sliding, session
	Size, Advance, Grace, Gap time.Duration
	Emit                      string // update (default) or final
}

// Aggregate is an aggregate step's expressions.
type Aggregate struct {
	Init, Add, Subtract, Merge *Expr
}

// Join is a join step.
type Join struct {
	With   Ref
	Type   string // inner (default), left, outer
	Key    *Expr  // a global table's key
	FK     *Expr  // a foreign-key join's foreign key
	Value  *Expr  // the joiner: key, left, right
	Within time.Duration
	Before time.Duration
	After  time.Duration
	Grace  time.Duration
	// windowed: a stream-stream join (within, before or after given)
	Windowed bool
}

// Dedup is a dedup step.
type Dedup struct {
	Field, Header string
	Key           *Expr
	TTL           time.Duration
}
