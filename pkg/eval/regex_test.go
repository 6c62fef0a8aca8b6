package eval

import (
	"regexp"
	"regexp/syntax"
	"testing"
)

// regexSeeds are patterns of every shape, with inputs at their edges.
var regexSeeds = []struct{ pattern, input string }{
	{"", "x"}, {".*", "\n"}, {`\.`, "a.b"}, {"李", "李四"}, {`^1\.`, "1.2"}, {`example\.com$`, "a@example.com"},
	{"^$", ""}, {"^$", "\n"}, {"é|ü", "über"}, {`\p{Han}`, "abc李"}, {"^[A-Z]", "Abc"}, {"^[A-Z]", ""},
	{"Redmi", "Redmi Note"}, {"(?i)^pro", "PRO"}, {`^\d{3}$`, "123"}, {"a{2,}", "caab"}, {"^abc$", "abc\n"},
	{"\ufffd", "\xff"}, {"[\ufffd]", "a\xffb"}, {"^[^a]", "\xff"}, {"(?m)^a$", "b\na"}, {"(?s).*", ""},
	{"x$", "x\n"}, {"^x", "\nx"}, {"[", ""}, {`(a)\1`, "aa"}, {"(?i)ZOË", "zoë"}, {"é", "e\u0301"},
}

// FuzzRegex holds the shapes matched without the regexp package to it.
func FuzzRegex(f *testing.F) {
	for _, s := range regexSeeds {
		f.Add(s.pattern, s.input)
	}
	f.Fuzz(func(t *testing.T, pattern, input string) {
		l := newLazyRegex(pattern)
		re, err := regexp.Compile(pattern)
		if (l == nil) != (err != nil) {
			t.Fatalf("pattern %q: parsed %v, compiles %v", pattern, l != nil, err)
		}
		if l == nil {
			return
		}
		if got, want := l.match(input), re.MatchString(input); got != want {
			t.Fatalf("pattern %q (shape %d) on %q: %v, the regexp package says %v", pattern, l.shape, input, got, want)
		}
	})
}

// TestRegexShapes: the patterns of real configs take the direct paths.
func TestRegexShapes(t *testing.T) {
	for pattern, want := range map[string]regexShape{
		"": shapeAlways, ".*": shapeAlways, `\.`: shapeContains, "李": shapeContains, `^1\.`: shapePrefix,
		`example\.com$`: shapeSuffix, "^$": shapeExact, "^abc$": shapeExact, "é|ü": shapeClass, `\p{Han}`: shapeClass,
		"^[A-Z]": shapeClassPrefix, `^\d{3}$`: shapeGeneral, "(?i)^pro": shapeGeneral, "\ufffd": shapeGeneral,
	} {
		l := newLazyRegex(pattern)
		if l == nil || l.shape != want {
			re, _ := syntax.Parse(pattern, syntax.Perl)
			t.Errorf("%q: shape %v, want %d (parsed %v)", pattern, l, want, re)
		}
	}
}
