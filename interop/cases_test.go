package interop

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
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

// diffResults names each flag and field that differs, with both values (the
// comparison pkg/experiment's conformance test makes).
func diffResults(want, got map[string]any) []string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var diffs []string
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !wok:
			diffs = append(diffs, fmt.Sprintf("flag %s: want absent, got %s", k, compact(g)))
		case !gok:
			diffs = append(diffs, fmt.Sprintf("flag %s: want %s, got absent", k, compact(w)))
		default:
			wm, _ := w.(map[string]any)
			gm, _ := g.(map[string]any)
			for _, field := range []string{"key", "value", "payload", "metadata"} {
				if !reflect.DeepEqual(wm[field], gm[field]) {
					diffs = append(diffs, fmt.Sprintf("flag %s: %s: want %s, got %s", k, field, compact(wm[field]), compact(gm[field])))
				}
			}
		}
	}
	return diffs
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// checkResult reports the differences for one user, at most a few per
// user so that one broken case does not bury the rest.
func checkResult(t *testing.T, client string, c *confCase, i int, want, got map[string]any) {
	t.Helper()
	diffs := diffResults(want, got)
	for j, d := range diffs {
		if j == 3 {
			t.Errorf("%s: %s users.jsonl:%d: %d more differences", client, c.Name, i+1, len(diffs)-3)
			break
		}
		t.Errorf("%s: %s users.jsonl:%d: %s", client, c.Name, i+1, d)
	}
}
