package experiment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

var updateEventGoldens = flag.Bool("update-events", false, "rewrite the golden files under testdata/events")

// evtAPIKey is the fake analytics key; no log line may contain it.
const evtAPIKey = "analytics-Key-0123456789abcdef"

// evtLeakCheck fails the test if a goroutine it started outlives its
// cleanups (trackers closed, servers stopped). Call it first.
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

func newEvtServer(t *testing.T) *experimenttest.AnalyticsServer {
	t.Helper()
	s := experimenttest.NewAnalyticsServer()
	t.Cleanup(s.Close)
	return s
}

// evtTrackerConfig sends to srv, never on a timer, with millisecond
// backoffs, logging into log.
func evtTrackerConfig(srv *experimenttest.AnalyticsServer, log *evtLog) experiment.TrackerConfig {
	return experiment.TrackerConfig{
		APIKey:          evtAPIKey,
		ServerURL:       srv.EventsURL(),
		FlushInterval:   time.Hour,
		RetryBackoffMin: time.Millisecond,
		RetryBackoffMax: 4 * time.Millisecond,
		Logger:          log.logger(),
	}
}

// newEvtTracker starts a tracker that is closed, and whose log is checked
// for the API key, when the test ends.
func newEvtTracker(t *testing.T, cfg experiment.TrackerConfig, log *evtLog) *experiment.Tracker {
	t.Helper()
	tr, err := experiment.NewTracker(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.Close(ctx)
		assert.NotContains(t, log.String(), evtAPIKey, "the API key leaked into the log")
	})
	return tr
}

func evtEvents(from, n int) []experiment.Event {
	out := make([]experiment.Event, n)
	for i := range out {
		out[i] = experiment.Event{
			EventType: "test event", UserID: fmt.Sprintf("user-%03d", from+i),
			InsertID: fmt.Sprintf("insert-%03d", from+i), Time: 1700000000000,
		}
	}
	return out
}

// evtUserIDs lists the user_id of each event the server ingested.
func evtUserIDs(srv *experimenttest.AnalyticsServer) []string {
	var ids []string
	for _, e := range srv.DecodedEvents() {
		id, _ := e["user_id"].(string)
		ids = append(ids, id)
	}
	return ids
}

func evtUsers(from, n int) []string {
	var ids []string
	for _, e := range evtEvents(from, n) {
		ids = append(ids, e.UserID)
	}
	return ids
}

// evtBatchSizes lists the number of events of each request, and statuses.
func evtBatchSizes(srv *experimenttest.AnalyticsServer) (sizes, statuses []int) {
	for _, r := range srv.Requests() {
		sizes = append(sizes, len(r.Events))
		statuses = append(statuses, r.Status)
	}
	return sizes, statuses
}

func evtEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
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

func TestTrackerWireFormat(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	minID := 1
	cfg.MinIDLength = &minID
	cfg.Library = "experiment-go-cli/test"
	tr := newEvtTracker(t, cfg, log)

	tr.Track(experiment.Event{EventType: "e", UserID: "u1", Time: 1700000000000, InsertID: "i1"})
	require.NoError(t, tr.Flush(t.Context()))

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, experimenttest.AnalyticsPath, r.Path)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, http.StatusOK, r.Status)
	assert.JSONEq(t, `{"api_key":"`+evtAPIKey+`","events":[{"event_type":"e","user_id":"u1","insert_id":"i1",
		"time":1700000000000,"library":"experiment-go-cli/test"}],"options":{"min_id_length":1}}`, string(r.Body))
	assert.Equal(t, experiment.TrackerStats{Sent: 1}, tr.Stats())
}

func TestTrackerOmitsOptionsAndFillsDefaults(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.Now = newEvtClock(1700000000123).Now
	tr := newEvtTracker(t, cfg, log)

	tr.Track(experiment.Event{EventType: "e", DeviceID: "device-1"})
	require.NoError(t, tr.Flush(t.Context()))
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.NotContains(t, string(reqs[0].Body), "options")
	var ev map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].Events[0], &ev))
	assert.Equal(t, 1700000000123.0, ev["time"])
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, ev["insert_id"])
	assert.Regexp(t, `^experiment-go/`, ev["library"])
}

func TestTrackerBatchesBySize(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushQueueSize = 3
	tr := newEvtTracker(t, cfg, log)

	// Full batches go out without a flush; the remainder waits.
	tr.Track(evtEvents(0, 7)...)
	evtEventually(t, "two full batches", func() bool { return tr.Stats().Sent == 6 })
	assert.Equal(t, experiment.TrackerStats{Sent: 6, Queued: 1}, tr.Stats())
	require.NoError(t, tr.Flush(t.Context()))

	sizes, _ := evtBatchSizes(srv)
	assert.Equal(t, []int{3, 3, 1}, sizes)
	// The two full batches are sent in parallel: in either order.
	assert.ElementsMatch(t, evtUsers(0, 7), evtUserIDs(srv), "events arrive once")
	assert.Equal(t, experiment.TrackerStats{Sent: 7}, tr.Stats())
}

func TestTrackerOneRequestAtATimeKeepsTheOrder(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushQueueSize = 3
	cfg.MaxConcurrentRequests = 1
	tr := newEvtTracker(t, cfg, log)

	tr.Track(evtEvents(0, 20)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, evtUsers(0, 20), evtUserIDs(srv), "events arrive once, in order")
}

