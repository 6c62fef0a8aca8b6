// Package flagdiff compares two snapshots of flag configs by meaning rather
// than by bytes: flags added and removed, and for a changed flag its
// variants, segments (matched by content, so a reorder reads as a move and
// an edit as a change), the share of bucketed users each variant gains or
// loses, salt changes that re-bucket everyone, dependencies and metadata.
// `experiment diff` prints its Report; `experiment watch` prints each
// changed flag's Phrases.
package flagdiff

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/flagkit/experiment/pkg/eval"
)

// Change is what happened to a flag, variant, segment or condition.
type Change string

const (
	Added   Change = "added"
	Removed Change = "removed"
	Changed Change = "changed"
	// Moved is a segment whose content is the same at another place in
	// the order, which changes who it decides for.
	Moved Change = "moved"
)

// Report is the difference between two flag config snapshots.
type Report struct {
	// Flags that differ, sorted by key.
	Flags   []*Flag `json:"flags"`
	Summary Summary `json:"summary"`
}

// Summary counts the flags of a Report.
type Summary struct {
	Added     int `json:"added"`
	Removed   int `json:"removed"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Before    int `json:"flags_before"`
	After     int `json:"flags_after"`
}

// HasChanges says whether anything differs.
func (r *Report) HasChanges() bool { return len(r.Flags) > 0 }

// Flag is what differs in one flag. An added flag is compared with an
// empty one (every part reads as added), a removed one likewise.
type Flag struct {
	Key    string `json:"key"`
	Change Change `json:"change"`
	// From and To are the versions (metadata flagVersion, as "v7"),
	// empty when the side has no flag or no version.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Rebuckets is true when a segment's salt or bucketing selector
	// changed: every user it buckets is hashed anew, and may change variant
	// whatever the ranges say.
	Rebuckets    bool             `json:"rebuckets"`
	Variants     []*VariantChange `json:"variants,omitempty"`
	Segments     []*SegmentChange `json:"segments,omitempty"`
	Dependencies *ListChange      `json:"dependencies,omitempty"`
	Metadata     []*ValueChange   `json:"metadata,omitempty"`
}

// VariantChange is a variant added, removed or changed: its value,
// payload or metadata, or (changed only) its served key: the variant's own
// "key" field, which evaluation returns, when it differs on the two sides.
type VariantChange struct {
	Key       string         `json:"key"`
	Change    Change         `json:"change"`
	Value     *ValueChange   `json:"value,omitempty"`
	Payload   *ValueChange   `json:"payload,omitempty"`
	Metadata  []*ValueChange `json:"metadata,omitempty"`
	ServedKey *ValueChange   `json:"served_key,omitempty"`
}

// ValueChange is one value before and after; From or To is null where
// the value is absent. Key names it in a list of metadata changes.
type ValueChange struct {
	Key  string `json:"key,omitempty"`
	From any    `json:"from"`
	To   any    `json:"to"`
}

// ListChange is what was added to and removed from a set of strings.
type ListChange struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// value returns a ValueChange, or nil when a and b are the same JSON.
func value(key string, a, b any) *ValueChange {
	if sameJSON(a, b) {
		return nil
	}
	return &ValueChange{Key: key, From: a, To: b}
}

// metadata lists the keys whose values differ, sorted.
func metadata(a, b map[string]any) []*ValueChange {
	var out []*ValueChange
	for _, k := range sortedKeys(a, b) {
		if c := value(k, a[k], b[k]); c != nil {
			out = append(out, c)
		}
	}
	return out
}

func sameJSON(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// Compare diffs two snapshots. nil flags are ignored; when a key appears
// twice the last one counts, as the engine's index has it.
func Compare(before, after []*eval.Flag) *Report {
	a, b := byKey(before), byKey(after)
	r := &Report{Flags: []*Flag{}, Summary: Summary{Before: len(a), After: len(b)}}
	for _, k := range sortedKeys(a, b) {
		d := CompareFlag(a[k], b[k])
		if d == nil {
			r.Summary.Unchanged++
			continue
		}
		switch d.Change {
		case Added:
			r.Summary.Added++
		case Removed:
			r.Summary.Removed++
		default:
			r.Summary.Changed++
		}
		r.Flags = append(r.Flags, d)
	}
	return r
}

func byKey(flags []*eval.Flag) map[string]*eval.Flag {
	m := make(map[string]*eval.Flag, len(flags))
	for _, f := range flags {
		if f != nil {
			m[f.Key] = f
		}
	}
	return m
}

// CompareFlag diffs two versions of a flag: nil when they mean the same,
// an added flag when a is nil, a removed one when b is.
func CompareFlag(a, b *eval.Flag) *Flag {
	change := Changed
	switch {
	case a == nil && b == nil:
		return nil
	case a != nil && b != nil && reflect.DeepEqual(a, b):
		// Most flags of two snapshots (and of every watch update) are
		// the same: skip pairing their segments and computing shares.
		return nil
	case a == nil:
		change, a = Added, &eval.Flag{Key: b.Key}
	case b == nil:
		change, b = Removed, &eval.Flag{Key: a.Key}
	}
	d := &Flag{Key: b.Key, Change: change, From: Version(a.Metadata), To: Version(b.Metadata)}
	if change == Removed {
		d.Key = a.Key
	}
	d.Variants = variants(a.Variants, b.Variants)
	d.Segments = segments(a.Segments, b.Segments, a.Variants, b.Variants)
	for _, s := range d.Segments {
		if s.Bucket != nil && s.Bucket.Rebuckets {
			d.Rebuckets = true
		}
	}
	d.Dependencies = list(a.Dependencies, b.Dependencies)
	d.Metadata = metadata(a.Metadata, b.Metadata)
	if change == Changed && d.Variants == nil && d.Segments == nil && d.Dependencies == nil && d.Metadata == nil {
		return nil
	}
	return d
}

// Version is a flag's version as watch and diff show it: "v7", or empty.
func Version(meta map[string]any) string {
	if v, ok := meta["flagVersion"]; ok && v != nil {
		return fmt.Sprintf("v%v", v)
	}
	return ""
}

func variants(a, b map[string]*eval.Variant) []*VariantChange {
	var out []*VariantChange
	for _, k := range sortedKeys(a, b) {
		va, vb := a[k], b[k]
		c := &VariantChange{Key: k, Change: Changed}
		switch {
		case va == nil && vb == nil:
			continue
		case va == nil:
			c.Change, va = Added, &eval.Variant{}
		case vb == nil:
			c.Change, vb = Removed, &eval.Variant{}
		}
		c.Value = value("", va.Value, vb.Value)
		c.Payload = value("", va.Payload, vb.Payload)
		c.Metadata = metadata(va.Metadata, vb.Metadata)
		if c.Change == Changed {
			c.ServedKey = value("", va.Key, vb.Key)
		}
		if c.Change == Changed && c.Value == nil && c.Payload == nil && c.Metadata == nil && c.ServedKey == nil {
			continue
		}
		out = append(out, c)
	}
	return out
}

func list(a, b []string) *ListChange {
	c := &ListChange{}
	for _, s := range b {
		if !slices.Contains(a, s) && !slices.Contains(c.Added, s) {
			c.Added = append(c.Added, s)
		}
	}
	for _, s := range a {
		if !slices.Contains(b, s) && !slices.Contains(c.Removed, s) {
			c.Removed = append(c.Removed, s)
		}
	}
	if c.Added == nil && c.Removed == nil {
		return nil
	}
	return c
}

// sortedKeys is the keys of a and b, each once, sorted: the parts of two
// versions, in a stable order.
func sortedKeys[V any](a, b map[string]V) []string {
	keys := make(map[string]bool, max(len(a), len(b)))
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return slices.Sorted(maps.Keys(keys))
}
