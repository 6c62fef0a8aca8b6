// Package cli is the terminal side shared by the commands: the streams a
// command talks through and what they are connected to, the colour scheme,
// tables, progress bars and the JSON Lines / JSON array writer. Commands
// decide what to say; this package decides how it looks on a terminal and
// in a pipe, the same way for every command.
package cli

import (
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/term"
)

// IOStreams is every way a command talks to the outside: its streams, what
// they are connected to, and the environment. Commands never touch os.*
// directly, so tests run them against buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	InTTY, OutTTY, ErrTTY bool
	// NoColor is --no-color: colour off whatever the environment says.
	NoColor bool
	Width   int // columns of the terminal on Out; 0 when not one
	Getenv  func(string) string
	// InFile is In when it is a regular file or pipe of the process, for
	// progress reporting; nil in tests.
	InFile *os.File
}

// System returns the streams of this process.
func System() *IOStreams {
	// A write to a stdout or stderr whose reader has gone (`| head -c 1`)
	// must fail with EPIPE, which the command turns into exit 6 like a full
	// disk: unless SIGPIPE is asked for, Go's runtime kills the process with
	// it instead (exit 141 in a shell, outside the exit codes). Notify
	// rather than Ignore: an ignored signal would stay ignored in child
	// processes. Nobody reads the channel; the runtime drops what does not
	// fit.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	s := &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, InFile: os.Stdin,
		InTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		OutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		Getenv: os.Getenv,
	}
	if s.OutTTY {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			s.Width = w
		}
	}
	if cols, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && cols > 0 {
		s.Width = cols
	}
	return s
}

// ColorOut reports whether stdout gets colour: never with NO_COLOR (any
// non-empty value) or TERM=dumb, always with CLICOLOR_FORCE, otherwise on a
// terminal only. Decided here, once, for every command.
func (s *IOStreams) ColorOut() bool { return s.colorOn(s.OutTTY) }

// ColorErr is ColorOut for stderr.
func (s *IOStreams) ColorErr() bool { return s.colorOn(s.ErrTTY) }

// OutScheme is the colour scheme for stdout: colour as ColorOut says.
func (s *IOStreams) OutScheme() *Scheme { return NewScheme(s.ColorOut(), s.Env) }

// ErrScheme is the colour scheme for stderr: colour as ColorErr says.
func (s *IOStreams) ErrScheme() *Scheme { return NewScheme(s.ColorErr(), s.Env) }

// ProgressErr reports whether progress bars may be drawn on stderr: a
// terminal that can move the cursor (not TERM=dumb, which shows escape
// codes and carriage returns as they are).
func (s *IOStreams) ProgressErr() bool {
	return s.ErrTTY && s.Env("TERM") != "dumb"
}

func (s *IOStreams) colorOn(isTTY bool) bool {
	if s.NoColor || s.Env("NO_COLOR") != "" || s.Env("TERM") == "dumb" {
		return false
	}
	if f := s.Env("CLICOLOR_FORCE"); f != "" && f != "0" {
		return true
	}
	return isTTY && s.Env("CLICOLOR") != "0"
}

// Env reads an environment variable through the injected Getenv; "" when
// there is none.
func (s *IOStreams) Env(key string) string {
	if s.Getenv == nil {
		return ""
	}
	return s.Getenv(key)
}