func TestTrackerBatchesByInterval(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushInterval = 20 * time.Millisecond
	tr := newEvtTracker(t, cfg, log)

	tr.Track(evtEvents(0, 2)...)
	evtEventually(t, "the interval flush", func() bool { return len(srv.Events()) == 2 })
	sizes, _ := evtBatchSizes(srv)
	assert.Equal(t, []int{2}, sizes)
}

func TestTrackerUsesTheBatchEndpoint(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.ServerURL = srv.BatchURL()
	tr := newEvtTracker(t, cfg, log)
	tr.Track(evtEvents(0, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	require.Len(t, srv.Requests(), 1)
	assert.Equal(t, experimenttest.AnalyticsBatchPath, srv.Requests()[0].Path)
}

func TestTrackerRetries503And429(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusRequestTimeout} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			evtLeakCheck(t)
			srv := newEvtServer(t)
			srv.Script(experimenttest.AnalyticsReply{Status: status}, experimenttest.AnalyticsReply{Status: status})
			log := &evtLog{}
			tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)

			tr.Track(evtEvents(0, 3)...)
			require.NoError(t, tr.Flush(t.Context()))
			_, statuses := evtBatchSizes(srv)
			assert.Equal(t, []int{status, status, 200}, statuses)
			assert.Equal(t, evtUsers(0, 3), evtUserIDs(srv))
			assert.Equal(t, experiment.TrackerStats{Sent: 3}, tr.Stats())
		})
	}
}

func TestTrackerRetriesTransportErrors(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	var calls int
	var mu sync.Mutex
	cfg.HTTPClient = &http.Client{Transport: evtRoundTripper(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			return nil, errors.New("connection reset by peer")
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	tr := newEvtTracker(t, cfg, log)
	tr.Track(evtEvents(0, 2)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, evtUsers(0, 2), evtUserIDs(srv))
	assert.Equal(t, 2, tr.Stats().Sent)
}

type evtRoundTripper func(*http.Request) (*http.Response, error)

func (f evtRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTrackerHonoursRetryAfter(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(experimenttest.AnalyticsReply{Status: 429, Header: http.Header{"Retry-After": {"1"}}})
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)

	start := time.Now()
	tr.Track(evtEvents(0, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "Retry-After: 1 was not waited for")
	assert.Equal(t, 1, tr.Stats().Sent)
}

func TestTrackerGivesUpAfterMaxRetries(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(http.StatusBadGateway)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushMaxRetries = 2
	tr := newEvtTracker(t, cfg, log)

	tr.Track(evtEvents(0, 4)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Len(t, srv.Requests(), 3, "first attempt and two retries")
	assert.Equal(t, experiment.TrackerStats{Failed: 4}, tr.Stats())
	assert.Contains(t, log.String(), "giving up on events after retries")
	assert.Contains(t, log.String(), "events=4")

	// The tracker goes on: the next batch is sent once the server is back.
	srv.SetDown(0)
	tr.Track(evtEvents(4, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, evtUsers(4, 1), evtUserIDs(srv))
}

func TestTrackerNoRetriesWhenNegative(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(http.StatusServiceUnavailable)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushMaxRetries = -1
	tr := newEvtTracker(t, cfg, log)
	tr.Track(evtEvents(0, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Len(t, srv.Requests(), 1)
	assert.Equal(t, 1, tr.Stats().Failed)
}

func TestTracker413SplitsTheBatch(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetMaxEvents(2)
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)

	tr.Track(evtEvents(0, 5)...)
	require.NoError(t, tr.Flush(t.Context()))
	sizes, statuses := evtBatchSizes(srv)
	assert.Equal(t, []int{5, 2, 3, 1, 2}, sizes)
	assert.Equal(t, []int{413, 200, 413, 200, 200}, statuses)
	assert.Equal(t, evtUsers(0, 5), evtUserIDs(srv), "every event arrives once, in order")
	assert.Equal(t, experiment.TrackerStats{Sent: 5}, tr.Stats())
}

func TestTracker413OfOneEventFails(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(experimenttest.AnalyticsReply{Status: 413}, experimenttest.AnalyticsReply{Status: 413})
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)

	tr.Track(evtEvents(0, 2)...)
	require.NoError(t, tr.Flush(t.Context()))
	// [0 1] 413 -> [0] 413 (given up) -> [1] 200
	sizes, statuses := evtBatchSizes(srv)
	assert.Equal(t, []int{2, 1, 1}, sizes)
	assert.Equal(t, []int{413, 413, 200}, statuses)
	assert.Equal(t, evtUsers(1, 1), evtUserIDs(srv))
	assert.Equal(t, experiment.TrackerStats{Sent: 1, Failed: 1}, tr.Stats())
	assert.Contains(t, log.String(), "event too large")
}

func TestTracker400DropsOnlyInvalidEvents(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	reply := experimenttest.InvalidEventsReply(map[string][]int{"time": {1, 3}, "event_type": {3}})
	srv.Script(reply)
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)

	tr.Track(evtEvents(0, 5)...)
	require.NoError(t, tr.Flush(t.Context()))
	sizes, statuses := evtBatchSizes(srv)
	assert.Equal(t, []int{5, 3}, sizes)
	assert.Equal(t, []int{400, 200}, statuses)
	assert.Equal(t, []string{"user-000", "user-002", "user-004"}, evtUserIDs(srv))
	assert.Equal(t, experiment.TrackerStats{Sent: 3, Failed: 2}, tr.Stats())
	assert.Contains(t, log.String(), "level=WARN")
	assert.Contains(t, log.String(), "dropped invalid events")
	assert.Contains(t, log.String(), "fields=\"[event_type time]\"")
}

func TestTracker400MissingFieldsByTheFake(t *testing.T) {
	// Amplitude's own validation, as the fake does it: events given to
	// Track directly with a non-numeric time cannot be built, so the
	// request is altered on its way out.
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.HTTPClient = &http.Client{Transport: evtRoundTripper(func(r *http.Request) (*http.Response, error) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return nil, err
		}
		events := body["events"].([]any)
		for _, e := range events {
			if e.(map[string]any)["user_id"] == "user-001" {
				e.(map[string]any)["time"] = "yesterday"
			}
		}
		data, _ := json.Marshal(body)
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(data))
		r2.ContentLength = int64(len(data))
		return http.DefaultTransport.RoundTrip(r2)
	})}
	tr := newEvtTracker(t, cfg, log)
	tr.Track(evtEvents(0, 3)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, []string{"user-000", "user-002"}, evtUserIDs(srv))
	assert.Equal(t, experiment.TrackerStats{Sent: 2, Failed: 1}, tr.Stats())
}

func TestTracker400WithoutIndicesDropsTheBatch(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.RequireAPIKey("the-right-analytics-key")
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)

	tr.Track(evtEvents(0, 2)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Len(t, srv.Requests(), 1, "an invalid key is not retried")
	assert.Equal(t, experiment.TrackerStats{Failed: 2}, tr.Stats())
	// The server quotes the key; the log shows it redacted.
	assert.Contains(t, log.String(), "Invalid API key: "+experiment.Secret(evtAPIKey).String())

	// Close says the key was the reason, without the key.
	err := tr.Close(t.Context())
	var lost *experiment.LostEventsError
	require.ErrorAs(t, err, &lost)
	assert.Equal(t, 2, lost.Failed)
	assert.ErrorIs(t, err, experiment.ErrAPIKeyRejected)
	assert.NotContains(t, err.Error(), evtAPIKey)
	assert.Contains(t, err.Error(), "status=400")
}

func TestTrackerLossErrorIsOneRedactedLine(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(experimenttest.AnalyticsReply{Status: http.StatusBadRequest,
		Body: `{"code":400,"error":"Request missing required field","missing_field":"api_key ` + evtAPIKey + `\nINJECTED"}`})
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)
	tr.Track(evtEvents(0, 1)...)
	err := tr.Close(t.Context())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), evtAPIKey)
	assert.NotContains(t, err.Error(), "\n")
	assert.NotContains(t, log.String(), evtAPIKey)
}

