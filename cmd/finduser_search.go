package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flagkit/experiment/internal/flagdiff"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// route is a segment that can give the variant: by naming it (targeting)
// or by a distribution with a share of its users (bucketing).
type route struct {
	seg      int
	bucketed bool
	share    float64 // bucketing: the share of the segment's users that hash to it
}

// variantRoutes lists, in segment order, where a flag can serve variant.
// A bucket's share is flagdiff's, which buckets as the engine does (the
// first allocation and distribution that hold a hash take it): a range
// behind one that takes the same hashes first gives nobody.
func variantRoutes(f *eval.Flag, variant string) []route {
	var routes []route
	for si, seg := range f.Segments {
		if seg.Conditions != nil && len(seg.Conditions) == 0 {
			continue // conditions [] match nobody: no route at all
		}
		// Without the segment's own variant: the hashes no range takes.
		if share := flagdiff.Shares(&eval.Segment{Bucket: seg.Bucket}, f.Variants)[variant]; share > 0 {
			routes = append(routes, route{seg: si, bucketed: true, share: share})
			continue
		}
		if seg.Variant == variant {
			routes = append(routes, route{seg: si})
		}
	}
	return routes
}

// defaultBy is the id the flag buckets the variant by: the selector of
// its first bucketing route by an id find-user can vary; device_id when
// only targeting gives it. Routes that hash something else (a group, a
// property) are passed over for a later one that hashes an id.
func defaultBy(f *eval.Flag, routes []route) (string, error) {
	var other error
	for _, r := range routes {
		if !r.bucketed {
			continue
		}
		sel := f.Segments[r.seg].Bucket.Selector
		if by := variedID(sel); by != "" {
			return by, nil
		}
		if other == nil {
			other = fmt.Errorf("%s buckets by %s; find-user varies device_id or user_id only, and no device id tried got the variant",
				segmentTitle(f, r.seg), strings.Join(sel, "."))
		}
	}
	if other != nil {
		return "", other
	}
	return "device_id", nil
}

// variedID is the --by name of the id a bucket selector reads, "" when
// find-user cannot vary what it reads (a property or group named device_id
// is not the device id).
func variedID(sel []string) string {
	if len(sel) == 3 && sel[0] == "context" && sel[1] == "user" && findUserFields[sel[2]] != nil {
		return sel[2]
	}
	return ""
}

func segmentTitle(f *eval.Flag, si int) string {
	name, _ := f.Segments[si].Metadata["segmentName"].(string)
	if name == "" {
		return "segment " + strconv.Itoa(si)
	}
	return fmt.Sprintf("segment %d %q", si, name)
}

// idSearch tries ids on the template user until enough get the variant.
type idSearch struct {
	fs       *experiment.FlagSet
	opts     *findUserOptions
	template experiment.User
	next     func() string
	last     experiment.User // the last user tried, for the diagnosis
}

// run searches; every id found is the variant by a full evaluation, and
// explained for its numbers.
func (s *idSearch) run(ctx context.Context) (*findUserReport, error) {
	o := s.opts
	report := &findUserReport{Flag: o.Flag, Variant: o.Variant, By: o.By, IDs: []foundID{}}
	if o.Prefix == "" && o.By == "device_id" {
		report.Seed = &o.Seed
	}
	field := findUserFields[o.By]
	keys := []string{o.Flag}
	var results []eval.Result
	// One user for all tries, s.last: declared in the loop it would be
	// allocated per try (field, a func value, makes it escape), and the
	// last one tried is the one the diagnosis explains.
	u := &s.last
	for report.Tries < o.MaxTries && len(report.IDs) < o.Count {
		if report.Tries%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		report.Tries++
		*u = s.template
		*field(u) = s.next()
		var err error
		if results, err = s.fs.EvaluateResults(u, keys, results[:0]); err != nil {
			return nil, evalError(o.Source.name(), err)
		}
		i := slices.IndexFunc(results, func(r eval.Result) bool { return r.FlagKey == o.Flag })
		if i < 0 || results[i].Key != o.Variant {
			continue
		}
		found, err := s.explain(u, *field(u))
		if err != nil {
			return nil, err
		}
		report.IDs = append(report.IDs, found)
	}
	return report, nil
}

