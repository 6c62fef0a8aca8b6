package flagdiff

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/flagkit/experiment/pkg/eval"
)

// The engine hashes a user's bucketing value to a uint32 h and picks the
// first allocation whose range holds h%100 and, in it, the first
// distribution whose range holds h/100 (pkg/eval's bucket). h/100 runs
// over [0, distributionSpace): Amplitude's full range is [0, 42949673).
const (
	allocationSpace   = 100
	distributionSpace = 42949673
)

// Shares are the variants' shares, as fractions, of the users a segment
// decides for that have a bucketing value; key "" is no variant. A name
// not among the flag's variants is no variant too: the engine skips it,
// and the user falls through. h%100 and h/100 are taken as independent,
// which they are to within 1e-8.
func Shares(s *eval.Segment, variants map[string]*eval.Variant) map[string]float64 {
	out := map[string]float64{}
	served := func(v string) string {
		if variants[v] == nil {
			return ""
		}
		return v
	}
	if s.Bucket == nil || len(s.Bucket.Allocations) == 0 {
		out[served(s.Variant)] = 1
		return out
	}
	for x := range uint64(allocationSpace) {
		var covered [][2]uint64
		for _, a := range s.Bucket.Allocations {
			if a == nil || len(a.Range) != 2 || x < a.Range[0] || x >= a.Range[1] {
				continue
			}
			for _, d := range a.Distributions {
				if d == nil || len(d.Range) != 2 {
					continue
				}
				lo, hi := min(d.Range[0], distributionSpace), min(d.Range[1], distributionSpace)
				var n uint64
				covered, n = paint(covered, lo, hi)
				if n > 0 {
					out[served(d.Variant)] += float64(n) / distributionSpace / allocationSpace
				}
			}
		}
		var n uint64
		_, n = paint(covered, 0, distributionSpace)
		if n > 0 {
			out[served(s.Variant)] += float64(n) / distributionSpace / allocationSpace
		}
	}
	return out
}

// paint adds [lo, hi) to the covered intervals and returns how much of it
// was not covered yet.
func paint(covered [][2]uint64, lo, hi uint64) ([][2]uint64, uint64) {
	if lo >= hi {
		return covered, 0
	}
	fresh := hi - lo
	for _, c := range covered {
		if s, e := max(lo, c[0]), min(hi, c[1]); s < e {
			fresh -= e - s // covered intervals never overlap each other
		}
	}
	// Kept as the union of disjoint pieces: add only the uncovered parts.
	pieces := [][2]uint64{{lo, hi}}
	for _, c := range covered {
		var next [][2]uint64
		for _, p := range pieces {
			if p[1] <= c[0] || p[0] >= c[1] {
				next = append(next, p)
				continue
			}
			if p[0] < c[0] {
				next = append(next, [2]uint64{p[0], c[0]})
			}
			if p[1] > c[1] {
				next = append(next, [2]uint64{c[1], p[1]})
			}
		}
		pieces = next
	}
	return append(covered, pieces...), fresh
}

// shareChanges lists each variant's share before and after, in percent,
// when any differs by a hundredth of a point; every share of a segment
// that is only on one side.
func shareChanges(a, b *eval.Segment, va, vb map[string]*eval.Variant) []*Share {
	if !bucketed(a) && !bucketed(b) {
		return nil // everyone gets the segment's variant: its change says it all
	}
	var sa, sb map[string]float64
	if a != nil {
		sa = Shares(a, va)
	}
	if b != nil {
		sb = Shares(b, vb)
	}
	var out []*Share
	differ := false
	for _, k := range sortedKeys(sa, sb) {
		s := &Share{Variant: k, From: Percent(sa[k]), To: Percent(sb[k])}
		s.Delta = Percent(sb[k] - sa[k])
		differ = differ || s.Delta != 0
		out = append(out, s)
	}
	if !differ && a != nil && b != nil {
		return nil
	}
	return out
}

func bucketed(s *eval.Segment) bool {
	return s != nil && s.Bucket != nil && len(s.Bucket.Allocations) > 0
}

// Percent is a fraction in percent, to a hundredth of a point, as every
// share of a diff is given (diff --users measures its own the same way).
func Percent(f float64) float64 {
	p := math.Round(f*10000) / 100
	if p == 0 {
		return 0 // not -0
	}
	return p
}

// AllocationText describes a bucket's allocations, one per "; ":
// "0-50%: on 50%, off 50%"; each distribution's width in percent of the
// distribution space.
func AllocationText(b *eval.Bucket) string { return allocationText(b, false) }

// allocationText is AllocationText, or with ranges each distribution's
// range of hash / 100 values in place of its width: "on [0, 21474836)",
// for buckets whose widths are alike but whose ranges are not.
func allocationText(b *eval.Bucket, ranges bool) string {
	var parts []string
	for _, a := range b.Allocations {
		if a == nil || len(a.Range) != 2 {
			continue
		}
		var dists []string
		for _, d := range a.Distributions {
			if d == nil || len(d.Range) != 2 {
				continue
			}
			if ranges {
				dists = append(dists, fmt.Sprintf("%s [%d, %d)", orNone(d.Variant), d.Range[0], d.Range[1]))
				continue
			}
			width := float64(min(d.Range[1], distributionSpace)) - float64(min(d.Range[0], distributionSpace))
			dists = append(dists, fmt.Sprintf("%s %s%%", orNone(d.Variant), trim(Percent(max(width, 0)/distributionSpace))))
		}
		parts = append(parts, fmt.Sprintf("%d-%d%%: %s", a.Range[0], a.Range[1], strings.Join(dists, ", ")))
	}
	return strings.Join(parts, "; ")
}

// trim prints a percentage without trailing zeros: 50, 33.33.
func trim(p float64) string { return fmt.Sprintf("%g", p) }

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// piece is a run of hash / 100 values that a bucket sends to a variant.
type piece struct {
	lo, hi  uint64
	variant string
}

// split is what a bucket does with every hash: per allocation value
// (hash % 100) the runs of distribution values and their variants, first
// match wins as in the engine, sorted and merged. The values no range
// takes are left out: they get the segment's variant, compared apart.
func split(b *eval.Bucket) [][]piece {
	out := make([][]piece, allocationSpace)
	if b == nil {
		return out
	}
	for x := range uint64(allocationSpace) {
		var covered [][2]uint64
		var runs []piece
		for _, a := range b.Allocations {
			if a == nil || len(a.Range) != 2 || x < a.Range[0] || x >= a.Range[1] {
				continue
			}
			for _, d := range a.Distributions {
				if d == nil || len(d.Range) != 2 {
					continue
				}
				n := len(covered)
				covered, _ = paint(covered, min(d.Range[0], distributionSpace), min(d.Range[1], distributionSpace))
				for _, c := range covered[n:] {
					runs = append(runs, piece{c[0], c[1], d.Variant})
				}
			}
		}
		slices.SortFunc(runs, func(p, q piece) int { return cmp.Compare(p.lo, q.lo) })
		var merged []piece
		for _, r := range runs {
			if n := len(merged); n > 0 && merged[n-1].hi == r.lo && merged[n-1].variant == r.variant {
				merged[n-1].hi = r.hi
				continue
			}
			merged = append(merged, r)
		}
		out[x] = merged
	}
	return out
}

// sameSplit reports whether two buckets send every hash to the same
// variant, however their ranges are written or ordered; the salt and
// selector are compared apart.
func sameSplit(a, b *eval.Bucket) bool {
	return slices.EqualFunc(split(a), split(b), slices.Equal)
}
