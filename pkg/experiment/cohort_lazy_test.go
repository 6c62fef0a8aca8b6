package experiment_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// eagerContext is cohort enrichment as docs/protocol.md#cohort-enrichment
// states it and as FlagSet.Context did it before enrichment became lazy: every membership
// looked up before evaluation. Lazy enrichment must be indistinguishable
// from it. The user's fields come from FlagSet.Context without its lazy
// oracle; only the enrichment is done again here, the old way.
func eagerContext(fs *experiment.FlagSet, user *experiment.User) eval.Context {
	store, refs := fs.Cohorts(), fs.CohortReferences()
	ctx := fs.Context(user)
	ctx.Cohorts = nil
	if ids := refs[cohort.UserGroupType]; len(ids) > 0 && user.UserID != "" {
		ctx.CohortIDs = store.Memberships(cohort.UserGroupType, user.UserID, ids)
	}
	var enriched map[string]map[string][]string
	for groupType, names := range user.Groups {
		ids, targeted := refs[groupType]
		if !targeted || len(names) == 0 || names[0] == "" {
			continue
		}
		if enriched == nil {
			enriched = map[string]map[string][]string{}
			for k, v := range user.GroupCohortIDs {
				enriched[k] = v
			}
		}
		inner := map[string][]string{}
		for k, v := range enriched[groupType] {
			inner[k] = v
		}
		inner[names[0]] = store.Memberships(groupType, names[0], ids)
		enriched[groupType] = inner
	}
	if enriched != nil {
		ctx.GroupCohortIDs = enriched
	}
	return ctx
}

// checkLazyEqualsEager evaluates user through the FlagSet (lazy) and through
// the engine with an eagerly enriched context, and compares results and
// traces in full. Each flag is also evaluated alone: in a whole-set
// evaluation, a list materialized for one condition serves the next ones,
// which would hide the conditions decided from their values alone.
func checkLazyEqualsEager(t *testing.T, fs *experiment.FlagSet, user *experiment.User, what string) {
	t.Helper()
	eager := eagerContext(fs, user)
	for _, keys := range append([][]string{nil}, chunk(fs.Snapshot().Keys())...) {
		lazy, err := fs.EvaluateResults(user, keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fs.Snapshot().Evaluate(&eager, keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(lazy, want) {
			t.Errorf("%s: flags %v: lazy %s\neager %s", what, keys, resultKeys(lazy), resultKeys(want))
		}
	}
	lazyTrace, err := fs.Explain(user)
	if err != nil {
		t.Fatal(err)
	}
	wantTrace, err := fs.Snapshot().Explain(&eager, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lazyTrace, wantTrace) {
		l, _ := json.Marshal(lazyTrace)
		w, _ := json.Marshal(wantTrace)
		t.Errorf("%s: traces differ\nlazy  %s\neager %s", what, l, w)
	}
}

func chunk(keys []string) [][]string {
	out := make([][]string, len(keys))
	for i, k := range keys {
		out[i] = []string{k}
	}
	return out
}

func resultKeys(rs []eval.Result) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.FlagKey+"="+r.Key)
	}
	return fmt.Sprint(s)
}

