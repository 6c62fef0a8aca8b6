package cohort_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
)

// raceEnabled is set under -race, where memory and time are not
// representative.
var raceEnabled bool

const bigN = 1_000_000

// bigMembers are 1,000,000 ids of the shape Amplitude user ids often have
// ("user-123456@example.com" style would be longer; these average 11 bytes).
var bigMembers = sync.OnceValue(func() []string {
	m := make([]string, bigN)
	for i := range m {
		m[i] = "user-" + strconv.Itoa(i)
	}
	return m
})

// bigBody is the download API body of a 1,000,000-member cohort.
var bigBody = sync.OnceValue(func() []byte {
	c, err := cohort.New("big", "User", 1700000000000, bigMembers())
	if err != nil {
		panic(err)
	}
	return c.AppendJSON(nil)
})

var sink any

// heapDelta is the heap that stays live after f returns what it built.
func heapDelta(f func() any) (uint64, any) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return after.HeapAlloc - before.HeapAlloc, v
}

func BenchmarkDownload1M(b *testing.B) {
	body := bigBody()
	fake := cohorttest.NewServer(apiKey, secretKey)
	defer fake.Close()
	require.NoError(b, fake.Put(body))
	client := newClient(b, cohort.Config{ServerURL: fake.URL})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := client.Download(b.Context(), "big", nil)
		if err != nil || c.Len() != bigN {
			b.Fatal(err)
		}
		sink = c
	}
	b.StopTimer()
	sink = nil
	live, _ := heapDelta(func() any {
		c, _ := client.Download(b.Context(), "big", nil)
		return c
	})
	b.ReportMetric(float64(live)/bigN, "B/member")
}

func BenchmarkDecode1M(b *testing.B) {
	body := bigBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := cohort.Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		sink = c
	}
}

// BenchmarkDecode1MEncodingJSON is the straightforward way, for comparison:
// json.Unmarshal, then a map.
func BenchmarkDecode1MEncodingJSON(b *testing.B) {
	body := bigBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		sink = mapCohort(body)
	}
}

func mapCohort(body []byte) map[string]struct{} {
	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		panic(err)
	}
	m := make(map[string]struct{}, len(w.MemberIDs))
	for _, id := range w.MemberIDs {
		m[id] = struct{}{}
	}
	return m
}

// TestMemoryPerMember reports the live heap of a 1,000,000-member cohort
// per member: this package's member set against a map[string]struct{}.
func TestMemoryPerMember(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory is measured without -short and -race")
	}
	body := bigBody()
	idBytes := 0
	for _, m := range bigMembers() {
		idBytes += len(m)
	}
	sink = nil
	set, c := heapDelta(func() any {
		c, err := cohort.Decode(body)
		require.NoError(t, err)
		return c
	})
	require.True(t, c.(*cohort.Cohort).Has("user-999999"))
	m, _ := heapDelta(func() any { return mapCohort(body) })
	perMember := float64(set) / bigN
	t.Logf("1,000,000 members, ids of %.1f bytes on average, body %.1f MiB", float64(idBytes)/bigN, float64(len(body))/(1<<20))
	t.Logf("cohort.Cohort:       %6.1f bytes/member (%.1f MiB), no pointers", perMember, float64(set)/(1<<20))
	t.Logf("map[string]struct{}: %6.1f bytes/member (%.1f MiB), 1,000,000 pointers", float64(m)/bigN, float64(m)/(1<<20))
	require.Less(t, perMember, float64(idBytes)/bigN+20, "member set over budget")
}

func BenchmarkMembership(b *testing.B) {
	c, err := cohort.Decode(bigBody())
	require.NoError(b, err)
	r := rand.New(rand.NewPCG(3, 4))
	const probes = 1 << 16
	hits := make([]string, probes)
	misses := make([]string, probes)
	for i := range probes {
		hits[i] = "user-" + strconv.Itoa(r.IntN(bigN))
		misses[i] = "user-" + strconv.Itoa(bigN+r.IntN(bigN))
	}
	for _, tc := range []struct {
		name string
		ids  []string
		want bool
	}{{"hit", hits, true}, {"miss", misses, false}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if c.Has(tc.ids[i&(probes-1)]) != tc.want {
					b.Fatal("wrong answer")
				}
				i++
			}
		})
	}
	m := mapCohort(bigBody())
	b.Run("map-hit", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok := m[hits[i&(probes-1)]]; !ok {
				b.Fatal("wrong answer")
			}
			i++
		}
	})
	// What enriching one user costs when flags target ten cohorts of a
	// million members each: a member of all ten, and of none.
	var cohorts []*cohort.Cohort
	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("big%d", i)
		cc, err := cohort.New(id, "", 1, bigMembers())
		require.NoError(b, err)
		cohorts = append(cohorts, cc)
		ids = append(ids, id)
	}
	store := cohort.NewStore(cohorts...)
	for _, tc := range []struct {
		name  string
		users []string
	}{{"memberships-10-cohorts-member", hits}, {"memberships-10-cohorts-nonmember", misses}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sink = store.Memberships(cohort.UserGroupType, tc.users[i&(probes-1)], ids)
				i++
			}
		})
	}
}
