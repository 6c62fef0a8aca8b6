package experiment

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lateDeadline is a context whose deadline looks far enough for the retry's
// wait but ends early, as a deadline does when the machine is loaded and the
// wait's timer fires late.
type lateDeadline struct {
	context.Context
	done chan struct{}
}

func (c lateDeadline) Deadline() (time.Time, bool) { return time.Now().Add(time.Hour), true }
func (c lateDeadline) Done() <-chan struct{}       { return c.done }
func (c lateDeadline) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// endOnRetryLog is a log handler that ends a lateDeadline when the retry
// logs that it is about to wait: the deadline then comes during the wait,
// wherever the scheduler puts the test's goroutines.
type endOnRetryLog struct {
	slog.Handler
	ctx lateDeadline
}

func (h endOnRetryLog) Enabled(context.Context, slog.Level) bool { return true }
func (h endOnRetryLog) Handle(context.Context, slog.Record) error {
	close(h.ctx.done)
	return nil
}

// A deadline that ends a retry's wait gives the last failure and that no
// retry was left, as when the deadline is seen coming: not a bare
// "context deadline exceeded while waiting" that reads as an interruption.
func TestRetryDeadlineDuringWait(t *testing.T) {
	ctx := lateDeadline{Context: context.Background(), done: make(chan struct{})}
	logger := slog.New(endOnRetryLog{Handler: slog.DiscardHandler, ctx: ctx})
	p := retryPolicy{retries: 3, backoff: func(int) time.Duration { return time.Minute }, logger: logger, name: "test"}
	attempts := 0
	_, f, n, canceled := retry(ctx, p, func(context.Context, int) (int, *attemptFailure) {
		attempts++
		return 0, &attemptFailure{status: 503, retryable: true, err: errors.New("503 Service Unavailable")}
	})
	if canceled {
		t.Error("a deadline is not a cancellation")
	}
	if n != 1 || attempts != 1 {
		t.Errorf("attempts %d (reported %d), want 1", attempts, n)
	}
	if msg := f.err.Error(); !strings.Contains(msg, "503 Service Unavailable") || strings.Contains(msg, "while waiting") {
		t.Errorf("error %q: want the last failure, not the wait", msg)
	}
}

// When the deadline cuts an attempt short, the answer of the attempt before
// it is said too: "503" is why the retries ran, the deadline only why they
// stopped.
func TestRetryDeadlineDuringAttemptNamesTheAnswerBefore(t *testing.T) {
	// The deadline ends during the second attempt by construction, not by
	// a timer that a loaded machine could let fire before the first ends.
	ctx := lateDeadline{Context: context.Background(), done: make(chan struct{})}
	p := retryPolicy{retries: 3, backoff: func(int) time.Duration { return 0 }, logger: slog.New(slog.DiscardHandler), name: "test"}
	_, f, n, _ := retry(ctx, p, func(ctx context.Context, n int) (int, *attemptFailure) {
		if n == 1 {
			return 0, &attemptFailure{status: 503, retryable: true, err: errors.New("503 Service Unavailable")}
		}
		close(ctx.(lateDeadline).done)
		<-ctx.Done() // the deadline comes during the second attempt, which times out with it
		return 0, &attemptFailure{retryable: true, err: timeoutError(time.Second)}
	})
	if n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
	if msg := f.err.Error(); !strings.Contains(msg, "no response within 1s") || !strings.Contains(msg, "the attempt before: 503 Service Unavailable") {
		t.Errorf("error %q: want the timeout and the 503 before it", msg)
	}
}

// With final set to refused (flags pull), a refused connection is final at
// once: nothing listens there, and seconds of retries would only hide it.
func TestRetryRefusedIsFinal(t *testing.T) {
	p := retryPolicy{retries: 5, backoff: func(int) time.Duration { return time.Second }, logger: slog.New(slog.DiscardHandler), name: "test", final: refused}
	attempts := 0
	_, f, n, canceled := retry(context.Background(), p, func(context.Context, int) (int, *attemptFailure) {
		attempts++
		return 0, &attemptFailure{retryable: true, err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	})
	if attempts != 1 || n != 1 || canceled || f == nil {
		t.Fatalf("attempts %d (reported %d), canceled %v, failure %v: want one final attempt", attempts, n, canceled, f)
	}
}
