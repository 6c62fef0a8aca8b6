// Package cohort holds behavioural cohort memberships for local evaluation:
// the cohort document served by Amplitude's cohort download API, a store
// with constant-time membership tests, and which cohorts a flag set targets.
package cohort

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/flagkit/experiment/pkg/eval"
)

// UserGroupType is the group type of cohorts whose members are user ids.
const UserGroupType = "User"

// Cohort is one downloaded cohort. Members are user ids for user cohorts,
// group names for group cohorts.
type Cohort struct {
	ID           string
	GroupType    string
	GroupTypeID  int64
	LastModified int64
	Size         int
	members      map[string]struct{}
}

type wireCohort struct {
	CohortID     string   `json:"cohortId"`
	GroupType    string   `json:"groupType"`
	GroupTypeID  int64    `json:"groupTypeId"`
	LastModified int64    `json:"lastModified"`
	Size         int      `json:"size"`
	MemberIDs    []string `json:"memberIds"`
}

// Decode parses the body of GET /sdk/v1/cohort/<id>. A missing group type
// means a user cohort, as in the reference SDK.
func Decode(data []byte) (*Cohort, error) {
	var w wireCohort
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("cohort: %w", err)
	}
	if w.CohortID == "" {
		return nil, errors.New("cohort: missing cohortId")
	}
	if w.GroupType == "" {
		w.GroupType = UserGroupType
	}
	c := &Cohort{ID: w.CohortID, GroupType: w.GroupType, GroupTypeID: w.GroupTypeID,
		LastModified: w.LastModified, Size: w.Size, members: make(map[string]struct{}, len(w.MemberIDs))}
	for _, m := range w.MemberIDs {
		c.members[m] = struct{}{}
	}
	return c, nil
}

// Has reports whether id is a member.
func (c *Cohort) Has(id string) bool {
	_, ok := c.members[id]
	return ok
}

// Len is the number of distinct members.
func (c *Cohort) Len() int { return len(c.members) }

// Store is an immutable set of cohorts keyed by id; build a new one to change
// it, so readers never lock.
type Store struct {
	byID map[string]*Cohort
}

// NewStore indexes cohorts by their ids; a later cohort with the same id wins.
func NewStore(cohorts ...*Cohort) *Store {
	s := &Store{byID: make(map[string]*Cohort, len(cohorts))}
	for _, c := range cohorts {
		s.byID[c.ID] = c
	}
	return s
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
