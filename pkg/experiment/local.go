package experiment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
)

// LocalClient evaluates flags locally, in microseconds, from flag configs
// it keeps fresh in the background (polling, or streaming with polling as
// the fallback). Evaluations read an immutable FlagSet swapped atomically,
// so they never wait for a refresh; a failed or malformed update never
// replaces the flags in use.
type LocalClient struct {
	key     Secret
	s       *localSettings
	flags   atomic.Pointer[FlagSet]
	applyMu sync.Mutex // serialises apply: Start may apply the cache while the updater runs
	// served is the digest of the last configs from the server, nil
	// before; written by apply under applyMu, read by fetches without it
	// (see servedNow).
	served atomic.Pointer[[32]byte]
	// onUpdateG is the goroutine (goid) running OnUpdate, which holds
	// applyMu: Close, called from it, must not wait for applyMu.
	onUpdateG atomic.Uint64

	mu       sync.Mutex
	status   Status
	ready    chan struct{} // closed when flags are first applied
	once     sync.Once
	failed   chan struct{} // closed when an update first fails
	failMu   sync.Once
	done     chan struct{} // closed when the updater gives up (key rejected) or the client is closed
	doneOnce sync.Once
	inflight atomic.Value // string: the URL (redacted) of the latest request, for a Start that times out
	answered atomic.Bool  // that request has its response headers: its body is being read

	cohorts        *cohortSync   // nil without CohortSyncConfig
	initialCohorts *cohort.Store // from the disk cache, before any sync

	startTimeout time.Duration
	life         lifecycle
}

// Status is what the client knows of its flag configs' freshness.
type Status struct {
	// State is StateStarting, StateReady (updates arriving),
	// StateInterrupted (the last update failed; the flags in use are the
	// last good ones), or StateClosed.
	State State
	// Source of the flags in use: SourceServer, SourceStream, SourceCache
	// or SourceNone.
	Source      Source
	Flags       int
	LastSuccess time.Time // when the flags in use were fetched
	LastError   error
	LastErrorAt time.Time
	Streaming   bool
	// CacheError is why the flags in use could not be written to the
	// cache directory, if they could not: the next offline start will
	// not have them.
	CacheError error
	// Cohorts is the state of each cohort the flags in use target, by id:
	// where its copy came from and how old it is, or that there is none,
	// and why. nil without CohortSyncConfig.
	Cohorts []CohortStatus
}

// ConfigAge is how old the flags in use are; 0 when there are none.
func (s Status) ConfigAge(now time.Time) time.Duration {
	if s.LastSuccess.IsZero() {
		return 0
	}
	return now.Sub(s.LastSuccess)
}

