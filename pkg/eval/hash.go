package eval

import "math/bits"

// The bucketing hash is murmur3 x86 32-bit with seed 0 over salt + "/" +
// value. The salt is fixed per bucket, so its blocks are hashed once, at
// compile time: an evaluation hashes only the value, without building the
// concatenation.

const (
	murmurC1 = 0xcc9e2d51
	murmurC2 = 0x1b873593
)

// saltHash is the murmur3 state after salt + "/": the full 4-byte blocks
// mixed in, the bytes after them pending.
type saltHash struct {
	h       uint32
	pending uint32 // the last len%4 bytes, little endian
	length  uint32
}

func newSaltHash(salt string) saltHash {
	prefix := salt + "/"
	var s saltHash
	s.length = uint32(len(prefix))
	full := len(prefix) &^ 3
	for i := 0; i < full; i += 4 {
		s.h = murmurBlock(s.h, uint32(prefix[i])|uint32(prefix[i+1])<<8|uint32(prefix[i+2])<<16|uint32(prefix[i+3])<<24)
	}
	for i := len(prefix) - 1; i >= full; i-- {
		s.pending = s.pending<<8 | uint32(prefix[i])
	}
	return s
}

func murmurBlock(h, k uint32) uint32 {
	k *= murmurC1
	k = bits.RotateLeft32(k, 15)
	k *= murmurC2
	h ^= k
	h = bits.RotateLeft32(h, 13)
	return h*5 + 0xe6546b64
}

// sum returns the hash of salt + "/" + value.
func (s *saltHash) sum(value string) uint32 {
	h, k := s.h, s.pending
	n := s.length & 3 // bytes in k
	for i := 0; i < len(value); i++ {
		k |= uint32(value[i]) << (8 * n)
		if n++; n == 4 {
			h = murmurBlock(h, k)
			k, n = 0, 0
			for ; i+4 < len(value); i += 4 { // whole blocks straight from the value
				b := value[i+1 : i+5]
				h = murmurBlock(h, uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24)
			}
		}
	}
	if n > 0 {
		k *= murmurC1
		k = bits.RotateLeft32(k, 15)
		k *= murmurC2
		h ^= k
	}
	h ^= s.length + uint32(len(value))
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// hashBucket is the bucketing hash of value under salt.
func hashBucket(salt, value string) uint32 {
	s := newSaltHash(salt)
	return s.sum(value)
}