// explain gives the engine's numbers for an id found by evaluation, and
// checks that the trace agrees with it.
func (s *idSearch) explain(u *experiment.User, id string) (foundID, error) {
	trace, err := s.fs.Explain(u, s.opts.Flag)
	if err != nil {
		return foundID{}, evalError(s.opts.Source.name(), err)
	}
	i := slices.IndexFunc(trace.Flags, func(ft eval.FlagTrace) bool { return ft.Key == s.opts.Flag })
	if i < 0 || trace.Flags[i].Variant != s.opts.Variant {
		return foundID{}, errors.New("internal error: explain and evaluate disagree for " + id)
	}
	ft := trace.Flags[i]
	st := ft.Segments[ft.Segment]
	found := foundID{ID: id, Variant: ft.Variant, Segment: ft.Segment, SegmentName: st.Name}
	if b := st.Bucket; b != nil && !b.Absent { // hashed, whether or not a range took the hash
		found.Bucket = &foundBucket{Selector: b.Selector, Salt: b.Salt, Hash: b.Hash, Allocation: b.Allocation,
			Distribution: b.Distribution, AllocationIndex: b.AllocationIndex, DistributionIndex: b.DistributionIndex}
	}
	return found, nil
}

// diagnose says, for each segment that could give the variant, what keeps
// the last user tried from it; reachable is true when some segment does
// give it to ids like these and only --max-tries ran out, so that the
// caller does not claim the variant is out of reach.
func (s *idSearch) diagnose(f *eval.Flag, routes []route) (why string, reachable bool) {
	trace, err := s.fs.Explain(&s.last, s.opts.Flag)
	if err != nil {
		return err.Error(), false
	}
	i := slices.IndexFunc(trace.Flags, func(ft eval.FlagTrace) bool { return ft.Key == s.opts.Flag })
	if i < 0 {
		return "the flag was not evaluated", false
	}
	ft := trace.Flags[i]
	var reasons []string
	for _, r := range routes {
		reason, open := s.blocked(f, ft, r)
		reasons = append(reasons, reason)
		reachable = reachable || open
	}
	return strings.Join(reasons, "; "), reachable
}

// blocked is why one route did not give the variant; open is true when
// nothing blocks it but the luck of the ids tried.
func (s *idSearch) blocked(f *eval.Flag, ft eval.FlagTrace, r route) (reason string, open bool) {
	title := segmentTitle(f, r.seg)
	st := ft.Segments[r.seg]
	switch {
	case !st.Reached:
		return fmt.Sprintf("%s is never reached: %s decides first", title, segmentTitle(f, ft.Segment)), false
	case !st.Matched:
		return title + " does not match the user: " + failedCondition(st), false
	case !r.bucketed:
		return fmt.Sprintf("%s gives it by targeting, but its bucket sends these ids elsewhere", title), false
	}
	sel := f.Segments[r.seg].Bucket.Selector
	if variedID(sel) != s.opts.By {
		return fmt.Sprintf("%s buckets by %s, which --by %s does not change", title, strings.Join(sel, "."), s.opts.By), false
	}
	return fmt.Sprintf("%s gives it to %.6g%% of its users", title, r.share*100), true
}

// failedCondition names the first condition that failed in the first
// AND-group, with the user's value.
func failedCondition(st eval.SegmentTrace) string {
	if len(st.Conditions) == 0 {
		return "its conditions are an empty list"
	}
	for _, c := range st.Conditions[0] {
		if c.Matched {
			continue
		}
		value := "absent"
		if !c.Absent {
			value = strconv.Quote(c.Value)
		}
		return fmt.Sprintf("%s %s %s is false (user: %s)", strings.Join(c.Selector, "."), c.Op, jsonText(c.Values), value)
	}
	return "no AND-group holds"
}
