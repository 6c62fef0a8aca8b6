package cohort_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
)

const (
	apiKey    = "test-api-key-0123456789"
	secretKey = "test-secret-key-9876543210"
)

// newFake serves every conformance cohort.
func newFake(t testing.TB) *cohorttest.Server {
	t.Helper()
	s := cohorttest.NewServer(apiKey, secretKey)
	t.Cleanup(s.Close)
	for _, f := range conformanceFiles(t) {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, s.Put(body))
	}
	return s
}

func newClient(t testing.TB, cfg cohort.Config) *cohort.Client {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = apiKey
	}
	if cfg.SecretKey == "" {
		cfg.SecretKey = secretKey
	}
	c, err := cohort.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func TestDownloadConformanceCohorts(t *testing.T) {
	fake := newFake(t)
	client := newClient(t, cohort.Config{ServerURL: fake.URL})
	for _, f := range conformanceFiles(t) {
		id := strings.TrimSuffix(filepath.Base(f), ".json")
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		want, err := cohort.Decode(body)
		require.NoError(t, err)
		got, err := client.Download(t.Context(), id, nil)
		require.NoError(t, err, id)
		assert.Equal(t, want.ID, got.ID)
		assert.Equal(t, want.GroupType, got.GroupType)
		assert.Equal(t, want.LastModified, got.LastModified)
		assert.Equal(t, want.Size, got.Size)
		assert.Equal(t, slices.Collect(want.Members()), slices.Collect(got.Members()), id)
	}
}

func TestDownloadRequest(t *testing.T) {
	fake := newFake(t)
	for _, tc := range []struct{ base, path string }{
		{fake.URL, "/sdk/v1/cohort/0ennjp"},
		{fake.URL + "/", "/sdk/v1/cohort/0ennjp"},
		{fake.URL + "/prefix", "/prefix/sdk/v1/cohort/0ennjp"},
		{fake.URL + "/prefix/", "/prefix/sdk/v1/cohort/0ennjp"},
		{fake.URL + "/a%20b/?q=1#frag", "/a%20b/sdk/v1/cohort/0ennjp"},
	} {
		client := newClient(t, cohort.Config{ServerURL: tc.base, Library: "lib/1.2"})
		before := len(fake.Requests())
		_, err := client.Download(t.Context(), "0ennjp", nil)
		require.NoError(t, err, tc.base)
		reqs := fake.Requests()
		require.Len(t, reqs, before+1)
		r := reqs[before]
		assert.Equal(t, tc.path, r.Path, tc.base)
		assert.Equal(t, "maxCohortSize=2147483647", r.Query.Encode())
		assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte(apiKey+":"+secretKey)), r.Header.Get("Authorization"))
		assert.Equal(t, "lib/1.2", r.Header.Get("X-Amp-Exp-Library"))
	}

	// The default library names this module; the id is escaped.
	client := newClient(t, cohort.Config{ServerURL: fake.URL, MaxCohortSize: 50})
	_, err := client.Download(t.Context(), "we ird/id", nil)
	require.ErrorIs(t, err, cohort.ErrNotFound)
	r := fake.Requests()[len(fake.Requests())-1]
	assert.Equal(t, "/sdk/v1/cohort/we%20ird%2Fid", r.Path)
	assert.Equal(t, "50", r.Query.Get("maxCohortSize"))
	assert.True(t, strings.HasPrefix(r.Header.Get("X-Amp-Exp-Library"), "experiment-go-cli/"))
}

func TestNewClientValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  cohort.Config
		want string
	}{
		{"no keys", cohort.Config{ServerURL: "http://127.0.0.1"}, "API key and a secret key"},
		{"no secret", cohort.Config{APIKey: "a", ServerURL: "http://127.0.0.1"}, "API key and a secret key"},
		{"no URL", cohort.Config{APIKey: "a", SecretKey: "s"}, "ServerURL is required"},
		{"relative", cohort.Config{APIKey: "a", SecretKey: "s", ServerURL: "cohort.example"}, "want an absolute http or https URL"},
		{"ftp", cohort.Config{APIKey: "a", SecretKey: "s", ServerURL: "ftp://h"}, "want an absolute http or https URL"},
		{"bad", cohort.Config{APIKey: "a", SecretKey: "s", ServerURL: "http://h:pw@[::1"}, "server URL"},
		{"user info", cohort.Config{APIKey: "a", SecretKey: "s", ServerURL: "https://user:hunter2@h/"}, "must not carry credentials"},
		{"negative size", cohort.Config{APIKey: "a", SecretKey: "s", ServerURL: "http://h", MaxCohortSize: -1}, "MaxCohortSize"},
		{"negative timeout", cohort.Config{APIKey: "a", SecretKey: "s", ServerURL: "http://h", RequestTimeout: -1}, "RequestTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cohort.NewClient(tc.cfg)
			require.ErrorContains(t, err, tc.want)
			assert.NotContains(t, err.Error(), "hunter2")
			assert.NotContains(t, err.Error(), "pw@")
		})
	}
}

func TestDownloadUnauthorized(t *testing.T) {
	fake := newFake(t)
	client := newClient(t, cohort.Config{ServerURL: fake.URL, SecretKey: "wrong-secret-key-000"})
	_, err := client.Download(t.Context(), "0ennjp", nil)
	require.ErrorIs(t, err, cohort.ErrUnauthorized)
	var de *cohort.DownloadError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 401, de.StatusCode)
	assert.Equal(t, 1, de.Attempts, "401 is not retried")
	assert.Equal(t, 1, fake.Count("0ennjp"))
	assert.Equal(t, fmt.Sprintf("cohort 0ennjp: GET %s/sdk/v1/cohort/0ennjp?maxCohortSize=2147483647: "+
		`401 Unauthorized: API key and secret key rejected (server said: {"error":"Unauthorized"})`, fake.URL), err.Error())
	assert.NotContains(t, err.Error(), "wrong-secret")

	fake.Script("0ennjp", http.StatusForbidden)
	_, err = newClient(t, cohort.Config{ServerURL: fake.URL}).Download(t.Context(), "0ennjp", nil)
	require.ErrorIs(t, err, cohort.ErrUnauthorized)
}

func TestDownloadNotModified(t *testing.T) {
	fake := newFake(t)
	client := newClient(t, cohort.Config{ServerURL: fake.URL})
	first, err := client.Download(t.Context(), "n2hgsp", nil)
	require.NoError(t, err)
	again, err := client.Download(t.Context(), "n2hgsp", first)
	require.NoError(t, err)
	assert.Same(t, first, again, "204 keeps the stored copy")
	reqs := fake.Requests()
	assert.Equal(t, "1700000607889", reqs[1].Query.Get("lastModified"))
	assert.Equal(t, http.StatusNoContent, reqs[1].Status)
	assert.False(t, reqs[0].Query.Has("lastModified"), "nothing stored: no lastModified")

	// A 204 with nothing stored is a server error, not a nil cohort.
	fake.Script("n2hgsp", http.StatusNoContent)
	_, err = client.Download(t.Context(), "n2hgsp", nil)
	require.ErrorContains(t, err, "no copy is stored")
}

func TestDownloadChangesBetweenCalls(t *testing.T) {
	fake := cohorttest.NewServer(apiKey, secretKey)
	defer fake.Close()
	client := newClient(t, cohort.Config{ServerURL: fake.URL})
	fake.PutCohort(mustNew(t, "c1", "", 100, []string{"u1", "u2"}))
	v1, err := client.Download(t.Context(), "c1", nil)
	require.NoError(t, err)
	fake.PutCohort(mustNew(t, "c1", "", 200, []string{"u2", "u3"}))
	v2, err := client.Download(t.Context(), "c1", v1)
	require.NoError(t, err)
	assert.NotSame(t, v1, v2)
	assert.Equal(t, int64(200), v2.LastModified)
	assert.False(t, v2.Has("u1"))
	assert.True(t, v2.Has("u3"))
	assert.True(t, v1.Has("u1"), "the old copy is not modified")
	v3, err := client.Download(t.Context(), "c1", v2)
	require.NoError(t, err)
	assert.Same(t, v2, v3)
	assert.Equal(t, []int{200, 200, 204}, statuses(fake.Requests()))
}

