package experiment

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
	digest  [32]byte   // of the configs in use, under applyMu
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

// run is the updater: the stream when configured, with polling whenever
// the stream is down; polling alone otherwise.
func (c *LocalClient) run(ctx context.Context) {
	if !c.s.stream {
		c.poll(ctx, time.Time{})
		return
	}
	for ctx.Err() == nil {
		err := c.runStream(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrUnauthorized) {
			c.recordError(err) // Start reports it, and Status says why updates stopped
			c.s.logger.Error("flag stream rejected the deployment key; not retrying", "key", c.key, "error", err)
			return
		}
		c.s.logger.Warn("flag stream down; polling until it is retried", "error", err)
		c.setStreaming(false)
		retry := time.Now().Add(jitter(streamRetryDelay, time.Second))
		if !c.poll(ctx, retry) {
			return
		}
	}
}

// poll fetches now and then every interval, retrying failures with capped
// exponential backoff and full jitter, until ctx ends or, when until is set,
// that time passes. It returns false when it should not go on (ctx done or
// the key rejected).
func (c *LocalClient) poll(ctx context.Context, until time.Time) bool {
	failures := 0
	for {
		err := c.update(ctx, SourceServer)
		wait := c.s.pollInterval
		switch {
		case errors.Is(err, ErrUnauthorized):
			c.s.logger.Error("flag config server rejected the deployment key; not retrying", "key", c.key, "error", err)
			return false
		case err != nil:
			failures++
			wait = backoff(failures, time.Second, c.s.pollInterval)
		default:
			failures = 0
		}
		if !until.IsZero() {
			if left := time.Until(until); left < wait {
				wait = max(left, 0)
			}
		}
		if c.life.pause(ctx, wait) != nil {
			return false
		}
		if !until.IsZero() && !time.Now().Before(until) {
			return true
		}
	}
}

// update fetches and applies flag configs, recording the outcome.
func (c *LocalClient) update(ctx context.Context, source Source) error {
	fc, err := c.fetchFlagConfigs(ctx)
	if err == nil {
		err = c.apply(ctx, fc, source)
	}
	if err != nil && ctx.Err() == nil {
		c.recordError(err)
		c.s.logger.Warn("flag config update failed; keeping the flags in use", "error", err)
	}
	return err
}

// apply compiles configs and swaps them in, unless they are what is in use,
// after downloading the cohorts they newly target. Configs that do not
// compile never replace the ones in use.
func (c *LocalClient) apply(ctx context.Context, fc *flagConfigs, source Source) error {
	defer c.s.notify.deliver(c.Status) // deferred first, so it runs once applyMu is released
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	if c.life.ctx.Err() != nil {
		// Closed: Close waited for applyMu, so once it returned no apply
		// changes the flags or calls OnUpdate.
		return ErrClosed
	}
	prev := c.flags.Load()
	if prev != nil && source == SourceCache {
		return nil // the server answered meanwhile: never go back to the cache
	}
	if prev != nil && fc.digest == c.digest {
		c.recordSuccess(fc, source, prev)
		return nil
	}
	store := c.initialCohorts
	if source == SourceCache {
		if prev != nil {
			store = prev.cohorts
		}
	} else {
		store = c.cohortsFor(ctx, fc.flags, prev)
	}
	next, err := NewFlagSet(fc.flags, store)
	if err != nil {
		return err
	}
	c.flags.Store(next)
	c.digest = fc.digest
	c.s.notify.flagsChanged(prev, next)
	c.recordSuccess(fc, source, next)
	if source != SourceCache && c.s.cacheDir != "" {
		err := writeFlagCache(FlagCachePath(c.s.cacheDir, string(c.key)), fc, c.s.redactedFlagsURL)
		if err != nil {
			c.s.logger.Warn("could not write the flag cache", "error", err)
		}
		c.mu.Lock()
		c.status.CacheError = err
		c.mu.Unlock()
	}
	c.once.Do(func() { close(c.ready) })
	c.callOnUpdate(prev, next)
	return nil
}

// callOnUpdate calls OnUpdate, if set; applyMu is held.
func (c *LocalClient) callOnUpdate(prev, next *FlagSet) {
	if c.s.onUpdate == nil {
		return
	}
	c.onUpdateG.Store(goid())
	defer c.onUpdateG.Store(0)
	c.s.onUpdate(prev, next)
}

func (c *LocalClient) recordSuccess(fc *flagConfigs, source Source, fs *FlagSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status.State == StateClosed {
		return // an update that raced Close: closed is final
	}
	was := c.status.State
	c.status.State, c.status.Source = StateReady, source
	c.status.LastSuccess, c.status.Flags = fc.fetchedAt, fs.snap.Len()
	if source == SourceCache {
		c.status.State = StateInterrupted
	}
	c.s.notify.stateChanged(was, c.status.State, source, c.status.LastError)
}

func (c *LocalClient) recordError(err error) {
	c.mu.Lock()
	c.status.LastError, c.status.LastErrorAt = err, time.Now()
	if c.status.State == StateReady {
		c.status.State = StateInterrupted
	}
	c.mu.Unlock()
	c.failMu.Do(func() { close(c.failed) })
	c.s.notify.add(StatusEvent{Kind: StatusEventError, Err: err})
	c.s.notify.deliver(c.Status)
}

