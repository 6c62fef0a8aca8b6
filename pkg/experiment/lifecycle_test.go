package experiment_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

// assertQuiet checks that count stops growing: once every client is closed,
// nothing may reach the server any more. A request written just before
// Close returned may be counted a moment later, hence the settling time.
func assertQuiet(t *testing.T, count func() int) {
	t.Helper()
	// A request written before Close can reach the server's handler later
	// on a loaded machine: wait until none has arrived for 100 ms (a client
	// still retrying every few ms never gets there), then watch 300 ms more.
	before := count()
	for settle := time.Now().Add(5 * time.Second); time.Now().Before(settle); {
		time.Sleep(100 * time.Millisecond)
		now := count()
		if now == before {
			break
		}
		before = now
	}
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, before, count(), "requests reached the server after every client was closed")
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Close while Start waits: no race (-race), no goroutine left (goleak), and
// no request once every client is closed, even for a Start that begins
// only after Close.
func TestLifecycleCloseWhileStarting(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	var starts sync.WaitGroup
	for range 200 {
		c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{ServerURL: srv.URL, Logger: quiet,
			FlagConfigPollingInterval: 10 * time.Millisecond})
		require.NoError(t, err)
		starts.Add(1)
		go func() {
			defer starts.Done()
			if err := c.Start(context.Background()); err != nil && !errors.Is(err, experiment.ErrClosed) {
				t.Errorf("Start racing Close: %v, want nil or ErrClosed", err)
			}
		}()
		require.NoError(t, c.Close())
	}
	starts.Wait()
	assertQuiet(t, srv.Requests)
}

// Start after Close starts nothing and says why; Close again is a no-op.
func TestLifecycleStartAfterClose(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()

	never := newLocal(t, srv, experiment.LocalConfig{FlagConfigPollingInterval: 10 * time.Millisecond})
	require.NoError(t, never.Close())
	require.ErrorIs(t, never.Start(t.Context()), experiment.ErrClosed)
	require.NoError(t, never.Close(), "a second Close")
	require.NoError(t, never.CloseContext(t.Context()), "a third Close")
	assert.True(t, isClosed(never.Done()))
	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, srv.Requests(), "Start after Close fetched flags")

	started := newLocal(t, srv, experiment.LocalConfig{FlagConfigPollingInterval: 10 * time.Millisecond})
	require.NoError(t, started.Start(t.Context()))
	require.NoError(t, started.Close())
	require.ErrorIs(t, started.Start(t.Context()), experiment.ErrClosed)
	assert.Equal(t, "v1", value(t, started), "the last flags stay usable after Close")
	assertQuiet(t, srv.Requests)
}

// A Start that failed is tried again by the next Start, at once rather than
// after the updater's backoff.
func TestLifecycleStartAgainAfterFailure(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	srv.SetDown(503)
	c := newLocal(t, srv, experiment.LocalConfig{}) // retries back off from 1 s up to 30 s
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	var fe *experiment.FlagsError
	require.ErrorAs(t, c.Start(ctx), &fe)

	srv.SetDown(0)
	begin := time.Now()
	require.NoError(t, c.Start(t.Context()))
	assert.Less(t, time.Since(begin), time.Second, "the second Start waited for the updater's backoff")
	assert.Equal(t, "v1", value(t, c))
}

// A rejected key is final: Done is closed, and a later Start says so again
// without asking the server.
func TestLifecycleStartAgainAfterRejectedKey(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	c := newLocal(t, srv, experiment.LocalConfig{FlagConfigPollingInterval: 10 * time.Millisecond})
	srv.Key = "a-rotated-key" // the client's key is no longer valid
	require.ErrorIs(t, c.Start(t.Context()), experiment.ErrUnauthorized)
	require.ErrorIs(t, c.Start(t.Context()), experiment.ErrUnauthorized)
	assert.True(t, isClosed(c.Done()))
	assert.Equal(t, 1, srv.Requests())
	_, err := c.EvaluateV2(&experiment.User{UserID: "u"})
	require.ErrorIs(t, err, experiment.ErrNotStarted)
}

