package cmd

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/experiment"
)

// Each update of watch decodes only the set it brings: its prev, the set
// of the update before, is not decoded again.
func TestWatchDecodesEachSetOnce(t *testing.T) {
	load := func(doc string) *experiment.FlagSet {
		fs, err := experiment.LoadFlagSet([]byte(doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	a := load(`[{"key":"f","variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]}]`)
	b := load(`[{"key":"f","variants":{"on":{"key":"on"},"off":{"key":"off"}},"segments":[{"variant":"off"}]}]`)
	c := load(`[{"key":"g","variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]}]`)
	var decoded watchFlags
	if _, err := diffFlagSets(&decoded, a, b, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// b came with that update: the next one, from b, finds it decoded.
	kept := decoded.flags
	if again := decoded.of(b); &again[0] != &kept[0] {
		t.Fatal("the last set's flags were decoded again")
	}
	events, err := diffFlagSets(&decoded, b, c, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Flag != "f" || events[0].Kind != watchRemoved || decoded.flags[0].Key != "g" {
		t.Fatalf("b -> c: %+v, want f removed and g added; kept %q", events, decoded.flags[0].Key)
	}
}

// A cohort refresh brings the same compiled flags: nothing is decoded or
// compared, and no config event is made.
func TestWatchCohortRefreshComparesNoConfig(t *testing.T) {
	fs, err := experiment.LoadFlagSet([]byte(`[{"key":"f","variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]}]`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var decoded watchFlags
	events, err := diffFlagSets(&decoded, fs, fs.WithCohorts(nil), &experiment.User{UserID: "u"}, time.Time{})
	if err != nil || len(events) != 0 {
		t.Fatalf("events %+v, err %v; want none", events, err)
	}
	if decoded.snap != nil {
		t.Fatal("the flags were decoded for a cohort refresh")
	}
}

// The watched user sees a new payload as much as a new value: the same
// variant with another payload is a variant event, as its value is.
func TestWatchVariantEventOnPayloadChange(t *testing.T) {
	load := func(payload string) *experiment.FlagSet {
		fs, err := experiment.LoadFlagSet([]byte(`[{"key":"f","variants":{"on":{"key":"on","value":"on","payload":`+payload+`}},"segments":[{"variant":"on"}]}]`), nil)
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	user := &experiment.User{UserID: "u"}
	events, err := variantChanges(load(`{"a":1}`), load(`{"a":2}`), user, time.Time{})
	if err != nil || len(events) != 1 || events[0].Flag != "f" || events[0].From != "on" || events[0].To != "on" {
		t.Fatalf("events %+v, err %v; want f's variant event, on to on", events, err)
	}
	if events, err := variantChanges(load(`{"a":1}`), load(`{"a":1}`), user, time.Time{}); err != nil || len(events) != 0 {
		t.Fatalf("same payload: events %+v, err %v; want none", events, err)
	}
}

// A variant event keeps its variant when only its value or payload moved:
// the line shows from and to, not "(same version)", which is about a
// flag's config.
func TestWatchPrintsVariantEventFromTo(t *testing.T) {
	var out bytes.Buffer
	opts := &watchOptions{IO: &cli.IOStreams{Out: &out, ErrOut: io.Discard, Getenv: func(string) string { return "" }}, Output: "table"}
	events := []watchEvent{{Kind: watchVariant, Flag: "f", From: "on", To: "on"}, {Kind: watchVariant, Flag: "g", To: "on"}}
	if err := printWatchEvents(opts, events); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "f  on → on") || !strings.HasSuffix(lines[1], "g  (none) → on") {
		t.Fatalf("printed %q; want f on → on and g (none) → on", out.String())
	}
}

// A changed flag's line reads its versions as diff's header does: one
// side without a version is (none), not a lone version that reads as the
// flag added or removed; no version at all leaves just the changes.
func TestWatchPrintsChangedVersionsAsDiff(t *testing.T) {
	var out bytes.Buffer
	opts := &watchOptions{IO: &cli.IOStreams{Out: &out, ErrOut: io.Discard, Getenv: func(string) string { return "" }}, Output: "table"}
	events := []watchEvent{
		{Kind: watchChanged, Flag: "a", To: "v3", Changes: []string{"x"}},
		{Kind: watchChanged, Flag: "b", From: "v3", Changes: []string{"x"}},
		{Kind: watchChanged, Flag: "c", Changes: []string{"x"}},
		{Kind: watchChanged, Flag: "d", From: "v2", To: "v2", Changes: []string{"x"}},
		{Kind: watchAdded, Flag: "e", To: "v1"},
		{Kind: watchRemoved, Flag: "f", From: "v1"},
	}
	if err := printWatchEvents(opts, events); err != nil {
		t.Fatal(err)
	}
	want := []string{"a  (none) → v3: x", "b  v3 → (none): x", "c  x", "d  v2 (same version): x", "e  v1", "f  v1"}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, w := range want {
		if i >= len(lines) || !strings.HasSuffix(lines[i], w) {
			t.Fatalf("printed %q; want line %d to end in %q", out.String(), i, w)
		}
	}
}
