package eval

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode/utf8"
)

// lazyRegex is a condition's pattern, shared by every condition value that
// spells it. Most patterns in flag configs are a literal, anchored or not,
// or a character class: those are matched directly, without the machinery
// of the regexp package, which costs tens of nanoseconds per call even on
// a short input. The others are compiled on first use.
type lazyRegex struct {
	pattern string
	shape   regexShape
	lit     string         // shapeContains, shapePrefix, shapeSuffix, shapeExact
	class   []rune         // shapeClass, shapeClassPrefix: ranges as lo, hi pairs
	simple  *simplePattern // shapeSimple
	once    sync.Once
	re      *regexp.Regexp
}

type regexShape uint8

const (
	shapeGeneral     regexShape = iota // anything else: the regexp package
	shapeAlways                        // matches every string: "", ".*"
	shapeContains                      // a literal anywhere
	shapePrefix                        // ^literal
	shapeSuffix                        // literal$
	shapeExact                         // ^literal$
	shapeClass                         // a rune of the class anywhere
	shapeClassPrefix                   // ^[class]
	shapeSimple                        // runs of rune classes, matched greedily (see simplePattern)
)

// maxSimpleScan is the longest input an unanchored simplePattern is
// matched on directly: trying every start costs up to the square of the
// input's length (14 s for [a-z]+@ on 100 kB of letters, against 3 ms).
const maxSimpleScan = 64

// newLazyRegex returns the pattern ready to match, or nil when it does not
// compile. Parsing is enough to know: what parses compiles.
func newLazyRegex(pattern string) *lazyRegex {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	l := &lazyRegex{pattern: pattern}
	l.shape, l.lit, l.class = shapeOf(re)
	if l.shape == shapeGeneral {
		if l.simple = simpleOf(re); l.simple != nil {
			l.shape = shapeSimple
		}
	}
	return l
}

// shapeOf recognizes the patterns matched without the regexp package.
func shapeOf(re *syntax.Regexp) (regexShape, string, []rune) {
	switch {
	case re.Op == syntax.OpEmptyMatch:
		return shapeAlways, "", nil
	case re.Op == syntax.OpStar && re.Sub[0].Op == syntax.OpAnyCharNotNL:
		return shapeAlways, "", nil // matches the empty string at the start
	case re.Op == syntax.OpCharClass:
		return shapeClass, "", re.Rune
	}
	if lit, ok := literal(re); ok {
		return shapeContains, lit, nil
	}
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || len(re.Sub) > 3 {
		return shapeGeneral, "", nil
	}
	sub := re.Sub
	begin := sub[0].Op == syntax.OpBeginText
	end := sub[len(sub)-1].Op == syntax.OpEndText
	switch {
	case len(sub) == 2 && begin && end:
		return shapeExact, "", nil // ^$
	case len(sub) == 2 && begin && sub[1].Op == syntax.OpCharClass:
		return shapeClassPrefix, "", sub[1].Rune
	}
	var middle *syntax.Regexp
	switch {
	case len(sub) == 3 && begin && end:
		middle = sub[1]
	case len(sub) == 2 && (begin || end):
		middle = sub[1]
		if end {
			middle = sub[0]
		}
	default:
		return shapeGeneral, "", nil
	}
	lit, ok := literal(middle)
	switch {
	case !ok:
		return shapeGeneral, "", nil
	case begin && end:
		return shapeExact, lit, nil
	case begin:
		return shapePrefix, lit, nil
	}
	return shapeSuffix, lit, nil
}

// literal returns the text a case-sensitive literal matches. A literal
// holding U+FFFD is left out: in the regexp package it also matches an
// invalid byte of the input, which a comparison of bytes would miss.
func literal(re *syntax.Regexp) (string, bool) {
	if re.Op != syntax.OpLiteral || re.Flags&syntax.FoldCase != 0 {
		return "", false
	}
	for _, r := range re.Rune {
		if r == utf8.RuneError {
			return "", false
		}
	}
	return string(re.Rune), true
}

// match reports whether the pattern matches somewhere in s, as
// regexp.MatchString does.
func (l *lazyRegex) match(s string) bool {
	switch l.shape {
	case shapeAlways:
		return true
	case shapeContains:
		return strings.Contains(s, l.lit)
	case shapePrefix:
		return strings.HasPrefix(s, l.lit)
	case shapeSuffix:
		return strings.HasSuffix(s, l.lit)
	case shapeExact:
		return s == l.lit
	case shapeClass:
		for _, r := range s { // invalid bytes read as U+FFFD, as in the regexp package
			if inClass(l.class, r) {
				return true
			}
		}
		return false
	case shapeClassPrefix:
		r, _ := utf8.DecodeRuneInString(s)
		return s != "" && inClass(l.class, r)
	case shapeSimple:
		// unanchored, each start may scan to the end of the input: a
		// long one goes to the regexp package, linear in its length
		if l.simple.begin || len(s) <= maxSimpleScan {
			return l.simple.match(s)
		}
	}
	l.once.Do(func() { l.re, _ = regexp.Compile(l.pattern) })
	return l.re != nil && l.re.MatchString(s)
}

// inClass reports whether r is in one of the sorted ranges of a class.
func inClass(class []rune, r rune) bool {
	lo, hi := 0, len(class)/2
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < class[2*m]:
			hi = m
		case r > class[2*m+1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}
