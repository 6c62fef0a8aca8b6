package cohort

import (
	"hash/maphash"
	"math/bits"
	"slices"
	"strings"
)

// Index answers the membership questions of one flag set (its References)
// against one Store, for eval.Context.Cohorts: lookups happen during
// evaluation and only for the cohorts a condition reads. It is immutable and
// safe for concurrent use.
//
// Each cohort of a million members is far larger than the CPU caches, so a
// membership test is a cache miss or two. For a group type whose referenced
// cohorts are large, the Index keeps a filter of the union of their members
// that fits in a few bytes a member: a non-member of every cohort, the
// common case, is told apart with one probe instead of one per cohort.
type Index struct {
	refs  References
	user  *typeIndex
	types map[string]*typeIndex
}

type typeIndex struct {
	ids     []string
	cohorts []*Cohort // by ids; nil when not stored or of another group type
	filter  *filter   // nil when the cohorts are small
}

// filterMinMembers is the size from which a type's cohorts get a filter;
// below it their member sets stay in cache and a filter would only add a
// hash.
const filterMinMembers = 1 << 16

// NewIndex resolves refs against s. s may be nil (nobody is a member).
// Filters are built here, off the evaluation path, and shared by the
// indexes of s with the same cohorts.
func NewIndex(s *Store, refs References) *Index {
	return newIndex(s, refs, filterMinMembers)
}

func newIndex(s *Store, refs References, minFilter int) *Index {
	x := &Index{refs: refs, types: make(map[string]*typeIndex, len(refs))}
	for groupType, ids := range refs {
		ti := &typeIndex{ids: ids, cohorts: make([]*Cohort, len(ids))}
		total := 0
		for i, id := range ids {
			if c := s.Get(id); c != nil && c.GroupType == groupType {
				ti.cohorts[i] = c
				total += c.Len()
			}
		}
		if total >= minFilter {
			ti.filter = s.filterFor(groupType, ti.cohorts)
		}
		x.types[groupType] = ti
		if groupType == UserGroupType {
			x.user = ti
		}
	}
	return x
}

// Referenced returns the referenced ids of groupType, sorted, and whether
// any flag targets the type.
func (x *Index) Referenced(groupType string) ([]string, bool) {
	ids, ok := x.refs[groupType]
	return ids, ok
}

// Member reports whether member is in cohort id, which must be referenced
// for groupType and stored with that group type, as in Store.Memberships.
func (x *Index) Member(groupType, member, id string) bool {
	ti := x.candidate(groupType, member)
	return ti != nil && ti.has(member, id)
}

// MemberOfAny reports whether Member is true for some of ids, trying them in
// order and stopping at the first hit.
func (x *Index) MemberOfAny(groupType, member string, ids []string) bool {
	ti := x.candidate(groupType, member)
	if ti == nil {
		return false
	}
	for _, id := range ids {
		if ti.has(member, id) {
			return true
		}
	}
	return false
}

// candidate returns the cohorts of groupType, or nil when member is in none
// of them for sure.
func (x *Index) candidate(groupType, member string) *typeIndex {
	ti := x.user
	if groupType != UserGroupType {
		ti = x.types[groupType]
	}
	if ti == nil || ti.filter != nil && !ti.filter.mayContain(member) {
		return nil
	}
	return ti
}

func (ti *typeIndex) has(member, id string) bool {
	i, found := slices.BinarySearch(ti.ids, id)
	return found && ti.cohorts[i].Has(member) // Has is false on a nil cohort
}

// filterFor returns the filter of the union of cohorts' members, reused
// while the store and the set of cohorts stay the same: flag updates that
// keep the cohorts make a new Index but must not rebuild filters of millions
// of members. Building under the lock keeps two builds of one filter from
// running at once.
func (s *Store) filterFor(groupType string, cohorts []*Cohort) *filter {
	if s == nil {
		return newFilter(cohorts)
	}
	var key strings.Builder
	for _, c := range cohorts {
		if c != nil {
			key.WriteString(c.ID)
			key.WriteByte(0)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.filters[groupType]; ok && e.key == key.String() {
		return e.filter
	}
	f := newFilter(cohorts)
	if s.filters == nil {
		s.filters = map[string]cachedFilter{}
	}
	s.filters[groupType] = cachedFilter{key: key.String(), filter: f}
	return f
}

// filter is a split block Bloom filter: each member sets 8 bits in one
// 32-byte block, one bit per 32-bit word, so a test reads one cache line. At
// 16 bits a member it answers "maybe" for about 0.1% of non-members; it never
// answers "no" for a member.
type filter struct {
	seed   maphash.Seed
	blocks [][8]uint32
}

const filterBitsPerMember = 16

var filterSalt = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

func newFilter(cohorts []*Cohort) *filter {
	n := 0
	for _, c := range cohorts {
		n += c.Len()
	}
	f := &filter{seed: maphash.MakeSeed(), blocks: make([][8]uint32, max(1, n*filterBitsPerMember/256))}
	for _, c := range cohorts {
		if c == nil || c.set == nil {
			continue
		}
		for m := range c.set.members() {
			f.add(maphash.Bytes(f.seed, m))
		}
	}
	return f
}

func (f *filter) block(h uint64) (*[8]uint32, uint32) {
	i, _ := bits.Mul64(h, uint64(len(f.blocks)))
	return &f.blocks[i], uint32(h)
}

func (f *filter) add(h uint64) {
	b, key := f.block(h)
	for i, salt := range filterSalt {
		b[i] |= 1 << ((key * salt) >> 27)
	}
}

func (f *filter) mayContain(member string) bool {
	b, key := f.block(maphash.String(f.seed, member))
	for i, salt := range filterSalt {
		if b[i]&(1<<((key*salt)>>27)) == 0 {
			return false
		}
	}
	return true
}