func TestDownloadTooLarge(t *testing.T) {
	fake := newFake(t)
	client := newClient(t, cohort.Config{ServerURL: fake.URL, MaxCohortSize: 10})
	_, err := client.Download(t.Context(), "8nxx75", nil) // 25 members
	require.ErrorIs(t, err, cohort.ErrTooLarge)
	assert.ErrorContains(t, err, "cohort 8nxx75: ")
	assert.ErrorContains(t, err, "413 Request Entity Too Large: cohort too large: more than maxCohortSize=10 members")
	assert.Equal(t, 1, fake.Count("8nxx75"), "413 is not retried")
	_, err = client.Download(t.Context(), "9r64kh", nil) // 1 member
	require.NoError(t, err)
}

func TestDownloadNotFound(t *testing.T) {
	fake := newFake(t)
	client := newClient(t, cohort.Config{ServerURL: fake.URL})
	_, err := client.Download(t.Context(), "nosuch", nil)
	require.ErrorIs(t, err, cohort.ErrNotFound)
	assert.Equal(t, 1, fake.Count("nosuch"), "404 is not retried")
}

func TestDownloadRetries(t *testing.T) {
	for _, tc := range []struct {
		script   []int
		attempts int
		err      error // nil: success
		status   int
	}{
		{[]int{503}, 2, nil, 0},
		{[]int{202, 429}, 3, nil, 0},
		{[]int{500, 502, 504}, 3, cohort.ErrStatus, 504},
		{[]int{202, 202, 202}, 3, cohort.ErrStatus, 202},
		{[]int{429, 429, 429, 429}, 3, cohort.ErrStatus, 429},
		{[]int{400}, 1, cohort.ErrStatus, 400},
		{[]int{410}, 1, cohort.ErrStatus, 410},
		{[]int{503, 413}, 2, cohort.ErrTooLarge, 413},
		{[]int{503, 404}, 2, cohort.ErrNotFound, 404},
		{[]int{503, 401}, 2, cohort.ErrUnauthorized, 401},
		{[]int{201}, 1, cohort.ErrStatus, 201},
	} {
		t.Run(fmt.Sprint(tc.script), func(t *testing.T) {
			fake := newFake(t)
			client := newClient(t, cohort.Config{ServerURL: fake.URL})
			fake.Script("9r64kh", tc.script...)
			start := time.Now()
			c, err := client.Download(t.Context(), "9r64kh", nil)
			elapsed := time.Since(start)
			assert.Equal(t, tc.attempts, fake.Count("9r64kh"))
			assert.GreaterOrEqual(t, elapsed, time.Duration(tc.attempts-1)*100*time.Millisecond, "100 ms between attempts")
			if tc.err == nil {
				require.NoError(t, err)
				assert.True(t, c.Has("ÄÖÜ GmbH"))
				return
			}
			require.ErrorIs(t, err, tc.err)
			var de *cohort.DownloadError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tc.status, de.StatusCode)
			assert.Equal(t, tc.attempts, de.Attempts)
			assert.Equal(t, "9r64kh", de.CohortID)
			if tc.attempts > 1 {
				assert.ErrorContains(t, err, fmt.Sprintf("(%d attempts)", tc.attempts))
			}
		})
	}
}

func TestDownloadTransportErrorRetried(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens there any more
	client := newClient(t, cohort.Config{ServerURL: url})
	_, err := client.Download(t.Context(), "x", nil)
	var de *cohort.DownloadError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 3, de.Attempts)
	assert.Zero(t, de.StatusCode)
	assert.ErrorContains(t, err, "connection refused")
	assert.Equal(t, 1, strings.Count(err.Error(), url), "the URL once: %v", err)
}

