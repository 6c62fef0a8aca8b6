package eval

import (
	"regexp/syntax"
	"slices"
	"unicode"
	"unicode/utf8"
)

// simplePattern is a regex made only of runs of rune classes, such as
// ^\d{3}$, ^user-[0-9]+$, a{2,}, (?i)^pro or ^(alpha|beta)$: an optional
// ^, alternatives each a sequence of items (a class repeated min to max
// times), an optional $. It is matched greedily, without backtracking,
// which finds a match exactly when one exists as long as each item that
// may repeat a varying number of times shares no rune with the items that
// may follow it (up to the first that must match): a run then cannot be
// shared between two items. simpleOf accepts only such patterns.
type simplePattern struct {
	begin, end bool
	branches   [][]reItem
}

// reItem matches min to max runes (max -1: no limit) of a class.
type reItem struct {
	class    []rune // sorted ranges as lo, hi pairs; nil with any
	any      bool   // any rune; notNL: but a newline
	notNL    bool
	min, max int
}

func (it *reItem) has(r rune) bool {
	switch {
	case it.any:
		return !it.notNL || r != '\n'
	}
	return inClass(it.class, r)
}

// simpleOf returns the pattern as a simplePattern, or nil when it is not
// one or greedy matching could miss a match.
func simpleOf(re *syntax.Regexp) *simplePattern {
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	p := &simplePattern{}
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		p.begin, subs = true, subs[1:]
	}
	if n := len(subs); n > 0 && subs[n-1].Op == syntax.OpEndText {
		p.end, subs = true, subs[:n-1]
	}
	branches := [][]*syntax.Regexp{subs}
	if len(subs) == 1 {
		if alt := uncapture(subs[0]); alt.Op == syntax.OpAlternate {
			branches = nil
			for _, b := range alt.Sub {
				branches = append(branches, []*syntax.Regexp{b})
			}
		}
	}
	for _, b := range branches {
		items, ok := appendItems(nil, b)
		if !ok || !greedySafe(items) {
			return nil
		}
		p.branches = append(p.branches, items)
	}
	return p
}

func uncapture(re *syntax.Regexp) *syntax.Regexp {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	return re
}

// appendItems flattens a sequence into items; false at anything else.
func appendItems(items []reItem, subs []*syntax.Regexp) ([]reItem, bool) {
	for _, re := range subs {
		re = uncapture(re)
		switch re.Op {
		case syntax.OpEmptyMatch:
		case syntax.OpConcat:
			var ok bool
			if items, ok = appendItems(items, re.Sub); !ok {
				return nil, false
			}
		case syntax.OpLiteral:
			for _, r := range re.Rune {
				items = append(items, reItem{class: runeClass(r, re.Flags&syntax.FoldCase != 0), min: 1, max: 1})
			}
		case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
			one, ok := single(uncapture(re.Sub[0]))
			if !ok {
				return nil, false
			}
			one.min, one.max = repeatBounds(re)
			items = append(items, one)
		default:
			one, ok := single(re)
			if !ok {
				return nil, false
			}
			items = append(items, one)
		}
	}
	return items, true
}

// single is the item of a regex matching exactly one rune.
func single(re *syntax.Regexp) (reItem, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 1 {
			return reItem{class: runeClass(re.Rune[0], re.Flags&syntax.FoldCase != 0), min: 1, max: 1}, true
		}
	case syntax.OpCharClass:
		return reItem{class: re.Rune, min: 1, max: 1}, true
	case syntax.OpAnyChar:
		return reItem{any: true, min: 1, max: 1}, true
	case syntax.OpAnyCharNotNL:
		return reItem{any: true, notNL: true, min: 1, max: 1}, true
	}
	return reItem{}, false
}

func repeatBounds(re *syntax.Regexp) (int, int) {
	switch re.Op {
	case syntax.OpStar:
		return 0, -1
	case syntax.OpPlus:
		return 1, -1
	case syntax.OpQuest:
		return 0, 1
	}
	return re.Min, re.Max
}

// runeClass is the class of one rune, or of its case-folding orbit.
func runeClass(r rune, fold bool) []rune {
	runes := []rune{r}
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			runes = append(runes, f)
		}
		slices.Sort(runes)
	}
	class := make([]rune, 0, 2*len(runes))
	for _, x := range runes {
		class = append(class, x, x)
	}
	return class
}

// greedySafe reports whether greedy matching finds every match: each item
// that may repeat a varying number of times is disjoint from the items
// that may follow it, up to the first one that must match.
func greedySafe(items []reItem) bool {
	for i, it := range items {
		if it.min == it.max {
			continue
		}
		for _, next := range items[i+1:] {
			if overlap(&it, &next) {
				return false
			}
			if next.min > 0 {
				break
			}
		}
	}
	return true
}

// overlap reports whether two items share a rune.
func overlap(a, b *reItem) bool {
	switch {
	case a.any && b.any:
		return true
	case a.any:
		a, b = b, a
	case !b.any:
		for i := 0; i < len(a.class); i += 2 {
			for j := 0; j < len(b.class); j += 2 {
				if a.class[i] <= b.class[j+1] && b.class[j] <= a.class[i+1] {
					return true
				}
			}
		}
		return false
	}
	// b matches any rune, but perhaps a newline: a shares one unless it
	// holds only the newline
	return !b.notNL || !(len(a.class) == 2 && a.class[0] == '\n' && a.class[1] == '\n')
}

// match reports whether the pattern matches somewhere in s, trying every
// start (each rune, and the end) unless anchored.
func (p *simplePattern) match(s string) bool {
	for _, items := range p.branches {
		for i := 0; ; {
			if matchItems(items, s, i, p.end) {
				return true
			}
			if p.begin || i == len(s) {
				break
			}
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
		}
	}
	return false
}

// matchItems matches the items greedily from i; invalid bytes read as
// U+FFFD, one at a time, as in the regexp package.
func matchItems(items []reItem, s string, i int, end bool) bool {
	for k := range items {
		it := &items[k]
		n := 0
		for (it.max < 0 || n < it.max) && i < len(s) {
			r, w := utf8.DecodeRuneInString(s[i:])
			if !it.has(r) {
				break
			}
			i += w
			n++
		}
		if n < it.min {
			return false
		}
	}
	return !end || i == len(s)
}
