package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// OFREP (OpenFeature Remote Evaluation Protocol 0.3.0). The evaluation
// context becomes an Amplitude user by these rules (docs/serve.md#ofrep):
//   - targetingKey is user_id, unless the context has a user_id of its own;
//   - keys named as the user object's fields (device_id, country,
//     user_properties, groups, group_properties, ...) are those fields;
//   - every other key is a user property.

// userFields are the user object's JSON field names.
var userFields = map[string]bool{
	"user_id": true, "device_id": true, "country": true, "region": true, "dma": true, "city": true,
	"language": true, "platform": true, "version": true, "os": true, "device_manufacturer": true,
	"device_brand": true, "device_model": true, "carrier": true, "library": true, "ip_address": true,
	"user_properties": true, "groups": true, "group_properties": true,
}

// ofrepError is an OFREP error body.
type ofrepError struct {
	Key          string `json:"key,omitempty"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

func writeOFREPError(w http.ResponseWriter, status int, e ofrepError) {
	b, _ := json.Marshal(e) // strings always encode
	writeBody(w, nil, status, b)
}

// ofrepUser reads the request body {"context": {...}} into a user.
func ofrepUser(r *http.Request, buf *[]byte) (*experiment.User, int, *ofrepError) {
	body, err := readBody(r, (*buf)[:0])
	*buf = body
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, http.StatusRequestEntityTooLarge, &ofrepError{ErrorCode: "GENERAL", ErrorDetails: err.Error()}
		}
		return nil, http.StatusBadRequest, &ofrepError{ErrorCode: "PARSE_ERROR", ErrorDetails: err.Error()}
	}
	// One pass decodes the body and its context: a context that is not an
	// object is the only type error a map[string]any field can give.
	var req struct {
		Context map[string]any `json:"context"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) && te.Field == "context" {
				return nil, http.StatusBadRequest, &ofrepError{ErrorCode: "INVALID_CONTEXT", ErrorDetails: "context: want a JSON object"}
			}
			return nil, http.StatusBadRequest, &ofrepError{ErrorCode: "PARSE_ERROR", ErrorDetails: "request body: want a JSON object {\"context\": {...}}"}
		}
	}
	u, err := contextUser(req.Context)
	if err != nil {
		return nil, http.StatusBadRequest, &ofrepError{ErrorCode: "INVALID_CONTEXT", ErrorDetails: clip(err.Error())}
	}
	return u, 0, nil
}

// contextUser maps an OFREP evaluation context to a user.
func contextUser(ctx map[string]any) (*experiment.User, error) {
	user := map[string]any{}
	props := map[string]any{}
	for k, v := range ctx {
		switch {
		case k == "targetingKey":
			if _, ok := v.(string); !ok && v != nil {
				return nil, errors.New("targetingKey: want a string")
			}
		case k == "user_properties":
			if m, ok := v.(map[string]any); ok {
				for pk, pv := range m {
					props[pk] = pv
				}
			} else if v != nil {
				return nil, errors.New("user_properties: want an object")
			}
		case userFields[k]:
			user[k] = v
		default:
			props[k] = v
		}
	}
	if tk, ok := ctx["targetingKey"].(string); ok && tk != "" && user["user_id"] == nil {
		user["user_id"] = tk
	}
	if len(props) > 0 {
		user["user_properties"] = props
	}
	data, err := json.Marshal(user)
	if err != nil {
		return nil, err
	}
	return experiment.DecodeUser(data)
}

// ofrepReason is the OFREP reason of a result: DEFAULT for Amplitude's
// default variant and DISABLED for an undeployed flag (both sent without a
// value, so the provider uses the code's default), SPLIT when the deciding
// segment buckets, STATIC for a segment that matches everyone,
// TARGETING_MATCH for one with conditions.
func ofrepReason(set *experiment.FlagSet, r eval.Result) string {
	v := experiment.VariantOf(r)
	switch {
	case v.IsDefault():
		return "DEFAULT"
	case !v.IsDeployed():
		return "DISABLED"
	}
	// From the compiled segment: decoding the flag would keep a decoded
	// copy of every flag OFREP is asked about beside the compact set.
	switch set.Snapshot().SegmentKind(r.FlagKey, r.Segment) {
	case eval.SegmentSplit:
		return "SPLIT"
	case eval.SegmentStatic:
		return "STATIC"
	}
	return "TARGETING_MATCH"
}

