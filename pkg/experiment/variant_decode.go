package experiment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Decoding of the remote evaluation API's answer: variants, tolerant of what
// Amplitude's SDKs tolerate.

// wireVariant is a variant as the server sends it. Key and value are kept
// raw: any JSON is accepted and rendered as text.
type wireVariant struct {
	Key      json.RawMessage `json:"key"`
	Value    json.RawMessage `json:"value"`
	Payload  any             `json:"payload"`
	Metadata json.RawMessage `json:"metadata"`
}

// fastVariant is wireVariant for the common case: metadata an object.
type fastVariant struct {
	Key      json.RawMessage `json:"key"`
	Value    json.RawMessage `json:"value"`
	Payload  any             `json:"payload"`
	Metadata map[string]any  `json:"metadata"`
}

// decodeVariants decodes a remote evaluation response
// (docs/protocol.md#remote-evaluation-response): a JSON object from flag key
// to variant. A string value is kept as is, any
// other non-null value becomes its compact JSON text, and null or a missing
// value is "" (the Python SDK's rule; the Go SDK fails instead). Unknown
// fields are ignored, a null variant is skipped, and metadata that is not an
// object is dropped. Anything else wraps ErrMalformedResponse and names
// what is wrong. It never panics.
func decodeVariants(data []byte) (map[string]Variant, error) {
	data = trimJSONSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty body, want a JSON object", ErrMalformedResponse)
	}
	if data[0] != '{' {
		return nil, fmt.Errorf("%w: want a JSON object, got %s", ErrMalformedResponse, jsonKind(data))
	}
	// Fast path: one pass for a well-formed response. Anything unusual (a
	// variant or metadata that is not an object, or a syntax error) goes
	// through the careful path, which tolerates or explains it.
	var fast map[string]*fastVariant
	if json.Unmarshal(data, &fast) == nil {
		out := make(map[string]Variant, len(fast))
		for flag, w := range fast {
			if w != nil {
				out[flag] = Variant{Key: jsonText(w.Key), Value: jsonText(w.Value), Payload: w.Payload, Metadata: w.Metadata}
			}
		}
		return out, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedResponse, describeJSONError(err))
	}
	out := make(map[string]Variant, len(raw))
	for flag, rv := range raw {
		switch kind := jsonKind(rv); kind {
		case "null":
			continue
		case "object":
		default:
			return nil, fmt.Errorf("%w: flag %q: want a variant object, got %s", ErrMalformedResponse, flag, kind)
		}
		var w wireVariant
		if err := json.Unmarshal(rv, &w); err != nil {
			return nil, fmt.Errorf("%w: flag %q: %v", ErrMalformedResponse, flag, describeJSONError(err))
		}
		v := Variant{Key: jsonText(w.Key), Value: jsonText(w.Value), Payload: w.Payload}
		if jsonKind(w.Metadata) == "object" {
			_ = json.Unmarshal(w.Metadata, &v.Metadata) // valid: it was decoded once
		}
		out[flag] = v
	}
	return out, nil
}

// jsonText is a JSON value as variant text: a string's contents, compact
// JSON for anything else, "" for null or absent.
func jsonText(raw json.RawMessage) string {
	raw = trimJSONSpace(raw)
	switch jsonKind(raw) {
	case "absent", "null":
		return ""
	case "string":
		if len(raw) >= 2 && raw[len(raw)-1] == '"' {
			if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) {
				return string(inner) // no escapes: the bytes are the string
			}
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}

// jsonKind names the kind of a JSON value by its first byte.
func jsonKind(raw []byte) string {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 {
		return "absent"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "number"
	}
	return "invalid JSON"
}

// trimJSONSpace trims the white space JSON allows, and only that.
func trimJSONSpace(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }
