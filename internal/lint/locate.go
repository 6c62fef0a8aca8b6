package lint

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Locator finds where the values of a flag document start, by the JSON
// paths that findings carry (flags[3].segments[1].variant), so that a
// report can point at a line and column.
type Locator struct {
	data    []byte
	offsets map[string]int
}

// frame is one open array or object while walking the document.
type frame struct {
	path  string
	array bool
	index int    // arrays: elements seen
	key   string // objects: the key whose value comes next, when haveKey
	// haveKey tells a key "" (valid JSON) from no key yet.
	haveKey bool
}

// Locate walks a document once. On malformed JSON it keeps what it saw up
// to the error: positions are a help, never a reason to fail.
func Locate(data []byte) *Locator {
	l := &Locator{data: data, offsets: map[string]int{}}
	// A byte-order mark is skipped, as the engine's decoder does; offsets
	// stay offsets into data.
	skip := len(data) - len(bytes.TrimPrefix(data, byteOrderMark))
	dec := json.NewDecoder(bytes.NewReader(data[skip:]))
	var stack []frame
	for {
		start := skipSeparators(data, skip+int(dec.InputOffset()))
		tok, err := dec.Token()
		if err != nil {
			return l
		}
		if d, ok := tok.(json.Delim); ok && (d == ']' || d == '}') {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if n := len(stack); n > 0 && !stack[n-1].array && !stack[n-1].haveKey {
			key, _ := tok.(string) // the decoder only gives strings here
			stack[n-1].key, stack[n-1].haveKey = key, true
			continue
		}
		path := childPath(stack)
		l.offsets[path] = start
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{path: path, array: d == '['})
		}
	}
}

// childPath is the path of the next value in the innermost open frame,
// and marks it taken.
func childPath(stack []frame) string {
	if len(stack) == 0 {
		return "flags"
	}
	top := &stack[len(stack)-1]
	if top.array {
		top.index++
		return top.path + "[" + strconv.Itoa(top.index-1) + "]"
	}
	key := top.key
	top.key, top.haveKey = "", false
	return top.path + "." + key
}

// skipSeparators moves past the whitespace, commas and colons between
// the decoder's offset and the next value.
func skipSeparators(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n', ',', ':':
			i++
		default:
			return i
		}
	}
	return i
}

// Position is the 1-based line and column (in characters) where the value
// at path starts, or the nearest enclosing value that was found.
func (l *Locator) Position(path string) (line, col int, ok bool) {
	for path != "" {
		if off, found := l.offsets[path]; found {
			line, col = lineColumn(l.data, off)
			return line, col, true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0, 0, false
}

// byteOrderMark is the UTF-8 encoding of U+FEFF that some editors write
// first: not a column of line 1.
var byteOrderMark = []byte("\xef\xbb\xbf")

func lineColumn(data []byte, off int) (int, int) {
	before := data[:off]
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	first := before[lineStart:]
	if lineStart == 0 {
		first = bytes.TrimPrefix(first, byteOrderMark)
	}
	return bytes.Count(before, []byte{'\n'}) + 1, utf8.RuneCount(first) + 1
}
