package cohort

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every error about a cohort document that is not
// the download API's JSON.
var ErrMalformed = errors.New("malformed cohort")

// decodeOwned parses a body of GET /sdk/v1/cohort/<id> that it may modify:
// member ids are unescaped in place into the front of buf, which becomes the
// cohort's member arena, so a million-member body costs one buffer, not a
// million strings. Everything but memberIds goes through encoding/json, and
// memberIds follows its rules too (null elements are "", invalid UTF-8
// becomes U+FFFD, field names match case-insensitively, the last duplicate
// key wins), so the result is what json.Unmarshal would give.
func decodeOwned(buf []byte) (*Cohort, error) {
	if len(buf) > maxArena {
		return nil, fmt.Errorf("%w: larger than 4 GiB", ErrMalformed)
	}
	p := parser{data: buf}
	var h wireHeader
	if err := p.document(&h); err != nil {
		return nil, err
	}
	if h.CohortID == "" {
		return nil, fmt.Errorf("%w: missing cohortId", ErrMalformed)
	}
	if h.GroupType == "" {
		h.GroupType = UserGroupType
	}
	arena := buf[:p.w]
	if p.sep != nil {
		arena = p.sep
	}
	if len(arena) > maxArena {
		return nil, fmt.Errorf("%w: members larger than 4 GiB", ErrMalformed)
	}
	if cap(arena)-len(arena) > len(arena)/8+4096 {
		arena = bytes.Clone(arena) // do not keep the rest of the body alive
	}
	return &Cohort{ID: h.CohortID, GroupType: h.GroupType, GroupTypeID: h.GroupTypeID,
		LastModified: h.LastModified, Size: h.Size, set: newMemberSet(arena, p.n)}, nil
}

// wireHeader is the download API body without its members.
type wireHeader struct {
	CohortID     string
	GroupType    string
	GroupTypeID  int64
	LastModified int64
	Size         int
}

type parser struct {
	data []byte
	pos  int    // next byte to read
	w    int    // end of the member arena in data[:w]; w < pos always
	sep  []byte // the arena, once it no longer fits behind pos (see emit)
	n    int    // members in the arena
}

func (p *parser) errorf(format string, args ...any) error {
	if p.pos >= len(p.data) {
		return fmt.Errorf("%w: offset %d: unexpected end of JSON input", ErrMalformed, len(p.data))
	}
	return fmt.Errorf("%w: offset %d: %s", ErrMalformed, p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) document(h *wireHeader) error {
	p.skipSpace()
	if !p.consume('{') {
		return p.errorf("want a JSON object")
	}
	p.skipSpace()
	if !p.consume('}') {
		for {
			p.skipSpace()
			key, err := p.key()
			if err != nil {
				return err
			}
			p.skipSpace()
			if !p.consume(':') {
				return p.errorf("want ':' after object key")
			}
			p.skipSpace()
			switch {
			case strings.EqualFold(key, "memberIds"):
				err = p.members()
			case strings.EqualFold(key, "cohortId"):
				err = p.value(key, &h.CohortID)
			case strings.EqualFold(key, "groupType"):
				err = p.value(key, &h.GroupType)
			case strings.EqualFold(key, "groupTypeId"):
				err = p.value(key, &h.GroupTypeID)
			case strings.EqualFold(key, "lastModified"):
				err = p.value(key, &h.LastModified)
			case strings.EqualFold(key, "size"):
				err = p.value(key, &h.Size)
			default:
				err = p.value(key, new(json.RawMessage))
			}
			if err != nil {
				return err
			}
			p.skipSpace()
			if p.consume(',') {
				continue
			}
			if p.consume('}') {
				break
			}
			return p.errorf("want ',' or '}' in object")
		}
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return p.errorf("data after the cohort object")
	}
	return nil
}

// value decodes one JSON value at pos into v with encoding/json.
func (p *parser) value(key string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(p.data[p.pos:]))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return p.errorf("%s: unexpected end of JSON input", key)
		}
		return p.errorf("%s: %v", key, err)
	}
	p.pos += int(dec.InputOffset())
	return nil
}

