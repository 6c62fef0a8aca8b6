package lint

import (
	"fmt"
	"slices"

	"github.com/flagkit/experiment/pkg/eval"
)

// flag runs the rules that are not the engine's on flag pos.
func (c *checker) flag(pos int, f *eval.Flag) {
	if f.Key == "" {
		c.add(RuleMissingKey, pos, -1, ".key", "flag %d has no key: no evaluation can ask for it or return it by name", pos)
	}
	reach := c.segments(pos, f)
	served := map[string]bool{}
	for si, seg := range f.Segments {
		if si < reach {
			// A segment whose conditions are [] matches nobody: its
			// ranges are checked, but what it names serves nobody.
			into := served
			if seg.Conditions != nil && len(seg.Conditions) == 0 {
				into = map[string]bool{}
			}
			c.bucket(pos, f, si, into)
			if seg.Variant != "" {
				into[seg.Variant] = true
			}
		}
		c.conditions(pos, si, seg)
	}
	for _, key := range sortedVariantKeys(f) {
		if !served[key] {
			c.add(RuleUnusedVariant, pos, -1, ".variants."+key, "variant %q of flag %q is never served: no reachable segment or distribution gives it", key, f.Key)
		}
	}
	c.dependencies(pos, f)
}

// segments reports the segments nobody reaches and those that match
// nobody; it returns how many segments can be reached.
func (c *checker) segments(pos int, f *eval.Flag) int {
	reach := len(f.Segments)
	for si, seg := range f.Segments {
		if seg.Conditions != nil && len(seg.Conditions) == 0 {
			c.add(RuleEmptyConditions, pos, si, ".conditions", "%s of flag %q has an empty conditions list and matches nobody (leave conditions out to match everybody)", segmentLabel(f, si), f.Key)
		}
		if si >= reach {
			continue
		}
		if catchAll(f, seg) {
			reach = si + 1
		}
	}
	for si := reach; si < len(f.Segments); si++ {
		c.add(RuleUnreachableSegment, pos, si, "", "%s of flag %q is never reached: %s before it matches every user and always gives a variant", segmentLabel(f, si), f.Key, segmentLabel(f, reach-1))
	}
	return reach
}

// catchAll reports whether a segment decides the flag for everyone who
// reaches it: it matches everybody (no conditions, or an empty AND-group)
// and whatever the bucketing, the variant it ends with exists.
func catchAll(f *eval.Flag, seg *eval.Segment) bool {
	matchesAll := seg.Conditions == nil || slices.ContainsFunc(seg.Conditions, func(g []*eval.Condition) bool { return len(g) == 0 })
	if !matchesAll || !hasVariant(f, seg.Variant) {
		return false
	}
	if seg.Bucket == nil {
		return true
	}
	for _, a := range seg.Bucket.Allocations {
		for _, d := range a.Distributions {
			if !hasVariant(f, d.Variant) {
				return false
			}
		}
	}
	return true
}

func hasVariant(f *eval.Flag, key string) bool {
	v, ok := f.Variants[key]
	return ok && v != nil
}

