package httpx

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flagkit/experiment/internal/redact"
)

// Sleep waits for d or until ctx is done, with a timer that is stopped
// either way. It returns nil after the wait, and context.Cause(ctx) when
// ctx ended it (or had ended already).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// RetryAfter reads a Retry-After header: delay-seconds or an HTTP-date,
// which counts from now. Missing, malformed, zero, negative and past
// values are 0; a number of seconds too large for a Duration is the
// largest Duration. The result is never negative: each client caps it
// with its own limit.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Snippet makes text a server sent (an error body, a message in its
// reply) fit an error or log line: every secret redacted in any form,
// should the server echo one, then one line of printable characters of
// at most max runes.
func Snippet(text []byte, max int, secrets ...string) string {
	return redact.Snippet(text, max, secrets...)
}

// ReadSnippet is Snippet of the start of an error response's body: at
// most redact.SnippetRead bytes of it are read.
func ReadSnippet(body io.Reader, max int, secrets ...string) string {
	b, _ := io.ReadAll(io.LimitReader(body, redact.SnippetRead))
	return Snippet(b, max, secrets...)
}

// maxDrain is how much of an unread body DrainClose reads: a connection
// whose body was read to the end goes back to the pool, and a longer rest
// costs more to read than a new connection does.
const maxDrain = 64 << 10

// DrainClose reads what is left of a response body, boundedly, so that
// its connection can be reused, and closes it.
func DrainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	_ = body.Close()
}

// StripURL returns the error inside a *url.Error, which http.Client.Do and
// url.Parse return: its message repeats the whole URL, credentials
// included, and the caller names the URL itself, redacted. Any other
// error is returned as it is.
func StripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// ErrBadURL is wrapped by ParseURL's error for a URL that is not an
// absolute http or https URL with a host.
var ErrBadURL = errors.New("want an absolute http or https URL with a host")

// ParseURL parses a configured server URL, which must be an absolute http
// or https URL with a host. Its errors begin with name ("server URL",
// "events server URL") and quote the URL without user info, if at all.
func ParseURL(name, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, StripURL(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %s: %w", name, RedactURL(u), ErrBadURL)
	}
	return u, nil
}

// RedactURL is u without user info: a URL in an error or a log line never
// carries credentials.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	return c.String()
}

// NewClient is an HTTP client with a transport of its own: the default
// transport's settings (proxy from the environment, HTTP/2, dial and TLS
// timeouts) keeping idle connections per host for that many concurrent
// requests, so that parallel requests do not close and redial (a TLS
// handshake each) all the time. Its owner closes its idle connections.
func NewClient(idlePerHost int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(idlePerHost, t.MaxIdleConnsPerHost)
	return &http.Client{Transport: t}
}

// DecodeBase64 reads base64 in whichever form a client sent: the standard
// alphabet or the URL-safe one, padded or not (Go's SDK pads the standard
// alphabet, Node's and Python's send URL-safe without padding, and proxies
// that re-set cookies strip padding or switch alphabets). White space
// around the value is ignored; padding, when present, only at the end.
func DecodeBase64(s string) ([]byte, error) {
	s = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "="), "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
