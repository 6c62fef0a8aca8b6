package cmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/flagkit/experiment/internal/redact"
)

// Exit codes: the contract of docs/cli.md#exit-codes. Scripts depend on them.
const (
	ExitOK          = 0
	ExitCheckFailed = 1
	ExitUsage       = 2
	ExitInput       = 3
	ExitAuth        = 4
	ExitNetwork     = 5
	ExitIO          = 6
	ExitInterrupted = 130
)

// exitError carries the exit code of a failure and an optional hint line.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

func inputError(err error) error { return &exitError{code: ExitInput, err: err} }
func ioError(err error) error    { return &exitError{code: ExitIO, err: err} }
func withHint(err error, hint string) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.code, err: ee.err, hint: hint}
	}
	return &exitError{code: ExitCheckFailed, err: err, hint: hint}
}

// namedFileError is a file the user named that could not be opened or
// read: a local I/O failure (exit 6, docs/cli.md#exit-codes), missing files included,
// named by the option that gave it and its path ("--flags x.json: no such
// file or directory"); what the file says, once read, is input (exit 3).
// option is empty for a command's argument. Errors that are not about
// the file (an interrupted open) are returned as they are.
func namedFileError(option, path string, err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return err
	}
	name := path
	if option != "" {
		name = option + " " + path
	}
	return ioError(fmt.Errorf("%s: %w", name, pe.Err))
}

// silentError ends a command with a code after it has already reported
// what went wrong (assert's diff, test's summary).
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode maps an error to the exit code of docs/cli.md#exit-codes, in one place.
func exitCode(ctx context.Context, err error) int {
	var se *silentError
	var ee *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return ExitInterrupted
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ee):
		return ee.code
	case isCobraUsageError(err):
		return ExitUsage
	}
	return ExitCheckFailed
}

// isCobraUsageError recognises the errors cobra returns for argv it could
// not parse; it has no typed errors for them.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "invalid argument", "flag needs an argument", "accepts ", "requires at least", "requires at most", "required flag", "none of the others can be", "at least one of the flags"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// errorLines renders an error as docs/cli.md#errors wants it: one line, then an
// optional hint line. A key the user gave where no key belongs is not
// echoed in full (see redactEchoes).
func errorLines(err error) string {
	msg, suggestions, _ := strings.Cut(err.Error(), "\n\nDid you mean this?")
	out := "experiment: " + redactEchoes(strings.Join(strings.Fields(msg), " ")) + "\n"
	var ee *exitError
	switch {
	case errors.As(err, &ee) && ee.hint != "":
		out += "hint: " + redactEchoes(ee.hint) + "\n"
	case suggestions != "": // cobra's suggestion for a mistyped command
		out += "hint: did you mean " + strings.Join(strings.Fields(suggestions), " or ") + "?\n"
	}
	return out
}

// quotedValue is a value an error quotes, as %q does: an argument, a
// flag's or a variable's value, a name, as the user gave it.
var quotedValue = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// redactEchoes shows anything that looks like a key, in the values an
// error quotes, as keys are shown (redact.Text): a key pasted into a
// setting, a flag or an argument that takes none. The settings redact
// their own values; this covers every other command's errors and
// cobra's. The rest of a message is left alone: it names files and URLs
// whose long names are no keys. pflag quotes no unknown flag, so those
// messages are redacted whole: they are the flag and nothing else.
func redactEchoes(msg string) string {
	if strings.HasPrefix(msg, "unknown option ") || strings.HasPrefix(msg, "unknown flag: ") || strings.HasPrefix(msg, "unknown shorthand flag: ") {
		return redact.Text(msg)
	}
	return quotedValue.ReplaceAllStringFunc(msg, redact.Text)
}
