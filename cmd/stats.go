package cmd

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flagkit/experiment/pkg/eval"
)

// variantStat is one row of --stats: how many users got a variant of a
// flag, and the share its bucketing was configured to give it.
type variantStat struct {
	Flag       string   `json:"flag"`
	Variant    string   `json:"variant"`
	Users      int      `json:"users"`
	Share      float64  `json:"share"`
	Configured *float64 `json:"configured_share"`
}

type statsSummary struct {
	Users    int           `json:"users"`
	Variants []variantStat `json:"variants"`
}

func (b *batch) summary() statsSummary {
	snap := b.fs.Snapshot()
	type fv struct{ flag, variant string }
	counts := map[fv]int{}
	for i, n := range b.counts {
		if n > 0 {
			flag, _, variant := snap.Outcome(i)
			counts[fv{flag, variant}] += n
		}
	}
	s := statsSummary{Users: b.users, Variants: []variantStat{}}
	for k, n := range counts {
		st := variantStat{Flag: k.flag, Variant: k.variant, Users: n}
		if b.users > 0 {
			st.Share = float64(n) / float64(b.users)
		}
		if share, ok := configuredShare(snap.Flag(k.flag), k.variant); ok {
			st.Configured = &share
		}
		s.Variants = append(s.Variants, st)
	}
	slices.SortFunc(s.Variants, func(a, b variantStat) int {
		if c := strings.Compare(a.Flag, b.Flag); c != 0 {
			return c
		}
		return strings.Compare(a.Variant, b.Variant)
	})
	return s
}

// fullDistribution is the size of the distribution space, hash/100.
const fullDistribution = 42949673

// configuredShare is the share of the users matching the flag's first
// bucketed segment that its bucketing gives the variant: for each of the
// 100 allocation values, the distribution ranges are walked as the engine
// walks them (allocations in order, falling through), and what no range
// catches goes to the segment's own variant.
func configuredShare(f *eval.Flag, variant string) (float64, bool) {
	if f == nil {
		return 0, false
	}
	for _, seg := range f.Segments {
		if seg.Bucket == nil || len(seg.Bucket.Allocations) == 0 {
			continue
		}
		var caught uint64
		for a := uint64(0); a < 100; a++ {
			caught += caughtFor(seg, a, variant)
		}
		return float64(caught) / (100 * fullDistribution), true
	}
	return 0, false
}

// caughtFor is how many of the distribution values of allocation value a
// end in variant.
func caughtFor(seg *eval.Segment, a uint64, variant string) uint64 {
	free := []uint64{0, fullDistribution} // uncaught ranges, as start/end pairs
	var caught uint64
	for _, alloc := range seg.Bucket.Allocations {
		if a < alloc.Range[0] || a >= alloc.Range[1] {
			continue
		}
		for _, d := range alloc.Distributions {
			var n uint64
			free, n = takeRange(free, d.Range[0], min(d.Range[1], fullDistribution))
			if d.Variant == variant {
				caught += n
			}
		}
	}
	if seg.Variant == variant {
		for i := 0; i < len(free); i += 2 {
			caught += free[i+1] - free[i]
		}
	}
	return caught
}

// takeRange removes [start, end) from the free ranges and says how much of
// it was free.
func takeRange(free []uint64, start, end uint64) ([]uint64, uint64) {
	var out []uint64
	var taken uint64
	for i := 0; i < len(free); i += 2 {
		s, e := free[i], free[i+1]
		lo, hi := max(s, start), min(e, end)
		if lo >= hi {
			out = append(out, s, e)
			continue
		}
		taken += hi - lo
		if s < lo {
			out = append(out, s, lo)
		}
		if hi < e {
			out = append(out, hi, e)
		}
	}
	return out, taken
}

func (b *batch) printStats() error {
	s := b.summary()
	ios := b.opts.IO
	if b.opts.Output == "json" {
		if err := writeJSON(ios.ErrOut, s, true); err != nil {
			return ioError(err)
		}
		return nil
	}
	header := []string{"FLAG", "VARIANT", "USERS", "SHARE", "CONFIGURED"}
	// After the data, the summary is a note on stderr, always aligned.
	w, t, count := ios.ErrOut, ios.ErrTable(header...), ios.ErrOut
	if b.opts.summaryOnly() {
		// The summary is the command's output: on stdout, fitted to the
		// terminal, or tab-separated rows in a pipe (-o table there), with
		// the user count on stderr so that the rows stay rows.
		w, t = ios.Out, ios.OutTable(header...)
		if t.Aligned() {
			count = ios.Out
		}
	}
	t.KeyColumns(2) // flag and variant
	for _, st := range s.Variants {
		configured := "-"
		if st.Configured != nil {
			configured = percent(*st.Configured)
		}
		t.AddRow(st.Flag, st.Variant, strconv.Itoa(st.Users), percent(st.Share), configured)
	}
	if _, err := fmt.Fprintf(count, "%d users\n", s.Users); err != nil && count == ios.Out {
		return writeOutput(err)
	}
	if err := t.Render(w); err != nil {
		if w == ios.Out {
			return writeOutput(err)
		}
		return ioError(err)
	}
	return nil
}

func percent(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }
