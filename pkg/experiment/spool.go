package experiment

import (
	"io"
)

// spool keeps the bytes written to it in blocks: it grows without copying
// what it holds, and without the garbage of a slice that doubles (a
// response of 250 MB read with io.ReadAll leaves as much again behind).
type spool struct {
	blocks [][]byte
}

const (
	spoolMinBlock = 32 << 10
	spoolMaxBlock = 1 << 20
)

// newSpool sizes the first block for size bytes when the size is known
// (a Content-Length) and small; -1 for unknown.
func newSpool(size int64) *spool {
	s := &spool{}
	if size > 0 && size <= spoolMaxBlock {
		s.blocks = [][]byte{make([]byte, 0, size)}
	}
	return s
}

func (s *spool) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		last := len(s.blocks) - 1
		if last < 0 || len(s.blocks[last]) == cap(s.blocks[last]) {
			// Blocks double up to spoolMaxBlock, so a small response
			// does not cost a megabyte.
			size := spoolMinBlock
			if last >= 0 {
				size = min(2*cap(s.blocks[last]), spoolMaxBlock)
			}
			s.blocks = append(s.blocks, make([]byte, 0, max(size, spoolMinBlock)))
			last++
		}
		k := min(len(p), cap(s.blocks[last])-len(s.blocks[last]))
		s.blocks[last] = append(s.blocks[last], p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// WriteTo writes everything held, in order.
func (s *spool) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, b := range s.blocks {
		n, err := w.Write(b)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Bytes is everything held, in one slice. The spool keeps that slice as its
// only block, so it can still be written out (WriteTo) after, and the
// blocks it joined are let go as take does.
func (s *spool) Bytes() []byte {
	out := s.take()
	s.blocks = [][]byte{out}
	return out
}

// take is everything held, in one slice; the spool lets go of each block
// once copied, so that a collection may reclaim it before the copy ends.
func (s *spool) take() []byte {
	n := 0
	for _, b := range s.blocks {
		n += len(b)
	}
	out := make([]byte, 0, n)
	for i, b := range s.blocks {
		out = append(out, b...)
		s.blocks[i] = nil
	}
	s.blocks = nil
	return out
}
