package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/experiment"
)

// TestDiffImpactBruteForce plants changes in real flag configs (a salt on
// a flag others depend on, an allocation, a reorder, a variant value, a
// flag removed and one added), runs `diff --users -o json` through the
// batch machinery, and checks every impact count, matrix and example
// against evaluating each user against both sides one by one.
func TestDiffImpactBruteForce(t *testing.T) {
	for _, tc := range []struct{ name, flags, users, cohorts string }{
		{"testdata", filepath.Join("..", "testdata", "flags.json"), "", ""},
		{"03-deps", filepath.Join("..", "testdata", "conformance", "cases", "03-deps", "flags.json"),
			filepath.Join("..", "testdata", "conformance", "cases", "03-deps", "users.jsonl"), ""},
		{"04-deps-cohorts", filepath.Join("..", "testdata", "conformance", "cases", "04-deps-cohorts", "flags.json"),
			filepath.Join("..", "testdata", "conformance", "cases", "04-deps-cohorts", "users.jsonl"),
			filepath.Join("..", "testdata", "conformance", "cases", "04-deps-cohorts", "cohorts")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			oldDoc, err := os.ReadFile(tc.flags)
			require.NoError(t, err)
			users := tc.users
			if users == "" {
				users = filepath.Join(dir, "users.jsonl")
				writeSampleUsers(t, users, 3000)
			}
			// The first flag with dependents whose salt change moves some
			// of their users in this sample: a salt change that moves nobody
			// would test nothing.
			var planted plantedDoc
			var want *bruteImpact
			for n := 0; ; n++ {
				planted = plantChanges(t, oldDoc, n)
				want = bruteForceImpact(t, oldDoc, planted.doc, users, tc.cohorts, 2)
				if want.moved(planted.dependents) > 0 {
					break
				}
			}
			newPath := filepath.Join(dir, "new.json")
			require.NoError(t, os.WriteFile(newPath, planted.doc, 0o644))
			args := []string{"diff", tc.flags, newPath, "--users", users, "-o", "json", "--examples", "2"}
			if tc.cohorts != "" {
				args = append(args, "--cohorts", tc.cohorts)
			}
			ios, out, errOut := testStreams("")
			code := Main(context.Background(), args, ios)
			require.Equal(t, ExitCheckFailed, code, "stderr: %s", errOut)
			var got diffOutput
			require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())

			// The planted changes are what the diff reports.
			kinds := map[string]string{}
			for _, f := range got.Flags {
				kinds[f.Key] = string(f.Change)
			}
			assert.Equal(t, "removed", kinds[planted.removed])
			assert.Equal(t, "added", kinds["planted-new-flag"])
			for _, k := range planted.changed {
				assert.Equal(t, "changed", kinds[k], k)
			}
			for _, f := range got.Flags {
				if f.Key == planted.salted {
					assert.True(t, f.Rebuckets, "salt change on %s not flagged", f.Key)
				}
			}

			require.NotNil(t, got.Impact)
			assert.Equal(t, want.users, got.Impact.Users)
			gotFlags := map[string]*flagImpact{}
			for _, f := range got.Impact.Flags {
				gotFlags[f.Key] = f
			}
			for key, cells := range want.cells {
				moved := 0
				for c, n := range cells {
					if c[0] != c[1] {
						moved += n
					}
				}
				f, ok := gotFlags[key]
				if _, inDiff := kinds[key]; !inDiff && moved == 0 {
					assert.False(t, ok, "%s: reported without a change or a move", key)
					continue
				}
				require.True(t, ok, "%s: %d users moved, not reported", key, moved)
				assert.Equal(t, moved, f.UsersChanged, key)
				matrix := map[[2]string]int{}
				for _, tr := range f.Matrix {
					matrix[[2]string{tr.From, tr.To}] = tr.Users
					if tr.From != tr.To {
						assert.Equal(t, want.examples[key][[2]string{tr.From, tr.To}], tr.Examples, "%s %s→%s", key, tr.From, tr.To)
					}
				}
				assert.Equal(t, cells, matrix, key)
				newValue := 0
				for c, n := range cells {
					if c[0] == c[1] && want.newValue[key][c[0]] {
						newValue += n
					}
				}
				assert.Equal(t, newValue, f.UsersNewValue, key)
			}
			// A flag moved only by its dependency says so.
			moved := 0
			for _, k := range planted.dependents {
				dep := gotFlags[k]
				if dep == nil {
					continue
				}
				moved += dep.UsersChanged
				assert.Contains(t, dep.Reasons, "depends on "+planted.salted+", which changed")
				assert.NotContains(t, dep.Reasons, "config changed")
			}
			assert.Positive(t, moved, "the salt change of %s moved nobody in %v", planted.salted, planted.dependents)
		})
	}
}