func TestDownloadStalls(t *testing.T) {
	fake := newFake(t)
	// 400 ms of silence: the retried StallBody's answer below must come
	// within it, also on a loaded -race machine.
	client := newClient(t, cohort.Config{ServerURL: fake.URL, RequestTimeout: 400 * time.Millisecond})

	// No headers at all, three times: a timeout, not a cancellation.
	fake.Script("9r64kh", cohorttest.Stall, cohorttest.Stall, cohorttest.Stall)
	start := time.Now()
	_, err := client.Download(t.Context(), "9r64kh", nil)
	require.ErrorIs(t, err, cohort.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, "cohort 9r64kh: GET "+fake.URL+"/sdk/v1/cohort/9r64kh?maxCohortSize=2147483647: timed out: no data for 400ms (3 attempts)")
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, 3, fake.Count("9r64kh"))

	// Half a body, then silence: retried, and the next attempt succeeds.
	fake.Script("n2hgsp", cohorttest.StallBody)
	c, err := client.Download(t.Context(), "n2hgsp", nil)
	require.NoError(t, err)
	assert.Equal(t, 5, c.Len())
	assert.Equal(t, 2, fake.Count("n2hgsp"))
}

// TestDownloadSlowBodyNotCutOff: the timeout bounds silence, not the whole
// transfer, so a large cohort on a slow link arrives.
func TestDownloadSlowBodyNotCutOff(t *testing.T) {
	members := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"}
	body := mustNew(t, "slow", "", 1, members).AppendJSON(nil)
	// 16 chunks 40 ms apart: 640 ms in all, more than the 400 ms timeout,
	// whose margin over each gap survives a loaded machine's pauses.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for chunk := range slices.Chunk(body, len(body)/16+1) {
			_, _ = w.Write(chunk)
			w.(http.Flusher).Flush()
			time.Sleep(40 * time.Millisecond)
		}
	}))
	defer ts.Close()
	client := newClient(t, cohort.Config{ServerURL: ts.URL, RequestTimeout: 400 * time.Millisecond})
	start := time.Now()
	c, err := client.Download(t.Context(), "slow", nil)
	require.NoError(t, err)
	assert.Equal(t, len(members), c.Len())
	assert.Greater(t, time.Since(start), 400*time.Millisecond)
}

func TestDownloadMalformedRetried(t *testing.T) {
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			_, _ = io.WriteString(w, `{"cohortId":"m","memberIds":["a",`)
		case 2:
			_, _ = io.WriteString(w, `<html>proxy error</html>`)
		default:
			_, _ = io.WriteString(w, `{"cohortId":"m","memberIds":["a"]}`)
		}
	}))
	defer ts.Close()
	client := newClient(t, cohort.Config{ServerURL: ts.URL})
	c, err := client.Download(t.Context(), "m", nil)
	require.NoError(t, err)
	assert.True(t, c.Has("a"))
	assert.Equal(t, int32(3), n.Load())

	n.Store(0)
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.WriteString(w, `not json`)
	})
	_, err = client.Download(t.Context(), "m", nil)
	require.ErrorIs(t, err, cohort.ErrMalformed)
	assert.ErrorContains(t, err, "200 OK: malformed cohort: offset 0: want a JSON object (3 attempts)")
	assert.Equal(t, int32(3), n.Load())
}

func TestDownloadCancel(t *testing.T) {
	fake := newFake(t)
	client := newClient(t, cohort.Config{ServerURL: fake.URL})

	// Cancelled while waiting for an answer.
	fake.Script("9r64kh", cohorttest.Stall)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := client.Download(ctx, "9r64kh", nil)
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, 1, fake.Count("9r64kh"))

	// Cancelled while waiting to retry.
	fake.Script("n2hgsp", 503, 503, 503)
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(30*time.Millisecond, cancel)
	_, err = client.Download(ctx, "n2hgsp", nil)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, fake.Count("n2hgsp"))
}

// TestBodiesClosed: every response body is closed, whatever the status.
func TestBodiesClosed(t *testing.T) {
	fake := newFake(t)
	rt := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	defer rt.base.CloseIdleConnections()
	client := newClient(t, cohort.Config{ServerURL: fake.URL, HTTPClient: &http.Client{Transport: rt}, MaxCohortSize: 20})
	stored, err := client.Download(t.Context(), "n2hgsp", nil)
	require.NoError(t, err)
	_, _ = client.Download(t.Context(), "n2hgsp", stored) // 204
	_, _ = client.Download(t.Context(), "8nxx75", nil)    // 413
	_, _ = client.Download(t.Context(), "nosuch", nil)    // 404
	fake.Script("9r64kh", 503, 429, 202)                  // retried
	_, _ = client.Download(t.Context(), "9r64kh", nil)
	fake.Script("9r64kh", http.StatusUnauthorized)
	_, _ = client.Download(t.Context(), "9r64kh", nil)
	assert.Equal(t, int32(8), rt.opened.Load())
	assert.Equal(t, rt.opened.Load(), rt.closed.Load())
}

