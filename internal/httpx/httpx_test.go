package httpx_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/internal/httpx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSleep(t *testing.T) {
	require.NoError(t, httpx.Sleep(t.Context(), time.Millisecond))
	require.NoError(t, httpx.Sleep(t.Context(), 0), "no wait, and ctx is alive")

	why := errors.New("closing")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(why)
	start := time.Now()
	assert.ErrorIs(t, httpx.Sleep(ctx, time.Hour), why, "the cause, not a bare context.Canceled")
	assert.Less(t, time.Since(start), time.Minute)
	assert.ErrorIs(t, httpx.Sleep(ctx, 0), why)

	deadline, stop := context.WithTimeout(t.Context(), 5*time.Millisecond)
	defer stop()
	assert.ErrorIs(t, httpx.Sleep(deadline, time.Hour), context.DeadlineExceeded)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                                  0,
		"0":                                 0,
		"-5":                                0,
		"soon":                              0,
		"1.5":                               0,
		"120":                               2 * time.Minute,
		" 30 ":                              30 * time.Second,
		"+5":                                5 * time.Second,
		"9223372036854775807":               math.MaxInt64,
		"18446744073709551616":              0, // not an int64: not a number of seconds either
		"Wed, 01 May 2024 12:01:30 GMT":     90 * time.Second,
		"Wed, 01 May 2024 11:00:00 GMT":     0, // past
		"Wednesday, 01-May-24 12:00:10 GMT": 10 * time.Second,
	} {
		assert.Equal(t, want, httpx.RetryAfter(v, now), "%q", v)
	}
}

// FuzzRetryAfter: whatever the header says, a wait is never negative, and
// a number of seconds means that many seconds. The seeds are in
// testdata/fuzz/FuzzRetryAfter.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := httpx.RetryAfter(v, now)
		if d < 0 {
			t.Fatalf("RetryAfter(%q) = %v", v, d)
		}
		secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err == nil && secs > 0 && secs < int64(math.MaxInt64/time.Second) && d != time.Duration(secs)*time.Second {
			t.Fatalf("RetryAfter(%q) = %v, want %d seconds", v, d, secs)
		}
	})
}

func TestSnippetRedactsAndBounds(t *testing.T) {
	const key = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
	got := httpx.ReadSnippet(strings.NewReader("Invalid API key: "+key+"\nsecond line\x1b[31m"+strings.Repeat("x", 500)), 40, key)
	assert.NotContains(t, got, key)
	assert.NotContains(t, got, "\n")
	assert.LessOrEqual(t, utf8.RuneCountInString(got), 41)
	for _, r := range got {
		assert.False(t, unicode.IsControl(r), "%q", got)
	}
	assert.Equal(t, httpx.Snippet([]byte("Invalid API key: "+key), 200, key), httpx.ReadSnippet(strings.NewReader("Invalid API key: "+key), 200, key))
}

// countingBody records what was read of it and whether it was closed.
type countingBody struct {
	r      io.Reader
	read   int
	closed bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *countingBody) Close() error {
	b.closed = true
	return nil
}

func TestDrainCloseIsBounded(t *testing.T) {
	small := &countingBody{r: strings.NewReader("rest of the body")}
	httpx.DrainClose(small)
	assert.True(t, small.closed)
	assert.Equal(t, len("rest of the body"), small.read)

	huge := &countingBody{r: io.LimitReader(zeros{}, 1<<30)}
	httpx.DrainClose(huge)
	assert.True(t, huge.closed)
	assert.Less(t, huge.read, 1<<20, "a huge rest is not read")
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestStripURL(t *testing.T) {
	inner := errors.New("connection refused")
	err := &url.Error{Op: "Post", URL: "https://user:hunter2@example.com/x", Err: inner}
	assert.Equal(t, inner, httpx.StripURL(err))
	assert.NotContains(t, httpx.StripURL(err).Error(), "hunter2")
	assert.Equal(t, inner, httpx.StripURL(inner), "other errors are kept")
	assert.NoError(t, httpx.StripURL(nil))
}

func TestParseURL(t *testing.T) {
	u, err := httpx.ParseURL("server URL", "https://api.example.com/prefix/")
	require.NoError(t, err)
	assert.Equal(t, "/prefix/", u.Path)

	for raw, want := range map[string]string{
		"ftp://user:hunter2@h/x": "server URL ftp://h/x: want an absolute http or https URL with a host",
		"api.example.com":        "server URL api.example.com: want an absolute http or https URL with a host",
		"http://":                "server URL http:: want an absolute http or https URL with a host",
		"http://h:pw@[::1":       "server URL: missing ']' in host",
	} {
		_, err := httpx.ParseURL("server URL", raw)
		require.EqualError(t, err, want, raw)
		assert.NotContains(t, err.Error(), "hunter2")
		assert.NotContains(t, err.Error(), "pw")
	}
	_, err = httpx.ParseURL("events server URL", "mailto:x@y")
	assert.ErrorIs(t, err, httpx.ErrBadURL)
}

func TestRedactURL(t *testing.T) {
	u, err := url.Parse("https://user:hunter2@example.com/a?b=c")
	require.NoError(t, err)
	assert.Equal(t, "https://example.com/a?b=c", httpx.RedactURL(u))
	assert.Equal(t, "https://user:hunter2@example.com/a?b=c", u.String(), "u itself is not modified")
	assert.Equal(t, "", httpx.RedactURL(nil))
}

func TestNewClientOwnsItsTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	c := httpx.NewClient(8)
	defer c.CloseIdleConnections()
	tr, ok := c.Transport.(*http.Transport)
	require.True(t, ok)
	assert.NotSame(t, http.DefaultTransport, tr)
	assert.Equal(t, 8, tr.MaxIdleConnsPerHost)
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	httpx.DrainClose(resp.Body)
}

func TestDecodeBase64(t *testing.T) {
	for _, in := range []string{"fn5+Pw==", "fn5+Pw", "fn5-Pw", "fn5_Pw==", " fn5+Pw=\n", "fn5/Pw"} {
		got, err := httpx.DecodeBase64(in)
		require.NoError(t, err, in)
		want := "~~~?"
		if strings.ContainsAny(in, "/_") {
			want = "~~\x7f?"
		}
		assert.Equal(t, want, string(got), in)
	}
	for _, in := range []string{"fn5+Pw===", "fn==5+Pw", "fn5+P-w", "%%%", "fn5+P"} {
		_, err := httpx.DecodeBase64(in)
		assert.Error(t, err, in)
	}
}

func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"fn5+Pw==", "fn5-Pw", "e30=\n", "", "===", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := httpx.DecodeBase64(s)
		if err != nil {
			return
		}
		// What decodes, decodes the same from every form of its encoding.
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			again, err := httpx.DecodeBase64(enc.EncodeToString(b))
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("%q: %q re-encoded decodes to %q, %v", s, b, again, err)
			}
		}
	})
}
