package server_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/flagkit/experiment/internal/conformance"
	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/server"
)

// TestConformance evaluates every case's users through POST
// /sdk/v2/vardata, as a remote-evaluation SDK would, against the variants
// Amplitude's engine gave them.
func TestConformance(t *testing.T) {
	ts := newEmptyServer(t, server.Options{})
	for _, c := range conformance.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			body := c.Flags(t)
			flags, err := eval.DecodeFlags(body)
			if err != nil {
				t.Fatal(err)
			}
			store, _ := cohort.LoadDir(filepath.Join(c.Dir, "cohorts"), cohort.Referenced(flags).All())
			f, err := server.NewFlags(body, store, c.Dir, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			ts.store.Set(f)
			users, expected := c.Users(t), c.Expected(t)
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
