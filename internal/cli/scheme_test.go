package cli

import (
	"strings"
	"testing"
)

// TestSchemeCodes pins the escape codes: scripts look for them (faint for
// default variants, bold headers), and on a dark background or with 16
// colours the basic colours are what every terminal theme adapts.
func TestSchemeCodes(t *testing.T) {
	dark := NewScheme(true, envOf(nil))
	for _, c := range []struct {
		style Style
		want  string
	}{
		{Default, "x"},
		{Matched, "\x1b[32mx\x1b[0m"},
		{Failed, "\x1b[31mx\x1b[0m"},
		{Dimmed, "\x1b[2mx\x1b[0m"},
		{Warning, "\x1b[33mx\x1b[0m"},
		{Strong, "\x1b[1mx\x1b[0m"},
		{Key, "\x1b[1;36mx\x1b[0m"},
	} {
		if got := dark.Paint(c.style, "x"); got != c.want {
			t.Errorf("style %d: %q, want %q", c.style, got, c.want)
		}
	}
	if got := dark.Matched("x"); got != "\x1b[32mx\x1b[0m" {
		t.Errorf("Matched: %q", got)
	}
}

// TestSchemeAdapts: a light background (COLORFGBG) on a 256-colour terminal
// gets darker shades; with 16 colours, the basic ones.
func TestSchemeAdapts(t *testing.T) {
	light256 := NewScheme(true, envOf(map[string]string{"COLORFGBG": "0;15", "TERM": "xterm-256color"}))
	if got, want := light256.Matched("x"), "\x1b[38;5;28mx\x1b[0m"; got != want {
		t.Errorf("light, 256 colours: %q, want %q", got, want)
	}
	if got, want := light256.Dimmed("x"), "\x1b[2mx\x1b[0m"; got != want {
		t.Errorf("light, dimmed: %q, want %q", got, want)
	}
	light16 := NewScheme(true, envOf(map[string]string{"COLORFGBG": "0;15", "TERM": "xterm"}))
	if got, want := light16.Matched("x"), "\x1b[32mx\x1b[0m"; got != want {
		t.Errorf("light, 16 colours: %q, want %q", got, want)
	}
	dark256 := NewScheme(true, envOf(map[string]string{"COLORFGBG": "15;0", "COLORTERM": "truecolor"}))
	if got, want := dark256.Warning("x"), "\x1b[33mx\x1b[0m"; got != want {
		t.Errorf("dark, 256 colours: %q, want %q", got, want)
	}
}

func TestDarkBackground(t *testing.T) {
	for v, want := range map[string]bool{
		"": true, "15;0": true, "0;15": false, "default;default;0": true, "15;default;7": false,
		"0;8": true, "0;12": false, "garbage": true, "15;default": true,
	} {
		if got := darkBackground(v); got != want {
			t.Errorf("COLORFGBG=%q: dark %v, want %v", v, got, want)
		}
	}
}

// With colour off, or no scheme, text is left as it is; so is text with
// nothing to paint. Painted text keeps its lines and tabs.
func TestSchemePlain(t *testing.T) {
	off := NewScheme(false, envOf(nil))
	var none *Scheme
	for _, s := range []*Scheme{off, none} {
		if got := s.Failed("a\tb\nc"); got != "a\tb\nc" {
			t.Errorf("%q, want it unchanged", got)
		}
		if s.Enabled() {
			t.Error("Enabled with colour off")
		}
	}
	on := NewScheme(true, envOf(nil))
	if got := on.Dimmed(""); got != "" {
		t.Errorf("empty text: %q", got)
	}
	got := on.Failed("a\tb\n\nlonger line")
	if want := "\x1b[31ma\tb\x1b[0m\n\n\x1b[31mlonger line\x1b[0m"; got != want {
		t.Errorf("lines: %q, want %q", got, want)
	}
	if strings.Contains(on.Failed("x"), "  ") {
		t.Error("padding added")
	}
}
