package eval

// slab hands out values and short slices of T from chunks: decoding a
// document then costs an allocation per chunk instead of one per condition,
// segment or list, and the values of one document sit together in memory.
type slab[T any] struct {
	chunk []T
	exact bool // chunks hold what is asked, no more: for a flag decoded alone
}

// slabSize is the largest number of values in a chunk; chunks start
// small and double, so that decoding a single flag stays small.
const slabSize = 256

// grow starts a new chunk with room for at least n values.
func (s *slab[T]) grow(n int) {
	if s.exact {
		s.chunk = make([]T, 0, n)
		return
	}
	s.chunk = make([]T, 0, max(n, min(slabSize, 2*cap(s.chunk)), 8))
}

// new returns a pointer to a zero T.
func (s *slab[T]) new() *T {
	if len(s.chunk) == cap(s.chunk) {
		s.grow(1)
	}
	s.chunk = s.chunk[:len(s.chunk)+1]
	return &s.chunk[len(s.chunk)-1]
}

// copyOf returns a copy of list, never nil. Its capacity is its length, so
// that appending to it cannot reach its neighbours.
func (s *slab[T]) copyOf(list []T) []T {
	if s.chunk == nil || cap(s.chunk)-len(s.chunk) < len(list) {
		s.grow(len(list))
	}
	start := len(s.chunk)
	s.chunk = append(s.chunk, list...)
	return s.chunk[start:len(s.chunk):len(s.chunk)]
}

// collect reads an array with elem, gathering its elements on scratch (a
// stack shared by nested arrays of the same type) and copying them to out,
// or to an allocation of their own when out is nil. It returns nil for
// null.
func collect[T any](d *fastDecoder, scratch *[]T, out *slab[T], elem func() T) []T {
	start := len(*scratch)
	ok := d.array(func() {
		v := elem()
		*scratch = append(*scratch, v)
	})
	list := (*scratch)[start:]
	var kept []T
	switch {
	case ok && out != nil:
		kept = out.copyOf(list)
	case ok:
		kept = append(make([]T, 0, len(list)), list...)
	}
	clear(list) // the scratch keeps no pointers into the decoded flags
	*scratch = (*scratch)[:start]
	return kept
}
