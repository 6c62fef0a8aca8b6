package experiment

import (
	"context"
	"errors"

	"github.com/flagkit/experiment/pkg/eval"
)

// Evaluation by a LocalClient: the flags in use, and the tracking its
// options ask for.

// ErrNotStarted is returned by evaluations before any flags are in use.
var ErrNotStarted = errors.New("local client has no flag configs yet: call Start")

// EvaluateV2 evaluates the named flags and their dependencies (every flag
// when none are named) for user, default variants included. The user is
// not modified. The map is the caller's; each variant's Metadata and
// Payload are shared with the flags in use and must not be modified (see
// FlagSet.EvaluateV2).
func (c *LocalClient) EvaluateV2(user *User, flagKeys ...string) (map[string]Variant, error) {
	return c.EvaluateV2WithOptions(user, &EvaluateOptions{FlagKeys: flagKeys})
}

// EvaluateOptions mirrors the Python SDK's: which flags, and whether to
// track exposures for this evaluation.
type EvaluateOptions struct {
	FlagKeys []string
	// TracksExposure sends an exposure event for each variant served,
	// de-duplicated; it needs LocalConfig.ExposureConfig, without which
	// the evaluation fails with ErrExposureNotConfigured.
	TracksExposure bool
}

// EvaluateV2WithOptions is EvaluateV2 with options. After Close it still
// evaluates with the last flags, but tracks nothing.
func (c *LocalClient) EvaluateV2WithOptions(user *User, opts *EvaluateOptions) (map[string]Variant, error) {
	if opts == nil {
		opts = &EvaluateOptions{}
	}
	// Exposures asked for and impossible to send are a mistake the caller
	// must hear of: silently not tracking loses the experiment's data (the
	// official Go SDK dereferences nil instead).
	if opts.TracksExposure && c.s.exposure == nil {
		return nil, ErrExposureNotConfigured
	}
	fs := c.flags.Load()
	if fs == nil {
		return nil, ErrNotStarted
	}
	variants, err := fs.EvaluateV2(user, opts.FlagKeys...)
	if err != nil {
		return nil, err
	}
	// Tracking never blocks: the services only enqueue. They exist once
	// flags do: Start makes them before it fetches any.
	if t := c.life.track.Load(); t != nil {
		if opts.TracksExposure && t.exposure != nil {
			t.exposure.TrackExposure(user, variants)
		}
		if t.assignment != nil {
			t.assignment.TrackAssignment(user, variants)
		}
	}
	return variants, nil
}

// Flush sends the tracking events queued so far, within ctx.
func (c *LocalClient) Flush(ctx context.Context) error {
	if t := c.life.track.Load(); t != nil {
		return t.flush(ctx)
	}
	return nil
}

// EvaluateResults is EvaluateV2 for hot paths: results are appended to dst
// and their Metadata is shared with the engine (read-only), so a warm call
// allocates almost nothing.
func (c *LocalClient) EvaluateResults(user *User, flagKeys []string, dst []eval.Result) ([]eval.Result, error) {
	fs := c.flags.Load()
	if fs == nil {
		return dst, ErrNotStarted
	}
	return fs.EvaluateResults(user, flagKeys, dst)
}

// Evaluate is EvaluateV2 with default and undeployed variants dropped, as
// the Python SDK's evaluate.
//
// Deprecated: use EvaluateV2, which keeps default variants, so a caller can
// tell a flag that served its default from one that was not evaluated.
func (c *LocalClient) Evaluate(user *User, flagKeys ...string) (map[string]Variant, error) {
	v, err := c.EvaluateV2(user, flagKeys...)
	if err != nil {
		return nil, err
	}
	return filterDefaults(v), nil
}

// FlagMetadata returns a copy of a flag's metadata (empty when it has
// none), or nil when no flag of that key is loaded. The copy is deep:
// nested objects and arrays too are the caller's to change, the loaded
// flags being shared by every evaluation.
func (c *LocalClient) FlagMetadata(flagKey string) map[string]any {
	fs := c.flags.Load()
	if fs == nil {
		return nil
	}
	f := fs.snap.Flag(flagKey)
	if f == nil {
		return nil
	}
	out := make(map[string]any, len(f.Metadata))
	for k, v := range f.Metadata {
		out[k] = copyJSONValue(v)
	}
	return out
}

// copyJSONValue copies a decoded JSON value: objects and arrays anew,
// scalars (immutable) as they are.
func copyJSONValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = copyJSONValue(e)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			a[i] = copyJSONValue(e)
		}
		return a
	}
	return v
}
