package experiment_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// The target: a flag that targets 10 user cohorts of 1,000,000
// members each costs about what the same flag costs when the condition is
// on a user property instead.

const (
	benchCohorts       = 10
	benchCohortMembers = 1_000_000
	// benchCohortStride offsets cohort k's members by k*stride, so cohorts
	// overlap in part and the union is 5.5M distinct user ids.
	benchCohortStride = 500_000
	// benchUserSpace: pool ids are drawn from user-0..user-19999999, so
	// about a quarter of the users are in some cohort.
	benchUserSpace = 20_000_000
	benchPool      = 1 << 16
)

func benchCohortIDs() []string {
	ids := make([]string, benchCohorts)
	for k := range ids {
		ids[k] = fmt.Sprintf("big%02d", k)
	}
	return ids
}

// benchCohortStore is built once per process: ten 1M-member cohorts take
// seconds and ~250 MB.
var benchCohortStore = sync.OnceValue(func() *cohort.Store {
	members := make([]string, benchCohortMembers)
	var cohorts []*cohort.Cohort
	for k, id := range benchCohortIDs() {
		for i := range members {
			members[i] = "user-" + strconv.Itoa(k*benchCohortStride+i)
		}
		c, err := cohort.New(id, cohort.UserGroupType, 1, members)
		if err != nil {
			panic(err)
		}
		cohorts = append(cohorts, c)
	}
	return cohort.NewStore(cohorts...)
})

// benchUsers is a pool of distinct random users, large enough that their
// cohort slots are not all in the CPU caches: each lookup is a cold miss
// most of the time, as in a server that sees many users.
var benchUsers = sync.OnceValue(func() []*experiment.User {
	r := rand.New(rand.NewPCG(7, 11))
	props := map[string]any{"plan": "pro", "segment": "none"}
	users := make([]*experiment.User, benchPool)
	for i := range users {
		users[i] = &experiment.User{UserID: "user-" + strconv.Itoa(r.IntN(benchUserSpace)),
			DeviceID: "device-" + strconv.Itoa(r.IntN(benchUserSpace)), Country: "United States", UserProperties: props}
	}
	return users
})

// cohortFlag is one release flag: a targeting segment on selector, then
// everyone else bucketed 50/50.
func cohortFlag(tb testing.TB, key string, selector []string) *eval.Flag {
	tb.Helper()
	doc := map[string]any{
		"key":      key,
		"metadata": map[string]any{"deployed": true, "evaluationMode": "local", "flagType": "release", "flagVersion": 1},
		"segments": []any{
			map[string]any{
				"conditions": []any{[]any{map[string]any{"selector": selector, "op": "set contains any", "values": benchCohortIDs()}}},
				"metadata":   map[string]any{"segmentName": "Targeted"},
				"variant":    "on",
			},
			map[string]any{
				"bucket": map[string]any{"selector": []string{"context", "user", "user_id"}, "salt": "k3v9qa",
					"allocations": []any{map[string]any{"range": []int{0, 100}, "distributions": []any{
						map[string]any{"variant": "on", "range": []int{0, 21474837}},
						map[string]any{"variant": "off", "range": []int{21474837, 42949673}},
					}}}},
				"metadata": map[string]any{"segmentName": "All Other Users"},
				"variant":  "off",
			},
		},
		"variants": map[string]any{"on": map[string]any{"key": "on", "value": "on"}, "off": map[string]any{"key": "off", "metadata": map[string]any{"default": true}}},
	}
	data, err := json.Marshal([]any{doc})
	if err != nil {
		tb.Fatal(err)
	}
	flags, err := eval.DecodeFlags(data)
	if err != nil {
		tb.Fatal(err)
	}
	return flags[0]
}

// BenchmarkCohortTargeting evaluates every flag for a user of the pool.
// cohorts=10 is the flag targeting context.user.cohort_ids; cohorts=0 is the
// same flag with the condition on a user property (same op, same values),
// against the same store. flags=101 adds the 100 bench flags of
// testdata/bench. users=pool draws users from the pool; users=member and
// users=nonmember repeat one user, whose lookups then stay in cache: a
// member of the last two cohorts only (the worst case for a test that stops
// at the first hit) and a member of none.
func BenchmarkCohortTargeting(b *testing.B) {
	store := benchCohortStore()
	pool := benchUsers()
	bench100, err := eval.DecodeFlags(benchFlags(b, 100))
	if err != nil {
		b.Fatal(err)
	}
	for _, extra := range [][]*eval.Flag{nil, bench100} {
		for _, users := range []struct {
			name string
			pool []*experiment.User
		}{
			{"pool", pool},
			{"member", []*experiment.User{{UserID: "user-5400000", UserProperties: pool[0].UserProperties}}},
			{"nonmember", []*experiment.User{{UserID: "user-15400000", UserProperties: pool[0].UserProperties}}},
		} {
			for _, cohorts := range []int{0, benchCohorts} {
				sel := []string{"context", "user", "user_properties", "segment"}
				if cohorts > 0 {
					sel = []string{"context", "user", "cohort_ids"}
				}
				flags := append([]*eval.Flag{cohortFlag(b, "cohort-flag", sel)}, extra...)
				fs, err := experiment.NewFlagSet(flags, store)
				if err != nil {
					b.Fatal(err)
				}
				name := fmt.Sprintf("flags=%d/users=%s/cohorts=%d", len(flags), users.name, cohorts)
				b.Run(name, func(b *testing.B) {
					dst := make([]eval.Result, 0, len(flags))
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						if _, err := fs.EvaluateResults(users.pool[i&(len(users.pool)-1)], nil, dst[:0]); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			}
		}
	}
}
