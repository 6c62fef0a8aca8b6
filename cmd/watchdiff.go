package cmd

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"

	"github.com/flagkit/experiment/pkg/eval"
)

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
