package eval

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

type op uint8

const (
	opUnknown op = iota
	opIs
	opIsNot
	opContains
	opDoesNotContain
	opLess
	opLessOrEqual
	opGreater
	opGreaterOrEqual
	opVersionLess
	opVersionLessOrEqual
	opVersionGreater
	opVersionGreaterOrEqual
	opSetIs
	opSetIsNot
	opSetContains
	opSetDoesNotContain
	opSetContainsAny
	opSetDoesNotContainAny
	opRegexMatch
	opRegexDoesNotMatch
)

// opNames are the operator strings of the wire format; they match exactly,
// case included ("IS" is an unknown operator).
var opNames = map[string]op{
	"is": opIs, "is not": opIsNot, "contains": opContains, "does not contain": opDoesNotContain,
	"less": opLess, "less or equal": opLessOrEqual, "greater": opGreater, "greater or equal": opGreaterOrEqual,
	"version less": opVersionLess, "version less or equal": opVersionLessOrEqual,
	"version greater": opVersionGreater, "version greater or equal": opVersionGreaterOrEqual,
	"set is": opSetIs, "set is not": opSetIsNot, "set contains": opSetContains,
	"set does not contain": opSetDoesNotContain, "set contains any": opSetContainsAny,
	"set does not contain any": opSetDoesNotContainAny,
	"regex match":              opRegexMatch, "regex does not match": opRegexDoesNotMatch,
}

// OperatorNames lists every operator the engine knows, for documentation and
// linting.
func OperatorNames() []string { return sortedKeys(opNames) }

func (o op) isSet() bool     { return o >= opSetIs && o <= opSetDoesNotContainAny }
func (o op) isCompare() bool { return o >= opLess && o <= opGreaterOrEqual }
func (o op) isVersion() bool { return o >= opVersionLess && o <= opVersionGreaterOrEqual }

// condRec is a condition with its filter values parsed for the operator's
// family, so matching never parses, lowers or compiles. Its values and
// their parses live in the Snapshot's slices.
type condRec struct {
	sel  int32
	vals uint32 // the values: vals[vals : vals+n], their boolKinds at the same indices of bools
	n    uint32
	aux  uint32 // op-specific: lower, nums, vers or regexes[aux : aux+n], or the sorted distinct values vals[aux : aux+naux]
	naux uint32
	op   op
	bits condBits
}

type condBits uint8

const (
	condNullMatches condBits = 1 << iota // an absent value matches
	condHasBool                          // some value is "true" or "false" in some case
	condValuesNil                        // no values configured at all
	condCohortAny                        // decidable from the memberships of its own values, when cohorts are lazy
	condGroupEnd                         // the last condition of its AND-group
	condHasNumber                        // some value is a number
)

// sortedLookup is the number of values above which "is" searches the
// sorted distinct values rather than scanning.
const sortedLookup = 8

func (c *compiler) condition(cond *Condition, w where, groupEnd bool) {
	s := c.snap
	o, known := opNames[cond.Op]
	cr := condRec{sel: c.selector(cond.Selector), op: o, vals: uint32(len(s.vals)), n: uint32(len(cond.Values))}
	if !known {
		w.suffix = ".op"
		c.problem(w, ProblemUnknownOperator, "unknown operator %q never matches", cond.Op)
		cr.op = opUnknown
		if s.unknownOps == nil {
			s.unknownOps = map[int]string{}
		}
		s.unknownOps[len(s.conds)] = cond.Op // for Conditions
	}
	if groupEnd {
		cr.bits |= condGroupEnd
	}
	if cond.Values == nil {
		cr.bits |= condValuesNil
	}
	if nullMatches(cr.op, cond.Values) {
		cr.bits |= condNullMatches
	}
	for _, v := range cond.Values {
		k := asciiBoolKind(v)
		if k != 0 {
			cr.bits |= condHasBool
		}
		s.vals = append(s.vals, v)
		s.bools = append(s.bools, k)
	}
	c.prepare(&cr, cond.Values, w)
	if canDecideByValues(&cr, c.distinct["(none)"], s.selectors[cr.sel].kind) {
		cr.bits |= condCohortAny
	}
	s.conds = append(s.conds, cr)
}

