package openfeature

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/flagkit/experiment/pkg/eval"
	of "github.com/open-feature/go-sdk/openfeature"
)

// resolution is what the engine said about one flag, before the value is
// typed for the caller.
type resolution struct {
	result eval.Result
	// assigned: result holds a variant whose value the caller gets.
	// Otherwise the caller's default is returned with detail as is.
	assigned bool
	detail   of.ProviderResolutionDetail
}

func failed(err of.ResolutionError) resolution {
	return resolution{detail: of.ProviderResolutionDetail{ResolutionError: err, Reason: of.ErrorReason}}
}

// resolve evaluates one flag (and the flags it depends on) for the context.
// The reasons are documented on the package.
func (p *Provider) resolve(flag string, flat of.FlattenedContext) resolution {
	fs := p.client.FlagSet()
	if fs == nil {
		return failed(of.NewProviderNotReadyResolutionError("no flag configs yet: the provider is not initialized, or its first fetch has not succeeded"))
	}
	snap := fs.Snapshot()
	if !snap.Has(flag) { // Flag would decode it and keep the decoded copy
		return failed(of.NewFlagNotFoundResolutionError(fmt.Sprintf("flag %q is not in the flag configs in use", flag)))
	}
	user, err := userFromContext(flat)
	if err != nil {
		return failed(of.NewInvalidContextResolutionError(err.Error()))
	}
	// Dependencies come first in the results; most flags have none or
	// a few, so this array keeps the common case off the heap.
	var buf [4]eval.Result
	results, err := fs.EvaluateResults(user, []string{flag}, buf[:0])
	if err != nil {
		// A dependency cycle: the flag configs are at fault, not the
		// caller, and no variant is trustworthy.
		return failed(of.NewGeneralResolutionError(err.Error(), err))
	}
	var r eval.Result
	found := false
	for i := len(results) - 1; i >= 0; i-- {
		if results[i].FlagKey == flag {
			r, found = results[i], true
			break
		}
	}
	if !found {
		// No segment gave a variant (a segment naming a missing
		// variant, or no segments): the flag assigns nothing.
		return resolution{detail: of.ProviderResolutionDetail{Reason: of.DefaultReason}}
	}
	detail := of.ProviderResolutionDetail{Variant: r.Key, FlagMetadata: flagMetadata(r.Metadata)}
	if deployed, ok := r.Metadata["deployed"].(bool); ok && !deployed {
		detail.Reason = of.DisabledReason
		return resolution{result: r, detail: detail}
	}
	if def, _ := r.Metadata["default"].(bool); def {
		// Amplitude's default variant means "not in the flag or
		// experiment": the caller's default applies, as the SDK's
		// Evaluate leaves such flags out.
		detail.Reason = of.DefaultReason
		return resolution{result: r, detail: detail}
	}
	detail.Reason = p.reasons.forSnapshot(snap).reason(r.Outcome)
	return resolution{result: r, assigned: true, detail: detail}
}

// flagMetadata copies the variant's merged metadata. OpenFeature metadata
// values are booleans, strings and numbers: a structured value is passed
// as its compact JSON text rather than dropped.
func flagMetadata(meta map[string]any) of.FlagMetadata {
	if len(meta) == 0 {
		return nil
	}
	out := make(of.FlagMetadata, len(meta))
	for k, v := range meta {
		switch t := v.(type) {
		case float64:
			// JSON numbers decode as float64; an integral one (flagVersion)
			// is given as int64, so FlagMetadata.GetInt reads it.
			if t == math.Trunc(t) && t >= math.MinInt64 && t < math.MaxInt64 {
				out[k] = int64(t)
			} else {
				out[k] = t
			}
		case bool, string, int, int64:
			out[k] = v
		case nil:
		default:
			if b, err := json.Marshal(v); err == nil {
				out[k] = string(b)
			}
		}
	}
	return out
}

