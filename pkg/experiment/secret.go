package experiment

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/flagkit/experiment/internal/redact"
)

// Secret is a credential: a deployment key, an analytics API key or a
// secret key. Every way of printing it (String, GoString, Format with any
// verb, LogValue, MarshalJSON, MarshalText) shows at most its first six
// characters and a fingerprint, e.g. "server…(fp 1a2b3c4d)", so a Secret can
// be logged, wrapped in errors and printed with %v or %#v without leaking.
// The full value is only available through an explicit string(s) conversion.
type Secret string

// Fingerprint identifies the secret without revealing it: the first 8 hex
// digits of its SHA-256. It is stable, so it can name cache files and be
// compared with what another tool prints. An empty Secret has none.
func (s Secret) Fingerprint() string { return redact.Fingerprint(string(s)) }

// String returns the redacted form: a prefix of at most six characters (and
// never more than a third of the secret, so short secrets stay hidden) and
// the fingerprint.
func (s Secret) String() string { return redact.Key(string(s)) }

// GoString keeps %#v redacted.
func (s Secret) GoString() string { return "experiment.Secret(" + strconv.Quote(s.String()) + ")" }

// Format prints the redacted form whatever the verb: %s, %v, %q, %x and the
// rest never see the value.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprint(f, strconv.Quote(s.String()))
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.String())
	default:
		fmt.Fprint(f, s.String())
	}
}

// LogValue makes slog print the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes the redacted form: a Secret inside a struct never
// reaches JSON output in full.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes the redacted form, for YAML and other text encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
