package cli

import (
	"io"
	"testing"
)

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestColor: colour on a terminal only, never with NO_COLOR, TERM=dumb,
// CLICOLOR=0 or --no-color, and always with CLICOLOR_FORCE (but for those).
func TestColor(t *testing.T) {
	for _, c := range []struct {
		name    string
		tty     bool
		noColor bool
		env     map[string]string
		want    bool
	}{
		{name: "terminal", tty: true, want: true},
		{name: "pipe", tty: false, want: false},
		{name: "NO_COLOR", tty: true, env: map[string]string{"NO_COLOR": "1"}, want: false},
		{name: "NO_COLOR empty is unset", tty: true, env: map[string]string{"NO_COLOR": ""}, want: true},
		{name: "TERM=dumb", tty: true, env: map[string]string{"TERM": "dumb"}, want: false},
		{name: "CLICOLOR=0", tty: true, env: map[string]string{"CLICOLOR": "0"}, want: false},
		{name: "--no-color", tty: true, noColor: true, want: false},
		{name: "CLICOLOR_FORCE in a pipe", tty: false, env: map[string]string{"CLICOLOR_FORCE": "1"}, want: true},
		{name: "CLICOLOR_FORCE=0", tty: false, env: map[string]string{"CLICOLOR_FORCE": "0"}, want: false},
		{name: "NO_COLOR beats CLICOLOR_FORCE", tty: false, env: map[string]string{"CLICOLOR_FORCE": "1", "NO_COLOR": "1"}, want: false},
		{name: "--no-color beats CLICOLOR_FORCE", tty: true, noColor: true, env: map[string]string{"CLICOLOR_FORCE": "1"}, want: false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ios := &IOStreams{OutTTY: c.tty, ErrTTY: c.tty, NoColor: c.noColor, Getenv: envOf(c.env)}
			if got := ios.ColorOut(); got != c.want {
				t.Errorf("ColorOut() = %v, want %v", got, c.want)
			}
			if got := ios.ColorErr(); got != c.want {
				t.Errorf("ColorErr() = %v, want %v", got, c.want)
			}
			if got := ios.OutScheme().Enabled(); got != c.want {
				t.Errorf("OutScheme().Enabled() = %v, want %v", got, c.want)
			}
			if got, want := ios.OutScheme().Matched("x"), map[bool]string{true: "\x1b[32mx\x1b[0m", false: "x"}[c.want]; got != want {
				t.Errorf("Matched(x) = %q, want %q", got, want)
			}
		})
	}
}

// Streams decide for themselves: a pipe on stdout and a terminal on stderr.
func TestColorPerStream(t *testing.T) {
	ios := &IOStreams{OutTTY: false, ErrTTY: true}
	if ios.ColorOut() || !ios.ColorErr() {
		t.Errorf("ColorOut %v, ColorErr %v; want false, true", ios.ColorOut(), ios.ColorErr())
	}
}

func TestProgressErr(t *testing.T) {
	for _, c := range []struct {
		tty  bool
		term string
		want bool
	}{{true, "xterm", true}, {true, "", true}, {true, "dumb", false}, {false, "xterm", false}} {
		ios := &IOStreams{ErrOut: io.Discard, ErrTTY: c.tty, Getenv: envOf(map[string]string{"TERM": c.term})}
		if got := ios.ProgressErr(); got != c.want {
			t.Errorf("tty %v TERM=%q: ProgressErr() = %v, want %v", c.tty, c.term, got, c.want)
		}
		p := ios.NewProgress("x", 1, Items)
		if got := p != nil; got != c.want {
			t.Errorf("tty %v TERM=%q: a progress bar: %v, want %v", c.tty, c.term, got, c.want)
		}
		p.Finish()
	}
}
