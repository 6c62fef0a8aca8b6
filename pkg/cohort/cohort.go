// Package cohort holds behavioural cohort memberships for local evaluation:
// the cohort document served by Amplitude's cohort download API (Decode), an
// immutable store with constant-time, allocation-free membership tests
// (Store), which cohorts a flag set targets (Referenced), the download
// client (Client), a concurrent Sync that keeps the last
// good copy of every cohort, and a directory cache of cohort files (SaveDir,
// LoadDir) that `experiment evaluate --cohorts DIR` reads.
//
// Keys are taken as plain strings and never appear in errors or logs. The
// package does no polling of its own and holds no global state; the
// subpackage cohorttest is a fake download server for tests.
package cohort

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/flagkit/experiment/pkg/eval"
)

// UserGroupType is the group type of cohorts whose members are user ids.
const UserGroupType = "User"

// Cohort is one downloaded cohort: the download API's document, with its
// members indexed for constant-time membership tests. Members are user ids
// for user cohorts, group names for group cohorts. A Cohort is immutable
// once made and safe for concurrent use; its exported fields are
// informational and must not be changed after it is stored.
type Cohort struct {
	ID           string
	GroupType    string
	GroupTypeID  int64
	LastModified int64 // milliseconds since the Unix epoch, as the server sent it
	Size         int   // as the server sent it; Len counts the members
	set          *memberSet
}

// Decode parses the body of GET /sdk/v1/cohort/<id>. A missing group type
// means a user cohort, as in the reference SDK. Errors wrap ErrMalformed.
// data is not retained.
func Decode(data []byte) (*Cohort, error) {
	return decodeOwned(bytes.Clone(data))
}

// New makes a cohort from its parts, e.g. for tests and fakes. An empty
// groupType means UserGroupType; Size is the number of members given.
func New(id, groupType string, lastModified int64, members []string) (*Cohort, error) {
	if id == "" {
		return nil, errors.New("empty cohort id")
	}
	if groupType == "" {
		groupType = UserGroupType
	}
	total := 0
	for _, m := range members {
		total += uvarintLen(len(m)) + len(m)
	}
	if total > maxArena {
		return nil, fmt.Errorf("cohort %s: members larger than 4 GiB", id)
	}
	arena := make([]byte, 0, total)
	for _, m := range members {
		arena = appendMember(arena, []byte(m))
	}
	return &Cohort{ID: id, GroupType: groupType, LastModified: lastModified, Size: len(members),
		set: newMemberSet(arena, len(members))}, nil
}

// Has reports whether id is a member. It does not allocate.
func (c *Cohort) Has(id string) bool {
	return c != nil && c.set != nil && c.set.has(id)
}

// Len is the number of distinct members.
func (c *Cohort) Len() int {
	if c == nil || c.set == nil {
		return 0
	}
	return c.set.distinct
}

// Members yields the member ids in the order the server sent them,
// duplicates included.
func (c *Cohort) Members() iter.Seq[string] {
	return func(yield func(string) bool) {
		if c == nil || c.set == nil {
			return
		}
		for m := range c.set.members() {
			if !yield(string(m)) {
				return
			}
		}
	}
}

// MarshalJSON encodes the cohort in the download API's format, so the
// result can be read back with Decode.
func (c *Cohort) MarshalJSON() ([]byte, error) {
	return c.AppendJSON(nil), nil
}

