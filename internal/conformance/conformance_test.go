package conformance_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flagkit/experiment/internal/conformance"
)

// The set has every case, and each case its flags, users and one expected
// result per user; the cohort cases have cohort files.
func TestLoad(t *testing.T) {
	cases := conformance.Cases(t)
	if len(cases) < 14 {
		t.Fatalf("%d cases in %s, want at least 14", len(cases), conformance.Dir(t))
	}
	cohortCases := 0
	for _, c := range cases {
		if c != conformance.Open(c.Dir) || c.Name != filepath.Base(c.Dir) {
			t.Errorf("%+v: not the case of its directory", c)
		}
		var flags []map[string]any
		if err := json.Unmarshal(c.Flags(t), &flags); err != nil || len(flags) == 0 {
			t.Errorf("%s: %s: %d flags, %v", c.Name, c.FlagsPath(), len(flags), err)
		}
		users, expected := c.Users(t), c.Expected(t)
		if len(users) == 0 || len(users) != len(expected) {
			t.Errorf("%s: %d users, %d expected results", c.Name, len(users), len(expected))
		}
		for i, line := range expected {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Errorf("%s: expected.jsonl:%d: %v", c.Name, i+1, err)
			}
		}
		dir := c.CohortsDir()
		if dir == "" {
			if _, ok := c.Cohort(t, "anything"); ok {
				t.Errorf("%s: a cohort without cohorts/", c.Name)
			}
			continue
		}
		cohortCases++
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Fatalf("%s: cohorts/: %d files, %v", c.Name, len(entries), err)
		}
		id := entries[0].Name()[:len(entries[0].Name())-len(".json")]
		if data, ok := c.Cohort(t, id); !ok || len(data) == 0 {
			t.Errorf("%s: cohort %s not read", c.Name, id)
		}
		if _, ok := c.Cohort(t, "no-such-cohort"); ok {
			t.Errorf("%s: a cohort with no file", c.Name)
		}
	}
	if cohortCases == 0 {
		t.Error("no case has cohorts")
	}
}

// EXPERIMENT_CONFORMANCE_DIR comes first.
func TestLoadFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "01-only"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EXPERIMENT_CONFORMANCE_DIR", dir)
	cases := conformance.Cases(t)
	if len(cases) != 1 || cases[0].Name != "01-only" {
		t.Fatalf("cases %+v, want 01-only alone", cases)
	}
}

// Blank lines are skipped, and each line is a copy of its own.
func TestReadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.jsonl")
	if err := os.WriteFile(path, []byte("{\"a\":1}\n\n  \n{\"b\":2}"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := conformance.ReadLines(t, path)
	if len(lines) != 2 || string(lines[0]) != `{"a":1}` || string(lines[1]) != `{"b":2}` {
		t.Fatalf("%q", lines)
	}
}

// DiffResults names a flag missing on either side and each differing field,
// in key order, and nothing when the results agree.
func TestDiffResults(t *testing.T) {
	want := map[string]any{
		"a": map[string]any{"key": "on", "value": "on"},
		"b": map[string]any{"key": "on", "metadata": map[string]any{"v": 1.0}},
	}
	got := map[string]any{
		"b": map[string]any{"key": "off", "metadata": map[string]any{"v": 1.0}},
		"c": map[string]any{"key": "on"},
	}
	diffs := conformance.DiffResults(want, got)
	wantDiffs := []string{
		`flag a: want {"key":"on","value":"on"}, got absent`,
		`flag b: key: want "on", got "off"`,
		`flag c: want absent, got {"key":"on"}`,
	}
	if !slices.Equal(diffs, wantDiffs) {
		t.Errorf("DiffResults = %q, want %q", diffs, wantDiffs)
	}
	if d := conformance.DiffResults(want, want); d != nil {
		t.Errorf("DiffResults of equal results = %q", d)
	}
}
