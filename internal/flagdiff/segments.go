package flagdiff

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/flagkit/experiment/pkg/eval"
)

// SegmentChange is a segment added, removed, moved or changed. From and To
// are its positions before and after, from 0 as in explain, lint and the
// configs' segments[i]; nil on the side it is not on.
type SegmentChange struct {
	Name   string `json:"name,omitempty"` // metadata segmentName
	Change Change `json:"change"`
	From   *int   `json:"from,omitempty"`
	To     *int   `json:"to,omitempty"`
	// Moved is true when the segment changed place relative to the
	// others (a changed segment may have moved too).
	Moved      bool               `json:"moved"`
	Conditions []*ConditionChange `json:"conditions,omitempty"`
	Variant    *ValueChange       `json:"variant,omitempty"`
	Bucket     *BucketChange      `json:"bucket,omitempty"`
	// Shares are the variants' shares of the users the segment decides
	// for (those it matches that have a bucketing value), before and
	// after, when any differs; every variant of an added or removed one.
	Shares   []*Share       `json:"shares,omitempty"`
	Metadata []*ValueChange `json:"metadata,omitempty"`
}

// ConditionChange is a condition added to or removed from an AND-group
// (Group, from 0, on the side the condition is on). Condition reads
// `selector op values`, e.g. `context.user.country is ["DE","FR"]`;
// "(everyone)" stands for a segment without conditions.
type ConditionChange struct {
	Change    Change `json:"change"`
	Group     int    `json:"group"`
	Condition string `json:"condition"`
}

// BucketChange is what changed in how a segment splits its users.
// Allocations are in text: "0-50%: on 50%, off 50%" per allocation.
type BucketChange struct {
	Selector    *ValueChange `json:"selector,omitempty"`
	Salt        *ValueChange `json:"salt,omitempty"`
	Allocations *ValueChange `json:"allocations,omitempty"`
	// Rebuckets: the salt or selector changed, so every user is hashed
	// anew.
	Rebuckets bool `json:"rebuckets"`
}

// Share is a variant's share, in percent, before and after, and the
// difference in percentage points. Variant "" is no variant: the user
// falls through to the next segment.
type Share struct {
	Variant string  `json:"variant"`
	From    float64 `json:"from"`
	To      float64 `json:"to"`
	Delta   float64 `json:"delta"`
}

// segments pairs the segments of both sides and diffs each pair; va and
// vb are the flag's variants on each side, for the shares.
func segments(a, b []*eval.Segment, va, vb map[string]*eval.Variant) []*SegmentChange {
	pairs, onlyA, onlyB := pairSegments(a, b)
	moved := movedPairs(pairs)
	var out []*SegmentChange
	for i, p := range pairs {
		c := compareSegment(a[p[0]], b[p[1]], va, vb)
		c.From, c.To, c.Moved = ptr(p[0]), ptr(p[1]), moved[i]
		switch {
		case c.Change == Changed:
		case c.Moved:
			c.Change = Moved
		default:
			continue
		}
		out = append(out, c)
	}
	for _, i := range onlyA {
		c := compareSegment(a[i], nil, va, vb)
		c.From = ptr(i)
		out = append(out, c)
	}
	for _, i := range onlyB {
		c := compareSegment(nil, b[i], va, vb)
		c.To = ptr(i)
		out = append(out, c)
	}
	// In the order of the new config, removed ones where they were.
	pos := func(c *SegmentChange) int {
		if c.To != nil {
			return 2 * (*c.To + 1)
		}
		return 2*(*c.From+1) - 1
	}
	slices.SortStableFunc(out, func(x, y *SegmentChange) int { return pos(x) - pos(y) })
	return out
}