type plantedDoc struct {
	doc        []byte
	removed    string
	changed    []string
	salted     string   // a flag others depend on, whose salt changed
	dependents []string // the unchanged flags that depend on salted
}

// plantChanges edits a flag document: the salt of a bucketed flag that an
// otherwise unchanged flag depends on, an allocation range, a segment
// order, a variant value; one flag removed (nothing depends on it), one
// added.
func plantChanges(t *testing.T, doc []byte, candidate int) plantedDoc {
	t.Helper()
	var flags []map[string]any
	require.NoError(t, json.Unmarshal(doc, &flags))
	byKey := map[string]map[string]any{}
	dependents := map[string][]string{}
	for _, f := range flags {
		byKey[f["key"].(string)] = f
		for _, d := range asSlice(f["dependencies"]) {
			dependents[d.(string)] = append(dependents[d.(string)], f["key"].(string))
		}
	}
	var p plantedDoc
	touched := map[string]bool{}
	for _, f := range flags {
		key := f["key"].(string)
		if len(dependents[key]) == 0 || bucketOf(f) == nil {
			continue
		}
		if candidate > 0 {
			candidate--
			continue
		}
		for _, s := range asSlice(f["segments"]) {
			if b, ok := s.(map[string]any)["bucket"].(map[string]any); ok {
				b["salt"] = "planted-salt"
			}
		}
		p.salted, p.dependents = key, dependents[key]
		touched[key] = true
		for _, d := range p.dependents {
			touched[d] = true
		}
		break
	}
	require.NotEmpty(t, p.salted, "no (more) bucketed flags with dependents to plant a salt change in")
	p.changed = append(p.changed, p.salted)
	for _, f := range flags {
		key := f["key"].(string)
		if touched[key] || bucketOf(f) == nil {
			continue
		}
		for _, a := range asSlice(bucketOf(f)["allocations"]) {
			r := a.(map[string]any)["range"].([]any)
			r[1] = float64(max(1, int(r[1].(float64))/2)) // half the allocation
		}
		p.changed, touched[key] = append(p.changed, key), true
		break
	}
	for _, f := range flags {
		key := f["key"].(string)
		if s := asSlice(f["segments"]); !touched[key] && len(s) >= 3 {
			s[0], s[1] = s[1], s[0]
			p.changed, touched[key] = append(p.changed, key), true
			break
		}
	}
	for _, f := range flags {
		key := f["key"].(string)
		if touched[key] {
			continue
		}
		for vk, v := range f["variants"].(map[string]any) {
			v.(map[string]any)["value"] = "planted-" + vk
		}
		p.changed, touched[key] = append(p.changed, key), true
		break
	}
	for i, f := range flags {
		key := f["key"].(string)
		if !touched[key] && len(dependents[key]) == 0 && len(asSlice(f["dependencies"])) == 0 {
			p.removed = key
			flags = slices.Delete(flags, i, i+1)
			break
		}
	}
	require.NotEmpty(t, p.removed)
	flags = append(flags, map[string]any{"key": "planted-new-flag",
		"variants": map[string]any{"on": map[string]any{"key": "on", "value": "on"}},
		"segments": []any{map[string]any{"bucket": map[string]any{"selector": []any{"context", "user", "device_id"}, "salt": "n",
			"allocations": []any{map[string]any{"range": []any{0, 100}, "distributions": []any{
				map[string]any{"variant": "on", "range": []any{0, 21474836}}}}}}}}})
	var err error
	p.doc, err = json.Marshal(flags)
	require.NoError(t, err)
	return p
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// bucketOf is a flag's first bucket with allocations.
func bucketOf(f map[string]any) map[string]any {
	for _, s := range asSlice(f["segments"]) {
		if b, ok := s.(map[string]any)["bucket"].(map[string]any); ok && len(asSlice(b["allocations"])) > 0 {
			return b
		}
	}
	return nil
}

func writeSampleUsers(t *testing.T, path string, n int) {
	t.Helper()
	var b strings.Builder
	platforms := []string{"iOS", "Android", "Web", ""}
	countries := []string{"United States", "Germany", "France", "Japan"}
	plans := []string{"free", "pro", "enterprise"}
	for i := range n {
		u := map[string]any{"user_id": fmt.Sprintf("user-%d", i), "device_id": fmt.Sprintf("device-%d", i*7919),
			"platform": platforms[i%4], "country": countries[i/4%4], "version": fmt.Sprintf("4.%d.0", i%6),
			"user_properties": map[string]any{"plan": plans[i%3], "beta_tester": i%5 == 0, "age": 18 + i%50,
				"email": fmt.Sprintf("u%d@%s", i, []string{"acme.com", "example.org"}[i%2])}}
		if i%11 == 0 {
			delete(u, "user_id") // some anonymous users: labelled by device id
		}
		data, err := json.Marshal(u)
		require.NoError(t, err)
		b.Write(data)
		b.WriteByte('\n')
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}

type bruteImpact struct {
	users    int
	newValue map[string]map[string]bool // flag -> variants whose value or payload differ
	cells    map[string]map[[2]string]int
	examples map[string]map[[2]string][]string
}

// variantValueChanges compares the documents' variants as JSON, flag by
// flag: which keep their key and change value or payload.
func variantValueChanges(t *testing.T, oldDoc, newDoc []byte) map[string]map[string]bool {
	type variant struct {
		Value   any `json:"value"`
		Payload any `json:"payload"`
	}
	type flag struct {
		Key      string             `json:"key"`
		Variants map[string]variant `json:"variants"`
	}
	var a, b []flag
	require.NoError(t, json.Unmarshal(oldDoc, &a))
	require.NoError(t, json.Unmarshal(newDoc, &b))
	before := map[string]flag{}
	for _, f := range a {
		before[f.Key] = f
	}
	out := map[string]map[string]bool{}
	for _, f := range b {
		for k, v := range f.Variants {
			w, ok := before[f.Key].Variants[k]
			x, _ := json.Marshal(v)
			y, _ := json.Marshal(w)
			if ok && string(x) != string(y) {
				if out[f.Key] == nil {
					out[f.Key] = map[string]bool{}
				}
				out[f.Key][k] = true
			}
		}
	}
	return out
}

// moved counts the users whose variant of one of keys changed.
func (r *bruteImpact) moved(keys []string) int {
	n := 0
	for _, k := range keys {
		for c, users := range r.cells[k] {
			if c[0] != c[1] {
				n += users
			}
		}
	}
	return n
}

// bruteForceImpact evaluates each user against both documents, one user at
// a time, with the SDK's FlagSet: no batch, no workers.
func bruteForceImpact(t *testing.T, oldDoc, newDoc []byte, usersPath, cohortsDir string, examples int) *bruteImpact {
	t.Helper()
	load := func(doc []byte) *experiment.FlagSet {
		fs, err := experiment.LoadFlagSet(doc, nil)
		require.NoError(t, err)
		if cohortsDir != "" {
			store, _ := cohort.LoadDir(cohortsDir, fs.CohortReferences().All())
			fs = fs.WithCohorts(store)
		}
		return fs
	}
	before, after := load(oldDoc), load(newDoc)
	keys := map[string]bool{}
	for _, fs := range []*experiment.FlagSet{before, after} {
		for _, k := range fs.Snapshot().Keys() {
			keys[k] = true
		}
	}
	r := &bruteImpact{cells: map[string]map[[2]string]int{}, examples: map[string]map[[2]string][]string{},
		newValue: variantValueChanges(t, oldDoc, newDoc)}
	f, err := os.Open(usersPath)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		user, err := experiment.DecodeUserStrict(sc.Bytes())
		require.NoError(t, err, "line %d", line)
		was, err := before.EvaluateV2(user)
		require.NoError(t, err)
		is, err := after.EvaluateV2(user)
		require.NoError(t, err)
		r.users++
		for k := range keys {
			cell := [2]string{was[k].Key, is[k].Key}
			if r.cells[k] == nil {
				r.cells[k], r.examples[k] = map[[2]string]int{}, map[[2]string][]string{}
			}
			r.cells[k][cell]++
			if cell[0] != cell[1] && len(r.examples[k][cell]) < examples {
				id := user.UserID
				if id == "" {
					id = user.DeviceID
				}
				if id == "" {
					id = fmt.Sprintf("line %d", line)
				}
				r.examples[k][cell] = append(r.examples[k][cell], id)
			}
		}
	}
	require.NoError(t, sc.Err())
	return r
}