func TestTrackerOutageIsNotAKeyRejection(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(http.StatusServiceUnavailable)
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)
	tr.Track(evtEvents(0, 2)...)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := tr.Close(ctx)
	var lost *experiment.LostEventsError
	require.ErrorAs(t, err, &lost)
	assert.NotErrorIs(t, err, experiment.ErrAPIKeyRejected)
	require.Error(t, lost.Last)
	assert.Contains(t, lost.Last.Error(), "status=503")
}

func TestTrackerOtherClientErrorsAreNotRetried(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(experimenttest.AnalyticsReply{Status: http.StatusForbidden})
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)
	tr.Track(evtEvents(0, 2)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Len(t, srv.Requests(), 1)
	assert.Equal(t, experiment.TrackerStats{Failed: 2}, tr.Stats())
}

func TestTracker429DropsEventsOverDailyQuota(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(experimenttest.AnalyticsReply{Status: 429,
		Body: `{"code":429,"error":"Too many requests for some devices and users","throttled_events":[1],"exceeded_daily_quota_users":{"user-001":1000}}`})
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)
	tr.Track(evtEvents(0, 3)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, []string{"user-000", "user-002"}, evtUserIDs(srv))
	assert.Equal(t, experiment.TrackerStats{Sent: 2, Failed: 1}, tr.Stats())
}

