package cohort

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flagkit/experiment/internal/httpx"
	"github.com/flagkit/experiment/internal/redact"
)

// Config configures a Client: the Python SDK's CohortSyncConfig less the polling interval, which belongs to whoever
// calls Sync.
type Config struct {
	// APIKey and SecretKey are the analytics project's keys (not a
	// deployment key), sent as HTTP Basic credentials. Both are required.
	// They never appear in errors or logs.
	APIKey    string
	SecretKey string
	// ServerURL is the cohort service's base URL; a path in it is kept
	// ("https://proxy.example/amplitude/" downloads from
	// ".../amplitude/sdk/v1/cohort/<id>"). Required: the caller picks the
	// zone's default (US https://cohort-v2.lab.amplitude.com, EU
	// https://cohort-v2.lab.eu.amplitude.com).
	ServerURL string
	// MaxCohortSize is sent as maxCohortSize; the server answers 413 for a
	// larger cohort. Default: DefaultMaxCohortSize.
	MaxCohortSize int
	// RequestTimeout bounds every wait of an attempt: for the response
	// headers, and for each read of the body, so a stalled server fails the
	// attempt while a large cohort that keeps arriving is not cut off.
	// Default: DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Timeout bounds a whole Download: every attempt, the waits between
	// them, and the reading of every body however steadily it arrives. A
	// server that trickles a byte at a time resets RequestTimeout forever;
	// this deadline it cannot move. Default: DefaultTimeout.
	Timeout time.Duration
	// HTTPClient sends the requests. Default: a client of the Client's own,
	// whose idle connections Close releases. A client given here is used as
	// is and never closed.
	HTTPClient *http.Client
	// Logger receives debug records of each attempt (keys redacted).
	// Default: discard.
	Logger *slog.Logger
	// Library is sent as X-Amp-Exp-Library. Default:
	// "experiment-go-cli/<module version>".
	Library string
}

// Defaults of Config, the Python SDK's.
const (
	DefaultMaxCohortSize  = math.MaxInt32
	DefaultRequestTimeout = 10 * time.Second
	// DefaultTimeout leaves the largest cohorts (about a gigabyte of ids)
	// time to arrive at a few megabytes a second.
	DefaultTimeout = 5 * time.Minute
)

// The retry policy: at most three attempts,
// 100 ms apart, for transport errors, timeouts, malformed bodies, 202, 429
// and 5xx.
const (
	maxAttempts = 3
	retryDelay  = 100 * time.Millisecond
)

// Bounds on what is read from the server.
const (
	// MaxBodyBytes bounds a cohort body: about 50 million ids of 20
	// characters.
	MaxBodyBytes = 1 << 30
	maxErrorBody = 120 // of an error response, quoted in the message
)

// Errors a download can end with, wrapped in a *DownloadError.
var (
	// ErrTooLarge: the server answered 413, the cohort has more than
	// MaxCohortSize members. Not retried.
	ErrTooLarge = errors.New("cohort too large")
	// ErrUnauthorized: the server answered 401 or 403 to the API key and
	// secret key. Not retried.
	ErrUnauthorized = errors.New("API key and secret key rejected")
	// ErrNotFound: the server answered 404; nobody is a member of the
	// cohort. Not retried.
	ErrNotFound = errors.New("cohort not found")
	// ErrStatus: another unexpected status (202, 429 and 5xx after
	// retries, other 4xx at once).
	ErrStatus = errors.New("unexpected status")
	// ErrTimeout: no response, or no progress reading the body, within
	// Config.RequestTimeout, or no complete download within
	// Config.Timeout. It wraps context.DeadlineExceeded (and is not a
	// cancellation).
	ErrTimeout error = timeoutError{}
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "timed out" }
func (timeoutError) Unwrap() error   { return context.DeadlineExceeded }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// DownloadError is why a cohort could not be downloaded. It names the
// cohort, the URL (no credentials are ever in it), the last HTTP status and
// how many attempts were made. Err is one of the Err* values of this
// package, ErrMalformed, a transport error, or the context's error.
type DownloadError struct {
	CohortID   string
	URL        string
	StatusCode int // the last response's status; 0 when there was none
	Attempts   int
	Body       string // the start of an error response body, sanitised
	Err        error
}

func (e *DownloadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cohort %s: ", e.CohortID)
	if e.URL != "" {
		fmt.Fprintf(&b, "GET %s: ", e.URL)
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if !errors.Is(e.Err, ErrStatus) {
			b.WriteString(": " + e.Err.Error())
		}
	} else {
		b.WriteString(e.Err.Error())
	}
	if e.Body != "" {
		fmt.Fprintf(&b, " (server said: %s)", e.Body)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (%d attempts)", e.Attempts)
	}
	return b.String()
}

func (e *DownloadError) Unwrap() error { return e.Err }

