package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/flagkit/experiment/internal/httpx"
)

// RemoteClient asks Amplitude's remote evaluation API which variants a user
// gets (docs/protocol.md#remote-evaluation), the Go form of the Python SDK's
// RemoteEvaluationClient. Create one with NewRemoteClient; there is no
// global registry, and two clients with different configs can coexist. A
// RemoteClient is safe for concurrent use. Close it to release its
// connections.
type RemoteClient struct {
	key Secret
	s   *remoteSettings

	// ctx is canceled by Close, aborting fetches in flight.
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // fetches in flight, sync and async
}

// Errors a fetch can wrap; test with errors.Is.
var (
	// ErrUnauthorized: the server rejected the deployment key (401 or 403).
	ErrUnauthorized = errors.New("deployment key rejected")
	// ErrMalformedResponse: the server answered 200 with a body that is not
	// a JSON object of variants.
	ErrMalformedResponse = errors.New("malformed response")
)

// Limits on what a fetch reads.
const (
	maxResponseBytes = 64 << 20 // a response body; real ones are kilobytes
	maxErrorSnippet  = 256      // of an error body, quoted in the error
	// maxRetryAfter is the longest Retry-After the client waits for; a
	// server asking for more ends the fetch with its error instead.
	maxRetryAfter = time.Minute
)

// NewRemoteClient returns a client for the deployment key (a server
// deployment key; surrounding white space is ignored). cfg may be nil for
// the defaults. It fails, and never panics, on an empty key or an invalid
// config.
func NewRemoteClient(deploymentKey string, cfg *RemoteConfig) (*RemoteClient, error) {
	key := strings.TrimSpace(deploymentKey)
	if key == "" {
		return nil, newConfigError("remote client", errors.New("deployment key is empty"))
	}
	if strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return nil, newConfigError("remote client",
			fmt.Errorf("deployment key %v contains white space or control characters", Secret(key)))
	}
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	c := &RemoteClient{key: Secret(key), s: s}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	return c, nil
}

// FetchV2 evaluates the user remotely and returns every variant the server
// sent, default variants included, keyed by flag key. user and opts may be
// nil; the user is not modified (its library field is filled on a copy).
//
// Failures are retried as RemoteConfig says, sleeping between attempts
// until ctx is done. The error after the last attempt is a *FetchError that
// says what failed; errors.Is(err, ErrUnauthorized) reports a rejected key,
// and errors.Is(err, context.Canceled) a canceled ctx.
func (c *RemoteClient) FetchV2(ctx context.Context, user *User, opts *FetchOptions) (map[string]Variant, error) {
	r, err := c.prepare(user, opts)
	if err != nil {
		return nil, err
	}
	if err := c.begin(); err != nil {
		return nil, err
	}
	defer c.wg.Done()
	return c.fetch(ctx, r)
}

// Fetch is the legacy fetch: FetchV2 without default and undeployed
// variants (docs/protocol.md#legacy-fetch-filter). Unlike
// the Python SDK's, it returns errors instead of an empty map.
//
// Deprecated: use FetchV2, which also returns default variants.
func (c *RemoteClient) Fetch(ctx context.Context, user *User, opts *FetchOptions) (map[string]Variant, error) {
	v, err := c.FetchV2(ctx, user, opts)
	if err != nil {
		return nil, err
	}
	return filterDefaults(v), nil
}

// FetchResult is the outcome of an asynchronous fetch: variants, or the
// error FetchV2 would have returned.
type FetchResult struct {
	Variants map[string]Variant
	Err      error
}

// FetchV2Async is FetchV2 in a goroutine, the counterpart of the Python
// SDK's fetch_async_v2. The user and options are read before it returns, so
// the caller may change them at once. The channel receives exactly one
// FetchResult and is then closed; it is buffered, so the goroutine ends even
// if nobody receives. Close waits for it.
func (c *RemoteClient) FetchV2Async(ctx context.Context, user *User, opts *FetchOptions) <-chan FetchResult {
	ch := make(chan FetchResult, 1)
	r, err := c.prepare(user, opts)
	if err == nil {
		err = c.begin()
	}
	if err != nil {
		ch <- FetchResult{Err: err}
		close(ch)
		return ch
	}
	go func() {
		defer c.wg.Done()
		defer close(ch)
		v, err := c.fetch(ctx, r)
		ch <- FetchResult{Variants: v, Err: err}
	}()
	return ch
}

