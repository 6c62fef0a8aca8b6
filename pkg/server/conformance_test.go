package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/server"
)

// conformanceDir finds the conformance set as pkg/experiment's test does.
func conformanceDir(t *testing.T) string {
	for _, dir := range []string{
		os.Getenv("EXPERIMENT_CONFORMANCE_DIR"),
		"../../../shared/conformance/cases",
		"../../testdata/conformance/cases",
	} {
		if st, err := os.Stat(dir); dir != "" && err == nil && st.IsDir() {
			return dir
		}
	}
	t.Fatal("conformance cases not found: set EXPERIMENT_CONFORMANCE_DIR")
	return ""
}

// TestConformance evaluates every case's users through POST
// /sdk/v2/vardata, as a remote-evaluation SDK would, against the variants
// Amplitude's engine gave them.
func TestConformance(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(conformanceDir(t), "*"))
	if len(dirs) == 0 {
		t.Fatal("no conformance cases")
	}
	ts := newEmptyServer(t, server.Options{})
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(dir, "flags.json"))
			if err != nil {
				t.Fatal(err)
			}
			flags, err := eval.DecodeFlags(body)
			if err != nil {
				t.Fatal(err)
			}
			store, _ := cohort.LoadDir(filepath.Join(dir, "cohorts"), cohort.Referenced(flags).All())
			f, err := server.NewFlags(body, store, dir, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			ts.store.Set(f)
			users, expected := lines(t, filepath.Join(dir, "users.jsonl")), lines(t, filepath.Join(dir, "expected.jsonl"))
			if len(users) != len(expected) {
				t.Fatalf("%d users, %d expected", len(users), len(expected))
			}
			for i := range users {
				got := ts.do(t, "POST", "/sdk/v2/vardata?v=0", string(users[i]), "Content-Type: application/json").want(t, 200)
				if d := jsonDiff(expected[i], got.body); d != "" {
					t.Errorf("users.jsonl:%d: %s", i+1, d)
				}
			}
		})
	}
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
	}
	return out
}

// jsonDiff names the first flag whose result differs, or "".
func jsonDiff(want, got []byte) string {
	var w, g map[string]any
	if err := json.Unmarshal(want, &w); err != nil {
		return "expected line: " + err.Error()
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return "answer: " + err.Error()
	}
	if reflect.DeepEqual(w, g) {
		return ""
	}
	for k := range w {
		if !reflect.DeepEqual(w[k], g[k]) {
			return fmt.Sprintf("flag %s: want %v, got %v", k, w[k], g[k])
		}
	}
	return fmt.Sprintf("%d flags, want %d", len(g), len(w))
}
