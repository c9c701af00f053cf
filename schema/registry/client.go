package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/linkedin/goavro/v2"
	"github.com/riferrei/srclient"

	"github.com/eos-runner/eos-runner/schema"
)

// ErrNotRegistered is wrapped by EnsureSchema when the schema is compatible
// but not registered and autoRegister is off: the caller must register it
// (or turn auto.register.schemas on) before it may write with it.
var ErrNotRegistered = errors.New("registry: schema not registered and auto.register.schemas is off")

// ErrSchemaNotFound is wrapped by SchemaByID and CodecByID when the registry
// has no schema with the id (40403): data that names it cannot be decoded.
var ErrSchemaNotFound = errors.New("registry: schema id not found")

// Client is what the runner uses to talk to a schema registry (this package's
// Server, Confluent's, Redpanda's): srclient underneath, plus a cache of
// schemas by id holding each one parsed and as a goavro codec, since ids are
// immutable and the read path looks one up per record.
//
// srclient's calls take no context, so ctx is checked between calls only;
// each HTTP call is bounded by srclient's timeout (5s by default, see
// SRClient().SetTimeout). srclient's own caches are turned off: its cache of
// "latest" never expires, and EnsureSchema must see the subject as it is.
type Client struct {
	url string
	sr  *srclient.SchemaRegistryClient
	// auth names the setting holding the credentials (for errors), or "".
	auth string

	// mu guards byID; never held across a network call.
	mu   sync.Mutex
	byID map[int]*cachedSchema
}

// cachedSchema is one registry id's schema, ready to decode with.
type cachedSchema struct {
	parsed *schema.Schema
	codec  *goavro.Codec
}

// NewClient returns a client for the registry at url (e.g.
// "http://127.0.0.1:8081").
func NewClient(url string) *Client {
	url = strings.TrimRight(url, "/")
	sr := srclient.NewSchemaRegistryClient(url)
	sr.CachingEnabled(false)
	return &Client{url: url, sr: sr, byID: make(map[int]*cachedSchema)}
}

// SRClient returns the underlying srclient client, e.g. to set credentials
// or a timeout.
func (c *Client) SRClient() *srclient.SchemaRegistryClient { return c.sr }

// URL returns the registry's base URL.
func (c *Client) URL() string { return c.url }

// SchemaByID returns the schema registered with id, parsed; cached after the
// first fetch. A missing id wraps ErrSchemaNotFound.
func (c *Client) SchemaByID(ctx context.Context, id int) (*schema.Schema, error) {
	cs, err := c.byIDCached(ctx, id)
	if err != nil {
		return nil, err
	}
	return cs.parsed, nil
}

// CodecByID returns a goavro codec for the schema registered with id, built
// from the registry's text of the schema (so logical types are kept); cached
// after the first fetch. A missing id wraps ErrSchemaNotFound.
func (c *Client) CodecByID(ctx context.Context, id int) (*goavro.Codec, error) {
	cs, err := c.byIDCached(ctx, id)
	if err != nil {
		return nil, err
	}
	return cs.codec, nil
}

func (c *Client) byIDCached(ctx context.Context, id int) (*cachedSchema, error) {
	c.mu.Lock()
	cs := c.byID[id]
	c.mu.Unlock()
	if cs != nil {
		return cs, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fetch schema id %d: %w", id, err)
	}
	got, err := c.sr.GetSchema(id)
	if err != nil {
		if registryCode(err) == codeSchemaNotFound {
			return nil, fmt.Errorf("fetch schema id %d from %s: %w: %w", id, c.url, ErrSchemaNotFound, err)
		}
		return nil, fmt.Errorf("fetch schema id %d from %s: %w", id, c.url, err)
	}
	return c.remember(id, got.Schema())
}

// remember parses text, builds its codec and caches both under id.
func (c *Client) remember(id int, text string) (*cachedSchema, error) {
	parsed, err := schema.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("schema id %d from %s: %w", id, c.url, err)
	}
	codec, err := goavro.NewCodec(text)
	if err != nil {
		return nil, fmt.Errorf("schema id %d from %s: goavro codec: %w", id, c.url, err)
	}
	cs := &cachedSchema{parsed: parsed, codec: codec}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.byID[id]; old != nil {
		return old, nil
	}
	c.byID[id] = cs
	return cs, nil
}

