package experiment_test

// Helpers of the tests of exposure and assignment tracking: a fake
// analytics server, an analytics config sending to it, a clock, a log and
// golden files. Package analytics has its own for the client itself.

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
)

var updateEventGoldens = flag.Bool("update-events", false, "rewrite the golden files under testdata/events")

// evtAPIKey is the fake analytics key; no log line may contain it.
const evtAPIKey = "analytics-Key-0123456789abcdef"

// evtLeakCheck fails the test if a goroutine it started outlives its
// cleanups (services closed, servers stopped). Call it first.
func evtLeakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// evtClock is an injectable clock.
type evtClock struct {
	mu sync.Mutex
	t  time.Time
}

func newEvtClock(ms int64) *evtClock { return &evtClock{t: time.UnixMilli(ms)} }

func (c *evtClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *evtClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// evtLog collects log output.
type evtLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *evtLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *evtLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *evtLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newEvtServer(t *testing.T) *analyticstest.Server {
	t.Helper()
	s := analyticstest.NewServer()
	t.Cleanup(s.Close)
	return s
}

// evtConfig sends to srv, never on a timer, with millisecond
// backoffs, logging into log.
func evtConfig(srv *analyticstest.Server, log *evtLog) analytics.Config {
	return analytics.Config{
		APIKey:          evtAPIKey,
		ServerURL:       srv.EventsURL(),
		FlushInterval:   time.Hour,
		RetryBackoffMin: time.Millisecond,
		RetryBackoffMax: 4 * time.Millisecond,
		Logger:          log.logger(),
	}
}

// evtGolden compares got with testdata/events/name, rewriting it under
// -update-events.
func evtGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "events", name)
	if *updateEventGoldens {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./pkg/experiment -run %s -update-events to create it", t.Name())
	require.Equal(t, string(want), string(got), "golden file %s differs (review, then -update-events)", path)
}

// evtIndent pretty-prints a JSON body byte for byte: same keys, order and
// numbers, only white space added.
func evtIndent(t *testing.T, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Indent(&buf, body, "", "  "))
	buf.WriteByte('\n')
	return buf.Bytes()
}

type evtRoundTripper func(*http.Request) (*http.Response, error)

func (f evtRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// evtHeldTransport holds every request until release is closed.
func evtHeldTransport(arrived chan<- struct{}, release <-chan struct{}) *http.Client {
	return &http.Client{Transport: evtRoundTripper(func(r *http.Request) (*http.Response, error) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
}

// evtHeldBlocking is a blocking analytics config against srv, sending one
// request at a time, with queue and batch of n events, whose requests are
// held until release is closed (arrived hears of the first): the first
// batch stays in flight and the next n events fill the queue, so the one
// after waits for room.
func evtHeldBlocking(t *testing.T, n int) (srv *analyticstest.Server, cfg analytics.Config, log *evtLog, arrived chan struct{}, release chan struct{}) {
	srv = newEvtServer(t)
	log = &evtLog{}
	cfg = evtConfig(srv, log)
	cfg.Overflow = analytics.OverflowBlock
	cfg.QueueCapacity = n
	cfg.FlushQueueSize = n
	cfg.MaxConcurrentRequests = 1
	arrived, release = make(chan struct{}, 1), make(chan struct{})
	cfg.HTTPClient = evtHeldTransport(arrived, release)
	return srv, cfg, log, arrived, release
}
