package experiment_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/internal/conformance"
	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

const localKey = "server-test-deployment-key"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// noLeaks checks, after every cleanup (clients closed), that no goroutine
// the test started is still running.
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func flagsV(version string) []byte {
	return []byte(`[{"key":"f","metadata":{"flagVersion":` + version + `},"segments":[{"variant":"on"}],"variants":{"on":{"key":"on","value":"v` + version + `"}}}]`)
}

func newLocal(t *testing.T, srv *experimenttest.FlagServer, cfg experiment.LocalConfig) *experiment.LocalClient {
	t.Helper()
	cfg.ServerURL = srv.URL
	if cfg.StreamServerURL == "" {
		cfg.StreamServerURL = srv.URL
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	c, err := experiment.NewLocalClient(srv.Key, &cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func value(t *testing.T, c *experiment.LocalClient) string {
	t.Helper()
	v, err := c.EvaluateV2(&experiment.User{UserID: "u"}, "f")
	require.NoError(t, err)
	return v["f"].Value
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLocalStartAndPoll(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	c := newLocal(t, srv, experiment.LocalConfig{FlagConfigPollingInterval: 20 * time.Millisecond})
	_, err := c.EvaluateV2(&experiment.User{})
	require.ErrorIs(t, err, experiment.ErrNotStarted)
	require.NoError(t, c.Start(t.Context()))
	assert.Equal(t, "v1", value(t, c))
	srv.SetFlags(flagsV("2"))
	eventually(t, "the poll to apply v2", func() bool { return value(t, c) == "v2" })
	assert.Equal(t, experiment.StateReady, c.Status().State)
	require.NoError(t, c.Close())
	assert.Equal(t, experiment.StateClosed, c.Status().State)
}

func TestLocalBadUpdatesKeepLastGood(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	c := newLocal(t, srv, experiment.LocalConfig{FlagConfigPollingInterval: 20 * time.Millisecond})
	require.NoError(t, c.Start(t.Context()))
	srv.Script(experimenttest.Reply{Status: 500}, experimenttest.Reply{Status: 200, Body: "<html>oops</html>"},
		experimenttest.Reply{Status: 200, Body: `[]`}, experimenttest.Reply{Status: 200, Body: `{"not":"a list"}`})
	eventually(t, "a failed update to be recorded", func() bool { return c.Status().LastError != nil })
	assert.Equal(t, "v1", value(t, c), "a failed update replaced the flags")
	// `[]` is a valid (empty) list and does replace them: that is an update.
	srv.SetFlags(flagsV("3"))
	eventually(t, "recovery", func() bool { return value(t, c) == "v3" })
}

func TestLocalUnauthorizedStopsAtOnce(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	c := newLocal(t, srv, experiment.LocalConfig{FlagConfigPollingInterval: 10 * time.Millisecond})
	srv.Key = "a-rotated-key" // the client's key is no longer valid
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := c.Start(ctx)
	require.ErrorIs(t, err, experiment.ErrUnauthorized)
	require.NoError(t, ctx.Err(), "Start waited for its context instead of returning the rejection")
	assert.NotContains(t, err.Error(), localKey)
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, 1, srv.Requests(), "a rejected key was retried")
}

// A key rejected after start ends updates for good: Done says so at once,
// polling or streaming, so that a caller stops trusting the flags in use.
func TestLocalDoneWhenKeyRejectedMidRun(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			noLeaks(t)
			srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
			defer srv.Close()
			srv.EnableStream(stream)
			c := newLocal(t, srv, experiment.LocalConfig{StreamUpdates: stream, FlagConfigPollingInterval: 10 * time.Millisecond})
			require.NoError(t, c.Start(t.Context()))
			select {
			case <-c.Done():
				t.Fatal("Done closed while updates are arriving")
			case <-time.After(50 * time.Millisecond):
			}
			srv.SetDown(http.StatusUnauthorized)
			if stream {
				srv.EnableStream(false) // the stream drops; the fallback poll is rejected
			}
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("Done not closed after the key was rejected")
			}
			require.ErrorIs(t, c.Status().LastError, experiment.ErrUnauthorized)
			assert.Equal(t, "v1", value(t, c), "the last good flags stay usable")
		})
	}
}

// Done is closed by Close even when no updater ran (offline).
func TestLocalDoneAfterCloseOffline(t *testing.T) {
	noLeaks(t)
	_, cacheDir := cachedServer(t)
	c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{CacheDir: cacheDir, Offline: true, Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, c.Start(t.Context()))
	select {
	case <-c.Done():
		t.Fatal("Done closed before Close")
	default:
	}
	require.NoError(t, c.Close())
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed by Close")
	}
}

