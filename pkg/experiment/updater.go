package experiment

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// The updater: the goroutine that keeps the flags in use fresh, by the
// stream or by polling, and applies what it fetches.

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

// apply loads configs, unless they are loaded already, and swaps them in,
// unless they are what is in use, after downloading the cohorts they newly
// target. Configs that do not load never replace the ones in use.
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
	// served is of the last flags from the server only: the same flags
	// from the server after the cache's still bring their cohorts up to
	// date, which cached flags never did.
	if prev != nil && c.servedNow(fc.digest) {
		c.recordSuccess(fc, source, prev)
		return nil
	}
	// Loaded unless fetched as the flags in use, which they no longer are.
	if err := fc.load(); err != nil {
		return err
	}
	store := c.initialCohorts
	if source == SourceCache {
		if prev != nil {
			store = prev.cohorts
		}
	} else {
		store = c.cohortsFor(ctx, fc.refs, prev, c.served.Load() == nil)
	}
	next := newFlagSet(fc.snap, nil, store, fc.refs)
	c.flags.Store(next)
	if source != SourceCache {
		served := fc.digest // not &fc.digest, which would keep fc
		c.served.Store(&served)
	}
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
