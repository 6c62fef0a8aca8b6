package cmd

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/experiment"
)

// User objects a person gives (--user, --users lines, test files) are
// decoded strictly: a field that is not a user field is an error naming the
// field meant, since dropping it would evaluate someone else, silently.

// decodeUser decodes the --user object read from source ("--user", a file
// name, "stdin"), placing an error at source:line:col as flag-file errors are.
func decodeUser(source string, data []byte) (*experiment.User, error) {
	u, err := experiment.DecodeUserStrict(data)
	if err == nil {
		return u, nil
	}
	var ue *experiment.UserError
	if !errors.As(err, &ue) {
		return nil, inputError(fmt.Errorf("%s: %w", source, err))
	}
	where := source
	if ue.Line > 0 {
		where = fmt.Sprintf("%s:%d:%d", source, ue.Line, ue.Col)
	}
	out := inputError(fmt.Errorf("%s: %w", where, ue.Err))
	if errors.Is(err, experiment.ErrSeveralObjects) {
		return nil, withHint(out, "--user takes one JSON object; for JSON Lines, one user per line, use --users FILE")
	}
	if h := userFieldHint(ue, true); h != "" {
		return nil, withHint(out, h)
	}
	return nil, out
}

// decodeUsersLine decodes one line of a --users file; errors are placed by
// userLineError.
func decodeUsersLine(line []byte) (*experiment.User, error) {
	u, err := experiment.DecodeUserStrict(line)
	switch {
	case err == nil:
		return u, nil
	case strings.TrimSpace(string(line)) == "{":
		// The first line of a pretty-printed object: not JSON Lines.
		return nil, errLoneBrace
	case errors.Is(err, experiment.ErrNotObject):
		return nil, errors.New("not a JSON object")
	}
	return nil, err
}

var errLoneBrace = errors.New(`a line that is only "{": --users takes JSON Lines, one user object per line`)

// userLineError is the error for a bad line of a --users file at where
// (FILE:LINE): the column is added when the decoder knows it, and a hint
// when one helps.
func userLineError(where string, err error) (hint string, lineErr error) {
	if errors.Is(err, errLoneBrace) {
		return "for one user object spanning lines, use --user @FILE", fmt.Errorf("%s: %w", where, err)
	}
	var ue *experiment.UserError
	if !errors.As(err, &ue) {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	if ue.Line == 1 { // a JSON line has no newline inside: the column is in this line
		where = fmt.Sprintf("%s:%d", where, ue.Col)
	}
	return userFieldHint(ue, false), fmt.Errorf("%s: %w", where, ue.Err)
}

// userFieldHint says how to give what an unknown field meant: camelCase
// names come from objects such as a hand-decoded AMP_ cookie, other names
// are usually properties, which one user's -p sets.
func userFieldHint(ue *experiment.UserError, single bool) string {
	switch {
	case !errors.Is(ue, experiment.ErrUnknownField):
		return ""
	case strings.HasPrefix(ue.Suggest, "user_properties.") && !single:
		return `user properties go under "user_properties"`
	case strings.HasPrefix(ue.Suggest, "user_properties."):
		return fmt.Sprintf(`user properties go under "user_properties", or use -p %s=VALUE`, strings.TrimPrefix(ue.Suggest, "user_properties."))
	case strings.IndexFunc(ue.Field, unicode.IsUpper) >= 0:
		return "user fields are snake_case, as 'experiment cookie parse COOKIE -o json' prints them"
	}
	return ""
}

// decodeCaseUser decodes the user of an `experiment test` case. Its JSON
// was re-encoded from the test file's YAML, so a position in it would point
// nowhere in the file: the error names the field only (the caller names the
// case).
func decodeCaseUser(data []byte) (*experiment.User, error) {
	u, err := experiment.DecodeUserStrict(data)
	var ue *experiment.UserError
	if errors.As(err, &ue) {
		return nil, fmt.Errorf("user: %w", ue.Err)
	}
	return u, err
}

// warnEmptyUser says that no user option was given: the empty user gets
// every flag's fallback, which looks like an answer but is nobody's.
func warnEmptyUser(io *cli.IOStreams) {
	fmt.Fprintln(io.ErrOut, "experiment: warning: no user given, evaluating an empty user (use --user-id, --device-id, -p, --user JSON|@FILE, or --users FILE)")
}