// cachedServer serves v1 flags and returns a cache directory that a first
// client filled from it.
func cachedServer(t *testing.T) (*experimenttest.FlagServer, string) {
	t.Helper()
	cacheDir := t.TempDir()
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	t.Cleanup(srv.Close)
	first := newLocal(t, srv, experiment.LocalConfig{CacheDir: cacheDir})
	require.NoError(t, first.Start(t.Context()))
	require.NoError(t, first.Close())
	return srv, cacheDir
}

func TestLocalServerDownUsesCache(t *testing.T) {
	noLeaks(t)
	srv, cacheDir := cachedServer(t)
	path := experiment.FlagCachePath(cacheDir, localKey)
	require.FileExists(t, path)
	assert.NotContains(t, path, localKey, "the cache is named by the key")

	srv.Stall(time.Hour) // the server is now unreachable in practice
	c := newLocal(t, srv, experiment.LocalConfig{CacheDir: cacheDir, FlagConfigPollerRequestTimeout: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, c.Start(ctx))
	require.NoError(t, ctx.Err(), "with a cache, Start waited out the retries instead of using it")
	assert.Equal(t, "v1", value(t, c))
	st := c.Status()
	assert.Equal(t, experiment.SourceCache, st.Source)
	assert.Equal(t, experiment.StateInterrupted, st.State)
	assert.False(t, st.LastSuccess.IsZero())
	require.ErrorIs(t, st.LastError, context.DeadlineExceeded)
	assert.Contains(t, st.LastError.Error(), "/sdk/v2/flags?v=0: no response within 50ms")

	srv.Stall(0)
	srv.SetFlags(flagsV("2"))
}

// A server that never answers: Start's error, and with a cache the Status
// that explains the fallback, name the URL and the time that ran out.
func TestLocalStartTimeoutNamesURLAndTimeout(t *testing.T) {
	noLeaks(t)
	srv, cacheDir := cachedServer(t)
	srv.Stall(time.Hour)
	for _, dir := range []string{t.TempDir(), cacheDir} {
		c := newLocal(t, srv, experiment.LocalConfig{CacheDir: dir})
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		err := c.Start(ctx)
		cancel()
		if dir != cacheDir {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, "GET "+srv.URL+"/sdk/v2/flags?v=0: no response within 300ms", err.Error())
			continue
		}
		require.NoError(t, err)
		st := c.Status()
		assert.Equal(t, experiment.SourceCache, st.Source)
		require.Error(t, st.LastError, "the fallback on the cache must say why")
		assert.Equal(t, "GET "+srv.URL+"/sdk/v2/flags?v=0: no response within 300ms", st.LastError.Error())
	}
	srv.Stall(0)
}