func TestTrackerFlushesOnClose(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)

	tr.Track(evtEvents(0, 450)...) // two full batches and a partial one
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, tr.Close(ctx))
	assert.ElementsMatch(t, evtUsers(0, 450), evtUserIDs(srv), "nothing queued is lost on Close")
	assert.Equal(t, experiment.TrackerStats{Sent: 450}, tr.Stats())

	// After Close, Track and Flush do nothing and Close again is harmless.
	tr.Track(evtEvents(450, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	require.NoError(t, tr.Close(ctx))
	assert.Equal(t, experiment.TrackerStats{Sent: 450}, tr.Stats())
	assert.Len(t, srv.Events(), 450)
}

func TestTrackerQueueOverflowDropsOldest(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.QueueCapacity = 5
	cfg.FlushQueueSize = 100
	// The full queue is sent, but held until the counts are checked.
	release := make(chan struct{})
	cfg.HTTPClient = evtHeldTransport(nil, release)
	tr := newEvtTracker(t, cfg, log)

	tr.Track(evtEvents(0, 4)...)
	tr.Track(evtEvents(4, 4)...) // 8 events in a queue of 5
	assert.Equal(t, experiment.TrackerStats{Dropped: 3, Queued: 5}, tr.Stats())
	assert.Contains(t, log.String(), "queue full, dropping the oldest events")
	close(release)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := tr.Close(ctx)
	var lost *experiment.LostEventsError
	require.ErrorAs(t, err, &lost)
	assert.Equal(t, 3, lost.Dropped)
	assert.Equal(t, 0, lost.Failed)
	assert.Equal(t, evtUsers(3, 5), evtUserIDs(srv), "the newest events were kept")
	assert.Contains(t, log.String(), "dropped_total=3")
	assert.Contains(t, log.String(), "events lost")
}

func TestTrackerRejectsEventsWithoutIDs(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)
	tr.Track(experiment.Event{EventType: "e"}, experiment.Event{UserID: "u"}, evtEvents(0, 1)[0])
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, evtUsers(0, 1), evtUserIDs(srv))
	assert.Equal(t, experiment.TrackerStats{Sent: 1, Failed: 2}, tr.Stats())
	assert.Contains(t, log.String(), "are not sent")
}

// TestTrackerServerDownCloseIsBounded: the server fails every request for
// the whole run; Close with a 2s deadline returns in about 2s and counts
// every event as lost.
func TestTrackerServerDownCloseIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*experimenttest.AnalyticsServer, *experiment.TrackerConfig)
	}{
		{"503", func(s *experimenttest.AnalyticsServer, _ *experiment.TrackerConfig) { s.SetDown(503) }},
		{"hanging", func(s *experimenttest.AnalyticsServer, _ *experiment.TrackerConfig) {
			replies := make([]experimenttest.AnalyticsReply, 50)
			for i := range replies {
				replies[i] = experimenttest.AnalyticsReply{Status: 200, Delay: time.Minute}
			}
			s.Script(replies...)
		}},
		{"refused", func(s *experimenttest.AnalyticsServer, cfg *experiment.TrackerConfig) {
			s.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evtLeakCheck(t)
			srv := newEvtServer(t)
			log := &evtLog{}
			cfg := evtTrackerConfig(srv, log)
			// The defaults: a retry every 0.1s to 3.2s, 12 retries, 10s
			// per request; far more than Close's deadline.
			cfg.RetryBackoffMin, cfg.RetryBackoffMax = 0, 0
			cfg.FlushQueueSize = 10
			cfg.FlushInterval = 10 * time.Millisecond
			tc.setup(srv, &cfg)
			tr := newEvtTracker(t, cfg, log)

			tr.Track(evtEvents(0, 35)...)
			time.Sleep(50 * time.Millisecond) // a send is under way
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			start := time.Now()
			err := tr.Close(ctx)
			elapsed := time.Since(start)

			assert.Less(t, elapsed, 2500*time.Millisecond, "Close must respect its deadline")
			var lost *experiment.LostEventsError
			require.ErrorAs(t, err, &lost)
			assert.Equal(t, 35, lost.Failed)
			assert.Equal(t, experiment.TrackerStats{Failed: 35}, tr.Stats())
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Contains(t, err.Error(), "35 events lost")
			assert.Contains(t, log.String(), "lost=35")
			assert.Empty(t, srv.Events())
		})
	}
}

// TestTrackerCloseGivesUpTheRestWhenTheServerKeepsFailing: during Close, a
// batch that exhausts its retries ends the flush; the batches behind it are
// given up at once instead of each waiting out its own retries.
func TestTrackerCloseGivesUpTheRestWhenTheServerKeepsFailing(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(503)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushQueueSize = 3
	cfg.FlushMaxRetries = 1
	cfg.MaxConcurrentRequests = 1 // batches one after the other, so one can end the flush
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	cfg.HTTPClient = &http.Client{Transport: evtRoundTripper(func(r *http.Request) (*http.Response, error) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		return http.DefaultTransport.RoundTrip(r)
	})}
	tr := newEvtTracker(t, cfg, log)

	tr.Track(evtEvents(0, 3)...) // a full batch: sent at once, held by the transport
	<-arrived
	tr.Track(evtEvents(3, 6)...)
	closed := make(chan error, 1)
	go func() { closed <- tr.Close(context.Background()) }()
	for { // Flush returns nil at once when the tracker is closing
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		err := tr.Flush(ctx)
		cancel()
		if err == nil {
			break
		}
	}
	close(release)

	var lost *experiment.LostEventsError
	require.ErrorAs(t, <-closed, &lost)
	assert.Equal(t, 9, lost.Failed)
	assert.NotErrorIs(t, lost, context.DeadlineExceeded)
	// batch 1: 2 attempts; batch 2 (at close): 2 attempts; batch 3: none.
	sizes, _ := evtBatchSizes(srv)
	assert.Equal(t, []int{3, 3, 3, 3}, sizes)
	assert.Contains(t, log.String(), "events not sent before close")
}

func TestTrackerFlushRespectsItsContext(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(experimenttest.AnalyticsReply{Status: 200, Delay: time.Minute})
	log := &evtLog{}
	tr := newEvtTracker(t, evtTrackerConfig(srv, log), log)
	tr.Track(evtEvents(0, 1)...)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, tr.Flush(ctx), context.DeadlineExceeded)
	closeCtx, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel2()
	var lost *experiment.LostEventsError
	require.ErrorAs(t, tr.Close(closeCtx), &lost)
	assert.Equal(t, 1, lost.Failed)
}

