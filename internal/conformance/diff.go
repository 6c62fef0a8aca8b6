package conformance

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// DiffResults names each flag, and each of its fields a case's expected
// results hold (key, value, payload, metadata), that differs between want
// and got, both decoded JSON objects of flag key to variant, with both
// values; nil when they agree. Every module's conformance test compares
// results so, so that one verdict means the same everywhere.
func DiffResults(want, got map[string]any) []string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var diffs []string
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !wok:
			diffs = append(diffs, fmt.Sprintf("flag %s: want absent, got %s", k, Compact(g)))
		case !gok:
			diffs = append(diffs, fmt.Sprintf("flag %s: want %s, got absent", k, Compact(w)))
		default:
			wm, _ := w.(map[string]any)
			gm, _ := g.(map[string]any)
			for _, field := range []string{"key", "value", "payload", "metadata"} {
				if !reflect.DeepEqual(wm[field], gm[field]) {
					diffs = append(diffs, fmt.Sprintf("flag %s: %s: want %s, got %s", k, field, Compact(wm[field]), Compact(gm[field])))
				}
			}
		}
	}
	return diffs
}

// Compact is v as JSON, cut to 300 bytes, for a message.
func Compact(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
