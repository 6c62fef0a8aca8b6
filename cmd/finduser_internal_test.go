package cmd

import (
	"math"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/flagkit/experiment/pkg/eval"
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
	if n := testing.AllocsPerRun(100, func() { randomUUID(a) }); n > 1 {
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
