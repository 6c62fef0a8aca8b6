package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DecodeFlagsStream reads a JSON array of flag configs from r one flag at a
// time, checks each as DecodeFlags does, and passes it to each: a document
// of any size is checked, or decoded, without being held in memory. It
// returns how many flags were passed on. Problems in the document are
// *ParseError with the JSON path; a stream has no lines to count, so
// syntax errors give the byte offset instead. An error of r itself, or of
// each, is returned as it is. The document is read to its end, so a
// caller hashing or copying r sees all of it.
func DecodeFlagsStream(r io.Reader, each func(*Flag) error) (int, error) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err == io.EOF {
		return 0, &ParseError{Err: fmt.Errorf("empty document: %w", ErrNotFlagList)}
	}
	if err != nil {
		return 0, streamError(err, "", dec.InputOffset())
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return 0, &ParseError{Err: ErrNotFlagList}
	}
	n := 0
	shared := newFastDecoder(nil, map[string]string{})
	for ; dec.More(); n++ {
		path := fmt.Sprintf("flags[%d]", n)
		start := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return n, streamError(err, path, start)
		}
		f, err := decodeFlag(raw, shared)
		if err != nil {
			// Placed within the flag; its line in the document is unknown.
			pe := locate(raw, raw, 0, path, err).(*ParseError)
			pe.Line, pe.Col = 0, 0
			return n, pe
		}
		if err := validateFlag(n, f); err != nil {
			return n, err
		}
		if err := each(f); err != nil {
			return n, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return n, streamError(err, "", dec.InputOffset())
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil && !isJSONError(err) {
			return n, err
		}
		return n, &ParseError{Err: fmt.Errorf("unexpected data after the flag array, at byte %d", dec.InputOffset())}
	}
	return n, nil
}

// streamError is a ParseError for a problem in the document, at its byte
// offset when known; an error of the reader is returned as it is.
func streamError(err error, path string, offset int64) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &ParseError{Path: path, Err: fmt.Errorf("%s, at byte %d", strings.TrimPrefix(se.Error(), "json: "), se.Offset)}
	case errors.Is(err, io.ErrUnexpectedEOF), err == io.EOF:
		return &ParseError{Path: path, Err: errors.New("unexpected end of document")}
	case isJSONError(err):
		return &ParseError{Path: path, Err: fmt.Errorf("%s, at byte %d", strings.TrimPrefix(err.Error(), "json: "), offset)}
	}
	return err
}

// isJSONError tells the decoder's own complaints (a token where another
// was expected) from the errors of the reader it was given.
func isJSONError(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te) || strings.HasPrefix(err.Error(), "json: ")
}
