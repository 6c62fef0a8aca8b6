package cmd

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/flagkit/experiment/internal/flagdiff"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// watchEventKind is what happened to a flag; its text is the "kind" of
// watch's jsonl contract and the second column of its table.
type watchEventKind string

const (
	watchAdded   watchEventKind = "added"
	watchRemoved watchEventKind = "removed"
	watchChanged watchEventKind = "changed" // the flag's config, whatever its version says
	watchVariant watchEventKind = "variant" // the watched user's variant, with --user
)

// diffFlagSets lists flags added, removed and changed between two sets and,
// for a user, the flags whose variant for that user changed. The error is
// why the user could not be evaluated (a dependency cycle, say): the
// config events are still returned, and the caller warns.
func diffFlagSets(decoded *watchFlags, prev, next *experiment.FlagSet, user *experiment.User, now time.Time) ([]watchEvent, error) {
	var events []watchEvent
	// A cohort refresh brings the same compiled flags with new members:
	// no config changed, and only the user's variants can move.
	if prev.Snapshot() != next.Snapshot() {
		events = configEvents(decoded.of(prev), decoded.of(next), now)
	}
	var userErr error
	if user != nil {
		var variants []watchEvent
		variants, userErr = variantChanges(prev, next, user, now)
		events = append(events, variants...)
	}
	slices.SortStableFunc(events, func(a, b watchEvent) int { return strings.Compare(a.Flag, b.Flag) })
	return events, userErr
}

// configEvents lists the flags added, removed and changed from prev to next.
func configEvents(prev, next []*eval.Flag, now time.Time) []watchEvent {
	var events []watchEvent
	oldFlags := make(map[string]*eval.Flag, len(prev))
	for _, f := range prev {
		oldFlags[f.Key] = f
	}
	seen := map[string]bool{}
	for _, f := range next {
		seen[f.Key] = true
		was, ok := oldFlags[f.Key]
		d := flagdiff.CompareFlag(was, f)
		switch {
		case !ok:
			events = append(events, watchEvent{Time: now, Kind: watchAdded, Flag: f.Key, To: d.To})
		case d != nil:
			events = append(events, watchEvent{Time: now, Kind: watchChanged, Flag: f.Key, From: d.From, To: d.To,
				Changes: d.Phrases(), Diff: d})
		}
	}
	for _, f := range prev {
		if !seen[f.Key] {
			events = append(events, watchEvent{Time: now, Kind: watchRemoved, Flag: f.Key, From: flagdiff.Version(f.Metadata)})
		}
	}
	return events
}

func variantChanges(prev, next *experiment.FlagSet, user *experiment.User, now time.Time) ([]watchEvent, error) {
	before, err := prev.EvaluateV2(user)
	if err != nil {
		return nil, err
	}
	after, err := next.EvaluateV2(user)
	if err != nil {
		return nil, err
	}
	var events []watchEvent
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	for k := range keys {
		b, hadB := before[k]
		a, hasA := after[k]
		// A new payload reaches the user as a new value does.
		if hadB == hasA && b.Key == a.Key && b.Value == a.Value && reflect.DeepEqual(b.Payload, a.Payload) {
			continue
		}
		// No variant is an absent field in JSON and "(none)" in the table.
		e := watchEvent{Time: now, Kind: watchVariant, Flag: k}
		if hadB {
			e.From = b.Key
		}
		if hasA {
			e.To = a.Key
		}
		events = append(events, e)
	}
	return events, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// watchFlags keeps the decoded flags of the last set diffed. Flags decodes
// a loaded set's document on every call, and an update's prev is the set
// the update before brought: kept, each update decodes only its new set.
// A set is known by its snapshot, which its flags were compiled from.
type watchFlags struct {
	snap  *eval.Snapshot
	flags []*eval.Flag
}

func (w *watchFlags) of(fs *experiment.FlagSet) []*eval.Flag {
	if w.snap == nil || w.snap != fs.Snapshot() {
		w.snap, w.flags = fs.Snapshot(), fs.Flags()
	}
	return w.flags
}