// AppendJSON appends the download API body of c to dst:
// {"cohortId","groupType","groupTypeId","lastModified","size","memberIds"},
// compact, with no trailing newline.
func (c *Cohort) AppendJSON(dst []byte) []byte {
	if c.set != nil {
		dst = slices.Grow(dst, len(c.set.arena)+2*c.set.n+len(c.ID)+len(c.GroupType)+128)
	}
	dst = append(dst, `{"cohortId":`...)
	dst = appendString(dst, []byte(c.ID))
	dst = append(dst, `,"groupType":`...)
	dst = appendString(dst, []byte(c.GroupType))
	dst = append(dst, `,"groupTypeId":`...)
	dst = strconv.AppendInt(dst, c.GroupTypeID, 10)
	dst = append(dst, `,"lastModified":`...)
	dst = strconv.AppendInt(dst, c.LastModified, 10)
	dst = append(dst, `,"size":`...)
	dst = strconv.AppendInt(dst, int64(c.Size), 10)
	dst = append(dst, `,"memberIds":[`...)
	if c.set != nil {
		first := true
		for m := range c.set.members() {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendString(dst, m)
		}
	}
	return append(dst, "]}"...)
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does.
func appendString(dst []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Store is an immutable set of cohorts keyed by id: With and Without return
// a new Store and leave the receiver as it was, so readers never lock. A nil
// *Store is an empty store.
type Store struct {
	byID map[string]*Cohort

	// filters caches, per group type, the union filter of the latest set
	// of cohorts an Index asked for (see filterFor). One per type bounds
	// the memory when flag updates keep changing the targeted set.
	mu      sync.Mutex
	filters map[string]cachedFilter
}

type cachedFilter struct {
	key    string
	filter *filter
}

// NewStore indexes cohorts by their ids; a later cohort with the same id
// wins. Nil cohorts are skipped.
func NewStore(cohorts ...*Cohort) *Store {
	return (*Store)(nil).With(cohorts...)
}

// With returns a store holding s's cohorts and the given ones, which replace
// any of the same id (a later one wins). s is not modified.
func (s *Store) With(cohorts ...*Cohort) *Store {
	n := &Store{byID: make(map[string]*Cohort, s.Len()+len(cohorts))}
	if s != nil {
		maps.Copy(n.byID, s.byID)
	}
	for _, c := range cohorts {
		if c != nil {
			n.byID[c.ID] = c
		}
	}
	return n
}

// Without returns a store holding s's cohorts except those with the given
// ids. s is not modified.
func (s *Store) Without(ids ...string) *Store {
	n := &Store{byID: make(map[string]*Cohort, s.Len())}
	if s != nil {
		maps.Copy(n.byID, s.byID)
	}
	for _, id := range ids {
		delete(n.byID, id)
	}
	return n
}

// Len is the number of cohorts.
func (s *Store) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byID)
}

// Get returns a cohort or nil.
func (s *Store) Get(id string) *Cohort {
	if s == nil {
		return nil
	}
	return s.byID[id]
}

// IDs returns the stored cohort ids, sorted.
func (s *Store) IDs() []string {
	if s == nil {
		return nil
	}
	ids := make([]string, 0, len(s.byID))
	for id := range s.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Cohorts returns the stored cohorts sorted by id.
func (s *Store) Cohorts() []*Cohort {
	ids := s.IDs()
	out := make([]*Cohort, len(ids))
	for i, id := range ids {
		out[i] = s.byID[id]
	}
	return out
}

// Memberships returns, in the order of ids, those of the given cohorts that
// are of groupType and list member. A cohort stored with another group type
// never counts, as in the reference.
func (s *Store) Memberships(groupType, member string, ids []string) []string {
	out := []string{}
	for _, id := range ids {
		if c := s.Get(id); c != nil && c.GroupType == groupType && c.Has(member) {
			out = append(out, id)
		}
	}
	return out
}

// References maps a group type ("User" for user cohorts) to the cohort ids
// that flags target for it, sorted. A type is present once any condition
// targets it, even with no ids.
type References map[string][]string

// Referenced collects the cohorts that flags target: conditions whose
// selector ends in cohort_ids with a "set contains any" or "set does not
// contain any" operator. Unlike the reference SDK, two such conditions of one
// group type in a segment both count.
func Referenced(flags []*eval.Flag) References {
	sets := map[string]map[string]struct{}{}
	for _, f := range flags {
		for _, seg := range f.Segments {
			if seg == nil {
				continue
			}
			for _, group := range seg.Conditions {
				for _, c := range group {
					addReference(sets, c)
				}
			}
		}
	}
	refs := References{}
	for t, ids := range sets {
		list := make([]string, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		slices.Sort(list)
		refs[t] = list
	}
	return refs
}

func addReference(sets map[string]map[string]struct{}, c *eval.Condition) {
	groupType, ok := cohortGroupType(c)
	if !ok {
		return
	}
	if sets[groupType] == nil {
		sets[groupType] = map[string]struct{}{}
	}
	for _, id := range c.Values {
		sets[groupType][id] = struct{}{}
	}
}

func cohortGroupType(c *eval.Condition) (string, bool) {
	if c == nil {
		return "", false
	}
	sel := c.Selector
	if len(sel) <= 2 || sel[len(sel)-1] != "cohort_ids" {
		return "", false
	}
	if c.Op != "set contains any" && c.Op != "set does not contain any" {
		return "", false
	}
	if sel[1] == "user" {
		return UserGroupType, true
	}
	if slices.Contains(sel, "groups") {
		return sel[2], true
	}
	return "", false
}

// All returns every referenced id once, sorted.
func (r References) All() []string {
	var all []string
	for _, ids := range r {
		all = append(all, ids...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}
