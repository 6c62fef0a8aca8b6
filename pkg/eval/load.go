package eval

import (
	"bytes"
	"math"
	"sync/atomic"
)

// Load decodes a flag document and compiles it, as DecodeFlags then
// Compile do, with the same errors and the same Snapshot, but keeps a copy
// of the document instead of the decoded flags: the flags are decoded again,
// one at a time, only when Flag or Explain asks for them. A Snapshot from
// Load holds about half the memory of one from Compile.
func Load(data []byte) (*Snapshot, error) {
	var spans []span
	flags, ok := decodeFlagsFast(data, &spans)
	if ok && len(data) <= math.MaxUint32 {
		for i, f := range flags {
			if err := validateFlag(i, f); err != nil {
				return nil, err
			}
		}
	} else { // what only encoding/json reads (or an error): kept decoded
		flags, err := DecodeFlags(data)
		if err != nil {
			return nil, err
		}
		return Compile(flags)
	}
	s := &Snapshot{}
	kept, positions := dedupeFlags(flags, s)
	s.compile(kept, positions)
	raw := &rawSource{data: bytes.Clone(data), spans: make([]span, len(kept))}
	for i, p := range positions {
		raw.spans[i] = spans[p]
	}
	s.raw = raw
	s.sources = make([]atomic.Pointer[Flag], len(kept))
	return s, nil
}

// rawSource is the document a Snapshot was loaded from.
type rawSource struct {
	data  []byte
	spans []span // each kept flag's object in data
}

// flag decodes flag i again; it decoded once, so it does again.
func (r *rawSource) flag(i int) *Flag {
	sp := r.spans[i]
	f, err := decodeFlag(r.data[sp.start:sp.end], newFastDecoder(nil, map[string]string{}))
	if err != nil {
		panic("a flag that decoded once does not decode again: " + err.Error())
	}
	return f
}
