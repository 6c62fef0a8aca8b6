package flagdiff

import (
	"fmt"
	"strconv"
	"strings"
)

// Phrases says what changed in a flag, a short phrase per part, for a
// one-line summary (watch): "variant beta added", "segment \"Mobile\"
// moved 2 → 1", "segment 3 allocation: on +10 pp, off -10 pp", "salt
// changed: segment 3 re-buckets everyone". The version is not among them:
// the caller shows From and To.
func (f *Flag) Phrases() []string {
	var out []string
	for _, v := range f.Variants {
		p := "variant " + v.Key + " " + string(v.Change)
		if v.Change == Changed {
			p += ":" + variantParts(v)
		}
		out = append(out, p)
	}
	for _, s := range f.Segments {
		out = append(out, s.phrases()...)
	}
	if d := f.Dependencies; d != nil {
		out = append(out, "dependencies"+listText(d))
	}
	for _, m := range f.Metadata {
		if m.Key == "flagVersion" {
			continue
		}
		out = append(out, m.Key+" "+ScalarText(m.From)+" → "+ScalarText(m.To))
	}
	return out
}

func variantParts(v *VariantChange) string {
	var parts []string
	if v.Value != nil {
		parts = append(parts, " value "+ScalarText(v.Value.From)+" → "+ScalarText(v.Value.To))
	}
	if v.Payload != nil {
		parts = append(parts, " payload")
	}
	if v.Metadata != nil {
		parts = append(parts, " metadata")
	}
	if v.ServedKey != nil {
		parts = append(parts, " served key "+ScalarText(v.ServedKey.From)+" → "+ScalarText(v.ServedKey.To))
	}
	return strings.Join(parts, ",")
}

func listText(d *ListChange) string {
	var b strings.Builder
	for _, k := range d.Added {
		b.WriteString(" +" + k)
	}
	for _, k := range d.Removed {
		b.WriteString(" -" + k)
	}
	return b.String()
}

// Title names a segment: by its segmentName, else by its position.
func (s *SegmentChange) Title() string {
	if s.Name != "" {
		return "segment " + strconv.Quote(s.Name)
	}
	if s.To != nil {
		return fmt.Sprintf("segment %d", *s.To)
	}
	return fmt.Sprintf("segment %d", *s.From)
}

func (s *SegmentChange) phrases() []string {
	t := s.Title()
	switch s.Change {
	case Added, Removed:
		return []string{t + " " + string(s.Change)}
	case Moved:
		return []string{fmt.Sprintf("%s moved %d → %d", t, *s.From, *s.To)}
	}
	var out []string
	if s.Moved {
		out = append(out, fmt.Sprintf("%s moved %d → %d", t, *s.From, *s.To))
	}
	if b := s.Bucket; b != nil && b.Rebuckets {
		what := "salt"
		if b.Salt == nil {
			what = "bucketing selector"
		}
		out = append(out, what+" changed: "+t+" re-buckets everyone")
	}
	if s.Conditions != nil {
		out = append(out, t+" targeting")
	}
	if s.Variant != nil {
		out = append(out, t+" variant "+VariantName(s.Variant.From)+" → "+VariantName(s.Variant.To))
	}
	if s.Shares != nil {
		var moves []string
		for _, sh := range s.Shares {
			if sh.Delta != 0 {
				moves = append(moves, fmt.Sprintf("%s %+g pp", orNone(sh.Variant), sh.Delta))
			}
		}
		out = append(out, t+" allocation: "+strings.Join(moves, ", "))
	} else if s.Bucket != nil && s.Bucket.Allocations != nil {
		out = append(out, t+" allocation")
	}
	if s.Metadata != nil {
		out = append(out, t+" metadata")
	}
	return out
}

// ScalarText is a value for a change line: JSON, with objects and arrays
// shortened to "…" so that the line stays short; absent is "(none)".
func ScalarText(v any) string {
	switch v.(type) {
	case nil:
		return "(none)"
	case map[string]any, []any:
		return "…"
	}
	if text := jsonKey(v); text != "" {
		return text
	}
	return fmt.Sprint(v)
}

// VariantName is a segment's variant for a change line: its key, or
// "(none)" when it has none (the user falls through) or there is no
// segment.
func VariantName(v any) string {
	s, _ := v.(string)
	return orNone(s)
}
