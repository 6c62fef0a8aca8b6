package eval

import (
	"bytes"
	"math"
)

// Load decodes a flag document and compiles it, as DecodeFlags then
// Compile do, with the same errors and the same Snapshot, but keeps a copy
// of the document instead of the decoded flags: the flags are decoded again,
// one at a time, only when Flag or Explain asks for them. A Snapshot from
// Load holds about half the memory of one from Compile.
func Load(data []byte) (*Snapshot, error) { return load(data, true) }

// load is Load; without clone, the Snapshot keeps data itself.
func load(data []byte, clone bool) (*Snapshot, error) {
	data = trimBOM(data)
	var spans []span
	flags, ok := decodeFlagsFast(data, &spans)
	if !ok { // what only encoding/json reads (or an error)
		var err error
		if flags, err = decodeFlags(data); err != nil {
			return nil, err
		}
	}
	if err := validateFlags(flags); err != nil {
		return nil, err
	}
	s, kept, positions := compileValid(flags)
	if !ok || len(data) > math.MaxUint32 { // no spans to decode from: kept decoded
		for i, f := range kept {
			s.sources[i].Store(f)
		}
		return s, nil
	}
	if clone {
		data = bytes.Clone(data)
	}
	raw := &rawSource{data: data, spans: make([]span, len(kept))}
	for i, p := range positions {
		raw.spans[i] = spans[p]
	}
	s.raw = raw
	return s, nil
}

// rawSource is the document a Snapshot was loaded from.
type rawSource struct {
	data  []byte
	spans []span // each kept flag's object in data
}

// flag decodes flag i again; it decoded once, so it does again. Decoded
// alone (by Flag, Explain), it is allocated exactly: the slabs that serve
// many flags would hold room for eight of each value, more than half of
// it empty, for as long as the flag is kept.
func (r *rawSource) flag(i int) *Flag {
	d := newFastDecoder(nil, map[string]string{})
	m := d.mem
	m.flags.exact, m.variants.exact, m.segments.exact, m.conditions.exact = true, true, true, true
	m.buckets.exact, m.allocations.exact, m.distributions.exact = true, true, true
	m.strings.exact, m.uints.exact, m.segmentLists.exact, m.conditionLists.exact = true, true, true, true
	m.groupLists.exact, m.allocLists.exact, m.distLists.exact = true, true, true
	return r.decode(i, d)
}

// decode decodes flag i with d, which flags decoded together share.
func (r *rawSource) decode(i int, d *fastDecoder) *Flag {
	sp := r.spans[i]
	f, err := decodeFlag(r.data[sp.start:sp.end], d)
	if err != nil {
		panic("a flag that decoded once does not decode again: " + err.Error())
	}
	return f
}