// Offline, a second Start reads the cache again: it may have been written
// since.
func TestLifecycleOfflineStartAgainAfterFailure(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{CacheDir: dir, Offline: true, Logger: quiet})
	require.NoError(t, err)
	defer c.Close()
	require.ErrorIs(t, c.Start(t.Context()), experiment.ErrNoCache)

	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	online := newLocal(t, srv, experiment.LocalConfig{CacheDir: dir})
	require.NoError(t, online.Start(t.Context()))
	require.NoError(t, online.Close())

	require.NoError(t, c.Start(t.Context()))
	assert.Equal(t, "v1", value(t, c))
}

// Concurrent Starts share one attempt: one request, and every caller gets
// its outcome, success or failure.
func TestLifecycleConcurrentStartsShareOneAttempt(t *testing.T) {
	noLeaks(t)
	for _, down := range []bool{false, true} {
		srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
		defer srv.Close()
		srv.Stall(100 * time.Millisecond) // the Starts overlap
		if down {
			srv.SetDown(503)
		}
		c := newLocal(t, srv, experiment.LocalConfig{})
		errs := make(chan error, 16)
		for range cap(errs) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				errs <- c.Start(ctx)
			}()
		}
		for range cap(errs) {
			err := <-errs
			if down {
				var fe *experiment.FlagsError
				assert.ErrorAs(t, err, &fe, "a Start that shared a failed attempt succeeded")
			} else {
				assert.NoError(t, err)
			}
		}
		if !down {
			assert.Equal(t, 1, srv.Requests(), "concurrent Starts each fetched the flags")
		}
		require.NoError(t, c.Close())
	}
}

// Start(context.Background()) without a server or a cache returns after
// DefaultStartTimeout instead of waiting forever.
func TestLifecycleStartDefaultBound(t *testing.T) {
	if testing.Short() {
		t.Skip("waits DefaultStartTimeout")
	}
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	srv.Close() // connection refused
	c := newLocal(t, srv, experiment.LocalConfig{})
	begin := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.Start(context.Background()) }()
	select {
	case err := <-done:
		var fe *experiment.FlagsError
		require.ErrorAs(t, err, &fe)
		assert.InDelta(t, experiment.DefaultStartTimeout.Seconds(), time.Since(begin).Seconds(), 2)
	case <-time.After(experiment.DefaultStartTimeout + 5*time.Second):
		require.NoError(t, c.Close())
		<-done
		t.Fatal("Start(context.Background()) did not return")
	}
}

// LocalConfig.StartTimeout bounds Start; a caller's earlier deadline wins.
func TestLifecycleStartTimeout(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	srv.Close()
	for _, tc := range []struct {
		name          string
		config, given time.Duration
	}{
		{"config", 200 * time.Millisecond, 0},
		{"caller", time.Hour, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newLocal(t, srv, experiment.LocalConfig{StartTimeout: tc.config})
			ctx := context.Background()
			if tc.given > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.given)
				defer cancel()
			}
			begin := time.Now()
			err := c.Start(ctx)
			var fe *experiment.FlagsError
			require.ErrorAs(t, err, &fe)
			assert.Less(t, time.Since(begin), 2*time.Second)
		})
	}
	_, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{StartTimeout: -time.Second})
	require.ErrorContains(t, err, "StartTimeout is negative")
}

