package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"time"

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
// for a user, the flags whose variant for that user changed.
func diffFlagSets(prev, next *experiment.FlagSet, user *experiment.User, now time.Time) []watchEvent {
	var events []watchEvent
	old := map[string][]byte{}
	oldFlags := map[string]*eval.Flag{}
	for _, f := range prev.Flags() {
		old[f.Key], _ = json.Marshal(f)
		oldFlags[f.Key] = f
	}
	seen := map[string]bool{}
	for _, f := range next.Flags() {
		seen[f.Key] = true
		data, _ := json.Marshal(f)
		before, ok := old[f.Key]
		switch {
		case !ok:
			events = append(events, watchEvent{Time: now, Kind: watchAdded, Flag: f.Key, To: versionOf(f.Metadata)})
		case !bytes.Equal(before, data):
			was := oldFlags[f.Key]
			events = append(events, watchEvent{Time: now, Kind: watchChanged, Flag: f.Key, From: versionOf(was.Metadata), To: versionOf(f.Metadata),
				Changes: flagChanges(was, f)})
		}
	}
	for _, f := range prev.Flags() {
		if !seen[f.Key] {
			events = append(events, watchEvent{Time: now, Kind: watchRemoved, Flag: f.Key, From: versionOf(f.Metadata)})
		}
	}
	if user != nil {
		events = append(events, variantChanges(prev, next, user, now)...)
	}
	slices.SortStableFunc(events, func(a, b watchEvent) int {
		if a.Flag < b.Flag {
			return -1
		}
		if a.Flag > b.Flag {
			return 1
		}
		return 0
	})
	return events
}

func variantChanges(prev, next *experiment.FlagSet, user *experiment.User, now time.Time) []watchEvent {
	before, err1 := prev.EvaluateV2(user)
	after, err2 := next.EvaluateV2(user)
	if err1 != nil || err2 != nil {
		return nil
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
		if hadB == hasA && b.Key == a.Key && b.Value == a.Value {
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
	return events
}

func versionOf(meta map[string]any) string {
	if v, ok := meta["flagVersion"]; ok {
		return fmt.Sprintf("v%v", v)
	}
	return ""
}

// flagChanges says what differs between two versions of a flag, one short
// phrase per part: variants added, removed or changed; segments added or
// removed, and per segment its targeting, allocation, variant or metadata;
// dependencies; metadata other than the version, which the event shows.
// watch prints it because the version alone does not say what changed, and
// some edits keep it.
func flagChanges(was, is *eval.Flag) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(unionKeys(was.Variants, is.Variants))) {
		a, inA := was.Variants[k]
		b, inB := is.Variants[k]
		switch {
		case !inA:
			out = append(out, "variant "+k+" added")
		case !inB:
			out = append(out, "variant "+k+" removed")
		case !sameJSON(a, b):
			out = append(out, "variant "+k+" changed")
		}
	}
	if n, m := len(was.Segments), len(is.Segments); n != m {
		out = append(out, fmt.Sprintf("segments %d → %d", n, m))
	}
	for i := range min(len(was.Segments), len(is.Segments)) {
		a, b := was.Segments[i], is.Segments[i]
		var parts []string
		if !sameJSON(a.Conditions, b.Conditions) {
			parts = append(parts, "targeting")
		}
		if !sameJSON(a.Bucket, b.Bucket) {
			parts = append(parts, "allocation")
		}
		if a.Variant != b.Variant {
			parts = append(parts, "variant "+orNone(a.Variant)+" → "+orNone(b.Variant))
		}
		if !sameJSON(a.Metadata, b.Metadata) {
			parts = append(parts, "metadata")
		}
		for _, p := range parts {
			out = append(out, segmentName(b, i)+" "+p)
		}
	}
	if !slices.Equal(was.Dependencies, is.Dependencies) {
		out = append(out, "dependencies")
	}
	for _, k := range slices.Sorted(maps.Keys(unionKeys(was.Metadata, is.Metadata))) {
		if k == "flagVersion" || reflect.DeepEqual(was.Metadata[k], is.Metadata[k]) {
			continue
		}
		out = append(out, k+" "+metaText(was.Metadata, k)+" → "+metaText(is.Metadata, k))
	}
	return out
}

func unionKeys[V any](a, b map[string]V) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// segmentName is how Amplitude's UI names a segment, when the config says
// (metadata segmentName), else its position from 1.
func segmentName(s *eval.Segment, i int) string {
	if name, ok := s.Metadata["segmentName"].(string); ok && name != "" {
		return "segment " + strconv.Quote(name)
	}
	return fmt.Sprintf("segment %d", i+1)
}

// metaText is a metadata value for a change line: scalars as JSON, larger
// values not at all (the line stays short).
func metaText(m map[string]any, k string) string {
	v, ok := m[k]
	if !ok {
		return "(none)"
	}
	switch v.(type) {
	case map[string]any, []any:
		return "…"
	}
	data, _ := json.Marshal(v)
	return string(data)
}