// pairSegments matches segments by content, most certain match first:
// the same targeting, bucketing and variant; the same name; the same
// conditions; the same bucketing; then what is left at the same place
// under the same name.
func pairSegments(a, b []*eval.Segment) (pairs [][2]int, onlyA, onlyB []int) {
	usedA, usedB := make([]bool, len(a)), make([]bool, len(b))
	match := func(key func(*eval.Segment) string) {
		// Each key once: they are JSON texts, and a pass compares every
		// segment left on one side with every one left on the other.
		keysB := make([]string, len(b))
		for j, sb := range b {
			if !usedB[j] && sb != nil {
				keysB[j] = key(sb)
			}
		}
		for i, sa := range a {
			if usedA[i] || sa == nil {
				continue
			}
			k := key(sa)
			if k == "" {
				continue
			}
			for j := range b {
				if !usedB[j] && keysB[j] == k {
					usedA[i], usedB[j] = true, true
					pairs = append(pairs, [2]int{i, j})
					break
				}
			}
		}
	}
	match(func(s *eval.Segment) string { return conditionsKey(s) + "|" + jsonKey(s.Bucket) + "|" + s.Variant })
	match(segmentName)
	match(conditionsKey)
	match(func(s *eval.Segment) string {
		if s.Bucket == nil {
			return ""
		}
		return jsonKey(s.Bucket)
	})
	for i := range min(len(a), len(b)) {
		// A renamed segment is another one; one without a name (or with
		// the same) edited in place is the same one changed.
		if !usedA[i] && !usedB[i] && a[i] != nil && b[i] != nil && segmentName(a[i]) == segmentName(b[i]) {
			usedA[i], usedB[i] = true, true
			pairs = append(pairs, [2]int{i, i})
		}
	}
	for i := range a {
		if !usedA[i] && a[i] != nil {
			onlyA = append(onlyA, i)
		}
	}
	for j := range b {
		if !usedB[j] && b[j] != nil {
			onlyB = append(onlyB, j)
		}
	}
	slices.SortFunc(pairs, func(x, y [2]int) int { return x[0] - y[0] })
	return pairs, onlyA, onlyB
}

// movedPairs marks the pairs (sorted by old position) that are not in the
// longest run keeping its relative order: an insertion moves nothing, a
// swap moves one segment.
func movedPairs(pairs [][2]int) []bool {
	n := len(pairs)
	length, prev := make([]int, n), make([]int, n)
	best := -1
	for i := range pairs {
		length[i], prev[i] = 1, -1
		for j := range i {
			if pairs[j][1] < pairs[i][1] && length[j]+1 > length[i] {
				length[i], prev[i] = length[j]+1, j
			}
		}
		if best < 0 || length[i] > length[best] {
			best = i
		}
	}
	moved := make([]bool, n)
	for i := range moved {
		moved[i] = true
	}
	for i := best; i >= 0; i = prev[i] {
		moved[i] = false
	}
	return moved
}

func segmentName(s *eval.Segment) string {
	name, _ := s.Metadata["segmentName"].(string)
	return name
}

// ConditionText is a condition as the diff shows it: `selector op values`.
func ConditionText(c *eval.Condition) string {
	return strings.Join(c.Selector, ".") + " " + c.Op + " " + jsonKey(c.Values)
}

// sameCondition is a condition's text with its values sorted and each
// once: every operator takes its values as a set, so values reordered or
// repeated are the same condition. Absent values stay null.
func sameCondition(c *eval.Condition) string {
	values := c.Values
	if values != nil {
		values = slices.Compact(slices.Sorted(slices.Values(values)))
	}
	return strings.Join(c.Selector, ".") + " " + c.Op + " " + jsonKey(values)
}

// groups are a segment's AND-groups as sorted condition keys
// (sameCondition), and each key's text as written, to show; a segment
// without conditions or with an empty AND-group matches everyone, one
// with an empty list nobody.
func groups(s *eval.Segment) ([][]string, map[string]string) {
	if s.Conditions == nil {
		return [][]string{{"(everyone)"}}, map[string]string{"(everyone)": "(everyone)"}
	}
	out := make([][]string, 0, len(s.Conditions))
	shown := map[string]string{}
	for _, g := range s.Conditions {
		keys := make([]string, 0, len(g))
		for _, c := range g {
			if c != nil {
				k := sameCondition(c)
				keys = append(keys, k)
				shown[k] = ConditionText(c)
			}
		}
		if len(keys) == 0 { // an AND of nothing holds for everybody
			keys = append(keys, "(everyone)")
			shown["(everyone)"] = "(everyone)"
		}
		slices.Sort(keys)
		out = append(out, keys)
	}
	return out, shown
}

// conditionsKey is the targeting as one string, AND-groups in any order.
func conditionsKey(s *eval.Segment) string {
	gs, _ := groups(s)
	keys := make([]string, len(gs))
	for i, g := range gs {
		keys[i] = strings.Join(g, " AND ")
	}
	slices.Sort(keys)
	return strings.Join(keys, " OR ")
}