// prepare parses the filter values once for the operator's family.
func (c *compiler) prepare(cr *condRec, values []string, w where) {
	s := c.snap
	clear(c.distinct)
	for _, v := range values {
		c.distinct[v] = true
	}
	switch o := cr.op; {
	case o == opContains || o == opDoesNotContain:
		cr.aux = uint32(len(s.lower))
		for _, v := range values {
			s.lower = append(s.lower, strings.ToLower(v))
		}
	case o.isCompare():
		cr.aux = uint32(len(s.nums))
		for _, v := range values {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				f = math.NaN() // compares false with everything, as if left out
			} else {
				cr.bits |= condHasNumber
			}
			s.nums = append(s.nums, f)
		}
	case o.isVersion():
		cr.aux = uint32(len(s.vers))
		for _, v := range values {
			ver, ok := parseVersion(v)
			if !ok {
				ver.major = -1
			}
			s.vers = append(s.vers, ver)
		}
	case o == opRegexMatch || o == opRegexDoesNotMatch:
		cr.aux = uint32(len(s.regexes))
		for i, v := range values {
			re := c.regex(v)
			if re == nil {
				w.suffix = fmt.Sprintf(".values[%d]", i)
				c.problem(w, ProblemInvalidRegex, "regex %q does not compile and never matches", v)
			}
			s.regexes = append(s.regexes, re)
		}
	case o.isSet() || (o == opIs || o == opIsNot) && len(values) > sortedLookup:
		cr.aux = uint32(len(s.vals))
		start := len(s.vals)
		for v := range c.distinct {
			s.vals = append(s.vals, v)
		}
		slices.Sort(s.vals[start:])
		cr.naux = uint32(len(s.vals) - start)
		for range cr.naux {
			s.bools = append(s.bools, 0) // keeps bools parallel to vals
		}
	}
}

// canDecideByValues reports whether "set contains any" on a lazily enriched
// cohort list can test only the condition's values. Under the boolean rule
// a value "true" would match a listed "TRUE", so such values need the list.
// A user's list is null when empty, and "(none)" tells null from a list
// without a hit; a group's enriched list is never null, so "(none)" is then
// just an id.
func canDecideByValues(cr *condRec, hasNone bool, kind selKind) bool {
	if cr.op != opSetContainsAny && cr.op != opSetDoesNotContainAny || cr.bits&condHasBool != 0 {
		return false
	}
	switch kind {
	case selUserCohorts:
		return !hasNone
	case selGroupCohorts:
		return true
	}
	return false
}

// nullMatches is the outcome for an absent value: only "(none)" among the
// filter values makes the positive operators match.
func nullMatches(o op, values []string) bool {
	hasNone := false
	for _, v := range values {
		if v == "(none)" {
			hasNone = true
		}
	}
	switch o {
	case opIsNot, opDoesNotContain, opSetDoesNotContain, opSetDoesNotContainAny:
		return !hasNone
	case opRegexMatch, opUnknown:
		return false
	case opRegexDoesNotMatch, opSetIsNot:
		return true
	}
	return hasNone
}

// values returns a condition's values as configured.
func (s *Snapshot) values(c *condRec) []string { return s.vals[c.vals : c.vals+c.n] }

func (s *Snapshot) match(c *condRec, v *normValue, a *arena) bool {
	if v.null {
		return c.bits&condNullMatches != 0
	}
	if c.op.isSet() {
		return v.isList && s.matchSet(c, v.list)
	}
	for i := range v.elems {
		if s.matchElem(c, &v.elems[i], a) {
			return true
		}
	}
	return false
}

func (s *Snapshot) matchElem(c *condRec, x *elem, a *arena) bool {
	switch c.op {
	case opIs:
		return s.is(c, x.s)
	case opIsNot:
		return !s.is(c, x.s)
	case opContains:
		return s.contains(c, x, a)
	case opDoesNotContain:
		return !s.contains(c, x, a)
	case opLess, opLessOrEqual, opGreater, opGreaterOrEqual:
		return s.compare(c, x)
	case opVersionLess, opVersionLessOrEqual, opVersionGreater, opVersionGreaterOrEqual:
		return s.compareVersion(c, x, a)
	case opRegexMatch:
		return s.regex(c, x.s)
	case opRegexDoesNotMatch:
		return !s.regex(c, x.s)
	}
	return false
}

// is compares exactly, except that booleans compare case-insensitively when
// both sides are "true"/"false" in some case.
func (s *Snapshot) is(c *condRec, str string) bool {
	if c.bits&condHasBool != 0 {
		if k := asciiBoolKind(str); k != 0 {
			for _, vk := range s.bools[c.vals : c.vals+c.n] {
				if vk == k {
					return true
				}
			}
		}
	}
	if c.n > sortedLookup {
		return s.inDistinct(c, str)
	}
	for _, v := range s.values(c) {
		if v == str {
			return true
		}
	}
	return false
}

// inDistinct searches the condition's sorted distinct values.
func (s *Snapshot) inDistinct(c *condRec, str string) bool {
	_, found := slices.BinarySearch(s.vals[c.aux:c.aux+c.naux], str)
	return found
}

