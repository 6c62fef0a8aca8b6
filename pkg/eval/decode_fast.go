package eval

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// fastDecoder reads a flag document straight into Flags, without the
// reflection of encoding/json: loading is most of what a one-shot command
// costs. It knows only well-formed documents of the exact schema: at
// anything else (a syntax or type error, a duplicate field, a field name
// that matches only case-insensitively) it gives up, and DecodeFlags takes
// the encoding/json path, which stays the authority on what a document
// means and on how its errors read. A fuzz test holds both to the same
// flags.
//
// Strings are interned: a document repeats its selectors, operators,
// variant keys and metadata keys thousands of times.
type fastDecoder struct {
	data   []byte
	pos    int
	depth  int
	failed bool
	strs   map[string]string
	mem    *decoderMemory
}

// decoderMemory is where the fast decoder allocates: slabs for the values
// and lists of the schema, and scratch stacks to gather arrays on.
type decoderMemory struct {
	flags         slab[Flag]
	variants      slab[Variant]
	segments      slab[Segment]
	conditions    slab[Condition]
	buckets       slab[Bucket]
	allocations   slab[Allocation]
	distributions slab[Distribution]

	strings        slab[string]
	uints          slab[uint64]
	segmentLists   slab[*Segment]
	conditionLists slab[*Condition]
	groupLists     slab[[]*Condition]
	allocLists     slab[*Allocation]
	distLists      slab[*Distribution]

	strScratch   []string
	uintScratch  []uint64
	anyScratch   []any
	segScratch   []*Segment
	condScratch  []*Condition
	groupScratch [][]*Condition
	allocScratch []*Allocation
	distScratch  []*Distribution
}

func newFastDecoder(data []byte, strs map[string]string) *fastDecoder {
	return &fastDecoder{data: data, strs: strs, mem: &decoderMemory{}}
}

// maxFastDepth bounds the nesting the fast path follows; deeper documents
// are left to encoding/json and its own limit.
const maxFastDepth = 500

// decodeFlagsFast decodes data, or reports false when only encoding/json
// can say what it means. spans, when not nil, receives where each flag's
// object is in data.
func decodeFlagsFast(data []byte, spans *[]span) ([]*Flag, bool) {
	d := newFastDecoder(data, make(map[string]string, 256))
	var flags []*Flag
	if !d.array(func() {
		d.ws()
		start := d.pos
		if f := d.flag(); f != nil {
			flags = append(flags, f)
			if spans != nil {
				*spans = append(*spans, span{uint32(start), uint32(d.pos)})
			}
		} else {
			d.fail() // a null flag is an error
		}
	}) || d.failed {
		return nil, false
	}
	if flags == nil {
		flags = []*Flag{}
	}
	d.ws()
	return flags, !d.failed && d.pos == len(data)
}

func (d *fastDecoder) fail() { d.failed = true }

func (d *fastDecoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next significant byte, 0 at the end.
func (d *fastDecoder) peek() byte {
	d.ws()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// null consumes a null literal if one comes next.
func (d *fastDecoder) null() bool {
	if d.peek() == 'n' {
		if bytes.HasPrefix(d.data[d.pos:], []byte("null")) {
			d.pos += 4
			return true
		}
		d.fail()
	}
	return false
}

// array calls elem for each element of an array, positioned at it. It
// reports false, consuming nothing, when a null comes instead.
func (d *fastDecoder) array(elem func()) bool {
	if ok, empty := d.enter('[', ']'); !ok || empty {
		return ok
	}
	for !d.failed {
		elem()
		if !d.more(']') {
			return !d.failed
		}
	}
	return false
}

// object calls member with each key of an object, positioned at its value.
// It reports false, consuming nothing, when a null comes instead.
func (d *fastDecoder) object(member func(key []byte)) bool {
	if ok, empty := d.enter('{', '}'); !ok || empty {
		return ok
	}
	for !d.failed {
		key, ok := d.key()
		if !ok || d.peek() != ':' {
			d.fail()
			return false
		}
		d.pos++
		member(key)
		if !d.more('}') {
			return !d.failed
		}
	}
	return false
}

// enter steps into a container that open starts. ok is false for a null
// (nothing consumed) or anything else (the decoder fails); empty is true,
// with the container already left, when close follows at once.
func (d *fastDecoder) enter(open, close byte) (ok, empty bool) {
	if d.null() || d.failed {
		return false, false
	}
	if d.peek() != open {
		d.fail()
		return false, false
	}
	d.pos++
	d.depth++
	if d.depth > maxFastDepth {
		d.fail()
	}
	if d.peek() == close {
		d.pos++
		d.depth--
		return true, true
	}
	return true, false
}

// more moves past the comma before the next element and reports true, or
// past close, leaving the container, and reports false; anything else
// fails the decoder.
func (d *fastDecoder) more(close byte) bool {
	switch d.peek() {
	case ',':
		d.pos++
		return true
	case close:
		d.pos++
		d.depth--
	default:
		d.fail()
	}
	return false
}

// key returns an object key's bytes, unescaped.
func (d *fastDecoder) key() ([]byte, bool) {
	if d.peek() != '"' {
		return nil, false
	}
	raw, simple := d.stringToken()
	if d.failed {
		return nil, false
	}
	if simple {
		return raw[1 : len(raw)-1], true
	}
	s, ok := unquoteJSON(raw)
	return []byte(s), ok
}

// stringToken scans a string literal and returns it with its quotes;
// simple is true when its bytes are its value (no escapes, valid UTF-8).
func (d *fastDecoder) stringToken() (raw []byte, simple bool) {
	start := d.pos
	d.pos++ // the opening quote
	simple = true
	high := false
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			raw = d.data[start:d.pos]
			if high && !utf8.Valid(raw) {
				simple = false
			}
			return raw, simple
		case c == '\\':
			simple = false
			if !d.escape() {
				d.fail()
				return nil, false
			}
			continue
		case c < 0x20:
			d.fail()
			return nil, false
		case c >= utf8.RuneSelf:
			high = true
		}
		d.pos++
	}
	d.fail()
	return nil, false
}

