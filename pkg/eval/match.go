package eval

import (
	"regexp"
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

// compiledCondition holds a condition with its filter values parsed for the
// operator's family, so matching never parses, lowers or compiles.
type compiledCondition struct {
	selector   int32
	op         op
	values     []string
	valuesNil  bool
	nullResult bool
	isSet      bool
	distinct   []string
	valueSet   map[string]bool
	boolKinds  []uint8 // per value: 1 "true", 2 "false" in any case, else 0
	hasBool    bool
	lower      []string
	numbers    []float64
	versions   []version
	regexes    []*regexp.Regexp
	// cohortAny: the condition can be decided from the memberships of its
	// own values alone when the context's cohorts are looked up lazily.
	cohortAny bool
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

func (cc *compiledCondition) match(v *normValue) bool {
	if v.null {
		return cc.nullResult
	}
	if cc.isSet {
		return v.isList && cc.matchSet(v.list)
	}
	for i := range v.elems {
		if cc.matchElem(&v.elems[i]) {
			return true
		}
	}
	return false
}

func (cc *compiledCondition) matchElem(e *elem) bool {
	switch cc.op {
	case opIs:
		return cc.is(e.s)
	case opIsNot:
		return !cc.is(e.s)
	case opContains:
		return cc.contains(e)
	case opDoesNotContain:
		return !cc.contains(e)
	case opLess, opLessOrEqual, opGreater, opGreaterOrEqual:
		return cc.compare(e)
	case opVersionLess, opVersionLessOrEqual, opVersionGreater, opVersionGreaterOrEqual:
		return cc.compareVersion(e)
	case opRegexMatch:
		return cc.regex(e.s)
	case opRegexDoesNotMatch:
		return !cc.regex(e.s)
	}
	return false
}

// is compares exactly, except that booleans compare case-insensitively when
// both sides are "true"/"false" in some case.
func (cc *compiledCondition) is(s string) bool {
	if cc.hasBool {
		if k := asciiBoolKind(s); k != 0 {
			for _, vk := range cc.boolKinds {
				if vk == k {
					return true
				}
			}
		}
	}
	if len(cc.values) > 8 {
		return cc.valueSet[s]
	}
	for _, v := range cc.values {
		if v == s {
			return true
		}
	}
	return false
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

func (cc *compiledCondition) contains(e *elem) bool {
	l := e.lowered()
	for _, v := range cc.lower {
		if strings.Contains(l, v) {
			return true
		}
	}
	return false
}

func (cc *compiledCondition) compare(e *elem) bool {
	if n, ok := e.number(); ok && len(cc.numbers) > 0 {
		for _, f := range cc.numbers {
			if compareOrdered(cc.op, n, f) {
				return true
			}
		}
		return false
	}
	for _, v := range cc.values {
		if compareOrdered(cc.op, e.s, v) {
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
func (cc *compiledCondition) compareVersion(e *elem) bool {
	ver, ok := e.version()
	if !ok {
		return false
	}
	for _, f := range cc.versions {
		c := compareVersions(ver, f)
		var hit bool
		switch cc.op {
		case opVersionLess:
			hit = c < 0
		case opVersionLessOrEqual:
			hit = c <= 0
		case opVersionGreater:
			hit = c > 0
		case opVersionGreaterOrEqual:
			hit = c >= 0
		}
		if hit {
			return true
		}
	}
	return false
}

func (cc *compiledCondition) regex(s string) bool {
	for _, re := range cc.regexes {
		if re != nil && re.MatchString(s) {
			return true
		}
	}
	return false
}

func (cc *compiledCondition) matchSet(list []string) bool {
	switch cc.op {
	case opSetIs:
		return cc.setIs(list)
	case opSetIsNot:
		return !cc.setIs(list)
	case opSetContains:
		return cc.setContainsAll(list)
	case opSetDoesNotContain:
		return !cc.setContainsAll(list)
	case opSetContainsAny:
		return cc.setContainsAny(list)
	case opSetDoesNotContainAny:
		return !cc.setContainsAny(list)
	}
	return false
}

// setIs compares the distinct elements of both sides, exactly.
func (cc *compiledCondition) setIs(list []string) bool {
	if cc.valuesNil {
		return false
	}
	for _, s := range list {
		if !cc.valueSet[s] {
			return false
		}
	}
	for _, v := range cc.distinct {
		if !containsString(list, v) {
			return false
		}
	}
	return true
}

// setContainsAll checks each filter value against the list with "is" (so
// the boolean rule applies) and, like the reference, ignores duplicates.
func (cc *compiledCondition) setContainsAll(list []string) bool {
	bools := listBoolKinds(list)
	for i, v := range cc.values {
		if !inList(list, bools, v, cc.boolKinds[i]) {
			return false
		}
	}
	return true
}

func (cc *compiledCondition) setContainsAny(list []string) bool {
	bools := listBoolKinds(list)
	for i, v := range cc.values {
		if inList(list, bools, v, cc.boolKinds[i]) {
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
