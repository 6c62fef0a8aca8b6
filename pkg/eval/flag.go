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
	Conditions [][]*Condition `json:"conditions,omitempty"`
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
	flags, err := decodeFlags(data)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			offset := pe.Line // decodeFlags stores the byte offset in Line
			pe.Line, pe.Col = lineCol(data, offset)
		}
		return nil, err
	}
	for i, f := range flags {
		if err := validateFlag(i, f); err != nil {
			return nil, err
		}
	}
	return flags, nil
}

func decodeFlags(data []byte) ([]*Flag, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, &ParseError{Err: fmt.Errorf("empty document: %w", ErrNotFlagList)}
		}
		return nil, syntaxAt(err, "", dec.InputOffset())
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, &ParseError{Line: int(dec.InputOffset()), Err: ErrNotFlagList}
	}
	flags := []*Flag{}
	for i := 0; dec.More(); i++ {
		start := dec.InputOffset()
		var f *Flag
		if err := dec.Decode(&f); err != nil {
			return nil, syntaxAt(err, fmt.Sprintf("flags[%d]", i), start)
		}
		if f == nil {
			return nil, &ParseError{Line: int(start), Path: fmt.Sprintf("flags[%d]", i), Err: errors.New("null flag")}
		}
		flags = append(flags, f)
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxAt(err, "", dec.InputOffset())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ParseError{Line: int(dec.InputOffset()), Err: errors.New("unexpected data after the flag array")}
	}
	return flags, nil
}

// syntaxAt turns a json error into a ParseError carrying the byte offset in
// Line (converted by the caller, which holds the document).
func syntaxAt(err error, path string, fallback int64) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &ParseError{Line: int(se.Offset), Path: path, Err: errors.New(strings.TrimPrefix(se.Error(), "json: "))}
	case errors.As(err, &te):
		p := path
		if te.Field != "" {
			p += "." + te.Field
		}
		return &ParseError{Line: int(te.Offset), Path: p, Err: fmt.Errorf("want %s, got JSON %s", te.Type, te.Value)}
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return &ParseError{Line: int(fallback), Path: path, Err: errors.New("unexpected end of document")}
	}
	return &ParseError{Line: int(fallback), Path: path, Err: err}
}

func lineCol(data []byte, offset int) (int, int) {
	if offset > len(data) {
		offset = len(data)
	}
	if offset < 0 {
		offset = 0
	}
	before := data[:offset]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := offset - bytes.LastIndexByte(before, '\n')
	return line, col
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
