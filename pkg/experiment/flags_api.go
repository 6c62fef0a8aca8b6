package experiment

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/flagkit/experiment/internal/httpx"
	"github.com/flagkit/experiment/pkg/cohort"
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

// flagConfigs is one flag config response, and, once loaded, its flags: a
// flag set keeps the response's bytes (eval.LoadOwned) instead of its
// decoded flags, less than half the memory.
type flagConfigs struct {
	// raw is the response exactly as the server sent it, for the cache:
	// flags encoded again from their decoded form would not be the same
	// flags ("conditions": [], which never matches, would come back
	// absent, which always does).
	raw  io.WriterTo
	doc  []byte            // raw's bytes, for load; nil for FetchFlagConfigs
	snap *eval.Snapshot    // loaded from doc, which it keeps; nil until load
	refs cohort.References // the cohorts the flags target, once loaded
	// flags are the decoded configs of FetchFlagConfigs, which returns
	// them; nil for the client's own fetches.
	flags     []*eval.Flag
	digest    [32]byte // of the response: an identical one changes nothing
	fetchedAt time.Time
}

// newFlagConfigs is a flag list read, not loaded yet; doc must not be
// modified afterwards.
func newFlagConfigs(doc []byte, at time.Time) *flagConfigs {
	return &flagConfigs{raw: rawBytes(doc), doc: doc, digest: sha256.Sum256(doc), fetchedAt: at}
}

// loadFlagConfigs reads and loads a flag list; the flag set keeps doc,
// which must not be modified afterwards. A problem in the document is an
// *eval.ParseError.
func loadFlagConfigs(doc []byte, at time.Time) (*flagConfigs, error) {
	fc := newFlagConfigs(doc, at)
	if err := fc.load(); err != nil {
		return nil, err
	}
	return fc, nil
}

// load compiles the flags and finds the cohorts they target, unless that
// is done.
func (fc *flagConfigs) load() error {
	if fc.snap != nil {
		return nil
	}
	snap, err := eval.LoadOwned(fc.doc)
	if err != nil {
		return err
	}
	fc.snap, fc.refs = snap, snapshotReferences(snap)
	return nil
}

// readFlagBody reads r to its end into one slice of its exact length, size
// (-1: unknown) bytes when known. Of unknown size (a gzipped response), it
// gathers in a spool whose blocks are then copied into the slice: a large
// body is held twice for that copy at most, and no doubling of a slice
// leaves garbage or spare room behind.
func readFlagBody(r io.Reader, size int64) ([]byte, error) {
	s := newSpool(-1)
	if size >= 0 && size <= maxFlagConfigBytes {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		var probe [1]byte
		n, err := io.ReadFull(r, probe[:])
		if n == 0 && err == io.EOF {
			return buf, nil
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		// More than announced: gather the rest too, and copy.
		s.Write(buf)
		s.Write(probe[:n])
	}
	if _, err := io.Copy(s, r); err != nil {
		return nil, err
	}
	return s.take(), nil
}

// decodeFlagConfigs decodes a flag list as it streams from r, hashing it on
// the way; keep, when not nil, receives the exact bytes too. Nothing else
// of the document is held: a response of hundreds of megabytes costs its
// decoded form, and keep. An error of r is returned as it is; a problem in
// the document is an *eval.ParseError.
func decodeFlagConfigs(r io.Reader, keep io.Writer, at time.Time) (*flagConfigs, error) {
	h := sha256.New()
	var w io.Writer = h
	if keep != nil {
		w = io.MultiWriter(h, keep)
	}
	flags := []*eval.Flag{}
	if _, err := eval.DecodeFlagsStream(io.TeeReader(r, w), func(f *eval.Flag) error {
		flags = append(flags, f)
		return nil
	}); err != nil {
		return nil, err
	}
	fc := &flagConfigs{flags: flags, fetchedAt: at}
	h.Sum(fc.digest[:0])
	return fc, nil
}

// errTooLarge: a flag config response over maxFlagConfigBytes.
var errTooLarge = fmt.Errorf("%w: flag configs larger than %d MiB", ErrMalformedResponse, maxFlagConfigBytes>>20)

// capReader fails with errTooLarge once more than max bytes are read, so a
// response over the limit is not mistaken for one cut short.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left < 0 {
		return n, errTooLarge
	}
	return n, err
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

// flagFetchPolicy retries one fetch that must succeed now (flags pull):
// failures a later attempt may not meet (no answer, a malformed body, 429,
// 5xx) are retried as remote fetches are, with backoff or the server's
// Retry-After, while ctx allows.
func (c *LocalClient) flagFetchPolicy() retryPolicy {
	return retryPolicy{retries: flagFetchRetries, logger: c.s.logger, name: "flag config fetch",
		backoff: func(n int) time.Duration { return backoff(n+1, 500*time.Millisecond, 10*time.Second) }}
}

