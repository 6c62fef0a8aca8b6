package openfeature_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagkit/experiment/internal/conformance"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
	"github.com/open-feature/go-sdk/openfeature"

	provider "github.com/flagkit/experiment/openfeature"
)

// contextOf turns a conformance user (Amplitude's user object) into the
// evaluation context a service would build: user_id as the targeting key,
// every other field as an attribute of the same name.
func contextOf(t *testing.T, line []byte) openfeature.EvaluationContext {
	t.Helper()
	var user map[string]any
	if err := json.Unmarshal(line, &user); err != nil {
		t.Fatal(err)
	}
	id, _ := user["user_id"].(string)
	delete(user, "user_id")
	return openfeature.NewEvaluationContext(id, user)
}

// TestConformance evaluates every flag of every conformance case for every
// user through the OpenFeature SDK and the provider, against the fake flag
// server (and the fake cohort server for the cohort cases): the variant of
// each string evaluation is the expected variant, a flag with no expected
// result gives none, and an assigned variant's value is the expected value
// (its key when it has none).
func TestConformance(t *testing.T) {
	for _, c := range conformance.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			body := c.Flags(t)
			decoded, err := eval.DecodeFlags(body)
			if err != nil {
				t.Fatal(err)
			}
			configured := map[string]*eval.Flag{}
			for _, f := range decoded {
				configured[f.Key] = f
			}
			srv := experimenttest.NewFlagServer(key, body)
			defer srv.Close()
			cfg := experiment.LocalConfig{}
			if strings.Contains(c.Name, "cohorts") {
				cohorts := cohorttest.NewServer("api-key-123", "secret-key-456")
				defer cohorts.Close()
				if err := cohorts.AddDir(filepath.Join(c.Dir, "cohorts")); err != nil {
					t.Fatal(err)
				}
				cfg.CohortSyncConfig = &experiment.CohortSyncConfig{APIKey: "api-key-123", SecretKey: "secret-key-456", CohortServerURL: cohorts.URL}
			}
			cfg.FlagConfigPollingInterval = experiment.DefaultFlagConfigPollingInterval // one fetch, as the expected results were made
			p := newProvider(t, srv, cfg, nil)
			api := newAPI(t)
			if err := api.SetProviderAndWait(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			client := api.NewClient()
			flagKeys := p.Client().FlagSet().Snapshot().Keys()
			users, expected := c.Users(t), c.Expected(t)
			if len(users) != len(expected) {
				t.Fatalf("%d users but %d expected lines", len(users), len(expected))
			}
			checked := 0
			for i, line := range users {
				ec := contextOf(t, line)
				var want map[string]experiment.Variant
				if err := json.Unmarshal(expected[i], &want); err != nil {
					t.Fatal(err)
				}
				for _, flag := range flagKeys {
					d, err := client.StringValueDetails(t.Context(), flag, "\x00default", ec)
					w, assigned := want[flag]
					switch {
					case err != nil:
						t.Errorf("users.jsonl:%d: flag %s: %v", i+1, flag, err)
					case d.Variant != w.Key:
						t.Errorf("users.jsonl:%d: flag %s: variant %q (%s), want %q", i+1, flag, d.Variant, d.Reason, w.Key)
					case assigned && !w.IsDefault() && w.IsDeployed():
						wantValue := w.Value
						if v := configured[flag].Variants[w.Key]; v != nil && v.Value == nil {
							wantValue = w.Key // no value: the key stands for it
						}
						if d.Value != wantValue {
							t.Errorf("users.jsonl:%d: flag %s: value %q, want %q", i+1, flag, d.Value, wantValue)
						}
					case d.Value != "\x00default":
						t.Errorf("users.jsonl:%d: flag %s: %s gave value %q, not the default (the variant is the default one, undeployed or none)", i+1, flag, d.Reason, d.Value)
					}
					checked++
				}
			}
			if checked == 0 {
				t.Fatal("nothing checked")
			}
		})
	}
}

// The reasons of the conformance flags: every assigned variant has one of
// the reasons of the mapping, never UNKNOWN.
func TestConformanceReasons(t *testing.T) {
	c := conformance.Open(filepath.Join(conformance.Dir(t), "02-mixed"))
	srv := experimenttest.NewFlagServer(key, c.Flags(t))
	defer srv.Close()
	p := newProvider(t, srv, experiment.LocalConfig{}, &provider.Options{})
	api := newAPI(t)
	if err := api.SetProviderAndWait(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	client := api.NewClient()
	seen := map[openfeature.Reason]int{}
	for _, line := range c.Users(t) {
		ec := contextOf(t, line)
		for _, flag := range p.Client().FlagSet().Snapshot().Keys() {
			d, _ := client.StringValueDetails(t.Context(), flag, "", ec)
			seen[d.Reason]++
		}
	}
	for _, r := range []openfeature.Reason{openfeature.TargetingMatchReason, openfeature.DefaultReason, openfeature.DisabledReason} {
		if seen[r] == 0 {
			t.Errorf("no %s among %v", r, seen)
		}
	}
	if seen[openfeature.UnknownReason] > 0 || seen[openfeature.ErrorReason] > 0 {
		t.Errorf("UNKNOWN or ERROR reasons: %v", seen)
	}
}
