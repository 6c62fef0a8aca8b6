package eval

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Snapshot is a compiled, immutable set of flags. It is safe for concurrent
// use by any number of goroutines.
type Snapshot struct {
	flags     []compiledFlag
	index     map[string]int
	order     []int32    // all flags, dependencies first, in config order otherwise
	selectors []selector // shared by conditions and buckets, deduplicated
	cycle     *CycleError
	problems  []Problem
	outcomes  []outcomeInfo
	pool      sync.Pool
}

type outcomeInfo struct {
	flag, segment int
	variant       string
}

type compiledFlag struct {
	key      string
	deps     []int32 // known dependencies, in configured order
	cyclic   *CycleError
	segments []compiledSegment
	variants []*compiledVariant
	src      *Flag
}

type compiledSegment struct {
	always  bool // no conditions: everyone matches
	groups  [][]*compiledCondition
	bucket  *compiledBucket
	variant int32            // the segment's own variant, -1 when it names none that exists
	meta    []map[string]any // merged metadata per variant index; nil when empty
	outcome int              // Result.Outcome of this segment's first variant
}

type compiledBucket struct {
	selector int32
	salt     string
	allocs   []compiledAllocation
}

type compiledAllocation struct {
	start, end uint64
	dists      []compiledDistribution
}

type compiledDistribution struct {
	start, end uint64
	variant    int32 // -1 when the key is not among the flag's variants
}

type compiledVariant struct {
	key         string
	value       any
	valueString string
	payload     any
	meta        map[string]any
}

// Problem is something in the config that evaluation tolerates, as the
// reference engine does, but that a careful user wants to hear about.
type Problem struct {
	Flag    string
	Path    string
	Kind    ProblemKind
	Message string
}

// ProblemKind classifies a Problem so callers can choose which are fatal.
type ProblemKind int

const (
	ProblemUnknownOperator   ProblemKind = iota // never matches
	ProblemInvalidRegex                         // never matches
	ProblemMissingDependency                    // evaluated as if absent
	ProblemMissingVariant                       // the segment is skipped
	ProblemDuplicateFlag                        // the later definition wins
	ProblemCycle                                // evaluations that reach it fail
)

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s", p.Path, p.Message)
}

// CycleError is returned by Evaluate when the requested flags depend on a
// dependency cycle. The reference engine fails such evaluations whole, and so
// does this one: any variant it returned would depend on an arbitrary order.
type CycleError struct {
	Flags []string // the cycle, in dependency order
}

func (e *CycleError) Error() string {
	return fmt.Sprintf("detected a cycle between flags [%s]", strings.Join(e.Flags, " "))
}

// Compile turns decoded flag configs into a Snapshot. It fails only on what
// cannot be evaluated at all; everything the reference engine tolerates
// (unknown operators, bad regexes, missing dependencies or variants, cycles)
// compiles, and is listed by Problems.
func Compile(flags []*Flag) (*Snapshot, error) {
	for i, f := range flags {
		if f == nil {
			continue
		}
		if err := validateFlag(i, f); err != nil { // flags built in Go skip DecodeFlags
			return nil, err
		}
	}
	s := &Snapshot{index: make(map[string]int, len(flags))}
	kept := dedupeFlags(flags, s)
	for i, f := range kept {
		s.index[f.Key] = i
	}
	c := compiler{snap: s, selectorIDs: map[string]int32{}}
	s.flags = make([]compiledFlag, len(kept))
	for i, f := range kept {
		s.flags[i] = c.flag(i, f)
	}
	s.order, s.cycle = dependencyOrder(s)
	s.pool.New = func() any { return newEvaluator(s) }
	return s, nil
}

// dedupeFlags keeps the last definition of each key, in the position of the
// first, matching the reference's map store without losing config order.
func dedupeFlags(flags []*Flag, s *Snapshot) []*Flag {
	pos := make(map[string]int, len(flags))
	kept := make([]*Flag, 0, len(flags))
	for i, f := range flags {
		if f == nil {
			continue
		}
		if p, ok := pos[f.Key]; ok {
			kept[p] = f
			s.problems = append(s.problems, Problem{Flag: f.Key, Path: fmt.Sprintf("flags[%d]", i), Kind: ProblemDuplicateFlag,
				Message: fmt.Sprintf("flag %q is defined again; the later definition wins", f.Key)})
			continue
		}
		pos[f.Key] = len(kept)
		kept = append(kept, f)
	}
	return kept
}

// Problems lists what Compile found suspicious, in config order.
func (s *Snapshot) Problems() []Problem { return s.problems }

