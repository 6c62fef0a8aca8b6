package experiment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/flagkit/experiment/internal/httpx"
)

// retryPolicy is how a request is retried (the Python SDK's policy): remote fetches
// and flag config pulls share it, so both treat a failure the same way.
type retryPolicy struct {
	retries int                       // attempts after the first
	backoff func(n int) time.Duration // the delay before retry n (0-based)
	logger  *slog.Logger
	name    string // in the debug log: "fetch" logs "experiment: fetch retry"
	// final, when set, makes failures it matches final although retryable.
	final func(error) bool
}

// retry makes attempts until one succeeds or a failure is final: not
// retryable, the retries used up, a Retry-After beyond maxRetryAfter or
// beyond what is left of ctx, or ctx done. Each retry waits the policy's
// backoff, or the server's Retry-After when that is longer. It returns the
// last failure and how many attempts were made; canceled reports that ctx
// ended it (the caller's doing, not the server's), with the failure's
// error then saying why.
func retry[T any](ctx context.Context, p retryPolicy, attempt func(ctx context.Context, n int) (T, *attemptFailure)) (v T, f *attemptFailure, attempts int, canceled bool) {
	var prev *attemptFailure
	for n := 1; ; n++ {
		v, f := attempt(ctx, n)
		if f == nil {
			return v, nil, n, false
		}
		if err := ctx.Err(); err != nil {
			// An attempt that timed out with ctx's deadline already says
			// where and within how long; the bare deadline would not. What
			// the server answered before is the likelier cause: say it too.
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(f.err, context.DeadlineExceeded) {
				f = f.withErr(context.Cause(ctx))
			} else if prev != nil {
				f = f.withNote(fmt.Sprintf("the attempt before: %v", prev.err))
			}
			return v, f, n, true
		}
		prev = f
		if !f.retryable || (p.final != nil && p.final(f.err)) || n > p.retries || f.retryAfter > maxRetryAfter {
			return v, f, n, false // waiting longer than maxRetryAfter is the caller's decision
		}
		delay := max(p.backoff(n-1), f.retryAfter)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return v, f.withNote(fmt.Sprintf("no time left for a retry in %v", delay.Round(time.Millisecond))), n, false
		}
		if p.logger.Enabled(ctx, slog.LevelDebug) {
			p.logger.LogAttrs(ctx, slog.LevelDebug, "experiment: "+p.name+" retry", slog.Int("attempt", n),
				slog.Duration("delay", delay), slog.String("error", f.err.Error()))
		}
		if err := httpx.Sleep(ctx, delay); err != nil {
			// The deadline can still come first on a loaded machine: the
			// same answer as when it was seen coming, not a bare deadline.
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return v, f.withNote(fmt.Sprintf("no time left for a retry in %v", delay.Round(time.Millisecond))), n, false
			}
			return v, f.withErr(fmt.Errorf("%w while waiting to retry (%v)", err, f.err)), n, true
		}
	}
}

// retryableStatus: a status that a later attempt may not get again. Other
// 4xx (a rejected key, a bad request) are final.
func retryableStatus(code int) bool {
	return code < 400 || code >= 500 || code == http.StatusTooManyRequests
}

// refused reports a connection refused: nothing listens at that address,
// which seconds of retries will rarely change for a one-off command (a
// wrong URL, a server not started); failing at once says so while the user
// is still looking. A service's clients, which live through a server's
// restart, keep retrying it.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// attemptFailure is why one attempt failed.
type attemptFailure struct {
	status     int
	retryAfter time.Duration
	retryable  bool
	err        error
}

func (f *attemptFailure) withErr(err error) *attemptFailure {
	g := *f
	g.err = err
	return &g
}

func (f *attemptFailure) withNote(note string) *attemptFailure {
	return f.withErr(fmt.Errorf("%w; %s", f.err, note))
}

// timeoutError is an attempt that ran out of time; it is a
// context.DeadlineExceeded.
type timeoutError time.Duration

func (e timeoutError) Error() string        { return fmt.Sprintf("no response within %v", time.Duration(e)) }
func (e timeoutError) Timeout() bool        { return true }
func (e timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// statusError is a non-200 answer.
type statusError struct {
	code       int
	body       string
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	msg := strconv.Itoa(e.code)
	if text := http.StatusText(e.code); text != "" {
		msg += " " + text
	}
	if e.body != "" {
		msg += ": " + e.body
	}
	if e.retryAfter > 0 {
		msg += fmt.Sprintf(" (Retry-After %v)", e.retryAfter)
	}
	return msg
}