type countingTransport struct {
	base           *http.Transport
	opened, closed atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err == nil {
		c.opened.Add(1)
		resp.Body = &closeCounter{ReadCloser: resp.Body, n: &c.closed}
	}
	return resp, err
}

type closeCounter struct {
	io.ReadCloser
	n    *atomic.Int32
	once atomic.Bool
}

func (c *closeCounter) Close() error {
	if c.once.CompareAndSwap(false, true) {
		c.n.Add(1)
	}
	return c.ReadCloser.Close()
}

// TestKeysNeverLeak runs failures and debug logging with a server that
// echoes the credentials back, and looks for the keys everywhere.
func TestKeysNeverLeak(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "bad credentials %s:%s (%s)", user, pass, r.Header.Get("Authorization"))
	}))
	defer ts.Close()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client := newClient(t, cohort.Config{ServerURL: ts.URL, Logger: logger})
	_, err := client.Download(t.Context(), "x", nil)
	require.ErrorIs(t, err, cohort.ErrUnauthorized)
	token := base64.StdEncoding.EncodeToString([]byte(apiKey + ":" + secretKey))
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v %#v", err, err), logs.String()} {
		for _, secret := range []string{apiKey, secretKey, token} {
			assert.NotContains(t, text, secret)
		}
	}
	assert.Contains(t, err.Error(), "bad credentials test-a…(fp ")
	assert.Contains(t, logs.String(), "api_key=")
	assert.Contains(t, logs.String(), "status=401")
}

func TestFingerprint(t *testing.T) {
	// The first 8 hex digits of SHA-256, as experiment.Secret.Fingerprint.
	assert.Equal(t, "ba7816bf", cohort.Fingerprint("abc"))
	assert.Empty(t, cohort.Fingerprint(""))
}

func statuses(reqs []cohorttest.Request) []int {
	out := make([]int, len(reqs))
	for i, r := range reqs {
		out[i] = r.Status
	}
	return out
}

// TestDownloadTrickleBounded: a server that sends a byte at a time never
// trips the stall timer, which each byte resets; Timeout still ends the
// whole download, and no retry starts after it.
func TestDownloadTrickleBounded(t *testing.T) {
	fake := newFake(t)
	client := newClient(t, cohort.Config{ServerURL: fake.URL, RequestTimeout: time.Second, Timeout: 1500 * time.Millisecond})
	fake.Script("9r64kh", cohorttest.Trickle, cohorttest.Trickle, cohorttest.Trickle)
	// The test's own bound: without the fix the download would never end.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := client.Download(ctx, "9r64kh", nil)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, cohort.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, ctx.Err(), "ended by the test's bound, not Timeout")
	assert.ErrorContains(t, err, "cohort 9r64kh: GET "+fake.URL+"/sdk/v1/cohort/9r64kh?maxCohortSize=2147483647: 200 OK: timed out: download not complete within 1.5s")
	assert.GreaterOrEqual(t, elapsed, 1500*time.Millisecond)
	assert.Less(t, elapsed, 3*time.Second)
	assert.Equal(t, 1, fake.Count("9r64kh"))

	// Retries share the deadline: three slow failures cannot triple it.
	// The second attempt runs from 1.1 s to 2.1 s; Timeout cuts it at 1.4 s,
	// with room either side for a loaded machine's delays.
	client = newClient(t, cohort.Config{ServerURL: fake.URL, RequestTimeout: time.Second, Timeout: 1400 * time.Millisecond})
	fake.Script("n2hgsp", cohorttest.Stall, cohorttest.Stall, cohorttest.Stall)
	start = time.Now()
	_, err = client.Download(t.Context(), "n2hgsp", nil)
	require.ErrorIs(t, err, cohort.ErrTimeout)
	assert.ErrorContains(t, err, "download not complete within 1.4s (2 attempts)")
	assert.Less(t, time.Since(start), 3*time.Second)
}
