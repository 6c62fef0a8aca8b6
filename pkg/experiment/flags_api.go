package experiment

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/flagkit/experiment/pkg/eval"
)

// FlagsError is a flag config request that failed: a status other than 200,
// a transport error or timeout, or a body that is not a valid flag list.
type FlagsError struct {
	StatusCode int    // 0 when there was no response
	URL        string // without credentials
	Err        error
	Attempts   int // requests made; 0 or 1 for one
}

func (e *FlagsError) Error() string {
	if e.Attempts > 1 {
		return fmt.Sprintf("GET %s: %v (%d attempts)", e.URL, e.Err, e.Attempts)
	}
	return fmt.Sprintf("GET %s: %v", e.URL, e.Err)
}

func (e *FlagsError) Unwrap() error { return e.Err }

// Is reports ErrUnauthorized for 401 and 403: retrying cannot help.
func (e *FlagsError) Is(target error) bool {
	return target == ErrUnauthorized && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}

// flagConfigs is one decoded flag config response.
type flagConfigs struct {
	body      []byte
	flags     []*eval.Flag
	digest    [32]byte // of body: an identical response changes nothing
	fetchedAt time.Time
}

func decodeFlagConfigs(body []byte, at time.Time) (*flagConfigs, error) {
	flags, err := eval.DecodeFlags(body)
	if err != nil {
		return nil, err
	}
	return &flagConfigs{body: body, flags: flags, digest: sha256.Sum256(body), fetchedAt: at}, nil
}

// flagFetchRetries bounds the retries of FetchFlagConfigs when its context
// has no deadline to bound them: with backoff capped at 10 s, a minute or so.
const flagFetchRetries = 8

// fetchFlagConfigs makes one GET /sdk/v2/flags request. The poller retries
// on its own schedule.
func (c *LocalClient) fetchFlagConfigs(ctx context.Context) (*flagConfigs, error) {
	fc, f := c.attemptFlagConfigs(ctx)
	if f != nil {
		return nil, c.flagsError(f, 1)
	}
	return fc, nil
}

// fetchFlagConfigsRetrying is one fetch that must succeed now (flags pull):
// failures a later attempt may not meet (no answer, a malformed body, 429,
// 5xx) are retried as remote fetches are, with backoff or the server's
// Retry-After, while ctx allows.
func (c *LocalClient) fetchFlagConfigsRetrying(ctx context.Context) (*flagConfigs, error) {
	policy := retryPolicy{retries: flagFetchRetries, logger: c.s.logger, name: "flag config fetch",
		backoff: func(n int) time.Duration { return backoff(n+1, 500*time.Millisecond, 10*time.Second) }}
	fc, f, attempts, _ := retry(ctx, policy, func(ctx context.Context, _ int) (*flagConfigs, *attemptFailure) {
		return c.attemptFlagConfigs(ctx)
	})
	if f != nil {
		return nil, c.flagsError(f, attempts)
	}
	return fc, nil
}

func (c *LocalClient) flagsError(f *attemptFailure, attempts int) error {
	return &FlagsError{StatusCode: f.status, URL: c.s.redactedFlagsURL, Err: f.err, Attempts: attempts}
}

// attemptFlagConfigs makes one GET /sdk/v2/flags request and says, when it
// fails, whether another attempt may succeed.
func (c *LocalClient) attemptFlagConfigs(ctx context.Context) (*flagConfigs, *attemptFailure) {
	s := c.s
	if err := ctx.Err(); err != nil {
		return nil, &attemptFailure{err: err}
	}
	// The timeout is the request's own, or what is left of the caller's
	// when that is shorter: either way the one an error names.
	timeout := s.requestTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.flagsURL, nil)
	if err != nil {
		return nil, &attemptFailure{err: err}
	}
	c.setHeaders(req)
	c.inflight.Store(s.redactedFlagsURL)
	resp, err := s.httpClient.Do(req)
	if err != nil {
		return nil, &attemptFailure{retryable: true, err: transportError(ctx, err, timeout)}
	}
	defer drainClose(resp.Body)
	if code := resp.StatusCode; code != http.StatusOK {
		retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, &attemptFailure{status: code, retryable: retryableStatus(code), retryAfter: retryAfter,
			err: &statusError{code: code, retryAfter: retryAfter}}
	}
	fail := func(retryable bool, err error) *attemptFailure {
		return &attemptFailure{status: resp.StatusCode, retryable: retryable, err: err}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFlagConfigBytes+1))
	if err != nil {
		return nil, fail(true, transportError(ctx, err, timeout))
	}
	if len(body) > maxFlagConfigBytes {
		return nil, fail(false, fmt.Errorf("%w: flag configs larger than %d MiB", ErrMalformedResponse, maxFlagConfigBytes>>20))
	}
	fc, err := decodeFlagConfigs(body, time.Now())
	if err != nil {
		return nil, fail(true, fmt.Errorf("%w: %v", ErrMalformedResponse, err))
	}
	return fc, nil
}

func (c *LocalClient) setHeaders(req *http.Request) {
	req.Header.Set("Authorization", "Api-Key "+string(c.key))
	req.Header.Set("X-Amp-Exp-Library", c.s.library)
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
}

// transportError names a timeout as one, with the time that ran out (0:
// unknown), rather than the caller's cancellation or a bare "context
// deadline exceeded".
func transportError(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if timeout > 0 {
			return timeoutError(roundWait(timeout))
		}
		return fmt.Errorf("timed out: %w", context.DeadlineExceeded)
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner // *url.Error repeats the URL, which may carry credentials
		}
	}
	return err
}

// roundWait makes a measured wait readable in a message: a 500ms deadline
// measured a few microseconds after it was set is "500ms", not "499.98ms".
func roundWait(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= 100*time.Millisecond:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// drainClose lets the connection be reused: the rest of the body is read,
// bounded, before closing.
func drainClose(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 1<<20))
	body.Close()
}