// asciiBoolKind classifies s as strings.ToLower would: only ASCII case
// variants of "true"/"false" lower to them.
func asciiBoolKind(s string) uint8 {
	switch len(s) {
	case 4:
		if asciiFoldEqual(s, "true") {
			return 1
		}
	case 5:
		if asciiFoldEqual(s, "false") {
			return 2
		}
	}
	return 0
}

func asciiFoldEqual(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func (s *Snapshot) contains(c *condRec, x *elem, a *arena) bool {
	l := x.lowered(a)
	for _, v := range s.lower[c.aux : c.aux+c.n] {
		if strings.Contains(l, v) {
			return true
		}
	}
	return false
}

func (s *Snapshot) compare(c *condRec, x *elem) bool {
	if n, ok := x.number(); ok && c.bits&condHasNumber != 0 {
		for _, f := range s.nums[c.aux : c.aux+c.n] {
			if compareOrdered(c.op, n, f) {
				return true
			}
		}
		return false
	}
	for _, v := range s.values(c) {
		if compareOrdered(c.op, x.s, v) {
			return true
		}
	}
	return false
}

func compareOrdered[T float64 | string](o op, a, b T) bool {
	switch o {
	case opLess:
		return a < b
	case opLessOrEqual:
		return a <= b
	case opGreater:
		return a > b
	case opGreaterOrEqual:
		return a >= b
	}
	return false
}

// compareVersion is false unless the value and at least one filter value are
// versions: the reference falls back to a string compare that knows no
// version operator.
func (s *Snapshot) compareVersion(c *condRec, x *elem, a *arena) bool {
	ver, ok := x.version(a)
	if !ok {
		return false
	}
	for _, f := range s.vers[c.aux : c.aux+c.n] {
		if f.major < 0 {
			continue
		}
		cmp := compareVersions(*ver, f)
		var hit bool
		switch c.op {
		case opVersionLess:
			hit = cmp < 0
		case opVersionLessOrEqual:
			hit = cmp <= 0
		case opVersionGreater:
			hit = cmp > 0
		case opVersionGreaterOrEqual:
			hit = cmp >= 0
		}
		if hit {
			return true
		}
	}
	return false
}

func (s *Snapshot) regex(c *condRec, str string) bool {
	for _, re := range s.regexes[c.aux : c.aux+c.n] {
		if re != nil && re.match(str) {
			return true
		}
	}
	return false
}

func (s *Snapshot) matchSet(c *condRec, list []string) bool {
	switch c.op {
	case opSetIs:
		return s.setIs(c, list)
	case opSetIsNot:
		return !s.setIs(c, list)
	case opSetContains:
		return s.setContainsAll(c, list)
	case opSetDoesNotContain:
		return !s.setContainsAll(c, list)
	case opSetContainsAny:
		return s.setContainsAny(c, list)
	case opSetDoesNotContainAny:
		return !s.setContainsAny(c, list)
	}
	return false
}

// setIs compares the distinct elements of both sides, exactly.
func (s *Snapshot) setIs(c *condRec, list []string) bool {
	if c.bits&condValuesNil != 0 {
		return false
	}
	for _, x := range list {
		if !s.inDistinct(c, x) {
			return false
		}
	}
	for _, v := range s.vals[c.aux : c.aux+c.naux] {
		if !containsString(list, v) {
			return false
		}
	}
	return true
}

// setContainsAll checks each filter value against the list with "is" (so
// the boolean rule applies) and, like the reference, ignores duplicates.
func (s *Snapshot) setContainsAll(c *condRec, list []string) bool {
	bools := listBoolKinds(list)
	kinds := s.bools[c.vals : c.vals+c.n]
	for i, v := range s.values(c) {
		if !inList(list, bools, v, kinds[i]) {
			return false
		}
	}
	return true
}

func (s *Snapshot) setContainsAny(c *condRec, list []string) bool {
	bools := listBoolKinds(list)
	kinds := s.bools[c.vals : c.vals+c.n]
	for i, v := range s.values(c) {
		if inList(list, bools, v, kinds[i]) {
			return true
		}
	}
	return false
}

// listBoolKinds is a bit set of the boolean kinds present in list.
func listBoolKinds(list []string) uint8 {
	var mask uint8
	for _, s := range list {
		if k := asciiBoolKind(s); k != 0 {
			mask |= 1 << k
		}
	}
	return mask
}

func inList(list []string, bools uint8, v string, vKind uint8) bool {
	if vKind != 0 && bools&(1<<vKind) != 0 {
		return true
	}
	return containsString(list, v)
}

func containsString(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
