package cli

import (
	"io"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Style names what a piece of output is; the Scheme decides its look.
type Style int

const (
	// Default is ordinary text, shown as it is.
	Default Style = iota
	// Matched is what held: a condition a user met, a check that passed,
	// the variant a user got.
	Matched
	// Failed is what did not hold: a condition not met, a failed check or
	// download.
	Failed
	// Dimmed is what matters less: default variants, segments never
	// reached, flags not deployed.
	Dimmed
	// Warning is what works but deserves a look: a cohort the server does
	// not know, or one too large to download.
	Warning
	// Strong is what a reader looks for first: a table's header row, the
	// segment that decided a variant.
	Strong
	// Key is the flag key a report is about.
	Key

	styleCount
)

// Scheme paints text for one stream: every command shows matched, failed
// and dimmed things alike. With colour off it returns text unchanged.
//
// Colours adapt to the terminal's background, which is taken from
// COLORFGBG when the terminal sets it and assumed dark otherwise. The
// terminal itself is never asked (lipgloss would send an OSC 11 query and
// wait for the answer): a terminal that does not answer stalls the query
// for seconds, and even one that does costs a round trip on every run of a
// command that is over in milliseconds.
type Scheme struct {
	on     bool
	styles [styleCount]lipgloss.Style
}

// NewScheme returns the scheme for a stream that gets colour or not;
// getenv reads TERM, COLORTERM and COLORFGBG.
func NewScheme(color bool, getenv func(string) string) *Scheme {
	profile := termenv.Ascii
	if color {
		profile = colorProfile(getenv)
	}
	// The renderer writes nothing: it is given no terminal to query, and
	// both answers it would look for are given to it.
	r := lipgloss.NewRenderer(io.Discard, termenv.WithProfile(profile))
	r.SetColorProfile(profile)
	r.SetHasDarkBackground(darkBackground(getenv("COLORFGBG")))

	s := &Scheme{on: color}
	plain := r.NewStyle().TabWidth(lipgloss.NoTabConversion)
	s.styles[Default] = plain
	s.styles[Matched] = plain.Foreground(adaptive("2", "28"))
	s.styles[Failed] = plain.Foreground(adaptive("1", "160"))
	s.styles[Dimmed] = plain.Faint(true)
	s.styles[Warning] = plain.Foreground(adaptive("3", "130"))
	s.styles[Strong] = plain.Bold(true)
	s.styles[Key] = plain.Bold(true).Foreground(adaptive("6", "24"))
	return s
}

// adaptive is a colour by background: on a dark one, and with 16 colours
// on any (the terminal's palette is made for its background), one of the
// basic colours; on a light background with 256 colours, a darker shade
// that stays readable on white.
func adaptive(basic, onLight string) lipgloss.TerminalColor {
	return lipgloss.CompleteAdaptiveColor{
		Dark:  lipgloss.CompleteColor{TrueColor: basic, ANSI256: basic, ANSI: basic},
		Light: lipgloss.CompleteColor{TrueColor: onLight, ANSI256: onLight, ANSI: basic},
	}
}

// colorProfile is the colours a terminal that gets colour can show: 256
// where TERM or COLORTERM says so, otherwise the 16 basic ones. The scheme
// needs no more than 256.
func colorProfile(getenv func(string) string) termenv.Profile {
	switch strings.ToLower(getenv("COLORTERM")) {
	case "truecolor", "24bit", "yes", "true":
		return termenv.ANSI256
	}
	if strings.Contains(getenv("TERM"), "256color") {
		return termenv.ANSI256
	}
	return termenv.ANSI
}

// darkBackground reads COLORFGBG ("15;0", "default;default;0": the last
// field is the background's colour number, as rxvt, Konsole and iTerm2 set
// it): light for 7 (light grey) and 9 to 15 (the bright colours, white
// among them), dark for the rest, and dark when it says nothing, the
// common case.
func darkBackground(colorfgbg string) bool {
	fields := strings.Split(colorfgbg, ";")
	bg, err := strconv.Atoi(fields[len(fields)-1])
	if err != nil {
		return true
	}
	return bg != 7 && (bg < 9 || bg > 15)
}

// Enabled reports whether the scheme paints at all.
func (s *Scheme) Enabled() bool { return s != nil && s.on }

// Paint returns text in style: with the style's escape codes around each
// of its lines, or unchanged when colour is off, the style is Default or
// there is nothing to paint. A nil Scheme paints nothing.
func (s *Scheme) Paint(style Style, text string) string {
	if !s.Enabled() || style == Default || text == "" {
		return text
	}
	if !strings.Contains(text, "\n") {
		return s.styles[style].Render(text)
	}
	// lipgloss would pad every line to the longest: each line is painted
	// alone instead, so that text keeps its shape.
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = s.styles[style].Render(l)
		}
	}
	return strings.Join(lines, "\n")
}

// Matched paints text as Matched.
func (s *Scheme) Matched(text string) string { return s.Paint(Matched, text) }

// Failed paints text as Failed.
func (s *Scheme) Failed(text string) string { return s.Paint(Failed, text) }

// Dimmed paints text as Dimmed.
func (s *Scheme) Dimmed(text string) string { return s.Paint(Dimmed, text) }

// Warning paints text as Warning.
func (s *Scheme) Warning(text string) string { return s.Paint(Warning, text) }

// Strong paints text as Strong.
func (s *Scheme) Strong(text string) string { return s.Paint(Strong, text) }

// Key paints text as Key.
func (s *Scheme) Key(text string) string { return s.Paint(Key, text) }

// style is the lipgloss style of a Style, for tables; plain with colour
// off. Unlike Paint it needs a Scheme.
func (s *Scheme) style(style Style) lipgloss.Style {
	if !s.on {
		return s.styles[Default]
	}
	return s.styles[style]
}
