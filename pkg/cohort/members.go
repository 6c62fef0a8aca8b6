package cohort

import (
	"encoding/binary"
	"hash/maphash"
	"iter"
	"math/bits"
)

// memberSet is an immutable set of member ids built for cohorts of millions
// of members. It holds no pointers, so the garbage collector never scans
// it, and costs about len(id)+12 bytes a member (a map[string]struct{}
// costs several times that; see TestMemoryPerMember):
//
//   - arena: every member back to back, in the order received, each as a
//     uvarint length and the id's bytes;
//   - slots: an open-addressing table (linear probing, load at most 3/4),
//     each slot the member's arena offset+1 in its low 32 bits (0 is
//     empty) and 32 other bits of its hash above, so a probe reads the
//     arena only on a probable hit.
//
// A lookup touches two cache lines or so: its slots, then the member.
// Duplicate ids are kept in the arena (so the cohort is saved as received)
// but indexed once.
type memberSet struct {
	seed     maphash.Seed
	arena    []byte
	slots    []uint64
	n        int // members in the arena, duplicates included
	distinct int
}

// maxArena bounds what the 32-bit offsets of slots can address.
const maxArena = 1<<32 - 2

// appendMember appends one member to an arena.
func appendMember(arena, id []byte) []byte {
	arena = binary.AppendUvarint(arena, uint64(len(id)))
	return append(arena, id...)
}

// memberAt is the member whose length starts at arena[off], and the offset
// of the next one.
func memberAt(arena []byte, off int) ([]byte, int) {
	n, k := int(arena[off]), 1
	if n >= 0x80 {
		u, w := binary.Uvarint(arena[off:])
		n, k = int(u), w
	}
	start := off + k
	return arena[start : start+n], start + n
}

// newMemberSet indexes the n members laid out in arena, which it keeps.
func newMemberSet(arena []byte, n int) *memberSet {
	s := &memberSet{seed: maphash.MakeSeed(), arena: arena, n: n}
	if n == 0 {
		return s
	}
	s.slots = make([]uint64, n+n/3+1)
	size := uint64(len(s.slots))
	for off := 0; off < len(arena); {
		m, next := memberAt(arena, off)
		h := maphash.Bytes(s.seed, m)
		tag := h & 0xffffffff
		j, _ := bits.Mul64(h, size)
		for {
			e := s.slots[j]
			if e == 0 {
				s.slots[j] = tag<<32 | uint64(off+1)
				s.distinct++
				break
			}
			if e>>32 == tag {
				if other, _ := memberAt(arena, int(e&0xffffffff)-1); string(other) == string(m) {
					break // a duplicate
				}
			}
			if j++; j == size {
				j = 0
			}
		}
		off = next
	}
	return s
}

// has reports whether id is a member, without allocating.
func (s *memberSet) has(id string) bool {
	size := uint64(len(s.slots))
	if size == 0 {
		return false
	}
	h := maphash.String(s.seed, id)
	tag := h & 0xffffffff
	j, _ := bits.Mul64(h, size)
	for {
		e := s.slots[j]
		if e == 0 {
			return false
		}
		if e>>32 == tag {
			if m, _ := memberAt(s.arena, int(e&0xffffffff)-1); string(m) == id {
				return true
			}
		}
		if j++; j == size {
			j = 0
		}
	}
}

// members yields the members in the order received, duplicates included.
// The slices alias the arena and must not be modified.
func (s *memberSet) members() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for off := 0; off < len(s.arena); {
			m, next := memberAt(s.arena, off)
			if !yield(m) {
				return
			}
			off = next
		}
	}
}
