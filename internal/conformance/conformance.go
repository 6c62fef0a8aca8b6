// Package conformance reads the conformance set (testdata/conformance) for
// the tests of every module of the repository: where the set is, its cases,
// and each case's flags, users, expected results and cohorts.
//
// Go's internal rule goes by import path, so the modules nested in this
// repository (github.com/flagkit/experiment/openfeature and
// github.com/flagkit/experiment/interop) may import it as well.
//
// The set is EXPERIMENT_CONFORMANCE_DIR when that is set, else the shared
// conformance folder beside the checkout (../shared/conformance/cases from
// the repository's root), else the repository's copy under
// testdata/conformance/cases. Paths are relative to the test's working
// directory, as the tests' own copies of this code gave them.
package conformance

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	module = "github.com/flagkit/experiment"
	envDir = "EXPERIMENT_CONFORMANCE_DIR"
)

// Dir is the directory holding the cases: EXPERIMENT_CONFORMANCE_DIR, the
// shared set beside the checkout, or the repository's copy. It fails the
// test when none is a directory.
func Dir(tb testing.TB) string {
	tb.Helper()
	candidates := []string{os.Getenv(envDir)}
	if root, ok := repoRoot(); ok {
		candidates = append(candidates,
			filepath.Join(root, "..", "shared", "conformance", "cases"),
			filepath.Join(root, "testdata", "conformance", "cases"),
		)
	}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir
		}
	}
	tb.Fatal("conformance cases not found: set " + envDir + " or place shared/ beside the checkout")
	return ""
}

// repoRoot is the root of the checkout relative to the working directory
// ("." or "../.." or ...): the nearest directory upwards whose go.mod is
// the module github.com/flagkit/experiment.
func repoRoot() (string, bool) {
	rel := "."
	for {
		if isRoot(filepath.Join(rel, "go.mod")) {
			return rel, true
		}
		abs, err := filepath.Abs(rel)
		if err != nil || filepath.Dir(abs) == abs {
			return "", false
		}
		rel = filepath.Join(rel, "..")
	}
}

func isRoot(gomod string) bool {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module"); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`) == module
		}
	}
	return false
}

// Case is one case of the set: a directory with flags.json, users.jsonl,
// expected.jsonl and, for the cohort cases, cohorts/.
type Case struct {
	Name string // the directory's name, e.g. 02-mixed
	Dir  string
}

// Cases lists the cases of Dir in order of name; it fails the test when
// there are none.
func Cases(tb testing.TB) []Case {
	tb.Helper()
	root := Dir(tb)
	dirs, err := filepath.Glob(filepath.Join(root, "*"))
	if err != nil {
		tb.Fatalf("no cases in %s: %v", root, err)
	}
	var cases []Case
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			cases = append(cases, Open(dir))
		}
	}
	if len(cases) == 0 {
		tb.Fatalf("no cases in %s", root)
	}
	return cases
}

// Open is the case in dir.
func Open(dir string) Case {
	return Case{Name: filepath.Base(dir), Dir: dir}
}

// FlagsPath is the path of the case's flags.json.
func (c Case) FlagsPath() string { return filepath.Join(c.Dir, "flags.json") }

// Flags is the content of flags.json.
func (c Case) Flags(tb testing.TB) []byte {
	tb.Helper()
	data, err := os.ReadFile(c.FlagsPath())
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// Users are the non-blank lines of users.jsonl, one user each.
func (c Case) Users(tb testing.TB) [][]byte {
	tb.Helper()
	return ReadLines(tb, filepath.Join(c.Dir, "users.jsonl"))
}

// Expected are the non-blank lines of expected.jsonl: line i is the result
// for user i.
func (c Case) Expected(tb testing.TB) [][]byte {
	tb.Helper()
	return ReadLines(tb, filepath.Join(c.Dir, "expected.jsonl"))
}

// CohortsDir is the case's cohorts/ directory, or "" when it has none.
func (c Case) CohortsDir() string {
	dir := filepath.Join(c.Dir, "cohorts")
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir
	}
	return ""
}

// Cohort is the content of cohorts/<id>.json, and false when the case has
// no such file (a cohort that fails to download: no members).
func (c Case) Cohort(tb testing.TB, id string) ([]byte, bool) {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(c.Dir, "cohorts", id+".json"))
	if os.IsNotExist(err) {
		return nil, false
	}
	if err != nil {
		tb.Fatal(err)
	}
	return data, true
}

// ReadLines is the non-blank lines of the file at path (lines of up to
// 64 MiB), each its own copy.
func ReadLines(tb testing.TB, path string) [][]byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, slices.Clone(sc.Bytes()))
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return lines
}