// Client downloads cohorts from Amplitude's cohort download API.
// It is safe for concurrent use.
type Client struct {
	base      *url.URL // scheme, host and path; no query, fragment or user info
	auth      string   // the Authorization header value
	secrets   []string // what must never reach an error or log
	apiKey    string
	maxSize   int
	timeout   time.Duration // of each wait (stall detection)
	total     time.Duration // of a whole Download
	http      *http.Client
	ownClient bool
	log       *slog.Logger
	library   string
}

// NewClient validates cfg and fills in its defaults.
func NewClient(cfg Config) (*Client, error) {
	if cfg.APIKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("cohort client: an API key and a secret key are both required")
	}
	base, err := parseBaseURL(cfg.ServerURL)
	if err != nil {
		return nil, err
	}
	if cfg.MaxCohortSize < 0 {
		return nil, fmt.Errorf("cohort client: MaxCohortSize %d: want a positive number", cfg.MaxCohortSize)
	}
	if cfg.RequestTimeout < 0 {
		return nil, fmt.Errorf("cohort client: RequestTimeout %v: want a positive duration", cfg.RequestTimeout)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("cohort client: Timeout %v: want a positive duration", cfg.Timeout)
	}
	token := base64.StdEncoding.EncodeToString([]byte(cfg.APIKey + ":" + cfg.SecretKey))
	c := &Client{
		base:    base,
		auth:    "Basic " + token,
		secrets: []string{token, cfg.APIKey, cfg.SecretKey},
		apiKey:  cfg.APIKey,
		maxSize: cmp.Or(cfg.MaxCohortSize, DefaultMaxCohortSize),
		timeout: cmp.Or(cfg.RequestTimeout, DefaultRequestTimeout),
		total:   cmp.Or(cfg.Timeout, DefaultTimeout),
		http:    cfg.HTTPClient,
		log:     cfg.Logger,
		library: cfg.Library,
	}
	if c.http == nil {
		// An idle connection for each of Sync's concurrent downloads.
		c.http, c.ownClient = httpx.NewClient(defaultConcurrency), true
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.library == "" {
		c.library = redact.Library()
	}
	return c, nil
}

