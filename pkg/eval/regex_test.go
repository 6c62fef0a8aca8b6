package eval

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"testing"
)

// regexSeeds are patterns of every shape, with inputs at their edges.
var regexSeeds = []struct{ pattern, input string }{
	{"", "x"}, {".*", "\n"}, {`\.`, "a.b"}, {"李", "李四"}, {`^1\.`, "1.2"}, {`example\.com$`, "a@example.com"},
	{"^$", ""}, {"^$", "\n"}, {"é|ü", "über"}, {`\p{Han}`, "abc李"}, {"^[A-Z]", "Abc"}, {"^[A-Z]", ""},
	{"Redmi", "Redmi Note"}, {"(?i)^pro", "PRO"}, {`^\d{3}$`, "123"}, {"a{2,}", "caab"}, {"^abc$", "abc\n"},
	{"\ufffd", "\xff"}, {"[\ufffd]", "a\xffb"}, {"^[^a]", "\xff"}, {"(?m)^a$", "b\na"}, {"(?s).*", ""},
	{"x$", "x\n"}, {"^x", "\nx"}, {"[", ""}, {`(a)\1`, "aa"}, {"(?i)ZOË", "zoë"}, {"é", "e\u0301"},
	{`^user-[0-9]+$`, "user-12"}, {`^v?\d+\.\d+\.\d+$`, "v1.2.3"}, {"^(alpha|beta)$", "beta"}, {"a{2,}", "baab"},
	{"(?i)^pro", "Pro plan"}, {"(?i)k", "\u212a"}, {"a{1,2}b", "aaab"}, {"^a*a$", "aaa"}, {"a*", ""}, {"x?", "y"},
	{"^.{2}$", "\xff\xfe"}, {"(?s)^.{2}$", "a\n"}, {"^\\d{3}$", "12"}, {"(a|b)+", "c"}, {"^[^a]*$", "bcd"},
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
		"^[A-Z]": shapeClassPrefix, `^\d{3}$`: shapeSimple, "(?i)^pro": shapeSimple, "\ufffd": shapeSimple,
		`^user-[0-9]+$`: shapeSimple, `^v?\d+\.\d+\.\d+$`: shapeSimple, "^(alpha|beta)$": shapeSimple, "a{2,}": shapeSimple,
		"(?i)ZOË": shapeSimple, "^a*a$": shapeGeneral, `\bx`: shapeGeneral, "(?m)^a": shapeGeneral,
	} {
		l := newLazyRegex(pattern)
		if l == nil || l.shape != want {
			re, _ := syntax.Parse(pattern, syntax.Perl)
			t.Errorf("%q: shape %v, want %d (parsed %v)", pattern, l, want, re)
		}
	}
}

// TestRegexRandom compares random patterns of the shapes matched directly
// (classes, literals, repeats, anchors, alternatives, case folding) with
// the regexp package, on random inputs over a small alphabet where runs
// and overlaps are frequent.
func TestRegexRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	atoms := []string{"a", "b", "k", "K", ".", `\d`, "[ab]", "[^a]", "[a-c]", `\.`, "é", "\u212a", "(?i:k)", "(?s:.)", "\n"}
	repeats := []string{"", "", "*", "+", "?", "{2}", "{1,2}", "{2,}", "{0,1}"}
	alphabet := []string{"a", "b", "c", "k", "K", "\u212a", "1", "2", ".", "é", "\n", "\xff"}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		var p strings.Builder
		if rng.IntN(2) == 0 {
			p.WriteString("^")
		}
		branches := 1 + rng.IntN(2)
		if branches > 1 {
			p.WriteString("(")
		}
		for b := range branches {
			if b > 0 {
				p.WriteString("|")
			}
			for range 1 + rng.IntN(4) {
				p.WriteString(atoms[rng.IntN(len(atoms))] + repeats[rng.IntN(len(repeats))])
			}
		}
		if branches > 1 {
			p.WriteString(")")
		}
		if rng.IntN(2) == 0 {
			p.WriteString("$")
		}
		pattern := p.String()
		if rng.IntN(5) == 0 {
			pattern = "(?i)" + pattern
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			continue
		}
		l := newLazyRegex(pattern)
		for range 8 {
			var in strings.Builder
			for range rng.IntN(7) {
				in.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			s := in.String()
			if got, want := l.match(s), re.MatchString(s); got != want {
				t.Fatalf("pattern %q (shape %d) on %q: %v, the regexp package says %v", pattern, l.shape, s, got, want)
			}
		}
	}
}

// TestRegexLongInput: an unanchored pattern matched directly would try
// every start of a long input, each scanning to its end; such inputs go to
// the regexp package instead, with the same answers.
func TestRegexLongInput(t *testing.T) {
	for _, c := range []struct {
		pattern, input string
	}{
		{"[a-z]+@", strings.Repeat("a", 100000)},
		{"[a-z]+@", strings.Repeat("a", 100000) + "@"},
		{`\d+x`, strings.Repeat("1", maxSimpleScan+1)},
		{`^[a-z]+@`, strings.Repeat("a", 100000) + "@"},
		{"(?i)a*b", strings.Repeat("A", maxSimpleScan) + "B"},
	} {
		l := newLazyRegex(c.pattern)
		if l == nil || l.shape != shapeSimple {
			t.Fatalf("%q: not a simple pattern", c.pattern)
		}
		want := regexp.MustCompile(c.pattern).MatchString(c.input)
		if got := l.match(c.input); got != want {
			t.Errorf("%q on %d bytes: %v, the regexp package says %v", c.pattern, len(c.input), got, want)
		}
		if direct := l.re == nil; direct != (l.simple.begin || len(c.input) <= maxSimpleScan) {
			t.Errorf("%q on %d bytes: matched directly %v", c.pattern, len(c.input), direct)
		}
	}
}

// TestRegexConcurrentFirstUse: the patterns the direct matchers leave (the
// conformance cases hold none) are compiled once when many goroutines
// match them at once, and answer as the regexp package does; run with
// -race.
func TestRegexConcurrentFirstUse(t *testing.T) {
	long := strings.Repeat("b", maxSimpleScan) + "x"
	for _, pattern := range []string{`\bx`, "^a*a$", "[a-z]+x"} {
		l := newLazyRegex(pattern)
		re := regexp.MustCompile(pattern)
		inputs := []string{"x", "aaa", "b x", "", long}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range inputs {
					in := inputs[(i+g)%len(inputs)]
					if got, want := l.match(in), re.MatchString(in); got != want {
						t.Errorf("%q on %q: %v, the regexp package says %v", pattern, in, got, want)
					}
				}
			}()
		}
		wg.Wait()
		if l.re == nil {
			t.Errorf("%q: never took the regexp package", pattern)
		}
	}
}