// Close cancels fetches in flight, waits for them (asynchronous ones
// included) to return, and releases idle connections of the client's own
// HTTP client. Later fetches fail with ErrClosed. Close is safe to
// call more than once.
func (c *RemoteClient) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel(ErrClosed)
	c.wg.Wait()
	if c.s.ownsClient {
		c.s.httpClient.CloseIdleConnections()
	}
	return nil
}

// begin registers a fetch in flight, unless the client is closed.
func (c *RemoteClient) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("remote %w", ErrClosed)
	}
	c.wg.Add(1)
	return nil
}

// request is one fetch, encoded once and sent on every attempt.
type request struct {
	body     []byte
	flagKeys string
	opts     FetchOptions
	nKeys    int
}

// prepare encodes the user, with library filled on a copy, and the options.
func (c *RemoteClient) prepare(user *User, opts *FetchOptions) (*request, error) {
	var u User
	if user != nil {
		u = *user // shallow: only Library, a string, is written
	}
	if u.Library == "" {
		u.Library = c.s.library
	}
	body, err := json.Marshal(&u)
	if err != nil {
		return nil, fmt.Errorf("encoding user: %w", err)
	}
	flagKeys, err := opts.encodedFlagKeys()
	if err != nil {
		return nil, fmt.Errorf("encoding flag keys: %w", err)
	}
	r := &request{body: body, flagKeys: flagKeys}
	if opts != nil {
		r.opts = FetchOptions{TracksAssignment: copyBool(opts.TracksAssignment), TracksExposure: copyBool(opts.TracksExposure)}
		r.nKeys = len(opts.FlagKeys)
	}
	return r, nil
}

func copyBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

// fetch runs the attempts: the first with FetchTimeout, each retry with
// FetchRetryTimeout after a full-jitter exponential backoff, or the
// server's Retry-After when that is longer. Only retryable failures are
// retried; the Python SDK checks that on the first failure only.
func (c *RemoteClient) fetch(parent context.Context, r *request) (map[string]Variant, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	stop := context.AfterFunc(c.ctx, func() { cancel(ErrClosed) })
	defer stop()

	policy := retryPolicy{retries: c.s.retries, backoff: c.backoff, logger: c.s.logger, name: "fetch"}
	v, f, attempts, canceled := retry(ctx, policy, func(ctx context.Context, n int) (map[string]Variant, *attemptFailure) {
		timeout := c.s.timeout
		if n > 1 {
			timeout = c.s.retryTimeout
		}
		return c.attempt(ctx, r, n, timeout)
	})
	switch {
	case f == nil:
		return v, nil
	case canceled:
		return nil, c.failure(f, attempts)
	}
	return nil, c.failed(ctx, f, attempts)
}

// backoff is the delay before retry n (0-based): uniform in [0, bound] with
// bound = min(RetryBackoffMin * RetryBackoffScalar^n, RetryBackoffMax).
func (c *RemoteClient) backoff(n int) time.Duration {
	bound := float64(c.s.backoffMin) * math.Pow(c.s.backoffScalar, float64(n))
	bound = min(bound, float64(c.s.backoffMax))
	if bound <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(bound) + 1))
}

// failed is the error of a fetch that ran out of attempts, logged at WARN
// as the Python SDK logs it. Cancellations are the caller's doing and are
// not logged.
func (c *RemoteClient) failed(ctx context.Context, f *attemptFailure, attempts int) *FetchError {
	err := c.failure(f, attempts)
	c.s.logger.LogAttrs(ctx, slog.LevelWarn, "experiment: fetch failed", slog.String("error", err.Error()))
	return err
}

func (c *RemoteClient) failure(f *attemptFailure, attempts int) *FetchError {
	return &FetchError{StatusCode: f.status, URL: c.s.redactedURL, Attempts: attempts, Err: f.err}
}