// parseBaseURL accepts an absolute http or https URL with a host and no
// user info; its query and fragment are dropped.
func parseBaseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("cohort client: ServerURL is required")
	}
	u, err := httpx.ParseURL("server URL", s)
	if err != nil {
		return nil, fmt.Errorf("cohort client: %w", err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("cohort client: server URL %s: must not carry credentials", httpx.RedactURL(u))
	}
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// Close releases the idle connections of the Client's own HTTP client.
// The Client stays usable.
func (c *Client) Close() {
	if c.ownClient {
		c.http.CloseIdleConnections()
	}
}

// endpoint is GET {base}/sdk/v1/cohort/<id>?maxCohortSize=<n>[&lastModified=<ms>],
// the base path kept with exactly one '/' before "sdk", as the official SDKs
// join a server URL that ends in '/'.
func (c *Client) endpoint(id string, stored *Cohort) *url.URL {
	u := *c.base
	raw := strings.TrimRight(c.base.EscapedPath(), "/") + "/sdk/v1/cohort/" + url.PathEscape(id)
	u.Path, _ = url.PathUnescape(raw)
	u.RawPath = raw
	q := "maxCohortSize=" + strconv.Itoa(c.maxSize)
	if stored != nil {
		q += "&lastModified=" + strconv.FormatInt(stored.LastModified, 10)
	}
	u.RawQuery = q
	return &u
}

// Download fetches cohort id. stored is the copy already held, if any: its
// lastModified is sent, and it is returned as is when the server answers
// 204 (not modified). Otherwise the result is the downloaded cohort, stored
// under the cohortId of the body. Failures are *DownloadError; transport
// errors, timeouts, malformed bodies, 202, 429 and 5xx are retried (three
// attempts, 100 ms apart), all within Config.Timeout; a cancelled ctx stops
// at once, and the error is then its cause (context.Cause).
func (c *Client) Download(ctx context.Context, id string, stored *Cohort) (*Cohort, error) {
	if id == "" {
		return nil, errors.New("empty cohort id")
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.total,
		fmt.Errorf("%w: download not complete within %v", ErrTimeout, c.total))
	defer cancel()
	u := c.endpoint(id, stored)
	for attempt := 1; ; attempt++ {
		co, f := c.attempt(ctx, u, id, stored, attempt)
		if f == nil {
			return co, nil
		}
		if ctx.Err() != nil {
			f.err, f.retryable = context.Cause(ctx), false
		}
		if !f.retryable || attempt == maxAttempts {
			return nil, &DownloadError{CohortID: id, URL: u.String(), StatusCode: f.status,
				Attempts: attempt, Body: f.body, Err: f.err}
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "cohort: retrying", slog.String("cohort_id", id),
			slog.Int("attempt", attempt), slog.String("error", f.err.Error()))
		if httpx.Sleep(ctx, retryDelay) != nil {
			return nil, &DownloadError{CohortID: id, URL: u.String(), StatusCode: f.status,
				Attempts: attempt, Err: context.Cause(ctx)}
		}
	}
}

// failure is why one attempt failed.
type failure struct {
	status    int
	retryable bool
	body      string
	err       error
}

// errStalled cancels an attempt whose server went quiet.
var errStalled = errors.New("stalled")

// attempt sends the request once. The response body is always drained
// (boundedly) and closed.
func (c *Client) attempt(ctx context.Context, u *url.URL, id string, stored *Cohort, n int) (*Cohort, *failure) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(c.timeout, func() { cancel(errStalled) })
	defer stall.Stop()
	timedOut := func(err error) *failure {
		if ctx.Err() == nil && errors.Is(context.Cause(actx), errStalled) {
			return &failure{retryable: true, err: fmt.Errorf("%w: no data for %v", ErrTimeout, c.timeout)}
		}
		return &failure{retryable: true, err: httpx.StripURL(err)} // DownloadError names the URL
	}

	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &failure{err: err}
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("X-Amp-Exp-Library", c.library)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.library)

	debug := c.log.Enabled(ctx, slog.LevelDebug)
	start := time.Now()
	if debug {
		c.log.LogAttrs(ctx, slog.LevelDebug, "cohort: download", slog.String("cohort_id", id),
			slog.String("url", u.String()), slog.String("api_key", redact.Key(c.apiKey)), slog.Int("attempt", n))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, timedOut(err)
	}
	defer httpx.DrainClose(resp.Body)

	code := resp.StatusCode
	var co *Cohort
	var f *failure
	switch {
	case code == http.StatusOK:
		co, f = c.readCohort(resp, stall, timedOut)
	case code == http.StatusNoContent && stored != nil:
		co = stored
	case code == http.StatusNoContent:
		f = &failure{err: errors.New("204 No Content (not modified) although no copy is stored")}
	case code == http.StatusRequestEntityTooLarge:
		f = &failure{err: fmt.Errorf("%w: more than maxCohortSize=%d members", ErrTooLarge, c.maxSize)}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		f = &failure{err: ErrUnauthorized}
	case code == http.StatusNotFound:
		f = &failure{err: ErrNotFound}
	default:
		retry := code == http.StatusAccepted || code == http.StatusTooManyRequests || code >= 500
		f = &failure{retryable: retry, err: ErrStatus}
	}
	if f != nil {
		if f.status == 0 {
			f.status = code
		}
		if code != http.StatusOK {
			// Without the keys in any form (the Basic token of the two
			// too), should a server echo them: the body is redacted whole,
			// then cut.
			f.body = httpx.ReadSnippet(resp.Body, maxErrorBody, c.secrets...)
		}
	}
	if debug {
		attrs := []slog.Attr{slog.String("cohort_id", id), slog.Int("status", code),
			slog.Duration("elapsed", time.Since(start))}
		if co != nil {
			attrs = append(attrs, slog.Int("members", co.Len()), slog.Int64("last_modified", co.LastModified))
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "cohort: response", attrs...)
	}
	return co, f
}

// readCohort reads and decodes a 200 body, at most MaxBodyBytes, resetting
// the stall timer whenever data arrives.
func (c *Client) readCohort(resp *http.Response, stall *time.Timer, timedOut func(error) *failure) (*Cohort, *failure) {
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= MaxBodyBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	body := &progressReader{r: io.LimitReader(resp.Body, MaxBodyBytes+1), stall: stall, timeout: c.timeout}
	if _, err := buf.ReadFrom(body); err != nil {
		f := timedOut(fmt.Errorf("reading body: %w", err))
		f.status = resp.StatusCode
		return nil, f
	}
	if buf.Len() > MaxBodyBytes {
		return nil, &failure{status: resp.StatusCode, err: fmt.Errorf("%w: body larger than %d MiB", ErrMalformed, MaxBodyBytes>>20)}
	}
	co, err := decodeOwned(buf.Bytes())
	if err != nil {
		return nil, &failure{status: resp.StatusCode, retryable: true, err: err}
	}
	return co, nil
}

// progressReader pushes the stall deadline back whenever data arrives.
type progressReader struct {
	r       io.Reader
	stall   *time.Timer
	timeout time.Duration
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.stall.Reset(p.timeout)
	}
	return n, err
}

// Fingerprint identifies a key without revealing it: the first 8 hex digits
// of its SHA-256, as experiment.Secret.Fingerprint. Cache directories are
// named by it.
func Fingerprint(key string) string { return redact.Fingerprint(key) }