func TestTrackerConcurrentUse(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushQueueSize = 7
	cfg.FlushInterval = time.Millisecond
	tr := newEvtTracker(t, cfg, log)

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				tr.Track(evtEvents(g*1000+i, 1)...)
				if i%10 == 0 {
					_ = tr.Flush(t.Context())
				}
				_ = tr.Stats()
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, tr.Close(ctx))
	assert.Len(t, srv.Events(), 400)
	assert.Equal(t, experiment.TrackerStats{Sent: 400}, tr.Stats())
}

func TestNewTrackerRejectsBadConfig(t *testing.T) {
	neg := 0
	for _, tc := range []struct {
		name string
		cfg  experiment.TrackerConfig
		want string
	}{
		{"no key", experiment.TrackerConfig{}, "analytics API key is empty"},
		{"blank key", experiment.TrackerConfig{APIKey: "  "}, "analytics API key is empty"},
		{"key with space", experiment.TrackerConfig{APIKey: "abc def-secret"}, "white space"},
		{"bad URL", experiment.TrackerConfig{APIKey: "k", ServerURL: "ftp://x/2/httpapi"}, "want an absolute http or https URL"},
		{"relative URL", experiment.TrackerConfig{APIKey: "k", ServerURL: "/2/httpapi"}, "want an absolute http or https URL"},
		{"zone", experiment.TrackerConfig{APIKey: "k", ServerZone: "APAC"}, `server zone "APAC"`},
		{"batch too big", experiment.TrackerConfig{APIKey: "k", FlushQueueSize: 2001}, "FlushQueueSize 2001: want 1 to 2000"},
		{"negative interval", experiment.TrackerConfig{APIKey: "k", FlushInterval: -time.Second}, "FlushInterval is negative"},
		{"negative capacity", experiment.TrackerConfig{APIKey: "k", QueueCapacity: -1}, "QueueCapacity is negative"},
		{"min id length", experiment.TrackerConfig{APIKey: "k", MinIDLength: &neg}, "MinIDLength 0"},
		{"backoff order", experiment.TrackerConfig{APIKey: "k", RetryBackoffMin: time.Second, RetryBackoffMax: time.Millisecond}, "RetryBackoffMax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := experiment.NewTracker(tc.cfg)
			require.Error(t, err)
			assert.Nil(t, tr)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "experiment: tracker config: "), err.Error())
			assert.NotContains(t, err.Error(), "def-secret")
		})
	}
}

func TestLostEventsError(t *testing.T) {
	err := error(&experiment.LostEventsError{Dropped: 2, Failed: 3, Err: context.DeadlineExceeded})
	assert.Equal(t, "analytics: 5 events lost (2 dropped from a full queue, 3 not delivered): context deadline exceeded", err.Error())
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 5, experiment.TrackerStats{Dropped: 2, Failed: 3, Sent: 9}.Lost())

	err = &experiment.LostEventsError{Failed: 1, Last: fmt.Errorf("%w: request rejected", experiment.ErrAPIKeyRejected)}
	assert.Equal(t, "analytics: 1 events lost (0 dropped from a full queue, 1 not delivered); last: API key rejected: request rejected", err.Error())
	assert.ErrorIs(t, err, experiment.ErrAPIKeyRejected)
}

func TestFakeAnalyticsServer(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return resp.StatusCode, m
	}

	body := `{"api_key":"k","events":[{"event_type":"a","user_id":"u"},{"event_type":"b","device_id":"d","time":1}]}`
	status, m := post(experimenttest.AnalyticsPath, body)
	assert.Equal(t, 200, status)
	assert.Equal(t, 200.0, m["code"])
	assert.Equal(t, 2.0, m["events_ingested"])
	assert.Equal(t, float64(len(body)), m["payload_size_bytes"])
	assert.InDelta(t, float64(time.Now().UnixMilli()), m["server_upload_time"], 60000)
	status, _ = post(experimenttest.AnalyticsBatchPath, `{"api_key":"k","events":[{"event_type":"c","user_id":"u"}]}`)
	assert.Equal(t, 200, status)
	assert.Len(t, srv.Events(), 3)

	// Amplitude's validation, nothing ingested.
	status, m = post(experimenttest.AnalyticsPath, `{"api_key":"k","events":[{"event_type":"a","user_id":"u"},{"user_id":"u","time":"x"},{"event_type":"c"}]}`)
	assert.Equal(t, 400, status)
	assert.Equal(t, map[string]any{"event_type": []any{1.0}, "device_id": []any{2.0}}, m["events_with_missing_fields"])
	assert.Equal(t, map[string]any{"time": []any{1.0}}, m["events_with_invalid_fields"])
	status, m = post(experimenttest.AnalyticsPath, `{"events":[]}`)
	assert.Equal(t, 400, status)
	assert.Equal(t, "api_key", m["missing_field"])
	status, _ = post(experimenttest.AnalyticsPath, `not json`)
	assert.Equal(t, 400, status)
	srv.RequireAPIKey("right")
	_, m = post(experimenttest.AnalyticsPath, `{"api_key":"wrong","events":[]}`)
	assert.Equal(t, "Invalid API key: wrong", m["error"])
	srv.RequireAPIKey("")

	srv.SetMaxEvents(1)
	status, _ = post(experimenttest.AnalyticsPath, body)
	assert.Equal(t, 413, status)
	srv.SetMaxEvents(0)
	srv.SetDown(502)
	status, _ = post(experimenttest.AnalyticsPath, body)
	assert.Equal(t, 502, status)
	srv.Script(experimenttest.AnalyticsReply{}, experimenttest.AnalyticsReply{Status: 429, Body: `{"code":429}`})
	status, _ = post(experimenttest.AnalyticsPath, body) // scripted: normal
	assert.Equal(t, 200, status)
	status, _ = post(experimenttest.AnalyticsPath, body)
	assert.Equal(t, 429, status)
	srv.SetDown(0)

	assert.Len(t, srv.Events(), 5)
	reqs := srv.Requests()
	require.Len(t, reqs, 10)
	assert.Equal(t, "k", reqs[0].APIKey)
	assert.Equal(t, []int{200, 200, 400, 400, 400, 400, 413, 502, 200, 429}, func() []int {
		var s []int
		for _, r := range reqs[:10] {
			s = append(s, r.Status)
		}
		return s
	}())

	resp, err := http.Get(srv.EventsURL())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// evtInsertIDs counts the insert_id of each event the server ingested.
