package cohort

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestIndexAgreesWithMemberships checks the Index, with and without its
// union filter, against Store.Memberships: a filter that ever said "no" for
// a member would silently drop a user from a cohort.
func TestIndexAgreesWithMemberships(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var cohorts []*Cohort
	for i, groupType := range []string{"User", "User", "User", "org", "org", "User"} {
		members := make([]string, 2000+r.IntN(3000))
		for j := range members {
			members[j] = "m-" + strconv.Itoa(r.IntN(20000))
		}
		c, err := New(fmt.Sprintf("c%d", i), groupType, 1, members)
		if err != nil {
			t.Fatal(err)
		}
		cohorts = append(cohorts, c)
	}
	store := NewStore(cohorts...)
	refs := References{"User": {"c0", "c1", "c3", "c5", "missing"}, "org": {"c3", "c4"}, "team": {}}
	for _, minFilter := range []int{0, 1 << 30} {
		x := newIndex(store, refs, minFilter)
		if (x.user.filter != nil) != (minFilter == 0) {
			t.Fatalf("minFilter %d: filter %v", minFilter, x.user.filter != nil)
		}
		for range 20000 {
			member := "m-" + strconv.Itoa(r.IntN(25000))
			for groupType, ids := range refs {
				want := store.Memberships(groupType, member, ids)
				var got []string
				for _, id := range append(slices.Clone(ids), "c2", "nosuch") {
					if x.Member(groupType, member, id) {
						got = append(got, id)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s %s: Member gives %v, Memberships %v", groupType, member, got, want)
				}
				if hit := x.MemberOfAny(groupType, member, ids); hit != (len(want) > 0) {
					t.Fatalf("%s %s: MemberOfAny %v, Memberships %v", groupType, member, hit, want)
				}
			}
		}
	}
	if x := NewIndex(nil, refs); x.Member("User", "m-1", "c0") || x.MemberOfAny("org", "m-1", []string{"c3"}) {
		t.Error("a nil store has members")
	}
}

// TestFilterFalsePositives keeps the filter useful: most non-members must
// be told apart with one probe.
func TestFilterFalsePositives(t *testing.T) {
	members := make([]string, 100000)
	for i := range members {
		members[i] = "user-" + strconv.Itoa(i)
	}
	c, err := New("c", "", 1, members)
	if err != nil {
		t.Fatal(err)
	}
	f := newFilter([]*Cohort{c})
	for _, m := range members {
		if !f.mayContain(m) {
			t.Fatalf("filter drops member %s", m)
		}
	}
	fp := 0
	const probes = 100000
	for i := range probes {
		if f.mayContain("user-" + strconv.Itoa(len(members)+i)) {
			fp++
		}
	}
	t.Logf("false positives: %.3f%% at %d bits a member", 100*float64(fp)/probes, filterBitsPerMember)
	if fp > probes/100 {
		t.Errorf("%d false positives in %d", fp, probes)
	}
}

// TestFilterReused: a new Index over the same store and cohorts, as each
// flag update makes, shares the filter instead of rebuilding it.
func TestFilterReused(t *testing.T) {
	c, err := New("c", "", 1, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(c)
	refs := References{"User": {"c"}}
	a, b := newIndex(store, refs, 0), newIndex(store, refs, 0)
	if a.user.filter == nil || a.user.filter != b.user.filter {
		t.Error("filter rebuilt for the same cohorts")
	}
	if d := newIndex(store.With(c), refs, 0); d.user.filter == a.user.filter {
		t.Error("a new store shares the old store's filter")
	}
}
