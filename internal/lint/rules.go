package lint

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/flagkit/experiment/pkg/eval"
)

// The rule ids. They are a contract (JSON and SARIF output, CI filters):
// add, never rename.
const (
	RuleUnreachableSegment   = "unreachable-segment"
	RuleEmptyConditions      = "empty-conditions"
	RuleAllocationRange      = "allocation-range"
	RuleAllocationOverlap    = "allocation-overlap"
	RuleDistributionRange    = "distribution-range"
	RuleDistributionOverlap  = "distribution-overlap"
	RuleDistributionGap      = "distribution-gap"
	RuleRolloutFallsThrough  = "rollout-falls-through"
	RuleUnusedVariant        = "unused-variant"
	RuleMissingVariant       = "missing-variant"
	RuleInvalidRegex         = "invalid-regex"
	RuleNonNumericComparison = "non-numeric-comparison"
	RuleInvalidVersion       = "invalid-version"
	RuleUnknownOperator      = "unknown-operator"
	RuleMissingDependency    = "missing-dependency"
	RuleDependencyCycle      = "dependency-cycle"
	RuleUndeployedDependency = "undeployed-dependency"
	RuleDuplicateFlag        = "duplicate-flag"
	RuleMissingKey           = "missing-key"
	RuleMissingCohort        = "missing-cohort"
)

// Rules lists every rule with its severity, in the order of the docs.
func Rules() []Rule {
	return []Rule{
		{RuleUnreachableSegment, Error, "A segment after one that matches every user and always gives a variant is never reached."},
		{RuleEmptyConditions, Warning, "A segment whose conditions are an empty list matches nobody (absent conditions match everybody)."},
		{RuleAllocationRange, Error, "An allocation range is reversed or goes beyond 100: the percentages are not what they say."},
		{RuleAllocationOverlap, Error, "Two allocations of a bucket overlap: the earlier one takes the shared users first."},
		{RuleDistributionRange, Error, "A distribution range is reversed or goes beyond the 42949673 hash space."},
		{RuleDistributionOverlap, Error, "Two distributions of an allocation overlap: the earlier one takes the shared users."},
		{RuleDistributionGap, Warning, "The distributions of an allocation leave part of it uncovered: those users get the segment's variant or fall through."},
		{RuleRolloutFallsThrough, Note, "A bucketed segment without a variant of its own: users outside its allocations go on to the next segment."},
		{RuleUnusedVariant, Warning, "A variant that no reachable segment or distribution serves."},
		{RuleMissingVariant, Error, "A segment or distribution names a variant the flag does not have: the engine skips it."},
		{RuleInvalidRegex, Error, "A regex filter value does not compile: it never matches."},
		{RuleNonNumericComparison, Warning, "A less/greater filter value is not a number: it compares as text, or never against a number."},
		{RuleInvalidVersion, Error, "A version comparison's filter value is not a version: it never matches."},
		{RuleUnknownOperator, Error, "A condition's operator is unknown to the engine: it never matches."},
		{RuleMissingDependency, Error, "A flag depends on a flag that is not in the config: it reads as no result."},
		{RuleDependencyCycle, Error, "Flags depend on each other in a cycle: evaluations that reach it fail."},
		{RuleUndeployedDependency, Warning, "A flag depends on a flag that is not deployed: the server does not serve it, so it reads as no result there."},
		{RuleDuplicateFlag, Error, "A flag key is defined twice: the later definition wins, the earlier is ignored."},
		{RuleMissingKey, Error, "A flag without a key: no evaluation can ask for it or return it by name."},
		{RuleMissingCohort, Error, "A condition targets a cohort whose members are not available (no file in --cohorts DIR): nobody is a member."},
	}
}

func ruleSeverity(id string) Severity {
	for _, r := range Rules() {
		if r.ID == id {
			return r.Severity
		}
	}
	panic("lint: unknown rule " + id) // a typo in this package, caught by its tests
}

// problemRules maps the engine's compile-time problems to rules.
var problemRules = map[eval.ProblemKind]string{
	eval.ProblemUnknownOperator:   RuleUnknownOperator,
	eval.ProblemInvalidRegex:      RuleInvalidRegex,
	eval.ProblemMissingDependency: RuleMissingDependency,
	eval.ProblemMissingVariant:    RuleMissingVariant,
	eval.ProblemDuplicateFlag:     RuleDuplicateFlag,
	eval.ProblemCycle:             RuleDependencyCycle,
}

// problem turns an engine problem into a finding, with the segment its
// path names. A cycle's path is the whole list: it is placed at the
// dependencies of its first flag.
func (c *checker) problem(p eval.Problem) {
	rule, ok := problemRules[p.Kind]
	if !ok {
		return // a kind added to the engine later: lint says nothing rather than guess
	}
	path := p.Path
	if p.Kind == eval.ProblemCycle {
		path = "flags[" + strconv.Itoa(c.position(p.Flag)) + "].dependencies"
	}
	fd := Finding{Rule: rule, Severity: ruleSeverity(rule), Flag: p.Flag, Path: path, Message: fmt.Sprintf("flag %q: %s", p.Flag, p.Message)}
	if pos, seg, ok := parseSegmentPath(path); ok && pos < len(c.flags) && c.flags[pos] != nil && seg < len(c.flags[pos].Segments) {
		fd.Segment = &seg
		fd.SegmentName = segmentName(c.flags[pos].Segments[seg])
		fd.Message = fmt.Sprintf("%s of flag %q: %s", segmentLabel(c.flags[pos], seg), p.Flag, p.Message)
	}
	c.out = append(c.out, fd)
}

// position is the document index of the definition of key the engine keeps.
func (c *checker) position(key string) int {
	for i := len(c.flags) - 1; i >= 0; i-- {
		if c.flags[i] != nil && c.flags[i].Key == key {
			return i
		}
	}
	return 0
}

// parseSegmentPath reads the flag and segment indices at the start of a
// path "flags[F].segments[S]...".
func parseSegmentPath(path string) (flag, seg int, ok bool) {
	rest, ok := strings.CutPrefix(path, "flags[")
	if !ok {
		return 0, 0, false
	}
	flag, rest, ok = leadingIndex(rest)
	if !ok {
		return 0, 0, false
	}
	if rest, ok = strings.CutPrefix(rest, ".segments["); !ok {
		return 0, 0, false
	}
	seg, _, ok = leadingIndex(rest)
	return flag, seg, ok
}

// leadingIndex reads "N]" at the start of s.
func leadingIndex(s string) (int, string, bool) {
	d := digitRun(s)
	if d == 0 || d > 9 || d == len(s) || s[d] != ']' {
		return 0, "", false
	}
	n, err := strconv.Atoi(s[:d])
	return n, s[d+1:], err == nil
}

// comparePaths orders JSON paths as the document does: indices by number,
// so that flags[10] comes after flags[9].
func comparePaths(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}