// escape validates the escape sequence at d.pos and moves past it.
func (d *fastDecoder) escape() bool {
	if d.pos+1 >= len(d.data) {
		return false
	}
	switch d.data[d.pos+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		d.pos += 2
		return true
	case 'u':
		if d.pos+6 > len(d.data) {
			return false
		}
		for _, h := range d.data[d.pos+2 : d.pos+6] {
			if !isHex(h) {
				return false
			}
		}
		d.pos += 6
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unquoteJSON decodes a string literal with escapes or invalid UTF-8 the
// way encoding/json does; such strings are rare enough to leave it to it.
func unquoteJSON(raw []byte) (string, bool) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}

// str reads a string, or null (which leaves a Go string empty).
func (d *fastDecoder) str() string {
	if d.null() || d.failed {
		return ""
	}
	if d.peek() != '"' {
		d.fail()
		return ""
	}
	raw, simple := d.stringToken()
	if d.failed {
		return ""
	}
	if !simple {
		s, ok := unquoteJSON(raw)
		if !ok {
			d.fail()
		}
		return d.intern([]byte(s))
	}
	return d.intern(raw[1 : len(raw)-1])
}

// intern returns a shared copy of b's string.
func (d *fastDecoder) intern(b []byte) string {
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(s) <= 128 {
		d.strs[s] = s
	}
	return s
}

// number scans a number literal of the JSON grammar.
func (d *fastDecoder) number() []byte {
	start := d.pos
	i := d.pos
	digits := func() int {
		n := 0
		for i < len(d.data) && '0' <= d.data[i] && d.data[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(d.data) && d.data[i] == '-' {
		i++
	}
	if i < len(d.data) && d.data[i] == '0' {
		i++
	} else if digits() == 0 {
		d.fail()
		return nil
	}
	if i < len(d.data) && d.data[i] == '.' {
		i++
		if digits() == 0 {
			d.fail()
			return nil
		}
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if digits() == 0 {
			d.fail()
			return nil
		}
	}
	d.pos = i
	return d.data[start:i]
}

// strings reads an array of strings; a null element is "".
func (d *fastDecoder) strings() []string {
	return collect(d, &d.mem.strScratch, &d.mem.strings, d.str)
}

// uints reads an array of non-negative integers; a null element is 0.
func (d *fastDecoder) uints() []uint64 {
	return collect(d, &d.mem.uintScratch, &d.mem.uints, func() uint64 {
		if d.null() {
			return 0
		}
		n, err := strconv.ParseUint(string(d.number()), 10, 64)
		if err != nil {
			d.fail()
		}
		return n
	})
}

// value reads any JSON value as encoding/json does into an interface.
func (d *fastDecoder) value() any {
	switch c := d.peek(); {
	case c == '"':
		return d.str()
	case c == '{':
		return d.anyMap()
	case c == '[':
		// not from a slab: a Snapshot keeps variant values and metadata,
		// and with them the whole chunk
		return collect(d, &d.mem.anyScratch, nil, d.value)
	case c == 't' && bytes.HasPrefix(d.data[d.pos:], []byte("true")):
		d.pos += 4
		return true
	case c == 'f' && bytes.HasPrefix(d.data[d.pos:], []byte("false")):
		d.pos += 5
		return false
	case c == 'n':
		d.null()
		return nil
	case c == '-' || '0' <= c && c <= '9':
		f, err := strconv.ParseFloat(string(d.number()), 64)
		if err != nil {
			d.fail()
		}
		return f
	}
	d.fail()
	return nil
}

// anyMap reads an object of any values, or null; a key given twice keeps
// its last value, as encoding/json does.
func (d *fastDecoder) anyMap() map[string]any {
	var m map[string]any
	if d.object(func(key []byte) {
		if m == nil {
			m = make(map[string]any, 4)
		}
		k := d.intern(key)
		m[k] = d.value()
	}) && m == nil {
		m = map[string]any{} // {} is an empty map, null none
	}
	return m
}

// skip validates and passes over a value of a field encoding/json ignores.
func (d *fastDecoder) skip() {
	if d.failed {
		return
	}
	switch c := d.peek(); c {
	case '"':
		d.stringToken()
	case '{':
		d.object(func([]byte) { d.skip() })
	case '[':
		d.array(d.skip)
	case 't', 'f', 'n':
		d.value()
	default:
		d.number()
	}
}