// NewLocalClient makes a client for a server deployment key. Nothing is
// fetched, and no goroutine started, until Start: the configs, tracking
// included, are only checked.
func NewLocalClient(deploymentKey string, cfg *LocalConfig) (*LocalClient, error) {
	if deploymentKey == "" {
		return nil, newConfigError("local client", errors.New("empty deployment key"))
	}
	s, err := newLocalSettings(cfg)
	if err != nil {
		return nil, err
	}
	startTimeout, err := startTimeoutOf(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkTracking(s); err != nil {
		return nil, err
	}
	cs, err := newCohortSync(s)
	if err != nil {
		return nil, newConfigError("local config", fmt.Errorf("cohorts: %w", err))
	}
	c := &LocalClient{key: Secret(deploymentKey), s: s, ready: make(chan struct{}), failed: make(chan struct{}), done: make(chan struct{}), status: Status{State: StateStarting}, cohorts: cs}
	c.startTimeout = startTimeout
	c.life.init()
	c.initialCohorts = cs.cached()
	return c, nil
}

// start is one attempt of Start (lifecycle.go), bounded by ctx.
func (c *LocalClient) start(ctx context.Context, begin time.Time) error {
	cached, cacheErr := c.loadCache()
	if c.s.offline {
		if cacheErr != nil {
			return fmt.Errorf("offline: %w", cacheErr)
		}
		// apply checks again, under applyMu: Close may come in between.
		if c.life.ctx.Err() != nil {
			return ErrClosed
		}
		return c.apply(ctx, cached, SourceCache)
	}
	c.cohorts.startWait(ctx) // the first flags wait for their cohorts no longer than Start does
	defer c.cohorts.endStartWait()
	if !c.launch() {
		return ErrClosed
	}
	if c.awaitFirstFlags(ctx, cached != nil) {
		return nil
	}
	lastErr := c.Status().LastError
	if lastErr == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The server has not answered yet: say where and for how long,
		// here and in Status, rather than a bare deadline or nothing.
		lastErr = c.noAnswer(ctx, begin)
		c.recordError(lastErr)
	}
	if c.life.ctx.Err() != nil {
		// Closed while waiting: the cache must not be put in use, nor
		// reported, by this goroutine, which Close does not wait for.
		return ErrClosed
	}
	if cached != nil && !errors.Is(lastErr, ErrUnauthorized) {
		if err := c.apply(ctx, cached, SourceCache); err == nil {
			c.s.logger.Warn("flag config server unreachable; using cached flags",
				"age", time.Since(cached.fetchedAt).Round(time.Second), "error", lastErr)
			return nil
		}
	}
	if lastErr != nil {
		return lastErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Never nil without flags in use: a caller would evaluate nothing.
	return errors.New("flag config updater stopped before any flags arrived")
}

// noAnswer is the error of a Start whose ctx ran out while the first
// request was still in flight: its URL and the time Start was given.
func (c *LocalClient) noAnswer(ctx context.Context, begin time.Time) error {
	url, _ := c.inflight.Load().(string)
	if url == "" {
		url = c.s.redactedFlagsURL
	}
	deadline, _ := ctx.Deadline()
	wait := roundWait(deadline.Sub(begin))
	if c.answered.Load() {
		// A large response, or a slow link: the server did answer.
		return &FlagsError{StatusCode: http.StatusOK, URL: url, Err: slowBodyError(wait)}
	}
	return &FlagsError{URL: url, Err: timeoutError(wait)}
}

// awaitFirstFlags reports whether the server's flags arrived. It stops
// waiting when ctx ends, when the updater gives up, or, if a cache can stand
// in, at the first failure: a user with a cache should not wait out every
// retry of a server that is down.
func (c *LocalClient) awaitFirstFlags(ctx context.Context, haveCache bool) bool {
	failed := c.failed
	if !haveCache {
		failed = nil // never ready: keep retrying until ctx ends
	}
	select {
	case <-c.ready:
		return true
	case <-failed:
	case <-c.done:
	case <-c.life.ctx.Done(): // closed: the updater is stopping
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && c.cohorts.fetchedInStart() {
			// Flags arrived and wait for their cohorts, a wait that ctx's
			// end cuts short: they are in use once that update, which
			// holds applyMu, is done.
			c.applyMu.Lock()
			inUse := c.flags.Load() != nil
			c.applyMu.Unlock()
			if inUse {
				return true
			}
		}
	}
	// Flags may have arrived together with the signal that stopped the wait.
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

func (c *LocalClient) loadCache() (*flagConfigs, error) {
	if c.s.cacheDir == "" {
		return nil, fmt.Errorf("%w: no cache directory", ErrNoCache)
	}
	fc, err := readFlagCache(FlagCachePath(c.s.cacheDir, string(c.key)))
	if err != nil && !errors.Is(err, ErrNoCache) {
		c.s.logger.Warn("ignoring unreadable flag cache", "error", err)
	}
	return fc, err
}

// Done is closed when the flags in use will never be refreshed again: the
// server rejected the deployment key (Status().LastError says so, and
// errors.Is(err, ErrUnauthorized) holds), or the client was closed. A
// long-running caller selects on it: going on would serve flags that only
// look current.
func (c *LocalClient) Done() <-chan struct{} { return c.done }

func (c *LocalClient) stopUpdates() { c.doneOnce.Do(func() { close(c.done) }) }

// Status reports the freshness of the flags in use.
func (c *LocalClient) Status() Status {
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	st.Cohorts = c.cohortStatus()
	return st
}

// FlagSet is the flag set in use, nil before Start succeeds.
func (c *LocalClient) FlagSet() *FlagSet { return c.flags.Load() }

// FetchFlagConfigs fetches the deployment's flag configs once, without
// starting a client: the raw JSON array and its decoded form. Failures that
// a later attempt may not meet (no answer, a malformed body, 429, 5xx) are
// retried with backoff, or after the server's Retry-After, while ctx allows
// (a few times when ctx has no deadline); the error says how many attempts
// were made. With a cache directory configured, the cache is refreshed too.
func (c *LocalClient) FetchFlagConfigs(ctx context.Context) ([]byte, []*eval.Flag, error) {
	fc, f, attempts, _ := retry(ctx, c.flagFetchPolicy(), func(ctx context.Context, _ int) (*flagConfigs, *attemptFailure) {
		return c.attemptDecodedFlagConfigs(ctx)
	})
	if f != nil {
		return nil, nil, c.flagsError(f, attempts)
	}
	body := fc.raw.(*spool).Bytes()
	if c.s.cacheDir != "" {
		if err := writeFlagCache(FlagCachePath(c.s.cacheDir, string(c.key)), fc, c.s.redactedFlagsURL); err != nil {
			return body, fc.flags, fmt.Errorf("writing the flag cache: %w", err)
		}
	}
	return body, fc.flags, nil
}