// Start, Close, evaluations and the rest, from many goroutines in random
// orders (a fixed seed, so a failure can be replayed): no race, no
// goroutine left, no request after Close, and a closed client stays closed.
func TestLifecycleRandomOrders(t *testing.T) {
	noLeaks(t)
	rng := rand.New(rand.NewPCG(15, 2026))
	analyticsSrv := analyticstest.NewServer()
	defer analyticsSrv.Close()
	var servers []*experimenttest.FlagServer
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	const (
		clients = 150
		workers = 4
		ops     = 6
	)
	type op struct {
		kind  int
		delay time.Duration
	}
	for i := range clients {
		srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
		servers = append(servers, srv)
		srv.EnableStream(i%3 == 0)
		tracks := i%2 == 0
		cfg := &experiment.LocalConfig{ServerURL: srv.URL, StreamServerURL: srv.URL, StreamUpdates: i%3 == 0,
			Logger: quiet, FlagConfigPollingInterval: 5 * time.Millisecond}
		if tracks {
			cfg.ExposureConfig = &experiment.ExposureConfig{Config: analytics.Config{
				APIKey: "analytics-api-key", ServerURL: analyticsSrv.EventsURL(), Logger: quiet, FlushInterval: 5 * time.Millisecond}}
		}
		c, err := experiment.NewLocalClient(localKey, cfg)
		require.NoError(t, err)
		plans := make([][]op, workers)
		for w := range plans {
			for range ops {
				plans[w] = append(plans[w], op{kind: rng.IntN(5), delay: time.Duration(rng.IntN(3000)) * time.Microsecond})
			}
		}
		var wg sync.WaitGroup
		for _, plan := range plans {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user := &experiment.User{UserID: "u", DeviceID: "d"}
				for _, o := range plan {
					time.Sleep(o.delay)
					switch o.kind {
					case 0:
						ctx, cancel := context.WithTimeout(context.Background(), 3*o.delay)
						err := c.Start(ctx)
						cancel()
						if err == nil && c.FlagSet() == nil {
							t.Errorf("client %d: Start returned nil without flags", i)
						}
					case 1:
						if err := c.Close(); err != nil {
							t.Errorf("client %d: Close: %v", i, err)
						}
						if err := c.Start(context.Background()); !errors.Is(err, experiment.ErrClosed) {
							t.Errorf("client %d: Start after Close: %v, want ErrClosed", i, err)
						}
						if !isClosed(c.Done()) {
							t.Errorf("client %d: Done open after Close", i)
						}
					case 2:
						_, err := c.EvaluateV2WithOptions(user, &experiment.EvaluateOptions{TracksExposure: tracks})
						if err != nil && !errors.Is(err, experiment.ErrNotStarted) {
							t.Errorf("client %d: evaluation: %v", i, err)
						}
					case 3:
						_ = c.Status()
						_ = c.FlagSet()
					case 4:
						ctx, cancel := context.WithTimeout(context.Background(), o.delay)
						_ = c.Flush(ctx)
						cancel()
					}
				}
			}()
		}
		wg.Wait()
		require.NoError(t, c.Close())
		require.True(t, isClosed(c.Done()))
	}
	assertQuiet(t, func() int {
		n := 0
		for _, s := range servers {
			n += s.Requests() + s.StreamConnections()
		}
		return n
	})
}

// NewLocalClient starts nothing, tracking included: a client made and
// never started costs no goroutine. A bad tracking config still fails it.
func TestLifecycleNoGoroutineBeforeStart(t *testing.T) {
	noLeaks(t)
	analyticsSrv := analyticstest.NewServer()
	defer analyticsSrv.Close()
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	tracker := analytics.Config{APIKey: "analytics-api-key", ServerURL: analyticsSrv.EventsURL(), Logger: quiet}
	before := goleak.IgnoreCurrent()
	c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{ServerURL: srv.URL, Logger: quiet,
		ExposureConfig:   &experiment.ExposureConfig{Config: tracker},
		AssignmentConfig: &experiment.AssignmentConfig{Config: tracker}})
	require.NoError(t, err)
	goleak.VerifyNone(t, before)
	require.NoError(t, c.Close())

	for _, cfg := range []*experiment.LocalConfig{
		{ExposureConfig: &experiment.ExposureConfig{}},
		{ExposureConfig: &experiment.ExposureConfig{Config: tracker, CacheCapacity: -1}},
		{AssignmentConfig: &experiment.AssignmentConfig{Config: analytics.Config{APIKey: "k", FlushInterval: -1}}},
	} {
		_, err := experiment.NewLocalClient(localKey, cfg)
		require.Error(t, err)
	}
}