// Outcomes is the number of distinct (flag, segment, variant) outcomes;
// Result.Outcome is below it. Callers use it to size per-outcome caches
// (rendered JSON, counters) instead of hashing keys.
func (s *Snapshot) Outcomes() int { return len(s.outcomes) }

// Outcome describes outcome i: the flag key, the deciding segment's index
// and the variant key.
func (s *Snapshot) Outcome(i int) (flagKey string, segment int, variantKey string) {
	o := s.outcomes[i]
	return s.flags[o.flag].key, o.segment, o.variant
}

// Len is the number of flags.
func (s *Snapshot) Len() int { return len(s.flags) }

// Keys returns the flag keys in config order.
func (s *Snapshot) Keys() []string {
	keys := make([]string, len(s.flags))
	for i, f := range s.flags {
		keys[i] = f.key
	}
	return keys
}

// Flag returns the flag config as decoded, or nil. Callers must not modify it.
func (s *Snapshot) Flag(key string) *Flag {
	if i, ok := s.index[key]; ok {
		return s.flags[i].src
	}
	return nil
}

type compiler struct {
	snap            *Snapshot
	selectorIDs     map[string]int32
	flagPos, segPos int
}

func (c *compiler) problem(flag, path string, kind ProblemKind, format string, args ...any) {
	c.snap.problems = append(c.snap.problems, Problem{Flag: flag, Path: path, Kind: kind, Message: fmt.Sprintf(format, args...)})
}

func (c *compiler) selector(sel []string) int32 {
	k := selectorString(sel)
	if id, ok := c.selectorIDs[k]; ok {
		return id
	}
	id := int32(len(c.snap.selectors))
	c.snap.selectors = append(c.snap.selectors, compileSelector(sel, c.snap.index))
	c.selectorIDs[k] = id
	return id
}

func (c *compiler) flag(pos int, f *Flag) compiledFlag {
	cf := compiledFlag{key: f.Key, src: f}
	path := fmt.Sprintf("flags[%d]", pos)
	for _, d := range f.Dependencies {
		if i, ok := c.snap.index[d]; ok {
			cf.deps = append(cf.deps, int32(i))
		} else {
			c.problem(f.Key, path+".dependencies", ProblemMissingDependency, "dependency %q is not in the config; it is evaluated as absent", d)
		}
	}
	variantIndex := map[string]int32{}
	for _, k := range sortedKeys(f.Variants) {
		v := f.Variants[k]
		if v == nil {
			continue
		}
		variantIndex[k] = int32(len(cf.variants))
		cf.variants = append(cf.variants, &compiledVariant{key: v.Key, value: v.Value, valueString: coerceValue(v.Value), payload: v.Payload, meta: v.Metadata})
	}
	lookup := func(key, where string) int32 {
		if i, ok := variantIndex[key]; ok {
			return i
		}
		if key != "" {
			c.problem(f.Key, where, ProblemMissingVariant, "variant %q is not among the flag's variants", key)
		}
		return -1
	}
	c.flagPos = pos
	for si, seg := range f.Segments {
		c.segPos = si
		cf.segments = append(cf.segments, c.segment(f, seg, fmt.Sprintf("%s.segments[%d]", path, si), cf.variants, lookup))
	}
	return cf
}

func (c *compiler) segment(f *Flag, seg *Segment, path string, variants []*compiledVariant, lookup func(string, string) int32) compiledSegment {
	numVariants := len(variants)
	cs := compiledSegment{always: seg.Conditions == nil, variant: lookup(seg.Variant, path+".variant"), outcome: len(c.snap.outcomes)}
	for _, v := range variants {
		c.snap.outcomes = append(c.snap.outcomes, outcomeInfo{flag: c.flagPos, segment: c.segPos, variant: v.key})
	}
	if seg.Conditions != nil {
		cs.groups = make([][]*compiledCondition, len(seg.Conditions))
		for gi, group := range seg.Conditions {
			cs.groups[gi] = make([]*compiledCondition, len(group))
			for ci, cond := range group {
				cs.groups[gi][ci] = c.condition(f.Key, cond, fmt.Sprintf("%s.conditions[%d][%d]", path, gi, ci))
			}
		}
	}
	reachable := []int32{cs.variant}
	if b := seg.Bucket; b != nil {
		cb := &compiledBucket{selector: c.selector(b.Selector), salt: b.Salt}
		for ai, a := range b.Allocations {
			ca := compiledAllocation{start: a.Range[0], end: a.Range[1]}
			for di, d := range a.Distributions {
				v := lookup(d.Variant, fmt.Sprintf("%s.bucket.allocations[%d].distributions[%d].variant", path, ai, di))
				ca.dists = append(ca.dists, compiledDistribution{start: d.Range[0], end: d.Range[1], variant: v})
				reachable = append(reachable, v)
			}
			cb.allocs = append(cb.allocs, ca)
		}
		cs.bucket = cb
	}
	cs.meta = make([]map[string]any, numVariants)
	for _, v := range reachable {
		if v >= 0 && cs.meta[v] == nil {
			cs.meta[v] = mergeMetadata(f.Metadata, seg.Metadata, variants[v].meta)
		}
	}
	return cs
}

