package eval

import (
	"bytes"
	"reflect"
)

// LoadOwned is Load for a document handed over to the Snapshot: it keeps
// data itself rather than a copy, so the caller must not modify data
// afterwards. A client that has just read a response of hundreds of
// megabytes into a buffer of its own spares holding it twice.
func LoadOwned(data []byte) (*Snapshot, error) { return load(data, false) }

// SameFlag reports whether flag key is in both s and t, configured alike.
// Flags of loaded documents whose bytes are the same are alike without
// being decoded; the others are decoded, without being kept (a client
// comparing whole updates would otherwise hold every flag decoded), and
// compared whole: a flag's version in its metadata need not change with
// its config.
func (s *Snapshot) SameFlag(t *Snapshot, key string) bool {
	i, ok := s.index[key]
	j, tok := t.index[key]
	if !ok || !tok {
		return false
	}
	if a, b := s.flagJSON(i), t.flagJSON(j); a != nil && b != nil && bytes.Equal(a, b) {
		return true
	}
	return reflect.DeepEqual(s.peek(i), t.peek(j))
}

// flagJSON is flag i's object in the loaded document; nil without one.
func (s *Snapshot) flagJSON(i int) []byte {
	if s.raw == nil {
		return nil
	}
	sp := s.raw.spans[i]
	return s.raw.data[sp.start:sp.end]
}

// peek is flag i as configured: decoded already, or decoded now and not
// kept.
func (s *Snapshot) peek(i int) *Flag {
	if f := s.sources[i].Load(); f != nil {
		return f
	}
	return s.raw.flag(i)
}
