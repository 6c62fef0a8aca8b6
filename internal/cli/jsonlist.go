package cli

import (
	"bytes"
	"io"
)

// JSONList writes a stream of JSON values, each given encoded on one line,
// as JSON Lines (-o jsonl), or as the elements of one JSON array (-o json)
// without holding more than one value: a batch of a million users prints
// its array as it goes.
type JSONList struct {
	w       io.Writer
	array   bool
	written int // values written
}

// NewJSONList returns a list writing to w, as an array when array is set.
func NewJSONList(w io.Writer, array bool) *JSONList {
	return &JSONList{w: w, array: array}
}

// Write writes values: one or more lines, each a JSON value ending in a
// newline.
func (l *JSONList) Write(lines []byte) error {
	if !l.array {
		_, err := l.w.Write(lines)
		return err
	}
	for len(lines) > 0 {
		line := lines
		if i := bytes.IndexByte(lines, '\n'); i >= 0 {
			line, lines = lines[:i], lines[i+1:]
		} else {
			lines = nil
		}
		sep := ",\n"
		if l.written == 0 {
			sep = "[\n"
		}
		l.written++
		if _, err := io.WriteString(l.w, sep); err != nil {
			return err
		}
		if _, err := l.w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// Close ends the array ("[]" when it is empty); JSON Lines need nothing.
// Call it after a failure too: what was written stays valid JSON, and the
// exit code says that the run failed.
func (l *JSONList) Close() error {
	if !l.array {
		return nil
	}
	tail := "\n]\n"
	if l.written == 0 {
		tail = "[]\n"
	}
	_, err := io.WriteString(l.w, tail)
	return err
}