func (c *LocalClient) flagsError(f *attemptFailure, attempts int) error {
	return &FlagsError{StatusCode: f.status, URL: c.s.redactedFlagsURL, Err: f.err, Attempts: attempts}
}

// attemptFlagConfigs makes one GET /sdk/v2/flags request, reads the body
// into one buffer and loads it, unless it is the flags in use, as a poll
// mostly finds: then apply has nothing to do, and loading (decoding every
// flag, for a moment several times the body's size) is spared.
func (c *LocalClient) attemptFlagConfigs(ctx context.Context) (*flagConfigs, *attemptFailure) {
	var fc *flagConfigs
	f := c.getFlagConfigs(ctx, func(body io.Reader, size int64) error {
		at := time.Now()
		doc, err := readFlagBody(body, size)
		if err != nil {
			return err
		}
		fc = newFlagConfigs(doc, at)
		return c.loadUnlessInUse(fc)
	})
	return fc, f
}

// loadUnlessInUse loads fc unless its flags are those in use.
func (c *LocalClient) loadUnlessInUse(fc *flagConfigs) error {
	if c.servedNow(fc.digest) {
		return nil
	}
	return fc.load()
}

// servedNow reports whether digest is of the last configs from the
// server, which are those in use unless the cache's came first.
func (c *LocalClient) servedNow(digest [32]byte) bool {
	inUse := c.served.Load()
	return inUse != nil && *inUse == digest
}

// attemptDecodedFlagConfigs makes one GET /sdk/v2/flags request and
// decodes the flags as they arrive, keeping their exact bytes too: what
// FetchFlagConfigs returns.
func (c *LocalClient) attemptDecodedFlagConfigs(ctx context.Context) (*flagConfigs, *attemptFailure) {
	var fc *flagConfigs
	f := c.getFlagConfigs(ctx, func(body io.Reader, size int64) error {
		raw := newSpool(size)
		var err error
		if fc, err = decodeFlagConfigs(body, raw, time.Now()); err == nil {
			fc.raw = raw
		}
		return err
	})
	return fc, f
}

// getFlagConfigs makes one GET /sdk/v2/flags request and passes a 200's
// body, capped at maxFlagConfigBytes, and its Content-Length (-1: unknown)
// to read. A failure says whether another attempt may succeed.
func (c *LocalClient) getFlagConfigs(ctx context.Context, read func(body io.Reader, size int64) error) *attemptFailure {
	s := c.s
	if err := ctx.Err(); err != nil {
		return &attemptFailure{err: err}
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
		return &attemptFailure{err: err}
	}
	c.setHeaders(req)
	c.inflight.Store(s.redactedFlagsURL)
	c.answered.Store(false)
	resp, err := s.httpClient.Do(req)
	if err != nil {
		return &attemptFailure{retryable: true, err: transportError(ctx, err, timeout)}
	}
	defer httpx.DrainClose(resp.Body)
	if code := resp.StatusCode; code != http.StatusOK {
		retryAfter := httpx.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return &attemptFailure{status: code, retryable: retryableStatus(code), retryAfter: retryAfter,
			err: &statusError{code: code, retryAfter: retryAfter}}
	}
	c.answered.Store(true)
	if err := read(&capReader{r: resp.Body, left: maxFlagConfigBytes}, resp.ContentLength); err != nil {
		return bodyFailure(ctx, resp.StatusCode, err, timeout)
	}
	return nil
}

// bodyFailure says why a 200's body could not be used: too large, or not
// written to the cache (final), not a flag list (retried: a proxy may have
// cut it), or not read in full (retried).
func bodyFailure(ctx context.Context, status int, err error, timeout time.Duration) *attemptFailure {
	var pe *eval.ParseError
	switch {
	case errors.Is(err, errTooLarge), errors.As(err, new(*CacheError)):
		return &attemptFailure{status: status, err: err}
	case errors.As(err, &pe):
		return &attemptFailure{status: status, retryable: true, err: fmt.Errorf("%w: %v", ErrMalformedResponse, err)}
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && timeout > 0:
		return &attemptFailure{status: status, retryable: true, err: slowBodyError(roundWait(timeout))}
	}
	return &attemptFailure{status: status, retryable: true, err: transportError(ctx, err, timeout)}
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
	return httpx.StripURL(err) // FlagsError names the URL, redacted
}

// slowBodyError is a response whose body was still arriving when time ran
// out; like timeoutError, it is a context.DeadlineExceeded.
type slowBodyError time.Duration

func (e slowBodyError) Error() string {
	return fmt.Sprintf("response still being read after %v", time.Duration(e))
}
func (e slowBodyError) Timeout() bool        { return true }
func (e slowBodyError) Is(target error) bool { return target == context.DeadlineExceeded }

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
