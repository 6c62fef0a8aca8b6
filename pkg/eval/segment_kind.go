package eval

// SegmentKind is how a segment decides, read from the compiled snapshot:
// servers that report it per request (OFREP's reason) would otherwise
// decode the flag and keep the decoded copy beside the compact one.
type SegmentKind uint8

const (
	// SegmentUnknown: no such flag or segment.
	SegmentUnknown SegmentKind = iota
	// SegmentStatic matches everyone and gives one variant.
	SegmentStatic
	// SegmentTargeted matches by conditions and gives one variant.
	SegmentTargeted
	// SegmentSplit buckets the users it matches among variants.
	SegmentSplit
)

// Has reports whether the snapshot defines flag key, without decoding it.
func (s *Snapshot) Has(key string) bool {
	_, ok := s.index[key]
	return ok
}

// SegmentKind says how segment seg (Result.Segment) of flag key decides.
func (s *Snapshot) SegmentKind(key string, seg int) SegmentKind {
	i, ok := s.index[key]
	if !ok || seg < 0 || seg >= s.flags[i].segs.len() {
		return SegmentUnknown
	}
	switch sr := &s.segments[int(s.flags[i].segs.start)+seg]; {
	case sr.bucket >= 0:
		return SegmentSplit
	case sr.matchAll:
		return SegmentStatic
	}
	return SegmentTargeted
}