// renderOFREP renders a result. The value is the payload when there is one
// (Amplitude's place for structured values), else the variant's value as
// configured (its JSON type kept), else the variant key.
func renderOFREP(set *experiment.FlagSet, r eval.Result) []byte {
	out := struct {
		Key      string         `json:"key"`
		Value    any            `json:"value,omitempty"`
		Reason   string         `json:"reason"`
		Variant  string         `json:"variant"`
		Metadata map[string]any `json:"metadata,omitempty"`
	}{Key: r.FlagKey, Reason: ofrepReason(set, r), Variant: r.Key}
	if out.Reason != "DEFAULT" && out.Reason != "DISABLED" {
		switch {
		case r.Payload != nil:
			out.Value = r.Payload
		case r.RawValue != nil:
			out.Value = r.RawValue
		default:
			out.Value = r.Key
		}
	}
	// OFREP metadata holds strings, numbers and booleans only.
	for k, v := range r.Metadata {
		switch v.(type) {
		case string, float64, bool, int, int64:
			if out.Metadata == nil {
				out.Metadata = map[string]any{}
			}
			out.Metadata[k] = v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		b, _ = json.Marshal(ofrepError{Key: r.FlagKey, ErrorCode: "GENERAL", ErrorDetails: "value cannot be encoded"})
	}
	return b
}

func (c *renderCache) ofrepJSON(set *experiment.FlagSet, r eval.Result) []byte {
	return cached(c.ofrep, r, func() []byte { return renderOFREP(set, r) })
}

// serveOFREP answers POST /ofrep/v1/evaluate/flags/{key}.
func (h *Handler) serveOFREP(w http.ResponseWriter, r *http.Request, d *deployment, p []string) {
	st := h.current(w, d)
	if st == nil {
		return
	}
	key, err := url.PathUnescape(p[0])
	if err != nil {
		writeOFREPError(w, http.StatusBadRequest, ofrepError{ErrorCode: "PARSE_ERROR", ErrorDetails: "flag key: bad escape"})
		return
	}
	set := st.Flags.Set
	if !set.Snapshot().Has(key) {
		writeOFREPError(w, http.StatusNotFound, ofrepError{Key: key, ErrorCode: "FLAG_NOT_FOUND", ErrorDetails: "no flag " + clip(key)})
		return
	}
	bp := h.getBuf()
	defer h.putBuf(bp)
	user, status, oerr := ofrepUser(r, bp)
	if oerr != nil {
		oerr.Key = key
		writeOFREPError(w, status, *oerr)
		return
	}
	buf := h.getResults()
	defer h.putResults(buf)
	results, err := set.EvaluateResults(user, []string{key}, (*buf)[:0])
	*buf = results
	if err != nil {
		writeOFREPError(w, http.StatusInternalServerError, ofrepError{Key: key, ErrorCode: "GENERAL", ErrorDetails: err.Error()})
		return
	}
	for _, res := range results {
		if res.FlagKey == key {
			writeBody(w, r, http.StatusOK, st.Flags.render.ofrepJSON(set, res))
			return
		}
	}
	// No segment gave a variant: the provider's default applies.
	b, _ := json.Marshal(map[string]string{"key": key, "reason": "DEFAULT"})
	writeBody(w, r, http.StatusOK, b)
}

// serveOFREPBulk answers POST /ofrep/v1/evaluate/flags: every flag, with
// an ETag that is a hash of the response body, so that a changed context
// never gets a stale 304 (flagd's bug, fixed in flagd #2036).
func (h *Handler) serveOFREPBulk(w http.ResponseWriter, r *http.Request, d *deployment, _ []string) {
	st := h.current(w, d)
	if st == nil {
		return
	}
	bp := h.getBuf()
	defer h.putBuf(bp)
	user, status, oerr := ofrepUser(r, bp)
	if oerr != nil {
		writeOFREPError(w, status, *oerr)
		return
	}
	buf := h.getResults()
	defer h.putResults(buf)
	set := st.Flags.Set
	results, err := set.EvaluateResults(user, nil, (*buf)[:0])
	*buf = results
	if err != nil {
		writeOFREPError(w, http.StatusInternalServerError, ofrepError{ErrorCode: "GENERAL", ErrorDetails: err.Error()})
		return
	}
	body := append((*bp)[:0], `{"flags":[`...) // the context is decoded: reuse its bytes
	defer func() { *bp = body }()
	for i, res := range results {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, st.Flags.render.ofrepJSON(set, res)...)
	}
	body = append(body, "]}"...)
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	if notModified(r, etag) {
		writeNotModified(w, etag)
		return
	}
	writeBody(w, r, http.StatusOK, body)
}
