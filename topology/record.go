package topology

import "time"

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is what flows between nodes: a deserialized key and value with the
// input record's headers and timestamp (event time).
type Record struct {
	Key       any
	Value     any
	Headers   []Header
	Timestamp time.Time
}

// WithValue returns a copy of r with value v; headers are shared.
func (r Record) WithValue(v any) Record { r.Value = v; return r }

// WithKey returns a copy of r with key k; headers are shared.
func (r Record) WithKey(k any) Record { r.Key = k; return r }

// Header returns the value of the last header named key, or nil.
func (r Record) Header(key string) []byte {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return r.Headers[i].Value
		}
	}
	return nil
}
