package experiment_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/flagkit/experiment/internal/conformance"
	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// conformanceDir is the conformance set (internal/conformance finds it).
func conformanceDir(t testing.TB) string {
	t.Helper()
	return conformance.Dir(t)
}

type conformanceCase struct {
	name     string
	flags    *experiment.FlagSet
	users    [][]byte
	expected [][]byte
}

func loadCase(t testing.TB, c conformance.Case) conformanceCase {
	t.Helper()
	data := c.Flags(t)
	flags, err := eval.DecodeFlags(data)
	if err != nil {
		t.Fatalf("%s: %v", c.Dir, err)
	}
	// Loaded as the CLI loads files: the set keeps the document, and finds
	// the cohorts it targets without keeping the decoded flags.
	loaded, err := experiment.LoadFlagSet(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	refs := cohort.Referenced(flags)
	if got := loaded.CohortReferences(); !reflect.DeepEqual(got, refs) {
		t.Fatalf("%s: LoadFlagSet finds cohorts %v, the decoded flags target %v", c.Dir, got, refs)
	}
	fs := loaded.WithCohorts(loadCohorts(t, c, refs.All()))
	return conformanceCase{
		name: c.Name, flags: fs,
		users:    c.Users(t),
		expected: c.Expected(t),
	}
}

// loadCohorts stores the referenced cohorts that have a file, as the
// cohort sync would (an id without a file fails to download: no members).
func loadCohorts(t testing.TB, c conformance.Case, ids []string) *cohort.Store {
	var cohorts []*cohort.Cohort
	for _, id := range ids {
		data, ok := c.Cohort(t, id)
		if !ok {
			continue
		}
		co, err := cohort.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		cohorts = append(cohorts, co)
	}
	return cohort.NewStore(cohorts...)
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	return conformance.ReadLines(t, path)
}

func TestConformance(t *testing.T) {
	for _, cc := range conformance.Cases(t) {
		c := loadCase(t, cc)
		t.Run(c.name, func(t *testing.T) {
			if len(c.users) != len(c.expected) {
				t.Fatalf("%d users but %d expected lines", len(c.users), len(c.expected))
			}
			for i, line := range c.users {
				checkUser(t, c, i, line)
			}
		})
	}
}

func checkUser(t *testing.T, c conformanceCase, i int, line []byte) {
	t.Helper()
	user, err := experiment.DecodeUser(line)
	if err != nil {
		t.Fatalf("users.jsonl:%d: %v", i+1, err)
	}
	before, _ := json.Marshal(user)
	got, err := c.flags.EvaluateV2(user)
	if err != nil {
		t.Fatalf("users.jsonl:%d: %v", i+1, err)
	}
	if after, _ := json.Marshal(user); !bytes.Equal(before, after) {
		t.Errorf("users.jsonl:%d: evaluation modified the user", i+1)
	}
	checkTraceAgrees(t, c, i, user, got)
	var want, have map[string]any
	mustJSON(t, c.expected[i], &want)
	gotJSON, _ := json.Marshal(got)
	mustJSON(t, gotJSON, &have)
	for _, d := range conformance.DiffResults(want, have) {
		t.Errorf("case %s, users.jsonl:%d: %s", c.name, i+1, d)
	}
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

// checkTraceAgrees is the property that keeps explain honest: the traced
// path picks exactly the variants the plain path does.
func checkTraceAgrees(t *testing.T, c conformanceCase, i int, user *experiment.User, got map[string]experiment.Variant) {
	t.Helper()
	trace, err := c.flags.Explain(user)
	if err != nil {
		t.Fatalf("users.jsonl:%d: explain: %v", i+1, err)
	}
	seen := 0
	for _, ft := range trace.Flags {
		v, ok := got[ft.Key]
		switch {
		case ft.Absent && ok:
			t.Errorf("case %s, users.jsonl:%d: flag %s: trace says absent (%s), evaluation gave %s", c.name, i+1, ft.Key, ft.Reason, v.Key)
		case !ft.Absent && (!ok || v.Key != ft.Variant || !reflect.DeepEqual(v.Metadata, ft.Metadata)):
			t.Errorf("case %s, users.jsonl:%d: flag %s: trace gives %s, evaluation %+v", c.name, i+1, ft.Key, ft.Variant, v)
		}
		if !ft.Absent {
			seen++
		}
	}
	if seen != len(got) {
		t.Errorf("case %s, users.jsonl:%d: trace has %d results, evaluation %d", c.name, i+1, seen, len(got))
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
