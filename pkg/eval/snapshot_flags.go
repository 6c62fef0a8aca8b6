package eval

import (
	"bytes"
	"reflect"
)

// Flags returns every flag as configured, in the order of Keys; callers
// must not modify them. A Snapshot from Load decodes those that Flag or
// Explain have not decoded yet, all together, sharing strings and memory
// as DecodeFlags does, for this call only: it keeps none of them, so that
// a caller listing the flags once (to serve or compare them) does not
// leave the Snapshot holding them twice, decoded beside the document.
func (s *Snapshot) Flags() []*Flag {
	out := make([]*Flag, len(s.flags))
	var d *fastDecoder
	for i := range out {
		if out[i] = s.sources[i].Load(); out[i] != nil {
			continue
		}
		if d == nil {
			d = newFastDecoder(nil, make(map[string]string, 256))
		}
		out[i] = s.raw.decode(i, d)
	}
	return out
}

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

// Document is the flag document s was loaded from, byte for byte (less a
// byte order mark), fields this engine does not know included; nil for a
// Snapshot compiled from decoded flags, or loaded from a document only
// encoding/json reads. Callers must not modify it.
func (s *Snapshot) Document() []byte {
	if s.raw == nil {
		return nil
	}
	return s.raw.data
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