// attempt sends the request once and reads the whole response within
// timeout. The body is always drained (boundedly) and closed.
func (c *RemoteClient) attempt(ctx context.Context, r *request, n int, timeout time.Duration) (map[string]Variant, *attemptFailure) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.s.url, bytes.NewReader(r.body))
	if err != nil {
		return nil, &attemptFailure{err: err}
	}
	c.setHeaders(req.Header, r)

	log := c.s.logger
	debug := log.Enabled(ctx, slog.LevelDebug)
	var start time.Time
	if debug {
		start = time.Now()
		log.LogAttrs(ctx, slog.LevelDebug, "experiment: fetch", slog.String("url", c.s.redactedURL),
			slog.Any("deployment_key", c.key), slog.Int("attempt", n), slog.Int("flag_keys", r.nKeys),
			slog.Int("user_bytes", len(r.body)), slog.Duration("timeout", timeout))
	}
	timedOut := func(err error) *attemptFailure {
		if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
			return &attemptFailure{retryable: true, err: timeoutError(timeout)}
		}
		return &attemptFailure{retryable: true, err: err}
	}

	resp, err := c.s.httpClient.Do(req)
	if err != nil {
		return nil, timedOut(httpx.StripURL(err)) // FetchError names the URL, redacted
	}
	defer httpx.DrainClose(resp.Body)
	if debug {
		defer func() {
			log.LogAttrs(ctx, slog.LevelDebug, "experiment: fetch response", slog.Int("status", resp.StatusCode),
				slog.Duration("elapsed", time.Since(start)), slog.Int64("content_length", resp.ContentLength))
		}()
	}

	if resp.StatusCode != http.StatusOK {
		code := resp.StatusCode
		f := &attemptFailure{
			status:     code,
			retryable:  retryableStatus(code),
			retryAfter: httpx.RetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
		// The error body, should a server echo the key, is redacted whole
		// before it is cut.
		body := httpx.ReadSnippet(resp.Body, maxErrorSnippet, string(c.key))
		f.err = &statusError{code: code, body: body, retryAfter: f.retryAfter}
		return nil, f
	}
	body, err := readBody(resp)
	if err != nil {
		f := timedOut(fmt.Errorf("reading response: %w", err))
		f.status = resp.StatusCode
		return nil, f
	}
	variants, err := decodeVariants(body)
	if err != nil {
		return nil, &attemptFailure{status: resp.StatusCode, retryable: true, err: err}
	}
	return variants, nil
}

// setHeaders is the one place the key goes into a request.
func (c *RemoteClient) setHeaders(h http.Header, r *request) {
	h.Set("Authorization", "Api-Key "+string(c.key))
	h.Set("Content-Type", "application/json;charset=utf-8")
	h.Set("Accept", "application/json")
	h.Set("User-Agent", c.s.library)
	r.opts.setHeaders(h, r.flagKeys)
}

// readBody reads a success body, refusing one over maxResponseBytes.
func readBody(resp *http.Response) ([]byte, error) {
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= maxResponseBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxResponseBytes+1)); err != nil {
		return nil, err
	}
	if buf.Len() > maxResponseBytes {
		return nil, fmt.Errorf("%w: larger than %d MiB", ErrMalformedResponse, maxResponseBytes>>20)
	}
	return buf.Bytes(), nil
}

// FetchError is a remote fetch that failed after every attempt.
type FetchError struct {
	// StatusCode is the last HTTP status received, 0 when there was no
	// response (a transport error or timeout).
	StatusCode int
	// URL is the endpoint, without credentials.
	URL string
	// Attempts is how many requests were sent.
	Attempts int
	// Err is the last failure: a status, a transport error, a timeout
	// (wrapping context.DeadlineExceeded), a malformed response (wrapping
	// ErrMalformedResponse), or the context's cancellation.
	Err error
}

// Error says what failed, where and after how many attempts, e.g.
// "POST https://api.lab.amplitude.com/sdk/v2/vardata?v=0: 503 Service
// Unavailable (2 attempts)".
func (e *FetchError) Error() string {
	attempts := "1 attempt"
	if e.Attempts != 1 {
		attempts = strconv.Itoa(e.Attempts) + " attempts"
	}
	return fmt.Sprintf("POST %s: %v (%s)", e.URL, e.Err, attempts)
}

// Unwrap returns Err.
func (e *FetchError) Unwrap() error { return e.Err }

// Is reports ErrUnauthorized for a 401 or 403 answer.
func (e *FetchError) Is(target error) bool {
	return target == ErrUnauthorized && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}