// TracksExposure without an ExposureConfig is a mistake the caller hears of.
func TestLifecycleTracksExposureWithoutConfig(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	c := newLocal(t, srv, experiment.LocalConfig{})
	require.NoError(t, c.Start(t.Context()))
	v, err := c.EvaluateV2WithOptions(&experiment.User{UserID: "u"}, &experiment.EvaluateOptions{TracksExposure: true})
	require.ErrorIs(t, err, experiment.ErrExposureNotConfigured)
	assert.Nil(t, v)
}

// CloseContext gives queued events no longer than its ctx, and its error
// says how many were lost and why.
func TestLifecycleCloseContextBoundsTheFlush(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	analyticsSrv := analyticstest.NewServer()
	defer analyticsSrv.Close()
	analyticsSrv.SetDown(503)
	c := newLocal(t, srv, experiment.LocalConfig{ExposureConfig: &experiment.ExposureConfig{Config: analytics.Config{
		APIKey: "analytics-api-key", ServerURL: analyticsSrv.EventsURL(), Logger: quiet}}})
	require.NoError(t, c.Start(t.Context()))
	for _, id := range []string{"a", "b", "c"} {
		_, err := c.EvaluateV2WithOptions(&experiment.User{UserID: id}, &experiment.EvaluateOptions{TracksExposure: true})
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := c.CloseContext(ctx)
	assert.Less(t, time.Since(begin), 2*time.Second, "CloseContext outlived its context")
	var lost *analytics.LostEventsError
	require.ErrorAs(t, err, &lost)
	assert.Equal(t, 3, lost.Failed)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// RemoteClient: fetches, sync and asynchronous, racing Close from many
// goroutines. Each fetch ends (with variants, its error, or
// ErrClosed), nothing is left running, nothing reaches the server
// after Close, and fetches after Close fail at once.
func TestLifecycleRemoteCloseRacesFetches(t *testing.T) {
	remoteLeakCheck(t)
	rng := rand.New(rand.NewPCG(15, 7))
	var servers []*experimenttest.RemoteServer
	for i := range 40 {
		s := newFakeRemote(t)
		servers = append(servers, s)
		if i%2 == 0 {
			s.SetDefaultResponse(&experimenttest.Response{Status: 503}) // fetches retry until Close
		}
		c, err := experiment.NewRemoteClient(remoteKey, &experiment.RemoteConfig{ServerURL: s.URL, Logger: quiet,
			RetryBackoffMin: time.Millisecond, RetryBackoffMax: 5 * time.Millisecond, FetchRetries: 1000})
		require.NoError(t, err)
		closeAfter := time.Duration(rng.IntN(5000)) * time.Microsecond
		var wg sync.WaitGroup
		for w := range 4 {
			async := w%2 == 0
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					var err error
					if async {
						err = (<-c.FetchV2Async(context.Background(), &experiment.User{UserID: "u"}, nil)).Err
					} else {
						_, err = c.FetchV2(context.Background(), &experiment.User{UserID: "u"}, nil)
					}
					var fe *experiment.FetchError
					if err != nil && !errors.Is(err, experiment.ErrClosed) && !errors.As(err, &fe) {
						t.Errorf("remote client %d: fetch: %v", i, err)
					}
				}
			}()
		}
		time.Sleep(closeAfter)
		begin := time.Now()
		require.NoError(t, c.Close())
		assert.Less(t, time.Since(begin), time.Second, "Close waited for retrying fetches instead of canceling them")
		_, err = c.FetchV2(context.Background(), &experiment.User{UserID: "u"}, nil)
		require.ErrorIs(t, err, experiment.ErrClosed)
		require.ErrorIs(t, (<-c.FetchV2Async(context.Background(), &experiment.User{UserID: "u"}, nil)).Err, experiment.ErrClosed)
		require.NoError(t, c.Close(), "a second Close")
		wg.Wait()
	}
	assertQuiet(t, func() int {
		n := 0
		for _, s := range servers {
			n += len(s.Requests())
		}
		return n
	})
}

// closeWatch is an OnStatusChange (and OnUpdate) that fails the test when
// called once Close has returned: the docs promise no call then.
type closeWatch struct {
	t        *testing.T
	returned atomic.Bool
}

