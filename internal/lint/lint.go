// Package lint finds what makes a flag config behave other than its author
// thinks: segments nobody reaches, ranges that overlap or leave users out,
// variants never served, conditions that never match, missing dependencies
// and cohorts. The engine (pkg/eval) tolerates all of these, as Amplitude's
// does, so a flag set that compiles can still be wrong; `experiment lint`
// reports them, as text, JSON or SARIF for code-scanning tools.
//
// What the engine already finds while compiling (unknown operators, bad
// regexes, missing variants and dependencies, cycles, duplicates) is taken
// from its problems, not found again.
package lint

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flagkit/experiment/pkg/eval"
)

// Severity orders findings: a threshold fails a check at or above it.
type Severity int

// The severities, lowest first; their names are SARIF's levels.
const (
	Note Severity = iota
	Warning
	Error
)

var severityNames = []string{"note", "warning", "error"}

func (s Severity) String() string { return severityNames[s] }

// MarshalText gives the name, so JSON shows "error", not 2.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseSeverity reads "note", "warning" or "error".
func ParseSeverity(name string) (Severity, error) {
	if i := slices.Index(severityNames, name); i >= 0 {
		return Severity(i), nil
	}
	return 0, fmt.Errorf("unknown severity %q: want %s", name, strings.Join(severityNames, ", "))
}

// Rule is one kind of finding.
type Rule struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
}

// Finding is one problem in one place. Segment is nil when the finding is
// about the flag as a whole; Path is the JSON path of the field at fault in
// the document (flags[3].segments[1].bucket.allocations[0].range), with the
// flag's position in the document, duplicates included.
type Finding struct {
	Rule        string   `json:"rule"`
	Severity    Severity `json:"severity"`
	Flag        string   `json:"flag"`
	Segment     *int     `json:"segment"`
	SegmentName string   `json:"segment_name"`
	Path        string   `json:"path"`
	Message     string   `json:"message"`
}

// Options are what a check needs besides the flags.
type Options struct {
	// HasCohort, when set, says whether a targeted cohort's members are
	// available (a file in --cohorts DIR); cohorts without are findings.
	// Nil skips the check.
	HasCohort func(id string) bool
}

// Check lints a flag list in document order. It fails only where the
// engine would refuse the flags (eval.Compile's errors).
func Check(flags []*eval.Flag, opts Options) ([]Finding, error) {
	snap, err := eval.Compile(flags)
	if err != nil {
		return nil, err
	}
	c := &checker{flags: flags, opts: opts, byKey: map[string]*eval.Flag{}}
	for _, f := range flags {
		if f != nil {
			c.byKey[f.Key] = f
		}
	}
	for _, p := range snap.Problems() {
		c.problem(p)
	}
	for i, f := range flags {
		if f != nil {
			c.flag(i, f)
		}
	}
	slices.SortStableFunc(c.out, func(a, b Finding) int { return comparePaths(a.Path, b.Path) })
	return c.out, nil
}

// checker collects the findings of one Check.
type checker struct {
	flags []*eval.Flag
	opts  Options
	byKey map[string]*eval.Flag // the last definition of each key, as the engine keeps
	out   []Finding
}

// add records a finding of rule at path; seg is -1 for the flag as a whole.
func (c *checker) add(rule string, pos int, seg int, suffix, format string, args ...any) {
	f := c.flags[pos]
	fd := Finding{Rule: rule, Severity: ruleSeverity(rule), Flag: f.Key, Path: fmt.Sprintf("flags[%d]", pos),
		Message: fmt.Sprintf(format, args...)}
	if seg >= 0 {
		fd.Segment = &seg
		fd.SegmentName = segmentName(f.Segments[seg])
		fd.Path += fmt.Sprintf(".segments[%d]", seg)
	}
	fd.Path += suffix
	c.out = append(c.out, fd)
}

func segmentName(s *eval.Segment) string {
	name, _ := s.Metadata["segmentName"].(string)
	return name
}

// segmentLabel names a segment in messages: its index, and its name when
// it has one.
func segmentLabel(f *eval.Flag, seg int) string {
	if name := segmentName(f.Segments[seg]); name != "" {
		return fmt.Sprintf("segment %d %q", seg, name)
	}
	return fmt.Sprintf("segment %d", seg)
}

// Failing reports whether any finding is at or above the threshold.
func Failing(findings []Finding, threshold Severity) bool {
	return slices.ContainsFunc(findings, func(f Finding) bool { return f.Severity >= threshold })
}

// Counts is the number of findings per severity, by name.
func Counts(findings []Finding) map[string]int {
	n := map[string]int{}
	for _, s := range severityNames {
		n[s] = 0
	}
	for _, f := range findings {
		n[f.Severity.String()]++
	}
	return n
}
