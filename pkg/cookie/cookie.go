package cookie

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Format selects which of Amplitude's two cookie layouts to read or write.
// The zero value is Legacy, matching Python's new_format=False default.
type Format int

const (
	// Legacy is the amplitude-js cookie: amp_ plus 6 key characters,
	// value "deviceId.base64(userId)" followed by session fields.
	Legacy Format = iota
	// BrowserSDK2 is the Browser SDK 2.0 cookie, called "new format" by
	// the Python SDK: AMP_ plus 10 key characters, value
	// base64(urlencode(JSON object)).
	BrowserSDK2
)

// String returns the name used in error messages.
func (f Format) String() string {
	switch f {
	case Legacy:
		return "legacy"
	case BrowserSDK2:
		return "new-format"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// namePrefix returns the cookie-name prefix and how many API key
// characters follow it.
func (f Format) namePrefix() (string, int, error) {
	switch f {
	case Legacy:
		return "amp_", 6, nil
	case BrowserSDK2:
		return "AMP_", 10, nil
	}
	return "", 0, fmt.Errorf("cookie: %w: %d", ErrUnknownFormat, int(f))
}

// Identity is who a cookie says the browser is. UserID is empty when the
// visitor has not logged in.
type Identity struct {
	DeviceID string
	UserID   string
}

// Sentinel errors, for callers that map failures to exit codes with
// errors.Is. Messages never include an API key: it is a secret, and the
// cookie name only ever needs a prefix of it.
var (
	// ErrInvalidAPIKey: the key is empty, too short, or has characters a
	// cookie name cannot carry.
	ErrInvalidAPIKey = errors.New("invalid amplitude api key")
	// ErrMalformed: a cookie value cannot be parsed. Every *ParseError
	// matches it.
	ErrMalformed = errors.New("malformed amplitude cookie")
	// ErrInvalidDeviceID: Generate was given an id it cannot encode so
	// that Parse returns it unchanged.
	ErrInvalidDeviceID = errors.New("invalid device id")
	// ErrNoCookie: a Cookie header holds no Amplitude identity cookie.
	ErrNoCookie = errors.New("no amplitude cookie")
	// ErrAmbiguous: a Cookie header holds identity cookies of more than
	// one project and no API key was given to choose.
	ErrAmbiguous = errors.New("more than one amplitude cookie")
	// ErrUnknownFormat: a Format value other than Legacy or BrowserSDK2.
	ErrUnknownFormat = errors.New("unknown cookie format")
)

// ParseError says which part of a cookie value was wrong. It matches
// ErrMalformed under errors.Is, and unwraps to the underlying cause
// (for example a base64.CorruptInputError).
type ParseError struct {
	Format Format
	Part   string // "value", "base64", "url", "utf-8", "json", "device id" or "user id"
	Err    error
}

func (e *ParseError) Error() string {
	return e.Format.String() + " cookie: " + e.Part + ": " + fmt.Sprint(e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Is makes every ParseError match ErrMalformed without hiding Err.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

func malformed(f Format, part string, err error) error {
	return &ParseError{Format: f, Part: part, Err: err}
}

var (
	errEmpty       = errors.New("empty")
	errInvalidUTF8 = errors.New("not valid utf-8")
)

// Name returns the name of the cookie in which an Amplitude browser SDK
// keeps its identity for the project with the given analytics API key.
func Name(apiKey string, f Format) (string, error) {
	prefix, n, err := f.namePrefix()
	if err != nil {
		return "", err
	}
	if apiKey == "" {
		return "", fmt.Errorf("cookie: %w: empty", ErrInvalidAPIKey)
	}
	// Python counts code points, so do the same; only the length is
	// reported because the key is a secret.
	if got := utf8.RuneCountInString(apiKey); got < n {
		return "", fmt.Errorf("cookie: %w: %d characters, the %s cookie name needs at least %d",
			ErrInvalidAPIKey, got, f, n)
	}
	head := firstRunes(apiKey, n)
	if !isToken(head) {
		return "", fmt.Errorf("cookie: %w: its first %d characters are not all allowed in a cookie name",
			ErrInvalidAPIKey, n)
	}
	return prefix + head, nil
}

func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// isToken reports whether s is a non-empty RFC 7230 token, the syntax of
// a cookie name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