func evtInsertIDs(t *testing.T, srv *experimenttest.AnalyticsServer) map[string]int {
	t.Helper()
	seen := make(map[string]int)
	for _, raw := range srv.Events() {
		var e struct {
			InsertID string `json:"insert_id"`
		}
		require.NoError(t, json.Unmarshal(raw, &e))
		seen[e.InsertID]++
	}
	return seen
}

// TestTrackerBlockingLosesNothing is the tracked batch's contract: with
// OverflowBlock and a healthy but distant server, producers far faster
// than the server wait for room, and every event arrives exactly once.
func TestTrackerBlockingLosesNothing(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetLatency(20 * time.Millisecond)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.Overflow = experiment.OverflowBlock
	cfg.QueueCapacity = 5000 // a twentieth of what is tracked: producers must wait
	cfg.FlushQueueSize = 2000
	tr := newEvtTracker(t, cfg, log)

	const producers, each = 4, 25000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i += 100 {
				assert.NoError(t, tr.TrackContext(t.Context(), evtEvents(p*each+i, 100)...))
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, tr.Close(ctx))

	seen := evtInsertIDs(t, srv)
	assert.Len(t, seen, producers*each, "every event arrives")
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("event %s arrived %d times", id, n)
		}
	}
	assert.Equal(t, experiment.TrackerStats{Sent: producers * each}, tr.Stats())
	assert.Greater(t, srv.PeakConcurrency(), 1, "requests are sent in parallel")
	assert.LessOrEqual(t, srv.PeakConcurrency(), experiment.DefaultMaxConcurrentRequests)
	for _, r := range srv.Requests() {
		assert.LessOrEqual(t, len(r.Events), 2000)
	}
	assert.NotContains(t, log.String(), "level=WARN")
}

