package experiment

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"sync"
)

// The JSON of exposure events, written without building them: the
// exposure record appends each event's JSON itself (analytics.Appender),
// byte for byte as encoding/json writes the event.

// jsonWriter appends JSON to buf byte for byte as an encoding/json Encoder
// without HTML escaping writes it: plain strings directly, anything else
// through such an Encoder.
type jsonWriter struct {
	buf     []byte
	scratch bytes.Buffer
	enc     *json.Encoder
}

func newJSONWriter() *jsonWriter {
	w := &jsonWriter{}
	w.enc = json.NewEncoder(&w.scratch)
	w.enc.SetEscapeHTML(false)
	return w
}

// raw appends s as is.
func (w *jsonWriter) raw(s string) { w.buf = append(w.buf, s...) }

// plainJSON reports whether encoding/json writes s as is between quotes:
// printable ASCII other than the quote and the backslash.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// str appends s as a JSON string.
func (w *jsonWriter) str(s string) {
	if !plainJSON(s) {
		_ = w.encode(s) // a string always encodes; this is its exact form
		return
	}
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '"')
}

// strings appends a JSON array of ss (null for nil, as encoding/json).
func (w *jsonWriter) strings(ss []string) {
	if ss == nil {
		w.raw("null")
		return
	}
	w.buf = append(w.buf, '[')
	for i, s := range ss {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.str(s)
	}
	w.buf = append(w.buf, ']')
}

// jsonWriters recycles the writers of exposure events: an Encoder and its
// buffer for the values that are not plain strings, made once per sender
// rather than once per event.
var jsonWriters = sync.Pool{New: func() any { return newJSONWriter() }}

// value appends v's JSON.
func (w *jsonWriter) value(v any) error {
	switch x := v.(type) {
	case string:
		w.str(x) // plain strings, the most common metadata, cost no reflection
		return nil
	case bool:
		w.buf = strconv.AppendBool(w.buf, x)
		return nil
	case nil:
		w.raw("null")
		return nil
	case float64:
		// Numbers decoded from JSON, such as flagVersion. NaN and the
		// infinities have no JSON form: the Encoder says so.
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			w.buf = appendJSONFloat(w.buf, x)
			return nil
		}
	}
	return w.encode(v)
}

// appendJSONFloat formats f as encoding/json does: like ES6, the shortest
// decimal, in exponent form below 1e-6 and from 1e21, with a one-digit
// negative exponent written without its leading zero.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1] // e-09 becomes e-9
		b = b[:n-1]
	}
	return b
}

// encode appends v's JSON as the Encoder writes it.
func (w *jsonWriter) encode(v any) error {
	w.scratch.Reset()
	if err := w.enc.Encode(v); err != nil {
		return err
	}
	w.buf = append(w.buf, bytes.TrimSuffix(w.scratch.Bytes(), []byte("\n"))...)
	return nil
}
