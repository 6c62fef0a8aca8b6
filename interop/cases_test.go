package interop

import (
	"encoding/json"
	"testing"

	"github.com/flagkit/experiment/internal/conformance"
)

// confCase is one conformance case as the repo's own tests read it
// (testdata/conformance/README.md): flags, users and expected results.
type confCase struct {
	Name     string
	Dir      string
	Flags    string // path of flags.json
	Cohorts  string // path of cohorts/, or "" when the case has none
	Users    [][]byte
	Expected []map[string]any
	// Variants is flag key -> variant key -> the variant as configured, for
	// the typed values OFREP sends (expected.jsonl has them as strings).
	Variants map[string]map[string]map[string]any
}

// casesDir is the conformance set (internal/conformance finds it):
// EXPERIMENT_CONFORMANCE_DIR, the original beside the checkout, or the
// repo's copy.
func casesDir(t testing.TB) string {
	t.Helper()
	return conformance.Dir(t)
}

func loadCases(t testing.TB) []*confCase {
	t.Helper()
	var cases []*confCase
	for _, c := range conformance.Cases(t) {
		cases = append(cases, loadCase(t, c.Dir))
	}
	return cases
}

func loadCase(t testing.TB, dir string) *confCase {
	t.Helper()
	cc := conformance.Open(dir)
	c := &confCase{Name: cc.Name, Dir: dir, Flags: cc.FlagsPath(), Cohorts: cc.CohortsDir()}
	c.Users = cc.Users(t)
	for _, line := range cc.Expected(t) {
		var m map[string]any
		mustJSON(t, line, &m)
		c.Expected = append(c.Expected, m)
	}
	if len(c.Users) != len(c.Expected) {
		t.Fatalf("%s: %d users but %d expected lines", dir, len(c.Users), len(c.Expected))
	}
	var flags []struct {
		Key      string                    `json:"key"`
		Variants map[string]map[string]any `json:"variants"`
	}
	mustJSON(t, cc.Flags(t), &flags)
	c.Variants = map[string]map[string]map[string]any{}
	for _, f := range flags {
		c.Variants[f.Key] = f.Variants
	}
	return c
}

func mustJSON(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%v in %.200s", err, data)
	}
}

// generic turns any value into what encoding/json gives for its JSON text,
// so results are compared as the conformance README says: decoded, not as
// bytes.
func generic(t testing.TB, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	mustJSON(t, b, &m)
	return m
}

// checkResult reports the differences for one user, at most a few per
// user so that one broken case does not bury the rest.
func checkResult(t *testing.T, client string, c *confCase, i int, want, got map[string]any) {
	t.Helper()
	diffs := conformance.DiffResults(want, got)
	for j, d := range diffs {
		if j == 3 {
			t.Errorf("%s: %s users.jsonl:%d: %d more differences", client, c.Name, i+1, len(diffs)-3)
			break
		}
		t.Errorf("%s: %s users.jsonl:%d: %s", client, c.Name, i+1, d)
	}
}