// A server that answers but sends its flags too slowly is not said to give
// no response: the error says the response was still being read.
func TestLocalStartTimeoutWhileReading(t *testing.T) {
	noLeaks(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"key":"f",`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{ServerURL: srv.URL, Logger: quiet})
	require.NoError(t, err)
	defer c.Close()
	// The server answers at once; a deadline of a second, not less, so that
	// a loaded machine has the answer's start in hand before it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err = c.Start(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, "GET "+srv.URL+"/sdk/v2/flags?v=0: response still being read after 1s", err.Error())
}

func TestLocalStreamRejectedKey(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", cached), func(t *testing.T) {
			noLeaks(t)
			srv, cacheDir := cachedServer(t)
			if !cached {
				cacheDir = t.TempDir()
			}
			srv.EnableStream(true)
			c := newLocal(t, srv, experiment.LocalConfig{CacheDir: cacheDir, StreamUpdates: true})
			srv.Key = "a-rotated-key"
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			require.ErrorIs(t, c.Start(ctx), experiment.ErrUnauthorized)
			require.NoError(t, ctx.Err(), "Start waited for its context instead of returning the rejection")
			require.Nil(t, c.FlagSet(), "a rejected key must not serve cached flags")
		})
	}
}

func TestLocalRejectedKeyIgnoresCache(t *testing.T) {
	noLeaks(t)
	srv, cacheDir := cachedServer(t)
	c := newLocal(t, srv, experiment.LocalConfig{CacheDir: cacheDir})
	srv.Key = "a-rotated-key" // a revoked key must say so, not serve stale flags
	require.ErrorIs(t, c.Start(t.Context()), experiment.ErrUnauthorized)
	_, err := c.EvaluateV2(&experiment.User{})
	require.ErrorIs(t, err, experiment.ErrNotStarted)
}

func TestLocalServerDownNoCacheFails(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	srv.Close() // connection refused
	c := newLocal(t, srv, experiment.LocalConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := c.Start(ctx)
	require.Error(t, err)
	var fe *experiment.FlagsError
	require.True(t, errors.As(err, &fe), "%v", err)
}

func TestLocalOffline(t *testing.T) {
	dir := t.TempDir()
	c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{Offline: true, CacheDir: dir, Logger: quiet})
	require.NoError(t, err)
	defer c.Close()
	err = c.Start(t.Context())
	require.ErrorIs(t, err, experiment.ErrNoCache)
	require.NotErrorIs(t, err, experiment.ErrCorruptCache)
	assert.Contains(t, err.Error(), experiment.FlagCachePath(dir, localKey), "where the cache was looked for")
}

// A cache that is there but corrupt is told apart from a missing one, and
// named: the caller reports bad local data, not a network failure.
func TestLocalOfflineCorruptCache(t *testing.T) {
	_, cacheDir := cachedServer(t)
	path := experiment.FlagCachePath(cacheDir, localKey)
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	for name, content := range map[string]string{
		"not json":      "not json",
		"cut short":     string(good[:len(good)/2]),
		"other version": `{"version":7,"flags":[]}`,
		"bad flags":     `{"version":1,"flags":[{"key":"f","segments":[{"bucket":{"allocations":[{"range":[1]}]}}]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
			c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{Offline: true, CacheDir: cacheDir, Logger: quiet})
			require.NoError(t, err)
			defer c.Close()
			err = c.Start(t.Context())
			require.ErrorIs(t, err, experiment.ErrCorruptCache)
			require.NotErrorIs(t, err, experiment.ErrNoCache)
			var ce *experiment.CacheError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, path, ce.Path)
			assert.Contains(t, err.Error(), path)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestLocalStreamWithPollingFallback(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	srv.EnableStream(true)
	c := newLocal(t, srv, experiment.LocalConfig{StreamUpdates: true, FlagConfigPollingInterval: 20 * time.Millisecond})
	require.NoError(t, c.Start(t.Context()))
	assert.Equal(t, "v1", value(t, c))
	assert.Equal(t, 0, srv.Requests(), "polled while the stream was up")
	srv.SetFlags(flagsV("2"))
	eventually(t, "the stream to deliver v2", func() bool { return value(t, c) == "v2" })
	assert.True(t, c.Status().Streaming)

	srv.EnableStream(false) // drop it: polling takes over
	srv.SetFlags(flagsV("3"))
	eventually(t, "polling to deliver v3", func() bool { return value(t, c) == "v3" })
	assert.Positive(t, srv.Requests())
	assert.False(t, c.Status().Streaming)
}

func TestLocalOnUpdateAndConcurrentEvaluation(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	var mu sync.Mutex
	var updates []string
	c := newLocal(t, srv, experiment.LocalConfig{FlagConfigPollingInterval: 5 * time.Millisecond,
		OnUpdate: func(prev, next *experiment.FlagSet) {
			mu.Lock()
			defer mu.Unlock()
			v, _ := next.EvaluateV2(&experiment.User{}, "f")
			updates = append(updates, v["f"].Value)
		}})
	require.NoError(t, c.Start(t.Context()))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					if v := value(t, c); !strings.HasPrefix(v, "v") {
						t.Errorf("evaluation saw %q", v)
					}
				}
			}
		}()
	}
	for i := 2; i <= 5; i++ {
		srv.SetFlags(flagsV(string(rune('0' + i))))
		want := "v" + string(rune('0'+i))
		eventually(t, want, func() bool { return value(t, c) == want })
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"v1", "v2", "v3", "v4", "v5"}, updates, "an unchanged poll counted as an update")
}

// TestLocalConformance runs the conformance cases without cohorts through
// the client against the fake server, as the expected results were made.
func TestLocalConformance(t *testing.T) {
	noLeaks(t)
	root := conformanceDir(t)
	dirs, _ := filepath.Glob(filepath.Join(root, "*"))
	for _, dir := range dirs {
		if strings.Contains(dir, "cohorts") {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(dir, "flags.json"))
			require.NoError(t, err)
			srv := experimenttest.NewFlagServer(localKey, body)
			defer srv.Close()
			c := newLocal(t, srv, experiment.LocalConfig{})
			require.NoError(t, c.Start(t.Context()))
			users := readLines(t, filepath.Join(dir, "users.jsonl"))
			expected := readLines(t, filepath.Join(dir, "expected.jsonl"))
			for i, line := range users {
				user, err := experiment.DecodeUser(line)
				require.NoError(t, err)
				got, err := c.EvaluateV2(user)
				require.NoError(t, err)
				var want, have map[string]any
				mustJSON(t, expected[i], &want)
				mustJSON(t, mustMarshal(t, got), &have)
				for _, d := range conformance.DiffResults(want, have) {
					t.Errorf("users.jsonl:%d: %s", i+1, d)
				}
			}
			c.Close()
		})
	}
}