func mustCohort(t testing.TB, id, groupType string, members ...string) *cohort.Cohort {
	c, err := cohort.New(id, groupType, 1, members)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// conditionFlags makes one flag per condition: a segment with the
// condition (variant "on"), then everyone else "off", so every flag yields a
// variant and a wrong match shows as a wrong key.
func conditionFlags(t testing.TB, conds []*eval.Condition) []*eval.Flag {
	t.Helper()
	var docs []any
	for i, c := range conds {
		docs = append(docs, map[string]any{
			"key": fmt.Sprintf("f%03d", i),
			"segments": []any{
				map[string]any{"conditions": []any{[]any{c}}, "variant": "on"},
				map[string]any{"variant": "off"},
			},
			"variants": map[string]any{"on": map[string]any{"key": "on"}, "off": map[string]any{"key": "off"}},
		})
	}
	data, err := json.Marshal(docs)
	if err != nil {
		t.Fatal(err)
	}
	flags, err := eval.DecodeFlags(data)
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

var (
	userCohortSel = []string{"context", "user", "cohort_ids"}
	orgCohortSel  = []string{"context", "groups", "org", "cohort_ids"}
)

// TestLazyCohortsTable compares lazy and eager enrichment for every operator
// on user and group cohort lists, for members, non-members, users without a
// user id, groups with an empty first name, "(none)" and boolean-looking
// values, and users who pass memberships themselves.
func TestLazyCohortsTable(t *testing.T) {
	store := cohort.NewStore(
		mustCohort(t, "c1", "", "u1", "u2"),
		mustCohort(t, "c2", "", "u2"),
		mustCohort(t, "TRUE", "", "u3"),
		mustCohort(t, "g1", "org", "acme", ""),
		mustCohort(t, "g2", "org", "acme"),
		mustCohort(t, "wrongtype", "team", "u1", "acme"), // referenced as a user and org cohort, stored as team
	)
	valueSets := [][]string{
		{"c1"}, {"c2", "c1"}, {"nosuch"}, {"(none)"}, {"(none)", "c1"}, {"true"}, {"TRUE"}, {},
		{"g1"}, {"g2", "g1"}, {"(none)", "g2"}, {"wrongtype"}, {"c1", "g1"},
	}
	var conds []*eval.Condition
	for _, op := range eval.OperatorNames() {
		for _, sel := range [][]string{userCohortSel, orgCohortSel} {
			for _, vals := range valueSets {
				conds = append(conds, &eval.Condition{Selector: sel, Op: op, Values: vals})
			}
		}
	}
	// The cohort filters that make c1, c2, TRUE, g1, g2 and wrongtype targeted.
	conds = append(conds,
		&eval.Condition{Selector: userCohortSel, Op: "set contains any", Values: []string{"c1", "c2", "TRUE", "wrongtype"}},
		&eval.Condition{Selector: orgCohortSel, Op: "set does not contain any", Values: []string{"g1", "g2", "wrongtype"}})
	fs, err := experiment.NewFlagSet(conditionFlags(t, conds), store)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]*experiment.User{
		"member":                {UserID: "u1"},
		"member of two":         {UserID: "u2"},
		"boolean cohort member": {UserID: "u3"},
		"non-member":            {UserID: "u9"},
		"no user id":            {DeviceID: "d"},
		"no user id, own ids":   {DeviceID: "d", CohortIDs: []string{"c2", "mine"}},
		"own ids overwritten":   {UserID: "u9", CohortIDs: []string{"c1", "mine"}},
		"group member":          {UserID: "u1", Groups: map[string][]string{"org": {"acme", "other"}}},
		"group non-member":      {UserID: "u1", Groups: map[string][]string{"org": {"other"}}},
		"group empty name":      {Groups: map[string][]string{"org": {""}}},
		"group empty name, own": {Groups: map[string][]string{"org": {""}}, GroupCohortIDs: map[string]map[string][]string{"org": {"": {"g1"}}}},
		"group no names":        {Groups: map[string][]string{"org": {}}},
		"group own overwritten": {Groups: map[string][]string{"org": {"other"}}, GroupCohortIDs: map[string]map[string][]string{"org": {"other": {"g1"}, "x": {"g2"}}}},
		"untargeted group own":  {Groups: map[string][]string{"team": {"t"}}, GroupCohortIDs: map[string]map[string][]string{"team": {"t": {"wrongtype"}}}},
		"empty":                 {},
	}
	for name, u := range users {
		checkLazyEqualsEager(t, fs, u, name)
	}

	// Without any targeted cohort, user-supplied memberships are all there is.
	plain, err := experiment.NewFlagSet(conditionFlags(t, []*eval.Condition{
		{Selector: userCohortSel, Op: "set is", Values: []string{"c1"}},
		{Selector: orgCohortSel, Op: "is", Values: []string{"(none)"}},
	}), store)
	if err != nil {
		t.Fatal(err)
	}
	for name, u := range users {
		checkLazyEqualsEager(t, plain, u, "untargeted: "+name)
	}
}

// TestLazyCohortsRandom is a differential test: random cohorts, random
// conditions on cohort lists with every operator, random users, lazy and
// eager enrichment must agree on every result and trace.
func TestLazyCohortsRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ids := []string{"c1", "c2", "c3", "c4", "TRUE", "false", "(none)", "o1", "o2", "t1", "x"}
	members := []string{"", "u1", "u2", "u3", "u4", "acme", "beta", "TRUE"}
	types := []string{"", "User", "org", "team"}
	ops := append(eval.OperatorNames(), "IS")
	selectors := [][]string{
		userCohortSel, orgCohortSel,
		{"context", "groups", "team", "cohort_ids"},
		{"context", "groups", "User", "cohort_ids"},
		{"context", "groups", "none", "cohort_ids"},
		{"context", "user", "cohort_ids", "x"},
		{"context", "user"}, {"context", "groups", "org"},
	}
	pick := func(list []string, max int) []string {
		var out []string
		for range r.IntN(max + 1) {
			out = append(out, list[r.IntN(len(list))])
		}
		return out
	}
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	for round := range rounds {
		var cohorts []*cohort.Cohort
		for _, id := range ids {
			if r.IntN(5) > 0 {
				cohorts = append(cohorts, mustCohort(t, id, types[r.IntN(len(types))], pick(members, 4)...))
			}
		}
		store := cohort.NewStore(cohorts...)
		var conds []*eval.Condition
		for range 1 + r.IntN(12) {
			op := ops[r.IntN(len(ops))]
			if r.IntN(2) == 0 { // the cohort filter ops, most of the time
				op = []string{"set contains any", "set does not contain any"}[r.IntN(2)]
			}
			conds = append(conds, &eval.Condition{Selector: selectors[r.IntN(len(selectors))], Op: op, Values: pick(ids, 4)})
		}
		if r.IntN(4) == 0 {
			store = nil
		}
		fs, err := experiment.NewFlagSet(conditionFlags(t, conds), store)
		if err != nil {
			t.Fatal(err)
		}
		for u := range 30 {
			user := &experiment.User{}
			if r.IntN(4) > 0 {
				user.UserID = members[r.IntN(len(members))]
			}
			if r.IntN(3) == 0 {
				user.CohortIDs = pick(ids, 3)
			}
			if r.IntN(2) == 0 {
				user.Groups = map[string][]string{}
				for _, gt := range []string{"org", "team", "User", "other"} {
					if r.IntN(2) == 0 {
						user.Groups[gt] = pick(members, 2)
					}
				}
			}
			if r.IntN(3) == 0 {
				user.GroupCohortIDs = map[string]map[string][]string{}
				for _, gt := range []string{"org", "team"} {
					user.GroupCohortIDs[gt] = map[string][]string{members[r.IntN(len(members))]: pick(ids, 2)}
				}
			}
			before, _ := json.Marshal(user)
			checkLazyEqualsEager(t, fs, user, fmt.Sprintf("round %d user %d %s conditions %s", round, u, before, mustMarshal(t, conds)))
			if after, _ := json.Marshal(user); string(after) != string(before) {
				t.Fatalf("evaluation modified the user: %s -> %s", before, after)
			}
		}
		if t.Failed() {
			return
		}
	}
}