// mergeMetadata overlays flag, segment and variant metadata, later wins; an
// empty result is nil, as the reference returns it.
func mergeMetadata(maps ...map[string]any) map[string]any {
	n := 0
	for _, m := range maps {
		n += len(m)
	}
	if n == 0 {
		return nil
	}
	merged := make(map[string]any, n)
	for _, m := range maps {
		for k, v := range m {
			merged[k] = v
		}
	}
	return merged
}

func (c *compiler) condition(flagKey string, cond *Condition, path string) *compiledCondition {
	op, known := opNames[cond.Op]
	cc := &compiledCondition{selector: c.selector(cond.Selector), op: op, values: cond.Values, valuesNil: cond.Values == nil}
	if !known {
		c.problem(flagKey, path+".op", ProblemUnknownOperator, "unknown operator %q never matches", cond.Op)
		cc.op = opUnknown
	}
	cc.prepare()
	cc.cohortAny = canDecideByValues(cc, c.snap.selectors[cc.selector].kind)
	for i, v := range cond.Values {
		if (op == opRegexMatch || op == opRegexDoesNotMatch) && cc.regexes[i] == nil {
			c.problem(flagKey, fmt.Sprintf("%s.values[%d]", path, i), ProblemInvalidRegex, "regex %q does not compile and never matches", v)
		}
	}
	return cc
}

// prepare parses the filter values once for every operator family.
func (cc *compiledCondition) prepare() {
	cc.nullResult = nullMatches(cc.op, cc.values)
	cc.isSet = cc.op.isSet()
	seen := map[string]bool{}
	for _, v := range cc.values {
		if !seen[v] {
			seen[v] = true
			cc.distinct = append(cc.distinct, v)
		}
		cc.boolKinds = append(cc.boolKinds, boolKindOf(strings.ToLower(v)))
	}
	cc.valueSet = seen
	for _, k := range cc.boolKinds {
		if k != 0 {
			cc.hasBool = true
		}
	}
	switch {
	case cc.op == opContains || cc.op == opDoesNotContain:
		for _, v := range cc.values {
			cc.lower = append(cc.lower, strings.ToLower(v))
		}
	case cc.op.isCompare():
		for _, v := range cc.values {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				cc.numbers = append(cc.numbers, f)
			}
		}
	case cc.op.isVersion():
		for _, v := range cc.values {
			if ver, ok := parseVersion(v); ok {
				cc.versions = append(cc.versions, ver)
			}
		}
	case cc.op == opRegexMatch || cc.op == opRegexDoesNotMatch:
		cc.regexes = make([]*regexp.Regexp, len(cc.values))
		for i, v := range cc.values {
			cc.regexes[i], _ = regexp.Compile(v)
		}
	}
}

// canDecideByValues reports whether "set contains any" on a lazily enriched
// cohort list can test only the condition's values. Under the boolean rule
// a value "true" would match a listed "TRUE", so such values need the list.
// A user's list is null when empty, and "(none)" tells null from a list
// without a hit; a group's enriched list is never null, so "(none)" is then
// just an id.
func canDecideByValues(cc *compiledCondition, kind selKind) bool {
	if cc.op != opSetContainsAny && cc.op != opSetDoesNotContainAny || cc.hasBool {
		return false
	}
	switch kind {
	case selUserCohorts:
		return !cc.valueSet["(none)"]
	case selGroupCohorts:
		return true
	}
	return false
}

func boolKindOf(lower string) uint8 {
	switch lower {
	case "true":
		return 1
	case "false":
		return 2
	}
	return 0
}

// coerceValue turns a variant value into the string EvaluateV2 returns:
// null is "", objects and arrays are compact JSON, scalars print as %v.
func coerceValue(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case float64:
		return formatNumber(t)
	case map[string]any, []any:
		return jsonText(t)
	}
	switch reflect.ValueOf(v).Kind() { // Go-typed values, as the reference's reflection sees them
	case reflect.Map, reflect.Slice, reflect.Array:
		return jsonText(v)
	}
	return fmt.Sprintf("%v", v)
}

// formatNumber is Go's %v for a float64.
func formatNumber(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Sprintf("%v", f)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
