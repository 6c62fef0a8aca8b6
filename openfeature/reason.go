package openfeature

import (
	"slices"
	"sync/atomic"

	"github.com/flagkit/experiment/pkg/eval"
	of "github.com/open-feature/go-sdk/openfeature"
)

// Bucketing numbers, as the engine derives them from a 32-bit hash:
// allocation = hash % 100, distribution = hash / 100.
const (
	allocationSpan   = 100
	distributionSpan = (1<<32-1)/100 + 1 // 42949673: every hash/100 is below it
)

// reasonTable holds the reason of every outcome (flag, deciding segment,
// variant) of one snapshot, indexed by eval.Result.Outcome. The reason
// depends only on the flag's config, so it is worked out once per snapshot
// instead of once per evaluation.
type reasonTable struct {
	snap    *eval.Snapshot
	reasons []of.Reason
}

// reasons caches the table of the snapshot last evaluated: flag updates are
// rare, so one entry is enough, and an evaluation against an older snapshot
// (a race with an update) builds its own table rather than using a wrong one.
type reasons struct {
	last atomic.Pointer[reasonTable]
}

func (rs *reasons) forSnapshot(snap *eval.Snapshot) *reasonTable {
	if t := rs.last.Load(); t != nil && t.snap == snap {
		return t
	}
	t := newReasonTable(snap)
	rs.last.Store(t)
	return t
}

func (t *reasonTable) reason(outcome int) of.Reason {
	if outcome < 0 || outcome >= len(t.reasons) {
		return of.UnknownReason
	}
	return t.reasons[outcome]
}

func newReasonTable(snap *eval.Snapshot) *reasonTable {
	t := &reasonTable{snap: snap, reasons: make([]of.Reason, snap.Outcomes())}
	// Every flag decoded once, for this table only (Flags keeps none):
	// snap.Flag would keep each decoded beside the compact snapshot, and
	// the client's memory would be what it was before it kept the document.
	keys, flags := snap.Keys(), snap.Flags()
	byKey := make(map[string]*eval.Flag, len(keys))
	for i, f := range flags {
		byKey[keys[i]] = f
	}
	// Outcomes of one segment are consecutive: analyse each segment once.
	var lastFlag string
	lastSeg := -1
	var split map[string]bool
	for i := range t.reasons {
		flagKey, seg, variant := snap.Outcome(i)
		f := byKey[flagKey]
		if f == nil || seg < 0 || seg >= len(f.Segments) || f.Segments[seg] == nil {
			t.reasons[i] = of.UnknownReason
			continue
		}
		if flagKey != lastFlag || seg != lastSeg {
			lastFlag, lastSeg = flagKey, seg
			split = splitVariants(f.Segments[seg])
		}
		t.reasons[i] = segmentReason(f, seg, variant, split)
	}
	return t
}

// segmentReason is the reason for a variant decided by segment si:
//
//   - SPLIT when the segment's bucket sends users with a bucketing value to
//     more than one outcome (an experiment's split, or a rollout below 100%)
//     and this variant is one the hash can pick;
//   - TARGETING_MATCH when the segment has conditions (they matched);
//   - STATIC when it is the flag's first segment and has none: every user
//     gets this variant, nothing about them was looked at;
//   - DEFAULT when it is a later segment without conditions: the flag's
//     "all other users" fallthrough, reached because no rule before it
//     matched.
func segmentReason(f *eval.Flag, si int, variant string, split map[string]bool) of.Reason {
	seg := f.Segments[si]
	switch {
	case len(split) > 1 && split[variant]:
		return of.SplitReason
	case seg.Conditions != nil:
		return of.TargetingMatchReason
	case si == 0:
		return of.StaticReason
	}
	return of.DefaultReason
}

// splitVariants lists the variant keys that the segment's bucket can give
// a user with a bucketing value, the segment's own variant standing for the
// hashes no allocation or distribution covers. A bucket whose allocations
// give every hash the same variant (100% to "on", however many allocations
// it takes) yields one key: not a split. nil without a bucket.
func splitVariants(seg *eval.Segment) map[string]bool {
	b := seg.Bucket
	if b == nil {
		return nil
	}
	out := map[string]bool{}
	var allocs [][2]uint64
	for _, a := range b.Allocations {
		if a == nil || len(a.Range) != 2 {
			continue
		}
		lo, hi := a.Range[0], min(a.Range[1], allocationSpan)
		if lo >= hi {
			continue // no hash lands here
		}
		allocs = append(allocs, [2]uint64{lo, hi})
		var dists [][2]uint64
		for _, d := range a.Distributions {
			if d == nil || len(d.Range) != 2 {
				continue
			}
			dlo, dhi := d.Range[0], min(d.Range[1], distributionSpan)
			if dlo >= dhi {
				continue
			}
			dists = append(dists, [2]uint64{dlo, dhi})
			out[d.Variant] = true
		}
		if !covers(dists, distributionSpan) {
			out[seg.Variant] = true
		}
	}
	if !covers(allocs, allocationSpan) {
		out[seg.Variant] = true
	}
	return out
}

// covers reports whether the half-open ranges together cover [0, span).
func covers(ranges [][2]uint64, span uint64) bool {
	slices.SortFunc(ranges, func(a, b [2]uint64) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	var reached uint64
	for _, r := range ranges {
		if r[0] > reached {
			return false
		}
		reached = max(reached, r[1])
	}
	return reached >= span
}