// TestLazyCohortsSkipLookups shows what lazy enrichment is for: a flag set
// that targets a cohort but whose deciding segment comes first never looks
// the user up.
func TestLazyCohortsSkipLookups(t *testing.T) {
	flags := conditionFlags(t, []*eval.Condition{{Selector: userCohortSel, Op: "set contains any", Values: []string{"c1"}}})
	flags[0].Segments = append([]*eval.Segment{{Variant: "off"}}, flags[0].Segments...)
	fs, err := experiment.NewFlagSet(flags, cohort.NewStore(mustCohort(t, "c1", "", "u1")))
	if err != nil {
		t.Fatal(err)
	}
	ctx := fs.Context(&experiment.User{UserID: "u1"})
	counter := &countingCohorts{Cohorts: ctx.Cohorts}
	ctx.Cohorts = counter
	if _, err := fs.Snapshot().Evaluate(&ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	if counter.n != 0 {
		t.Errorf("%d membership lookups for a condition never reached", counter.n)
	}
	if !slices.Equal(ctx.CohortIDs, nil) {
		t.Errorf("context was enriched eagerly: %v", ctx.CohortIDs)
	}
}

type countingCohorts struct {
	eval.Cohorts
	n int
}

func (c *countingCohorts) Member(groupType, member, id string) bool {
	c.n++
	return c.Cohorts.Member(groupType, member, id)
}

func (c *countingCohorts) MemberOfAny(groupType, member string, ids []string) bool {
	c.n++
	return c.Cohorts.MemberOfAny(groupType, member, ids)
}
