package experiment

import (
	"slices"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
)

// snapshotReferences lists the cohorts a compiled set's flags target, from
// its conditions: a set that keeps its document decodes no flag for it.
func snapshotReferences(snap *eval.Snapshot) cohort.References {
	var conds []*eval.Condition
	snap.Conditions(func(_ string, c *eval.Condition) {
		if n := len(c.Selector); n > 0 && c.Selector[n-1] == "cohort_ids" {
			// A copy: Conditions hands out the snapshot's own.
			conds = append(conds, &eval.Condition{Selector: slices.Clone(c.Selector), Op: c.Op, Values: slices.Clone(c.Values)})
		}
	})
	if len(conds) == 0 {
		return cohort.References{}
	}
	return cohort.Referenced([]*eval.Flag{{Segments: []*eval.Segment{{Conditions: [][]*eval.Condition{conds}}}}})
}