// TestTrackerDropsOnlyWhenAskedTo: the default queue, at the same pace,
// drops, and counts and reports what it dropped.
func TestTrackerDropsOnlyWhenAskedTo(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetLatency(20 * time.Millisecond)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.QueueCapacity = 500
	cfg.FlushQueueSize = 100
	tr := newEvtTracker(t, cfg, log)

	for i := 0; i < 5000; i += 100 {
		require.NoError(t, tr.TrackContext(t.Context(), evtEvents(i, 100)...))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := tr.Close(ctx)
	st := tr.Stats()
	var lost *experiment.LostEventsError
	require.ErrorAs(t, err, &lost)
	assert.Positive(t, st.Dropped)
	assert.Equal(t, st.Dropped, lost.Dropped)
	assert.Equal(t, 5000, st.Sent+st.Dropped)
	assert.Len(t, srv.Events(), st.Sent)
	assert.Contains(t, err.Error(), "dropped from a full queue")
}

// TestTrackerRequestsStayUnder1MB: large events make smaller requests,
// each under the API's 1 MB, none lost.
func TestTrackerRequestsStayUnder1MB(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushQueueSize = 2000
	tr := newEvtTracker(t, cfg, log)

	events := evtEvents(0, 3000)
	for i := range events {
		events[i].EventProperties = map[string]any{"pad": strings.Repeat("x", 900)}
	}
	tr.Track(events...)
	require.NoError(t, tr.Flush(t.Context()))

	var total int
	reqs := srv.Requests()
	for _, r := range reqs {
		assert.Less(t, len(r.Body), 1_000_000, "a request of %d events", len(r.Events))
		assert.Equal(t, http.StatusOK, r.Status)
		total += len(r.Events)
	}
	assert.Equal(t, 3000, total)
	// 3 MB in batches of 2000 and 1000 events: 2 MB and 1 MB, each sent in
	// requests filled up to the limit, and a remainder.
	assert.LessOrEqual(t, len(reqs), 5, "requests are filled up to the limit")
	assert.Len(t, evtInsertIDs(t, srv), 3000)
}

// TestTrackerBatchesUpTo2000Events: small events go 2000 to a request.
func TestTrackerBatchesUpTo2000Events(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushQueueSize = 2000
	cfg.QueueCapacity = 10000
	tr := newEvtTracker(t, cfg, log)
	tr.Track(evtEvents(0, 4500)...)
	require.NoError(t, tr.Flush(t.Context()))
	sizes, _ := evtBatchSizes(srv)
	assert.ElementsMatch(t, []int{2000, 2000, 500}, sizes)
}

// TestTrackerFlushWaitsForWhatIsInFlight: a full batch already being sent
// when Flush is called is waited for too.
func TestTrackerFlushWaitsForWhatIsInFlight(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetLatency(100 * time.Millisecond)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushQueueSize = 10
	tr := newEvtTracker(t, cfg, log)

	tr.Track(evtEvents(0, 10)...) // a full batch: sent at once
	evtEventually(t, "the batch in flight", func() bool { return tr.Stats().Queued == 10 && srv.PeakConcurrency() == 1 })
	tr.Track(evtEvents(10, 3)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, experiment.TrackerStats{Sent: 13}, tr.Stats())
	assert.Len(t, srv.Events(), 13)
}

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

// evtHeldBlocking is a blocking tracker's config against srv, sending one
// request at a time, with queue and batch of n events, whose requests are
// held until release is closed (arrived hears of the first): the first
// batch stays in flight and the next n events fill the queue, so the one
// after waits for room.
func evtHeldBlocking(t *testing.T, n int) (srv *experimenttest.AnalyticsServer, cfg experiment.TrackerConfig, log *evtLog, arrived chan struct{}, release chan struct{}) {
	srv = newEvtServer(t)
	log = &evtLog{}
	cfg = evtTrackerConfig(srv, log)
	cfg.Overflow = experiment.OverflowBlock
	cfg.QueueCapacity = n
	cfg.FlushQueueSize = n
	cfg.MaxConcurrentRequests = 1
	arrived, release = make(chan struct{}, 1), make(chan struct{})
	cfg.HTTPClient = evtHeldTransport(arrived, release)
	return srv, cfg, log, arrived, release
}

// TestTrackerBlockingWaitEndsWithItsContext: a producer waiting for room
// returns when its context ends (Ctrl-C in the CLI), and the events it
// could not queue are counted as failed, not forgotten.
func TestTrackerBlockingWaitEndsWithItsContext(t *testing.T) {
	evtLeakCheck(t)
	srv, cfg, log, arrived, release := evtHeldBlocking(t, 10)
	tr := newEvtTracker(t, cfg, log)

	require.NoError(t, tr.TrackContext(t.Context(), evtEvents(0, 10)...)) // sent, held
	<-arrived
	require.NoError(t, tr.TrackContext(t.Context(), evtEvents(10, 10)...)) // fills the queue
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := tr.TrackContext(ctx, evtEvents(20, 5)...)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, experiment.TrackerStats{Failed: 5, Queued: 20}, tr.Stats())

	close(release)
	require.NoError(t, tr.Flush(t.Context()))
	assert.ElementsMatch(t, evtUsers(0, 20), evtUserIDs(srv))
	closeCtx, cancel2 := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel2()
	var lost *experiment.LostEventsError
	require.ErrorAs(t, tr.Close(closeCtx), &lost)
	assert.Equal(t, 5, lost.Failed)
	assert.ErrorIs(t, lost, context.DeadlineExceeded, "why the last events were lost")
}