// jsonKey is v as compact JSON, as written: without encoding/json's HTML
// escapes, so that "AT&T" does not read "AT\u0026T" in a condition.
func jsonKey(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// compareSegment diffs a pair of segments, or one segment against nothing.
func compareSegment(a, b *eval.Segment, variantsA, variantsB map[string]*eval.Variant) *SegmentChange {
	c := &SegmentChange{Change: Changed}
	switch {
	case a == nil:
		c.Change, c.Name = Added, segmentName(b)
	case b == nil:
		c.Change, c.Name = Removed, segmentName(a)
	default:
		c.Name = segmentName(b)
	}
	var ga, gb [][]string
	var ta, tb map[string]string
	var va, vb string
	var ma, mb map[string]any
	var ba, bb *eval.Bucket
	if a != nil {
		ga, ta = groups(a)
		va, ma, ba = a.Variant, a.Metadata, a.Bucket
	}
	if b != nil {
		gb, tb = groups(b)
		vb, mb, bb = b.Variant, b.Metadata, b.Bucket
	}
	c.Conditions = conditionChanges(ga, gb, ta, tb)
	if va != vb || a == nil || b == nil {
		c.Variant = &ValueChange{From: optional(a != nil, va), To: optional(b != nil, vb)}
	}
	// An added segment's bucket reads as added (nil before), a removed
	// one's as taken away: its salt and ranges are part of what changed.
	c.Bucket = bucketChange(ba, bb)
	c.Metadata = metadata(ma, mb)
	c.Shares = shareChanges(a, b, variantsA, variantsB)
	if c.Change == Changed && c.Conditions == nil && c.Variant == nil && c.Bucket == nil && c.Metadata == nil && c.Shares == nil {
		c.Change = "" // the same: the caller decides whether it moved
	}
	return c
}

// conditionChanges pairs equal AND-groups, then what is left by place,
// and lists the conditions added to and removed from each, as written on
// their side (ta, tb).
func conditionChanges(a, b [][]string, ta, tb map[string]string) []*ConditionChange {
	usedA, usedB := make([]bool, len(a)), make([]bool, len(b))
	for i, g := range a {
		for j, h := range b {
			if !usedA[i] && !usedB[j] && slices.Equal(g, h) {
				usedA[i], usedB[j] = true, true
			}
		}
	}
	var out []*ConditionChange
	var leftA, leftB []int
	for i := range a {
		if !usedA[i] {
			leftA = append(leftA, i)
		}
	}
	for j := range b {
		if !usedB[j] {
			leftB = append(leftB, j)
		}
	}
	for k := range max(len(leftA), len(leftB)) {
		var g, h []string
		gi, hi := 0, 0
		if k < len(leftA) {
			gi = leftA[k]
			g = a[gi]
		}
		if k < len(leftB) {
			hi = leftB[k]
			h = b[hi]
		}
		for _, t := range g {
			if !slices.Contains(h, t) {
				out = append(out, &ConditionChange{Change: Removed, Group: gi, Condition: ta[t]})
			}
		}
		for _, t := range h {
			if !slices.Contains(g, t) {
				out = append(out, &ConditionChange{Change: Added, Group: hi, Condition: tb[t]})
			}
		}
	}
	return out
}

func bucketChange(a, b *eval.Bucket) *BucketChange {
	if sameJSON(a, b) {
		return nil
	}
	var sa, sb, salta, saltb any
	var aa, ab any
	if a != nil {
		sa, salta, aa = strings.Join(a.Selector, "."), a.Salt, AllocationText(a)
	}
	if b != nil {
		sb, saltb, ab = strings.Join(b.Selector, "."), b.Salt, AllocationText(b)
	}
	c := &BucketChange{Selector: value("", sa, sb), Salt: value("", salta, saltb)}
	if !sameSplit(a, b) {
		if aa == ab { // widths alike, ranges not: say which ranges
			aa, ab = allocationText(a, true), allocationText(b, true)
		}
		c.Allocations = value("", aa, ab)
	}
	// Hashing anew matters only where both sides hash.
	c.Rebuckets = a != nil && b != nil && (c.Selector != nil || c.Salt != nil)
	if c.Selector == nil && c.Salt == nil && c.Allocations == nil {
		return nil // the same JSON spelled differently (nil and empty lists)
	}
	return c
}

// optional is v where the side has a segment, null where it has none.
func optional(present bool, v string) any {
	if !present {
		return nil
	}
	return v
}

func ptr(i int) *int { return &i }
