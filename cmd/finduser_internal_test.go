package cmd

import (
	"context"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

func TestRandomUUIDIsVersion4AndReproducible(t *testing.T) {
	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := rand.New(rand.NewPCG(7, 1)), rand.New(rand.NewPCG(7, 1))
	seen := map[string]bool{}
	for range 100 {
		id := randomUUID(a)
		if !uuid4.MatchString(id) {
			t.Fatalf("%q is not a version 4 UUID", id)
		}
		if again := randomUUID(b); again != id {
			t.Fatalf("same seed, %q then %q", id, again)
		}
		if seen[id] {
			t.Fatalf("%q twice", id)
		}
		seen[id] = true
	}
	// find-user makes one id per try, up to a million: the string only
	if n := testing.AllocsPerRun(100, func() { randomUUID(a) }); n > 1 && !raceEnabled {
		t.Errorf("randomUUID allocates %v times, want 1", n)
	}
}

func TestVariantRoutes(t *testing.T) {
	flags, err := eval.DecodeFlags([]byte(`[{"key":"f","variants":{"a":{},"b":{},"off":{}},"segments":[
	 {"conditions":[[{"selector":["context","user","country"],"op":"is","values":["DE"]}]],"variant":"b"},
	 {"bucket":{"selector":["context","user","user_id"],"salt":"s","allocations":[{"range":[0,50],"distributions":[
	   {"variant":"a","range":[0,10737418]},{"variant":"b","range":[10737418,42949673]}]}]},"variant":"off"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	f := flags[0]
	routes := variantRoutes(f, "a")
	if len(routes) != 1 || routes[0].seg != 1 || !routes[0].bucketed || math.Abs(routes[0].share-0.125) > 1e-6 {
		t.Fatalf("routes to a: %+v, want segment 1 bucketed with 12.5%%", routes)
	}
	if routes := variantRoutes(f, "b"); len(routes) != 2 || routes[0].bucketed || !routes[1].bucketed {
		t.Fatalf("routes to b: %+v, want targeting in 0, bucketing in 1", routes)
	}
	if by, err := defaultBy(f, variantRoutes(f, "a")); err != nil || by != "user_id" {
		t.Fatalf("defaultBy = %q, %v", by, err)
	}
	if by, err := defaultBy(f, variantRoutes(f, "b")[:1]); err != nil || by != "device_id" {
		t.Fatalf("defaultBy for targeting only = %q, %v", by, err)
	}
}

// A search tries up to --max-tries ids; each try should cost the id's
// string and nothing else (the engine evaluates without allocating).
func TestSearchAllocatesOnlyTheIDPerTry(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	flags, err := eval.DecodeFlags([]byte(`[{"key":"f","variants":{"a":{"key":"a"},"b":{"key":"b"}},"segments":[
	 {"bucket":{"selector":["context","user","device_id"],"salt":"s","allocations":[{"range":[0,100],"distributions":[
	   {"variant":"a","range":[0,42949673]}]}]},"variant":"a"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := experiment.NewFlagSet(flags, nil)
	if err != nil {
		t.Fatal(err)
	}
	const tries = 1000
	for _, by := range []string{"device_id", "user_id"} {
		o := &findUserOptions{Flag: "f", Variant: "b", By: by, Count: 1, MaxTries: tries, Seed: 1}
		s := &idSearch{fs: fs, opts: o, next: o.idSource()}
		var report *findUserReport
		n := testing.AllocsPerRun(5, func() {
			if report, err = s.run(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
		if report.Tries != tries || len(report.IDs) != 0 {
			t.Fatalf("%s: %d tries, %d ids; want %d tries and no id (b is out of reach)", by, report.Tries, len(report.IDs), tries)
		}
		if perTry := n / tries; perTry > 1.05 {
			t.Errorf("--by %s: %.3g allocations per try, want 1 (the id)", by, perTry)
		}
	}
}

// A bucket by a user property named device_id is out of reach of
// --by device_id: the diagnosis must say so, not that tries ran out.
func TestDiagnoseBucketByPropertyNamedLikeTheID(t *testing.T) {
	flags, err := eval.DecodeFlags([]byte(`[{"key":"f","variants":{"a":{"key":"a"},"off":{"key":"off"}},"segments":[
	 {"bucket":{"selector":["context","user","user_properties","device_id"],"salt":"s","allocations":[{"range":[0,100],"distributions":[
	   {"variant":"a","range":[0,42949673]}]}]},"variant":"off"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := experiment.NewFlagSet(flags, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &findUserOptions{Flag: "f", Variant: "a", By: "device_id", Count: 1, MaxTries: 10, Seed: 1}
	s := &idSearch{fs: fs, opts: o, next: o.idSource()}
	if report, err := s.run(context.Background()); err != nil || len(report.IDs) != 0 {
		t.Fatalf("run = %+v, %v; want no ids", report, err)
	}
	why, reachable := s.diagnose(flags[0], variantRoutes(flags[0], "a"))
	if reachable || !strings.Contains(why, "which --by device_id does not change") {
		t.Fatalf("diagnose = %q, reachable %v; want the selector named as out of reach", why, reachable)
	}
	if _, err := defaultBy(flags[0], variantRoutes(flags[0], "a")); err == nil {
		t.Fatal("defaultBy accepted a bucket by a user property")
	}
}

// The default --by is the id of a bucket that can give the variant: not a
// segment whose conditions are [] (it matches nobody), and not a group's
// bucket, which find-user cannot vary, when a later one hashes an id.
func TestDefaultBySkipsBucketsItCannotUse(t *testing.T) {
	flags, err := eval.DecodeFlags([]byte(`[{"key":"f","variants":{"a":{},"off":{}},"segments":[
	 {"conditions":[],"bucket":{"selector":["context","user","user_id"],"salt":"s","allocations":[{"range":[0,100],"distributions":[{"variant":"a","range":[0,42949673]}]}]}},
	 {"bucket":{"selector":["context","groups","org","group_name"],"salt":"s","allocations":[{"range":[0,50],"distributions":[{"variant":"a","range":[0,42949673]}]}]}},
	 {"bucket":{"selector":["context","user","device_id"],"salt":"s","allocations":[{"range":[0,50],"distributions":[{"variant":"a","range":[0,42949673]}]}]},"variant":"off"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	routes := variantRoutes(flags[0], "a")
	if len(routes) != 2 || routes[0].seg != 1 || routes[1].seg != 2 {
		t.Fatalf("routes = %+v; want segments 1 and 2 (segment 0 matches nobody)", routes)
	}
	if by, err := defaultBy(flags[0], routes); err != nil || by != "device_id" {
		t.Fatalf("defaultBy = %q, %v; want device_id, the id segment 2 buckets by", by, err)
	}
	if _, err := defaultBy(flags[0], routes[:1]); err == nil {
		t.Fatal("defaultBy accepted a group's bucket alone")
	}
}
