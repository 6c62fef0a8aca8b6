package lint

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
)

// conditions checks each condition's filter values as the engine reads
// them, and the cohorts they target.
func (c *checker) conditions(pos, si int, seg *eval.Segment) {
	f := c.flags[pos]
	for gi, group := range seg.Conditions {
		for ci, cond := range group {
			at := fmt.Sprintf(".conditions[%d][%d]", gi, ci)
			what := fmt.Sprintf("condition %s %s in %s of flag %q", strings.Join(cond.Selector, "."), cond.Op, segmentLabel(f, si), f.Key)
			switch {
			case eval.ComparesNumbers(cond.Op):
				c.comparison(pos, si, at, what, cond.Values)
			case eval.ComparesVersions(cond.Op):
				for vi, v := range cond.Values {
					if !eval.IsVersion(v) {
						c.add(RuleInvalidVersion, pos, si, fmt.Sprintf("%s.values[%d]", at, vi), "%s: %q is not a version (major.minor[.patch[-pre]]) and never matches", what, v)
					}
				}
			}
			c.cohorts(pos, si, at, what, cond)
		}
	}
}

// comparison reports the filter values of a less/greater condition that
// are not numbers. The engine compares as numbers when the user's value
// and some filter value are numbers, skipping the others; otherwise as text.
func (c *checker) comparison(pos, si int, at, what string, values []string) {
	numbers := 0
	for _, v := range values {
		if eval.IsNumber(v) {
			numbers++
		}
	}
	for vi, v := range values {
		if f, err := strconv.ParseFloat(v, 64); err == nil && math.IsNaN(f) {
			// The engine reads it as a number, NaN, which is neither
			// less nor greater than anything.
			c.add(RuleNonNumericComparison, pos, si, fmt.Sprintf("%s.values[%d]", at, vi), "%s: %q is not a number that compares: it never matches", what, v)
			continue
		}
		if eval.IsNumber(v) {
			continue
		}
		how := "compares as text, character by character (\"10\" before \"9\")"
		if numbers > 0 {
			how = "never matches a numeric value, and makes the others compare as text for a non-numeric one"
		}
		c.add(RuleNonNumericComparison, pos, si, fmt.Sprintf("%s.values[%d]", at, vi), "%s: %q is not a number: it %s", what, v, how)
	}
}

// cohorts reports the cohorts a condition targets whose members are not
// available, when the caller can tell.
func (c *checker) cohorts(pos, si int, at, what string, cond *eval.Condition) {
	if c.opts.HasCohort == nil {
		return
	}
	// The cohort package decides which conditions target cohorts, for
	// cohort sync; lint asks it about this one condition.
	one := []*eval.Flag{{Segments: []*eval.Segment{{Conditions: [][]*eval.Condition{{cond}}}}}}
	for _, id := range cohort.Referenced(one).All() {
		if !c.opts.HasCohort(id) {
			vi := 0
			for i, v := range cond.Values {
				if v == id {
					vi = i
					break
				}
			}
			c.add(RuleMissingCohort, pos, si, fmt.Sprintf("%s.values[%d]", at, vi), "%s: cohort %q is not available: everybody evaluates as a non-member", what, id)
		}
	}
}

// dependencies reports dependencies on flags that are not deployed
// (metadata.deployed false); missing ones and cycles are the engine's.
func (c *checker) dependencies(pos int, f *eval.Flag) {
	for di, key := range f.Dependencies {
		d, ok := c.byKey[key]
		if !ok {
			continue
		}
		if deployed, ok := d.Metadata["deployed"].(bool); ok && !deployed {
			c.add(RuleUndeployedDependency, pos, -1, fmt.Sprintf(".dependencies[%d]", di), "flag %q depends on flag %q, which is not deployed: where flags come from the server it is absent, and %q reads no result for it", f.Key, key, f.Key)
		}
	}
}