func (p *parser) key() (string, error) {
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return "", p.errorf("want an object key")
	}
	start := p.pos
	seg, simple, err := p.str()
	if err != nil {
		return "", err
	}
	if simple {
		return string(seg), nil
	}
	var s string
	if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
		return "", p.errorf("object key: %v", err)
	}
	return s, nil
}

// members parses the memberIds array into the arena at the front of data.
func (p *parser) members() error {
	p.w, p.sep, p.n = 0, nil, 0 // a repeated key replaces the earlier array
	if p.literal("null") {
		return nil
	}
	if !p.consume('[') {
		return p.errorf("memberIds: want an array of strings")
	}
	p.skipSpace()
	if p.consume(']') {
		return nil
	}
	for i := 0; ; i++ {
		p.skipSpace()
		start := p.pos
		switch {
		case p.pos < len(p.data) && p.data[p.pos] == '"':
			seg, simple, err := p.str()
			if err != nil {
				return err
			}
			if simple {
				p.emit(seg, start)
			} else {
				var s string
				if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
					return p.errorf("memberIds[%d]: %v", i, err)
				}
				p.emit([]byte(s), start)
			}
		case p.literal("null"):
			p.emit(nil, start) // encoding/json leaves a null element of []string as ""
		default:
			return p.errorf("memberIds[%d]: want a string", i)
		}
		p.n++
		p.skipSpace()
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			return nil
		}
		return p.errorf("memberIds: want ',' or ']' after element %d", i)
	}
}

// emit appends member m, whose JSON began at data[start], to the arena. The
// arena grows in place at the front of data, behind the input still to
// read: a member's length prefix and bytes take no more room than its JSON
// (quotes and separator included) unless it is megabytes long, and should
// the prefix ever catch up with the input, the arena moves to a buffer of
// its own. m may alias data[start+1:].
func (p *parser) emit(m []byte, start int) {
	if p.sep == nil && p.w+uvarintLen(len(m)) > start+1 {
		p.sep = append(make([]byte, 0, len(p.data)), p.data[:p.w]...)
	}
	if p.sep != nil {
		p.sep = appendMember(p.sep, m)
		return
	}
	p.w += binary.PutUvarint(p.data[p.w:], uint64(len(m))) // ends before start: m is intact
	p.w += copy(p.data[p.w:], m)
}

func uvarintLen(n int) int {
	k := 1
	for ; n >= 0x80; n >>= 7 {
		k++
	}
	return k
}

// str scans the string at pos (which is '"') and moves past it. simple
// strings, those with no escapes and valid UTF-8, are returned as their raw
// bytes; others must be unquoted by encoding/json.
func (p *parser) str() (seg []byte, simple bool, err error) {
	d := p.data
	start := p.pos + 1
	i := start
	var high byte
	for i < len(d) {
		c := d[i]
		if c == '"' || c == '\\' || c < 0x20 {
			break
		}
		high |= c
		i++
	}
	if i < len(d) && d[i] == '"' {
		seg = d[start:i]
		p.pos = i + 1
		return seg, high < utf8.RuneSelf || utf8.Valid(seg), nil
	}
	for i < len(d) {
		switch c := d[i]; {
		case c == '\\':
			i += 2
			continue
		case c == '"':
			p.pos = i + 1
			return d[start:i], false, nil
		case c < 0x20:
			p.pos = i
			return nil, false, p.errorf("control character in string")
		}
		i++
	}
	p.pos = len(d)
	return nil, false, p.errorf("unterminated string")
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) consume(c byte) bool {
	if p.pos < len(p.data) && p.data[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *parser) literal(lit string) bool {
	if rest := p.data[p.pos:]; len(rest) >= len(lit) && string(rest[:len(lit)]) == lit {
		p.pos += len(lit)
		return true
	}
	return false
}
