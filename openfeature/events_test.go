package openfeature_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
	"github.com/open-feature/go-sdk/openfeature"

	provider "github.com/flagkit/experiment/openfeature"
)

func cohortFlags(t *testing.T) []*eval.Flag {
	t.Helper()
	flags, err := eval.DecodeFlags([]byte(`[
 {"key":"members","segments":[{"conditions":[[{"selector":["context","user","cohort_ids"],"op":"set contains any","values":["co1"]}]],"variant":"on"}],
  "variants":{"on":{"key":"on","value":"on"}}},
 {"key":"needs-members","dependencies":["members"],"segments":[{"variant":"on"}],"variants":{"on":{"key":"on","value":"on"}}},
 {"key":"needs-needs","dependencies":["needs-members"],"segments":[{"variant":"on"}],"variants":{"on":{"key":"on","value":"on"}}},
 {"key":"alone","segments":[{"variant":"on"}],"variants":{"on":{"key":"on","value":"on"}}}
]`))
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

func flagSet(t *testing.T, flags []*eval.Flag, cohorts ...*cohort.Cohort) *experiment.FlagSet {
	t.Helper()
	fs, err := experiment.NewFlagSet(flags, cohort.NewStore(cohorts...))
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func newCohort(t *testing.T, lastModified int64, members ...string) *cohort.Cohort {
	t.Helper()
	c, err := cohort.New("co1", "", lastModified, members)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChangedFlags(t *testing.T) {
	flags := cohortFlags(t)
	v1 := newCohort(t, 1, "u1")
	base := flagSet(t, flags, v1)
	affected := []string{"members", "needs-members", "needs-needs"}
	for _, c := range []struct {
		name       string
		prev, next *experiment.FlagSet
		want       []string
	}{
		{"first flags", nil, base, []string{"alone", "members", "needs-members", "needs-needs"}},
		{"same flags and cohorts", base, flagSet(t, cohortFlags(t), v1), nil},
		{"a new download of the cohort", base, flagSet(t, flags, newCohort(t, 2, "u1", "u2")), affected},
		{"the cohort gone", base, flagSet(t, flags), affected},
		{"all flags removed", base, flagSet(t, nil), []string{"alone", "members", "needs-members", "needs-needs"}},
		{"a changed flag and its dependents", base, flagSet(t, replaced(t, flags, `{"key":"members","segments":[{"variant":"on"}],"variants":{"on":{"key":"on","value":"changed"}}}`), v1), affected},
	} {
		got := provider.ChangedFlags(c.prev, c.next)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func replaced(t *testing.T, flags []*eval.Flag, flag string) []*eval.Flag {
	t.Helper()
	f, err := eval.DecodeFlags([]byte("[" + flag + "]"))
	if err != nil {
		t.Fatal(err)
	}
	out := slices.Clone(flags)
	for i := range out {
		if out[i].Key == f[0].Key {
			out[i] = f[0]
		}
	}
	return out
}

// TestUnreadEventsDoNotBlockUpdates: a provider used without the SDK,
// whose event channel nobody reads, still applies every flag update.
func TestUnreadEventsDoNotBlockUpdates(t *testing.T) {
	srv := experimenttest.NewFlagServer(key, flagsV(0))
	defer srv.Close()
	p := newProvider(t, srv, experiment.LocalConfig{FlagConfigPollingInterval: 5 * time.Millisecond}, nil)
	if err := p.Init(openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	for v := 1; v <= 300; v++ {
		srv.SetFlags(flagsV(v))
		deadline := time.Now().Add(5 * time.Second)
		for {
			d := p.IntEvaluation(t.Context(), "f", -1, openfeature.FlattenedContext{})
			if d.Value == int64(v) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("update %d not applied: %+v", v, d)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func flagsV(v int) []byte {
	return []byte(`[{"key":"f","segments":[{"variant":"on"}],"variants":{"on":{"key":"on","value":` + strconv.Itoa(v) + `}}}]`)
}