func sortedVariantKeys(f *eval.Flag) []string {
	keys := make([]string, 0, len(f.Variants))
	for k, v := range f.Variants {
		if v != nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// span is a half-open range of hash values, clamped to its space.
type span struct{ start, end uint64 }

func (s span) empty() bool { return s.start >= s.end }

func (s span) String() string { return fmt.Sprintf("[%d, %d)", s.start, s.end) }

func clamp(r []uint64, limit uint64) span {
	return span{min(r[0], limit), min(r[1], limit)}
}

// bucket checks a reachable segment's ranges and records the variants its
// distributions can serve.
func (c *checker) bucket(pos int, f *eval.Flag, si int, served map[string]bool) {
	b := f.Segments[si].Bucket
	if b == nil {
		return
	}
	var allocs []span
	for ai, a := range b.Allocations {
		at := fmt.Sprintf(".bucket.allocations[%d]", ai)
		r := span{a.Range[0], a.Range[1]}
		if r.start > r.end || r.end > 100 {
			c.add(RuleAllocationRange, pos, si, at+".range", "allocation %d of %s of flag %q has range [%d, %d): want 0 <= start <= end <= 100",
				ai, segmentLabel(f, si), f.Key, r.start, r.end)
		}
		r = clamp(a.Range, 100)
		for pi, prev := range allocs {
			if o := overlap(prev, r); !o.empty() {
				c.add(RuleAllocationOverlap, pos, si, at+".range", "allocation %d %s of %s of flag %q overlaps allocation %d %s: hashes with allocation value in %s are decided by allocation %d first",
					ai, r, segmentLabel(f, si), f.Key, pi, prev, o, pi)
			}
		}
		allocs = append(allocs, r)
		c.distributions(pos, f, si, ai, a, served, !r.empty())
	}
	if missing := uncovered(allocs, 100); missing > 0 && f.Segments[si].Variant == "" {
		next := "go on to the next segment"
		if si == len(f.Segments)-1 {
			next = "get no variant (the flag's default)"
		}
		c.add(RuleRolloutFallsThrough, pos, si, ".bucket.allocations", "%s of flag %q has no variant of its own: the %d%% of its users outside its allocations %s",
			segmentLabel(f, si), f.Key, missing, next)
	}
}

// distributions checks one allocation's distributions; live says whether
// the allocation takes anyone, so that its variants count as served.
func (c *checker) distributions(pos int, f *eval.Flag, si, ai int, a *eval.Allocation, served map[string]bool, live bool) {
	var dists []span
	for di, d := range a.Distributions {
		at := fmt.Sprintf(".bucket.allocations[%d].distributions[%d]", ai, di)
		r := span{d.Range[0], d.Range[1]}
		if r.start > r.end || r.end > eval.DistributionEnd {
			c.add(RuleDistributionRange, pos, si, at+".range", "distribution %d of allocation %d of %s of flag %q has range [%d, %d): want 0 <= start <= end <= %d",
				di, ai, segmentLabel(f, si), f.Key, r.start, r.end, eval.DistributionEnd)
		}
		r = clamp(d.Range, eval.DistributionEnd)
		for pi, prev := range dists {
			if o := overlap(prev, r); !o.empty() {
				c.add(RuleDistributionOverlap, pos, si, at+".range", "distribution %d %s (variant %q) of allocation %d of %s of flag %q overlaps distribution %d %s: %s goes to variant %q",
					di, r, d.Variant, ai, segmentLabel(f, si), f.Key, pi, prev, o, a.Distributions[pi].Variant)
			}
		}
		dists = append(dists, r)
		if live && !r.empty() && d.Variant != "" {
			served[d.Variant] = true
		}
	}
	if !live {
		return
	}
	if missing := uncovered(dists, eval.DistributionEnd); missing > 0 {
		who := fmt.Sprintf("get the segment's variant %q", f.Segments[si].Variant)
		if f.Segments[si].Variant == "" {
			who = "fall through to the next segment"
		}
		c.add(RuleDistributionGap, pos, si, fmt.Sprintf(".bucket.allocations[%d].distributions", ai),
			"the distributions of allocation %d of %s of flag %q leave %d of %d distribution values uncovered (%s of the allocation): those users %s",
			ai, segmentLabel(f, si), f.Key, missing, eval.DistributionEnd, share(missing, eval.DistributionEnd), who)
	}
}

func overlap(a, b span) span { return span{max(a.start, b.start), min(a.end, b.end)} }

// uncovered is how many values of [0, limit) no span covers.
func uncovered(spans []span, limit uint64) uint64 {
	sorted := slices.Clone(spans)
	slices.SortFunc(sorted, func(a, b span) int { return int(a.start) - int(b.start) })
	var missing, next uint64
	for _, s := range sorted {
		if s.empty() {
			continue
		}
		if s.start > next {
			missing += s.start - next
		}
		next = max(next, s.end)
	}
	return missing + (limit - min(next, limit))
}

// share is n/total as a percentage, never shown as 0% when n > 0.
func share(n, total uint64) string {
	p := float64(n) * 100 / float64(total)
	if p < 0.0001 {
		return "< 0.0001%"
	}
	return fmt.Sprintf("%.4g%%", p)
}
