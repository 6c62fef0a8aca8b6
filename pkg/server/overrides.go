package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flagkit/experiment/pkg/eval"
)

// Override forces a flag's variant, for everyone or for one id.
type Override struct {
	Flag    string `json:"flag" yaml:"flag"`
	Variant string `json:"variant" yaml:"variant"`
	// ID, when set, limits the override to the user whose user_id or
	// device_id it is.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
}

// String is the override as --override spells it.
func (o Override) String() string {
	if o.ID == "" {
		return o.Flag + "=" + o.Variant
	}
	return o.Flag + "=" + o.Variant + "@" + o.ID
}

// ParseOverride reads FLAG=VARIANT or FLAG=VARIANT@ID. The id is what
// follows the first '@' after the '=', so a variant key has no '@' and an
// id (an email address) may.
func ParseOverride(s string) (Override, error) {
	flag, rest, ok := strings.Cut(s, "=")
	if !ok || flag == "" {
		return Override{}, fmt.Errorf("override %q: want FLAG=VARIANT or FLAG=VARIANT@ID", s)
	}
	variant, id, hasID := strings.Cut(rest, "@")
	switch {
	case variant == "":
		return Override{}, fmt.Errorf("override %q: no variant after =", s)
	case hasID && id == "":
		return Override{}, fmt.Errorf("override %q: no id after @", s)
	}
	return Override{Flag: flag, Variant: variant, ID: id}, nil
}

// OverrideSegmentName is the segmentName of the segments ApplyOverrides
// adds: what explain and the variant metadata show as the deciding segment.
const OverrideSegmentName = "override (experiment serve)"

// ApplyOverrides returns flags with each override compiled in as a first
// segment: one that matches everyone, or the id as user_id or as
// device_id, and gives the variant. Served to local-evaluation SDKs, such
// flags force the variant there too. Overrides of one flag apply in the
// order given, the first winning. flags are not modified: a flag with
// overrides is a copy. An unknown flag or variant is an error naming it.
func ApplyOverrides(flags []*eval.Flag, overrides []Override) ([]*eval.Flag, error) {
	if len(overrides) == 0 {
		return flags, nil
	}
	out := slices.Clone(flags)
	index := make(map[string]int, len(out))
	for i, f := range out {
		index[f.Key] = i
	}
	added := map[string][]*eval.Segment{}
	for _, o := range overrides {
		i, ok := index[o.Flag]
		if !ok {
			return nil, fmt.Errorf("override %s: no flag %q", o, o.Flag)
		}
		if _, ok := out[i].Variants[o.Variant]; !ok {
			return nil, fmt.Errorf("override %s: flag %q has no variant %q (it has %s)", o, o.Flag, o.Variant, variantKeys(out[i]))
		}
		added[o.Flag] = append(added[o.Flag], overrideSegment(o))
	}
	for key, segs := range added {
		i := index[key]
		f := *out[i]
		f.Segments = append(segs, f.Segments...)
		out[i] = &f
	}
	return out, nil
}

func overrideSegment(o Override) *eval.Segment {
	seg := &eval.Segment{Variant: o.Variant, Metadata: map[string]any{"segmentName": OverrideSegmentName}}
	if o.ID != "" {
		seg.Conditions = [][]*eval.Condition{
			{{Selector: []string{"context", "user", "user_id"}, Op: "is", Values: []string{o.ID}}},
			{{Selector: []string{"context", "user", "device_id"}, Op: "is", Values: []string{o.ID}}},
		}
	}
	return seg
}

func variantKeys(f *eval.Flag) string {
	keys := make([]string, 0, len(f.Variants))
	for k := range f.Variants {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}
