package cmd

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flagkit/experiment/internal/redact"
)

// The values an error quotes lose what looks like a key; the files and
// URLs it names keep their long names, which are no keys.
func TestErrorLinesRedactQuotedKeys(t *testing.T) {
	const key = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	const dkey = "server-Zq8xK2mN4pL7wR9tYb3Vc6Hj1Df5Gs0"
	shown := redact.Key(key)
	path := "/tmp/TestScripts2839480234abcdef/config.yaml"
	for _, c := range []struct {
		err  error
		want string
	}{
		{usageError("--output %q: want json; see %s", key, path),
			`experiment: --output "` + shown + `": want json; see ` + path + "\n"},
		{withHint(usageError("unknown command %q for %q", key, "experiment"), fmt.Sprintf("not %q", key)),
			`experiment: unknown command "` + shown + `" for "experiment"` + "\nhint: not \"" + shown + "\"\n"},
		{errors.New("unknown flag: --" + key), "experiment: unknown flag: --" + shown + "\n"},
		{errors.New("unknown shorthand flag: 's' in -" + dkey),
			"experiment: unknown shorthand flag: 's' in -" + redact.Key(dkey) + "\n"},
		{inputError(errors.New(path + `: user: unknown field "userId"`)), "experiment: " + path + `: user: unknown field "userId"` + "\n"},
	} {
		if got := errorLines(c.err); got != c.want {
			t.Errorf("errorLines(%q)\n got %q\nwant %q", c.err, got, c.want)
		}
	}
	if got := errorLines(usageError("%q", `a "quoted\" `+key)); strings.Contains(got, key) {
		t.Errorf("an escaped quote hides the key from the redaction: %q", got)
	}
}