// TestTrackerBlockedTrackEndsWithClose: Close releases a producer waiting
// for room; TrackContext says its events were not queued.
func TestTrackerBlockedTrackEndsWithClose(t *testing.T) {
	evtLeakCheck(t)
	_, cfg, log, arrived, release := evtHeldBlocking(t, 4)
	tr, err := experiment.NewTracker(cfg)
	require.NoError(t, err)

	tr.Track(evtEvents(0, 4)...)
	<-arrived
	tr.Track(evtEvents(4, 4)...)
	blocked := make(chan error, 1)
	go func() { blocked <- tr.TrackContext(context.Background(), evtEvents(8, 1)...) }()
	select {
	case err := <-blocked:
		t.Fatalf("TrackContext returned %v with the queue full", err)
	case <-time.After(50 * time.Millisecond):
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var lost *experiment.LostEventsError
	require.ErrorAs(t, tr.Close(ctx), &lost)
	err = <-blocked
	assert.ErrorIs(t, err, experiment.ErrTrackerClosed)
	assert.Contains(t, err.Error(), "1 of 1 events not queued")
	assert.Equal(t, 9, lost.Failed, "the held batch, the queued one and the blocked event")
	assert.Equal(t, experiment.TrackerStats{Failed: 9}, tr.Stats())
	assert.Contains(t, log.String(), "the tracker closed while they waited for room", "the loss is not silent")
	close(release)
	assert.ErrorIs(t, tr.TrackContext(t.Context(), evtEvents(9, 1)...), experiment.ErrTrackerClosed)
}

// TestTrackerCloseCountsEveryBlockedEvent: producers waiting for room when
// Close comes, some with part of their events queued, lose the rest as
// failed events, counted before Close returns: Stats adds up to what was
// tracked, Close's error says as much, and each TrackContext says how many
// of its events were not queued.
func TestTrackerCloseCountsEveryBlockedEvent(t *testing.T) {
	evtLeakCheck(t)
	_, cfg, _, arrived, release := evtHeldBlocking(t, 4)
	tr, err := experiment.NewTracker(cfg)
	require.NoError(t, err)

	tr.Track(evtEvents(0, 4)...) // sent, held
	<-arrived
	const producers, each = 6, 3 // 18 events for 4 places: some calls queue part
	tracked := 4 + producers*each
	errs := make(chan error, producers)
	for p := range producers {
		go func() { errs <- tr.TrackContext(context.Background(), evtEvents(4+p*each, each)...) }()
	}
	require.Eventually(t, func() bool { return tr.Stats().Queued == 8 }, 5*time.Second, time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the other producers reach the wait

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var lost *experiment.LostEventsError
	require.ErrorAs(t, tr.Close(ctx), &lost)
	st := tr.Stats() // as Close left them: the producers may not have returned yet
	assert.Equal(t, tracked, st.Sent+st.Failed+st.Dropped+st.Queued, "%+v", st)
	assert.Equal(t, st.Failed, lost.Failed)
	assert.Equal(t, st.Dropped, lost.Dropped)

	notQueued := 0
	for range producers {
		if err := <-errs; err != nil {
			assert.ErrorIs(t, err, experiment.ErrTrackerClosed)
			var left, of int
			_, scanErr := fmt.Sscanf(err.Error(), "analytics: %d of %d events not queued", &left, &of)
			require.NoError(t, scanErr, err.Error())
			assert.Equal(t, each, of)
			notQueued += left
		}
	}
	close(release)
	assert.Equal(t, producers*each-4, notQueued, "each event not queued is reported once")
	assert.Equal(t, st, tr.Stats(), "nothing counted after Close returned")
}

// TestTrackerQueueSmallerThanABatchIsSent: a full queue is sent even when
// it holds less than FlushQueueSize, so a blocked producer goes on.
func TestTrackerQueueSmallerThanABatchIsSent(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.Overflow = experiment.OverflowBlock
	cfg.QueueCapacity = 3
	cfg.FlushQueueSize = 100
	tr := newEvtTracker(t, cfg, log)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, tr.TrackContext(ctx, evtEvents(0, 10)...))
	require.NoError(t, tr.Flush(ctx))
	assert.ElementsMatch(t, evtUsers(0, 10), evtUserIDs(srv))
}

// TestTrackerCloseDeadlineStopsSending: once Close's deadline has passed,
// the batches still queued are given up at once, not each encoded and
// attempted.
func TestTrackerCloseDeadlineStopsSending(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.FlushQueueSize = 10
	cfg.MaxConcurrentRequests = 1
	var mu sync.Mutex
	attempts := 0
	cfg.HTTPClient = &http.Client{Transport: evtRoundTripper(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		attempts++
		mu.Unlock()
		<-r.Context().Done() // a server that never answers
		return nil, r.Context().Err()
	})}
	tr := newEvtTracker(t, cfg, log)
	tr.Track(evtEvents(0, 100)...)
	evtEventually(t, "the first batch sent before Close", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return attempts == 1
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var lost *experiment.LostEventsError
	require.ErrorAs(t, tr.Close(ctx), &lost)
	assert.Equal(t, 100, lost.Failed)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, attempts, "only the batch in flight at the deadline was attempted")
	assert.Contains(t, log.String(), `msg="analytics: events not sent before close" events=90`)
}

// TestTrackerBlockingStopsWaitingForAFailingServer: once a batch has
// failed past its retries, a blocking queue drops instead of holding the
// producer to the pace of the retries; when a request succeeds again, it
// waits again and loses nothing.
func TestTrackerBlockingStopsWaitingForAFailingServer(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(http.StatusServiceUnavailable)
	log := &evtLog{}
	cfg := evtTrackerConfig(srv, log)
	cfg.Overflow = experiment.OverflowBlock
	cfg.QueueCapacity = 10
	cfg.FlushQueueSize = 10
	cfg.MaxConcurrentRequests = 1
	cfg.FlushMaxRetries = 2
	cfg.RetryBackoffMin, cfg.RetryBackoffMax = 20*time.Millisecond, 20*time.Millisecond
	tr := newEvtTracker(t, cfg, log)

	// 1000 events through a queue of 10, each batch failing for 40 ms:
	// waiting for each would take 4 s.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	for i := 0; i < 1000; i += 10 {
		require.NoError(t, tr.TrackContext(ctx, evtEvents(i, 10)...))
	}
	st := tr.Stats()
	assert.Positive(t, st.Dropped)
	assert.Positive(t, st.Failed)
	assert.Contains(t, log.String(), "the server keeps failing")

	// The server is back: the first success ends dropping.
	srv.SetDown(0)
	tr.Track(evtEvents(2000, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Contains(t, log.String(), "the server recovered")
	before := tr.Stats()
	for i := 1000; i < 1500; i += 10 {
		require.NoError(t, tr.TrackContext(t.Context(), evtEvents(i, 10)...))
	}
	require.NoError(t, tr.Flush(t.Context()))
	after := tr.Stats()
	assert.Equal(t, before.Dropped, after.Dropped, "nothing dropped once the server accepts events")
	assert.Equal(t, before.Sent+500, after.Sent)
}