// TestLocalCohortConformance runs the cohort conformance cases through the
// client with cohort sync, flags from the fake flag server and cohorts from
// the fake cohort server (404 for an id without a file), exactly as the
// expected results were made.
func TestLocalCohortConformance(t *testing.T) {
	noLeaks(t)
	root := conformanceDir(t)
	dirs, _ := filepath.Glob(filepath.Join(root, "*cohorts*"))
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(dir, "flags.json"))
			require.NoError(t, err)
			srv := experimenttest.NewFlagServer(localKey, body)
			defer srv.Close()
			cohorts := cohorttest.NewServer("api-key-123", "secret-key-456")
			defer cohorts.Close()
			require.NoError(t, cohorts.AddDir(filepath.Join(dir, "cohorts")))
			c := newLocal(t, srv, experiment.LocalConfig{CacheDir: t.TempDir(), CohortSyncConfig: &experiment.CohortSyncConfig{
				APIKey: "api-key-123", SecretKey: "secret-key-456", CohortServerURL: cohorts.URL}})
			require.NoError(t, c.Start(t.Context()))
			users := readLines(t, filepath.Join(dir, "users.jsonl"))
			expected := readLines(t, filepath.Join(dir, "expected.jsonl"))
			for i, line := range users {
				user, err := experiment.DecodeUser(line)
				require.NoError(t, err)
				got, err := c.EvaluateV2(user)
				require.NoError(t, err)
				var want, have map[string]any
				mustJSON(t, expected[i], &want)
				mustJSON(t, mustMarshal(t, got), &have)
				for _, d := range conformance.DiffResults(want, have) {
					t.Errorf("users.jsonl:%d: %s", i+1, d)
				}
			}
			c.Close()
		})
	}
}

// TestLocalCohortsCachedForOffline: cohorts synced once are used offline.
func TestLocalCohortsCachedForOffline(t *testing.T) {
	noLeaks(t)
	dir := filepath.Join(conformanceDir(t), "05-cohorts")
	body, err := os.ReadFile(filepath.Join(dir, "flags.json"))
	require.NoError(t, err)
	srv := experimenttest.NewFlagServer(localKey, body)
	defer srv.Close()
	cohorts := cohorttest.NewServer("api-key-123", "secret-key-456")
	defer cohorts.Close()
	require.NoError(t, cohorts.AddDir(filepath.Join(dir, "cohorts")))
	cache := t.TempDir()
	sync := &experiment.CohortSyncConfig{APIKey: "api-key-123", SecretKey: "secret-key-456", CohortServerURL: cohorts.URL}
	online := newLocal(t, srv, experiment.LocalConfig{CacheDir: cache, CohortSyncConfig: sync})
	require.NoError(t, online.Start(t.Context()))
	users := readLines(t, filepath.Join(dir, "users.jsonl"))
	var want []map[string]experiment.Variant
	for _, line := range users {
		u, _ := experiment.DecodeUser(line)
		v, err := online.EvaluateV2(u)
		require.NoError(t, err)
		want = append(want, v)
	}
	online.Close()
	cohorts.Close()
	offline := newLocal(t, srv, experiment.LocalConfig{CacheDir: cache, Offline: true, CohortSyncConfig: sync})
	require.NoError(t, offline.Start(t.Context()))
	for i, line := range users {
		u, _ := experiment.DecodeUser(line)
		got, err := offline.EvaluateV2(u)
		require.NoError(t, err)
		assert.Equal(t, want[i], got, "users.jsonl:%d", i+1)
	}
}