// EnsureSchema makes sure a sink may write s under subject, and returns the
// id to write in the wire format:
//
//  1. If s (by canonical form) is registered under subject, its id.
//  2. Else s is checked locally against the subject's versions at the
//     subject's level (subject config, else global): incompatible returns a
//     *schema.IncompatibilityError naming subject, level and every problem.
//  3. Compatible and autoRegister: s is registered and its new id returned.
//  4. Compatible and not autoRegister: an error wrapping ErrNotRegistered.
//
// The local check lets the runner refuse to start with the reasons even when
// it may not register; the registry checks again on register.
func (c *Client) EnsureSchema(ctx context.Context, subject string, s *schema.Schema, autoRegister bool) (int, error) {
	if s == nil {
		return 0, fmt.Errorf("ensure schema for subject %q: nil schema", subject)
	}
	text := s.String()
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("ensure schema for subject %q: %w", subject, err)
	}
	got, err := c.sr.LookupSchema(subject, text, srclient.Avro)
	switch code := registryCode(err); {
	case err == nil:
		return got.ID(), nil
	case code != codeSubjectNotFound && code != codeSchemaNotFound:
		return 0, fmt.Errorf("look up schema under subject %q at %s: %w", subject, c.url, err)
	}

	level, err := c.subjectLevel(ctx, subject)
	if err != nil {
		return 0, err
	}
	existing, err := c.subjectSchemas(ctx, subject)
	if err != nil {
		return 0, err
	}
	if problems := schema.CheckLevel(level, existing, s); len(problems) > 0 {
		return 0, &schema.IncompatibilityError{Subject: subject, Level: level, Problems: problems}
	}
	if !autoRegister {
		return 0, fmt.Errorf("subject %q at %s: %w; register the schema first (it is compatible at level %s)", subject, c.url, ErrNotRegistered, level)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("register schema under subject %q: %w", subject, err)
	}
	created, err := c.sr.CreateSchema(subject, text, srclient.Avro)
	if err != nil {
		return 0, fmt.Errorf("register schema under subject %q at %s: %w", subject, c.url, err)
	}
	return created.ID(), nil
}

// subjectLevel returns the subject's compatibility level, else the global
// one. Registries differ on a subject without its own level (Confluent's
// answers the global one with defaultToGlobal=true; older ones 40401 or
// 40408), so both fall back to GET /config.
func (c *Client) subjectLevel(ctx context.Context, subject string) (schema.Level, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("compatibility level of subject %q: %w", subject, err)
	}
	lvl, err := c.sr.GetCompatibilityLevel(subject, true)
	if code := registryCode(err); code == codeSubjectNotFound || code == codeSubjectLevelNotSet {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("compatibility level of subject %q: %w", subject, err)
		}
		lvl, err = c.sr.GetGlobalCompatibilityLevel()
	}
	if err != nil {
		return "", fmt.Errorf("compatibility level of subject %q at %s: %w", subject, c.url, err)
	}
	level, err := schema.ParseLevel(string(*lvl))
	if err != nil {
		return "", fmt.Errorf("compatibility level of subject %q at %s: %w", subject, c.url, err)
	}
	return level, nil
}

// subjectSchemas returns the subject's live versions' schemas, oldest first;
// none if the subject does not exist.
func (c *Client) subjectSchemas(ctx context.Context, subject string) ([]*schema.Schema, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("versions of subject %q: %w", subject, err)
	}
	versions, err := c.sr.GetSchemaVersions(subject)
	if registryCode(err) == codeSubjectNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("versions of subject %q at %s: %w", subject, c.url, err)
	}
	slices.Sort(versions)
	out := make([]*schema.Schema, 0, len(versions))
	for _, v := range versions {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("versions of subject %q: %w", subject, err)
		}
		got, err := c.sr.GetSchemaByVersion(subject, v)
		if registryCode(err) == codeVersionNotFound {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("subject %q version %d at %s: %w", subject, v, c.url, err)
		}
		cs, err := c.remember(got.ID(), got.Schema())
		if err != nil {
			return nil, fmt.Errorf("subject %q version %d: %w", subject, v, err)
		}
		out = append(out, cs.parsed)
	}
	return out, nil
}

// registryCode returns the Confluent error code of an srclient error, or 0.
func registryCode(err error) int {
	var e srclient.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