func (c *LocalClient) setStreaming(on bool) {
	c.mu.Lock()
	c.status.Streaming = on
	c.mu.Unlock()
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

// ErrNotStarted is returned by evaluations before any flags are in use.
var ErrNotStarted = errors.New("local client has no flag configs yet: call Start")

// EvaluateV2 evaluates the named flags and their dependencies (every flag
// when none are named) for user, default variants included. The user is
// not modified.
func (c *LocalClient) EvaluateV2(user *User, flagKeys ...string) (map[string]Variant, error) {
	return c.EvaluateV2WithOptions(user, &EvaluateOptions{FlagKeys: flagKeys})
}

// EvaluateOptions mirrors the Python SDK's: which flags, and whether to
// track exposures for this evaluation.
type EvaluateOptions struct {
	FlagKeys []string
	// TracksExposure sends an exposure event for each variant served,
	// de-duplicated; it needs LocalConfig.ExposureConfig, without which
	// the evaluation fails with ErrExposureNotConfigured.
	TracksExposure bool
}

// EvaluateV2WithOptions is EvaluateV2 with options. After Close it still
// evaluates with the last flags, but tracks nothing.
func (c *LocalClient) EvaluateV2WithOptions(user *User, opts *EvaluateOptions) (map[string]Variant, error) {
	if opts == nil {
		opts = &EvaluateOptions{}
	}
	// Exposures asked for and impossible to send are a mistake the caller
	// must hear of: silently not tracking loses the experiment's data (the
	// official Go SDK dereferences nil instead).
	if opts.TracksExposure && c.s.exposure == nil {
		return nil, ErrExposureNotConfigured
	}
	fs := c.flags.Load()
	if fs == nil {
		return nil, ErrNotStarted
	}
	variants, err := fs.EvaluateV2(user, opts.FlagKeys...)
	if err != nil {
		return nil, err
	}
	// Tracking never blocks: the services only enqueue. They exist once
	// flags do: Start makes them before it fetches any.
	if t := c.life.track.Load(); t != nil {
		if opts.TracksExposure && t.exposure != nil {
			t.exposure.TrackExposure(user, variants)
		}
		if t.assignment != nil {
			t.assignment.TrackAssignment(user, variants)
		}
	}
	return variants, nil
}

// Flush sends the tracking events queued so far, within ctx.
func (c *LocalClient) Flush(ctx context.Context) error {
	if t := c.life.track.Load(); t != nil {
		return t.flush(ctx)
	}
	return nil
}

// EvaluateResults is EvaluateV2 for hot paths: results are appended to dst
// and their Metadata is shared with the engine (read-only), so a warm call
// allocates almost nothing.
func (c *LocalClient) EvaluateResults(user *User, flagKeys []string, dst []eval.Result) ([]eval.Result, error) {
	fs := c.flags.Load()
	if fs == nil {
		return dst, ErrNotStarted
	}
	return fs.EvaluateResults(user, flagKeys, dst)
}

// Evaluate is EvaluateV2 with default and undeployed variants dropped, as
// the Python SDK's evaluate.
//
// Deprecated: use EvaluateV2, which keeps default variants, so a caller can
// tell a flag that served its default from one that was not evaluated.
func (c *LocalClient) Evaluate(user *User, flagKeys ...string) (map[string]Variant, error) {
	v, err := c.EvaluateV2(user, flagKeys...)
	if err != nil {
		return nil, err
	}
	return FilterDefaults(v), nil
}

// FlagMetadata returns a copy of a flag's metadata, or nil.
func (c *LocalClient) FlagMetadata(flagKey string) map[string]any {
	fs := c.flags.Load()
	if fs == nil {
		return nil
	}
	f := fs.snap.Flag(flagKey)
	if f == nil {
		return nil
	}
	out := make(map[string]any, len(f.Metadata))
	for k, v := range f.Metadata {
		out[k] = v
	}
	return out
}

// FetchFlagConfigs fetches the deployment's flag configs once, without
// starting a client: the raw JSON array and its decoded form. Failures that
// a later attempt may not meet (no answer, a malformed body, 429, 5xx) are
// retried with backoff, or after the server's Retry-After, while ctx allows
// (a few times when ctx has no deadline); the error says how many attempts
// were made. With a cache directory configured, the cache is refreshed too.
func (c *LocalClient) FetchFlagConfigs(ctx context.Context) ([]byte, []*eval.Flag, error) {
	fc, f, attempts, _ := retry(ctx, c.flagFetchPolicy(), func(ctx context.Context, _ int) (*flagConfigs, *attemptFailure) {
		return c.attemptFlagConfigs(ctx, true)
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

// backoff is capped exponential backoff with full jitter: a random wait in
// [0, min(max, base*2^(attempt-1))], never below 10 ms so a failure never
// turns into a tight loop.
func backoff(attempt int, base, maxWait time.Duration) time.Duration {
	d := base << min(attempt-1, 30)
	if d <= 0 || d > maxWait {
		d = maxWait
	}
	return max(time.Duration(rand.Int64N(int64(d)+1)), 10*time.Millisecond)
}

// jitter is d ± spread, uniformly.
func jitter(d, spread time.Duration) time.Duration {
	return d - spread + time.Duration(rand.Int64N(int64(2*spread)+1))
}