// TestLocalExposureTracking: an evaluation with TracksExposure sends one
// exposure per non-default variant, de-duplicated, and Close flushes them.
func TestLocalExposureTracking(t *testing.T) {
	noLeaks(t)
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "flags.json"))
	require.NoError(t, err)
	srv := experimenttest.NewFlagServer(localKey, body)
	defer srv.Close()
	analyticsSrv := analyticstest.NewServer()
	defer analyticsSrv.Close()
	c := newLocal(t, srv, experiment.LocalConfig{ExposureConfig: &experiment.ExposureConfig{
		Config: analytics.Config{APIKey: "analytics-api-key", ServerURL: analyticsSrv.EventsURL(), Logger: quiet}}})
	require.NoError(t, c.Start(t.Context()))
	user := &experiment.User{UserID: "user-1", DeviceID: "device-1", Platform: "iOS"}
	for range 3 { // the same evaluation three times: exposed once
		_, err := c.EvaluateV2WithOptions(user, &experiment.EvaluateOptions{FlagKeys: []string{"dark-mode", "offline-mode"}, TracksExposure: true})
		require.NoError(t, err)
	}
	_, err = c.EvaluateV2(user, "dark-mode") // no TracksExposure: nothing
	require.NoError(t, err)
	require.NoError(t, c.Close())
	events := analyticsSrv.Events()
	require.Len(t, events, 1, "offline-mode is a default variant and is never exposed")
	assert.Contains(t, string(events[0]), `"[Experiment] Flag Key":"dark-mode"`)
}

// scriptedFlagServer answers flag requests with statuses in turn (each with
// an optional Retry-After), then with flags, and counts the requests.
func scriptedFlagServer(t *testing.T, replies ...[2]string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var mu sync.Mutex
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		mu.Lock()
		var reply [2]string
		if len(replies) > 0 {
			reply, replies = replies[0], replies[1:]
		}
		mu.Unlock()
		if reply[0] == "" {
			w.Write(flagsV("1"))
			return
		}
		if reply[1] != "" {
			w.Header().Set("Retry-After", reply[1])
		}
		code, _ := strconv.Atoi(reply[0])
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func fetchFlags(t *testing.T, url string, timeout time.Duration) ([]*eval.Flag, error) {
	t.Helper()
	c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{ServerURL: url, Logger: quiet})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	_, flags, err := c.FetchFlagConfigs(ctx)
	return flags, err
}

// FetchFlagConfigs (flags pull) retries as a remote fetch does: transient
// failures with backoff or the server's Retry-After, within ctx; other 4xx
// never.
func TestFetchFlagConfigsRetries(t *testing.T) {
	t.Run("transient", func(t *testing.T) {
		noLeaks(t)
		srv, n := scriptedFlagServer(t, [2]string{"500"}, [2]string{"429"}, [2]string{"502"})
		flags, err := fetchFlags(t, srv.URL, 20*time.Second)
		require.NoError(t, err)
		assert.Len(t, flags, 1)
		assert.EqualValues(t, 4, n.Load())
	})
	t.Run("Retry-After honoured", func(t *testing.T) {
		noLeaks(t)
		srv, n := scriptedFlagServer(t, [2]string{"503", "1"})
		start := time.Now()
		_, err := fetchFlags(t, srv.URL, 20*time.Second)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), time.Second, "retried before the Retry-After")
		assert.EqualValues(t, 2, n.Load())
	})
	t.Run("Retry-After beyond ctx", func(t *testing.T) {
		noLeaks(t)
		srv, n := scriptedFlagServer(t, [2]string{"503", "30"})
		start := time.Now()
		_, err := fetchFlags(t, srv.URL, 2*time.Second)
		require.Error(t, err)
		assert.Less(t, time.Since(start), time.Second, "waited for a retry that could not happen in time")
		assert.Contains(t, err.Error(), "503 Service Unavailable (Retry-After 30s); no time left for a retry in 30s")
		assert.EqualValues(t, 1, n.Load())
	})
	for _, code := range []string{"400", "401", "404"} {
		t.Run(code+" final", func(t *testing.T) {
			noLeaks(t)
			srv, n := scriptedFlagServer(t, [2]string{code}, [2]string{code})
			_, err := fetchFlags(t, srv.URL, 20*time.Second)
			var fe *experiment.FlagsError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, code, strconv.Itoa(fe.StatusCode))
			assert.EqualValues(t, 1, n.Load(), "a %s was retried", code)
		})
	}
	t.Run("down until ctx ends", func(t *testing.T) {
		noLeaks(t)
		replies := make([][2]string, 1000)
		for i := range replies {
			replies[i][0] = "503"
		}
		srv, n := scriptedFlagServer(t, replies...)
		start := time.Now()
		_, err := fetchFlags(t, srv.URL, 1500*time.Millisecond)
		require.Error(t, err)
		assert.Less(t, time.Since(start), 3*time.Second, "retries outlived ctx")
		var fe *experiment.FlagsError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, int(n.Load()), fe.Attempts)
		assert.Greater(t, fe.Attempts, 1)
		assert.Contains(t, err.Error(), fmt.Sprintf("(%d attempts)", fe.Attempts))
	})
}