// typed turns a resolution into the caller's type with convert, or into
// the caller's default with the reason or error that explains it.
func typed[T any](res resolution, def T, convert func(eval.Result) (T, error)) of.GenericResolutionDetail[T] {
	if !res.assigned {
		return of.GenericResolutionDetail[T]{Value: def, ProviderResolutionDetail: res.detail}
	}
	v, err := convert(res.result)
	if err != nil {
		detail := res.detail
		detail.Variant = "" // the variant's value is not what the caller got
		detail.Reason = of.ErrorReason
		var perr *parseError
		if errors.As(err, &perr) {
			detail.ResolutionError = of.NewParseErrorResolutionError(err.Error())
		} else {
			detail.ResolutionError = of.NewTypeMismatchResolutionError(err.Error())
		}
		return of.GenericResolutionDetail[T]{Value: def, ProviderResolutionDetail: detail}
	}
	return of.GenericResolutionDetail[T]{Value: v, ProviderResolutionDetail: res.detail}
}

// parseError is a value that claims to be JSON and is not: PARSE_ERROR,
// where a value that is simply of another type is TYPE_MISMATCH.
type parseError struct{ err error }

func (e *parseError) Error() string { return e.err.Error() }

// text is the variant's value as a string, its key when it has no value:
// Amplitude shows and sends the key where a variant's value is empty.
func text(r eval.Result) string {
	if r.RawValue == nil {
		return r.Key
	}
	return r.Value
}

func mismatch(r eval.Result, want string) error {
	return fmt.Errorf("flag %q: variant %q has value %q, not %s", r.FlagKey, r.Key, text(r), want)
}

func toBool(r eval.Result) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(text(r))) {
	case "true", "on":
		return true, nil
	case "false", "off":
		return false, nil
	}
	return false, mismatch(r, `a boolean ("true", "false", "on" or "off")`)
}

func toString(r eval.Result) (string, error) { return text(r), nil }

func toInt(r eval.Result) (int64, error) {
	s := strings.TrimSpace(text(r))
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	// A JSON number such as 1e+06 or 3.0 is an integer too, if exact.
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f), nil
	}
	return 0, mismatch(r, "an integer")
}

func toFloat(r eval.Result) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(text(r)), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, mismatch(r, "a number")
	}
	return f, nil
}

// toObject is the payload when the variant has one; otherwise the value
// read as JSON (a configured object or array arrives here as JSON text). A
// plain string value is not an object.
func toObject(r eval.Result) (any, error) {
	if r.Payload != nil {
		return deepCopy(r.Payload), nil
	}
	switch v := r.RawValue.(type) {
	case map[string]any, []any:
		return deepCopy(v), nil
	case string:
		s := strings.TrimSpace(v)
		if s == "" || (s[0] != '{' && s[0] != '[') {
			return nil, mismatch(r, "an object (the variant has no payload)")
		}
		var out any
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, &parseError{fmt.Errorf("flag %q: variant %q: value is not valid JSON: %v", r.FlagKey, r.Key, err)}
		}
		return out, nil
	}
	return nil, mismatch(r, "an object (the variant has no payload)")
}

// BooleanEvaluation resolves a flag as a boolean: a variant value (its key
// without one) of "true"/"on" or "false"/"off", in any case.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, flat of.FlattenedContext) of.BoolResolutionDetail {
	return typed(p.resolve(flag, flat), defaultValue, toBool)
}

// StringEvaluation resolves a flag as the variant's value, its key when it
// has no value.
func (p *Provider) StringEvaluation(_ context.Context, flag string, defaultValue string, flat of.FlattenedContext) of.StringResolutionDetail {
	return typed(p.resolve(flag, flat), defaultValue, toString)
}

// IntEvaluation resolves a flag as the variant's value parsed as an
// integer (an integral JSON number such as 1e+06 counts).
func (p *Provider) IntEvaluation(_ context.Context, flag string, defaultValue int64, flat of.FlattenedContext) of.IntResolutionDetail {
	return typed(p.resolve(flag, flat), defaultValue, toInt)
}

// FloatEvaluation resolves a flag as the variant's value parsed as a
// finite number.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, defaultValue float64, flat of.FlattenedContext) of.FloatResolutionDetail {
	return typed(p.resolve(flag, flat), defaultValue, toFloat)
}

// ObjectEvaluation resolves a flag as the variant's payload, or its value
// when that is a JSON object or array.
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, defaultValue any, flat of.FlattenedContext) of.InterfaceResolutionDetail {
	return typed(p.resolve(flag, flat), defaultValue, toObject)
}

// deepCopy copies decoded JSON. Payloads and values are shared by every
// evaluation of the snapshot: a caller that modified the object it was
// given would otherwise change what every later evaluation returns.
func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