func (w *closeWatch) onStatus(ev experiment.StatusEvent) {
	if w.returned.Load() {
		w.t.Errorf("OnStatusChange(%v) called after Close returned", ev.Kind)
	}
}

func (w *closeWatch) onUpdate(_, _ *experiment.FlagSet) {
	if w.returned.Load() {
		w.t.Errorf("OnUpdate called after Close returned")
	}
}

// Close while a Start with a cache waits for a slow server (online) or
// reads the cache (offline): once Close returned, no callback is made, by
// Start's goroutine either, and Status stays StateClosed, whatever Start
// does next.
func TestLifecycleCloseDuringCacheStart(t *testing.T) {
	noLeaks(t)
	srv, dir := cachedServer(t)
	srv.Stall(time.Hour) // slow: Start waits until Close
	for i := range 60 {
		w := &closeWatch{t: t}
		c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{ServerURL: srv.URL, Logger: quiet,
			CacheDir: dir, Offline: i%3 == 0, FlagConfigPollerRequestTimeout: time.Minute,
			OnStatusChange: w.onStatus, OnUpdate: w.onUpdate})
		require.NoError(t, err)
		started := make(chan error, 1)
		go func() { started <- c.Start(context.Background()) }()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		require.NoError(t, c.Close())
		w.returned.Store(true)
		assert.Equal(t, experiment.StateClosed, c.Status().State, "run %d: right after Close", i)
		err = <-started
		if err != nil {
			require.ErrorIs(t, err, experiment.ErrClosed, "run %d", i)
		}
		assert.Equal(t, experiment.StateClosed, c.Status().State, "run %d: once Start returned", i)
	}
}

// Close called from OnStatusChange, on the updater's goroutine, or from
// OnUpdate, returns at once (with an error: the docs forbid it) instead of
// waiting for itself forever, and every goroutine ends once the callback
// returns; a later Close returns too.
func TestLifecycleCloseFromCallback(t *testing.T) {
	for _, from := range []string{"OnStatusChange", "OnUpdate"} {
		t.Run(from, func(t *testing.T) {
			noLeaks(t)
			srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
			defer srv.Close()
			var c atomic.Pointer[experiment.LocalClient]
			closed := make(chan error, 1)
			var once sync.Once
			closeNow := func() {
				once.Do(func() { closed <- c.Load().CloseContext(context.Background()) })
			}
			cfg := &experiment.LocalConfig{ServerURL: srv.URL, Logger: quiet, FlagConfigPollingInterval: 10 * time.Millisecond}
			if from == "OnUpdate" {
				cfg.OnUpdate = func(_, _ *experiment.FlagSet) { closeNow() }
			} else {
				cfg.OnStatusChange = func(experiment.StatusEvent) { closeNow() }
			}
			cl, err := experiment.NewLocalClient(localKey, cfg)
			require.NoError(t, err)
			c.Store(cl)
			go func() { _ = cl.Start(context.Background()) }()
			select {
			case err := <-closed:
				require.Error(t, err, "Close from a callback says it did not wait for itself")
			case <-time.After(10 * time.Second): // a deadlock, not a slow machine
				t.Fatal("Close called from " + from + " did not return within 10 s")
			}
			later := make(chan error, 1)
			go func() { later <- cl.Close() }()
			select {
			case err := <-later:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("a later Close did not return within 10 s")
			}
			assert.Equal(t, experiment.StateClosed, cl.Status().State)
			assert.True(t, isClosed(cl.Done()))
		})
	}
}

// A callback under way on another goroutine when Close is called is
// waited for: once Close returned, no callback is running.
func TestLifecycleCloseWaitsForCallbackUnderWay(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	var running atomic.Bool
	entered := make(chan struct{})
	var once sync.Once
	c := newLocal(t, srv, experiment.LocalConfig{OnStatusChange: func(experiment.StatusEvent) {
		running.Store(true)
		once.Do(func() { close(entered) })
		time.Sleep(100 * time.Millisecond)
		running.Store(false)
	}})
	go func() { _ = c.Start(context.Background()) }()
	<-entered
	require.NoError(t, c.Close())
	assert.False(t, running.Load(), "a callback still ran after Close returned")
}
