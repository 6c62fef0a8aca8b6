package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Flag is one flag config in the v2 wire schema. Every field is optional, as
// in the reference engine; Compile decides what a missing field means.
type Flag struct {
	Key          string              `json:"key"`
	Variants     map[string]*Variant `json:"variants,omitempty"`
	Segments     []*Segment          `json:"segments,omitempty"`
	Dependencies []string            `json:"dependencies,omitempty"`
	Metadata     map[string]any      `json:"metadata,omitempty"`
}

// Variant is a flag's variant as configured: Value and Payload are any JSON.
type Variant struct {
	Key      string         `json:"key,omitempty"`
	Value    any            `json:"value,omitempty"`
	Payload  any            `json:"payload,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// Segment is one targeting rule. Conditions is an OR of AND-groups; a nil
// Conditions (absent in JSON) always matches, an empty one never does.
type Segment struct {
	Bucket     *Bucket        `json:"bucket,omitempty"`
	Conditions [][]*Condition `json:"conditions,omitzero"` // [] matches nobody, absent everybody: keep the difference
	Variant    string         `json:"variant,omitempty"`
	Metadata   map[string]any `json:"metadata,omitempty"`
}

// Bucket splits the users a segment matched between variants by hash.
type Bucket struct {
	Selector    []string      `json:"selector,omitempty"`
	Salt        string        `json:"salt,omitempty"`
	Allocations []*Allocation `json:"allocations,omitempty"`
}

// Condition compares the value at Selector with Values using Op.
type Condition struct {
	Selector []string `json:"selector,omitempty"`
	Op       string   `json:"op,omitempty"`
	Values   []string `json:"values,omitempty"`
}

// Allocation is a half-open range over hash%100 with its distributions.
type Allocation struct {
	Range         []uint64        `json:"range,omitempty"`
	Distributions []*Distribution `json:"distributions,omitempty"`
}

// Distribution is a half-open range over hash/100 that picks a variant.
type Distribution struct {
	Variant string   `json:"variant,omitempty"`
	Range   []uint64 `json:"range,omitempty"`
}

// ParseError locates a problem in a flag config document: the byte offset
// (turned into Line and Col when the source is known) and the JSON path of
// the offending field, e.g. flags[3].segments[1].bucket.allocations[0].range.
type ParseError struct {
	File      string // set by callers that know it
	Line, Col int    // 1-based; 0 when unknown
	Path      string
	Err       error
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Col)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

// ErrNotFlagList is wrapped by DecodeFlags when the document is not a JSON
// array of objects.
var ErrNotFlagList = errors.New("want a JSON array of flag configs")

// DecodeFlags reads a JSON array of flag configs. Errors are *ParseError with
// the line, column and JSON path of the first problem; the document is
// rejected whole, so a caller never works with half a config.
func DecodeFlags(data []byte) ([]*Flag, error) {
	data = trimBOM(data)
	flags, ok := decodeFlagsFast(data, nil)
	if !ok {
		var err error
		if flags, err = decodeFlags(data); err != nil {
			return nil, err
		}
	}
	if err := validateFlags(flags); err != nil {
		return nil, err
	}
	return flags, nil
}

// decodeFlags reads the array element by element so that an error can name
// the flag, and locates it in the whole document.
func decodeFlags(data []byte) ([]*Flag, error) {
	at := func(offset int64, path string, err error) error {
		line, col := lineCol(data, int(offset))
		return &ParseError{Line: line, Col: col, Path: path, Err: err}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, &ParseError{Err: fmt.Errorf("empty document: %w", ErrNotFlagList)}
	}
	if err != nil {
		return nil, syntaxError(data, err, "", dec.InputOffset())
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, at(valueStart(data, 0), "", ErrNotFlagList)
	}
	flags := []*Flag{}
	shared := newFastDecoder(nil, map[string]string{})
	for i := 0; dec.More(); i++ {
		path := fmt.Sprintf("flags[%d]", i)
		start := valueStart(data, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(data, err, path, start)
		}
		f, err := decodeFlag(raw, shared)
		if err != nil {
			return nil, locate(data, raw, start, path, err)
		}
		flags = append(flags, f)
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxError(data, err, "", dec.InputOffset())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, at(valueStart(data, dec.InputOffset()), "", errors.New("unexpected data after the flag array"))
	}
	return flags, nil
}

var errNullFlag = errors.New("null flag, want an object")

// decodeFlag decodes one flag, with the fast decoder when it can; d holds
// what the flags of a document share (interned strings, slabs) and is
// pointed at raw.
func decodeFlag(raw json.RawMessage, d *fastDecoder) (*Flag, error) {
	d.data, d.pos, d.depth, d.failed = raw, 0, 0, false
	if f := d.flag(); f != nil && !d.failed {
		if d.ws(); d.pos == len(raw) {
			return f, nil
		}
	}
	var f *Flag
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errNullFlag
	}
	return f, nil
}

// valueStart skips whitespace and the comma before a value.
func valueStart(data []byte, offset int64) int64 {
	for offset < int64(len(data)) {
		switch data[offset] {
		case ' ', '\t', '\r', '\n', ',':
			offset++
		default:
			return offset
		}
	}
	return offset
}

// syntaxError turns a decoder error into a ParseError at its place in the
// document. The stream decoder's offsets are not reliably absolute, so the
// whole document is checked once more to find the exact byte.
func syntaxError(data []byte, err error, path string, fallback int64) error {
	msg := err
	offset := fallback
	var probe any
	var se *json.SyntaxError
	if perr := json.Unmarshal(data, &probe); errors.As(perr, &se) {
		offset = max(se.Offset-1, 0) // Offset is just past the bad byte
		msg = errors.New(strings.TrimPrefix(se.Error(), "json: "))
		if errors.As(err, &se) { // the stream decoder words some errors better
			msg = errors.New(strings.TrimPrefix(se.Error(), "json: "))
		}
	} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || perr != nil {
		offset, msg = int64(len(data)), errors.New("unexpected end of document")
	}
	line, col := lineCol(data, int(offset))
	return &ParseError{Line: line, Col: col, Path: path, Err: msg}
}

// locate places a flag's decoding error: its line and column in the
// document and the JSON path of the field, with indices, and the flag key.
func locate(data, raw []byte, start int64, path string, err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		line, col := lineCol(data, int(start))
		return &ParseError{Line: line, Col: col, Path: path, Err: err}
	}
	// The type error's offset is just past the offending value.
	valueAt, fieldPath := pathAt(raw, te.Offset)
	line, col := lineCol(data, int(start+valueAt))
	msg := fmt.Sprintf("want %s, got JSON %s", typeName(te.Type.String()), te.Value)
	if key := flagKey(raw); key != "" {
		msg += fmt.Sprintf(" (flag %q)", key)
	}
	return &ParseError{Line: line, Col: col, Path: path + fieldPath, Err: errors.New(msg)}
}

func typeName(goType string) string {
	switch goType {
	case "string":
		return "a string"
	case "uint64":
		return "a non-negative integer"
	case "eval.Flag", "*eval.Flag":
		return "a flag object"
	}
	if strings.HasPrefix(goType, "map[") || strings.HasPrefix(goType, "eval.") || strings.HasPrefix(goType, "*eval.") {
		return "an object"
	}
	if strings.HasPrefix(goType, "[]") {
		return "an array"
	}
	return goType
}

func flagKey(raw []byte) string {
	var k struct {
		Key any `json:"key"`
	}
	json.Unmarshal(raw, &k)
	s, _ := k.Key.(string)
	return s
}

// pathAt walks the tokens of doc and returns the start offset and the JSON
// path (".segments[0].conditions[0][1].values[2]") of the value that ends
// at end.
func pathAt(doc []byte, end int64) (int64, string) {
	type frame struct {
		array bool
		index int
		key   string
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	var stack []frame
	expectKey := false
	render := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				fmt.Fprintf(&b, "[%d]", f.index-1)
			} else if f.key != "" {
				b.WriteString("." + f.key)
			}
		}
		return b.String()
	}
	for {
		before := valueStart(doc, dec.InputOffset())
		if n := len(stack); n > 0 && !stack[n-1].array && !expectKey {
			// after a key: skip the colon too
			for before < int64(len(doc)) && (doc[before] == ':' || doc[before] == ' ' || doc[before] == '\n' || doc[before] == '\t' || doc[before] == '\r') {
				before++
			}
		}
		tok, err := dec.Token()
		if err != nil {
			return 0, ""
		}
		top := len(stack) - 1
		if top >= 0 && !stack[top].array && expectKey {
			if key, ok := tok.(string); ok {
				stack[top].key = key
				expectKey = false
				continue
			}
		}
		if top >= 0 && stack[top].array {
			if d, ok := tok.(json.Delim); !ok || d != ']' {
				stack[top].index++
			}
		}
		here := render()
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{})
			expectKey = true
		case json.Delim('['):
			stack = append(stack, frame{array: true})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if dec.InputOffset() >= end {
				return before, render()
			}
		default:
			if dec.InputOffset() >= end {
				return before, here
			}
		}
		if len(stack) > 0 && !stack[len(stack)-1].array && tok != json.Delim('{') {
			expectKey = true
		}
	}
}

func lineCol(data []byte, offset int) (int, int) {
	offset = max(0, min(offset, len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := offset - bytes.LastIndexByte(before, '\n')
	return line, col
}

// validateFlags is validateFlag on each flag of a list, nil ones skipped.
func validateFlags(flags []*Flag) error {
	for i, f := range flags {
		if f == nil {
			continue
		}
		if err := validateFlag(i, f); err != nil {
			return err
		}
	}
	return nil
}

// validateFlag rejects what the reference engine would crash on (a short
// range, a null condition) instead of evaluating it.
func validateFlag(i int, f *Flag) error {
	at := func(format string, args ...any) string {
		return fmt.Sprintf("flags[%d]", i) + fmt.Sprintf(format, args...)
	}
	fail := func(path, msg string) error {
		if f.Key != "" {
			msg += fmt.Sprintf(" (flag %q)", f.Key)
		}
		return &ParseError{Path: path, Err: errors.New(msg)}
	}
	for s, seg := range f.Segments {
		if seg == nil {
			return fail(at(".segments[%d]", s), "null segment")
		}
		for g, group := range seg.Conditions {
			for c, cond := range group {
				if cond == nil {
					return fail(at(".segments[%d].conditions[%d][%d]", s, g, c), "null condition")
				}
			}
		}
		if seg.Bucket == nil {
			continue
		}
		for a, alloc := range seg.Bucket.Allocations {
			if alloc == nil {
				return fail(at(".segments[%d].bucket.allocations[%d]", s, a), "null allocation")
			}
			if len(alloc.Range) != 2 {
				return fail(at(".segments[%d].bucket.allocations[%d].range", s, a), fmt.Sprintf("want 2 numbers, got %d", len(alloc.Range)))
			}
			for d, dist := range alloc.Distributions {
				if dist == nil {
					return fail(at(".segments[%d].bucket.allocations[%d].distributions[%d]", s, a, d), "null distribution")
				}
				if len(dist.Range) != 2 {
					return fail(at(".segments[%d].bucket.allocations[%d].distributions[%d].range", s, a, d), fmt.Sprintf("want 2 numbers, got %d", len(dist.Range)))
				}
			}
		}
	}
	return nil
}
