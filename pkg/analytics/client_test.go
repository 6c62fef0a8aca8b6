package analytics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/internal/redact"
	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
)

// evtAPIKey is the fake analytics key; no log line may contain it.
const evtAPIKey = "analytics-Key-0123456789abcdef"

// evtLeakCheck fails the test if a goroutine it started outlives its
// cleanups (clients closed, servers stopped). Call it first.
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

// newEvtClient starts a client that is closed, and whose log is checked
// for the API key, when the test ends.
func newEvtClient(t *testing.T, cfg analytics.Config, log *evtLog) *analytics.Client {
	t.Helper()
	tr, err := analytics.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.Close(ctx)
		assert.NotContains(t, log.String(), evtAPIKey, "the API key leaked into the log")
	})
	return tr
}

func evtEvents(from, n int) []analytics.Event {
	out := make([]analytics.Event, n)
	for i := range out {
		out[i] = analytics.Event{
			EventType: "test event", UserID: fmt.Sprintf("user-%03d", from+i),
			InsertID: fmt.Sprintf("insert-%03d", from+i), Time: 1700000000000,
		}
	}
	return out
}

// evtUserIDs lists the user_id of each event the server ingested.
func evtUserIDs(srv *analyticstest.Server) []string {
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
func evtBatchSizes(srv *analyticstest.Server) (sizes, statuses []int) {
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

func TestClientWireFormat(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	minID := 1
	cfg.MinIDLength = &minID
	cfg.Library = "experiment-go-cli/test"
	tr := newEvtClient(t, cfg, log)

	tr.Track(analytics.Event{EventType: "e", UserID: "u1", Time: 1700000000000, InsertID: "i1"})
	require.NoError(t, tr.Flush(t.Context()))

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, analyticstest.Path, r.Path)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, http.StatusOK, r.Status)
	assert.JSONEq(t, `{"api_key":"`+evtAPIKey+`","events":[{"event_type":"e","user_id":"u1","insert_id":"i1",
		"time":1700000000000,"library":"experiment-go-cli/test"}],"options":{"min_id_length":1}}`, string(r.Body))
	assert.Equal(t, analytics.Stats{Sent: 1}, tr.Stats())
}

func TestClientOmitsOptionsAndFillsDefaults(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.Now = newEvtClock(1700000000123).Now
	tr := newEvtClient(t, cfg, log)

	tr.Track(analytics.Event{EventType: "e", DeviceID: "device-1"})
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

func TestClientBatchesBySize(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.FlushQueueSize = 3
	tr := newEvtClient(t, cfg, log)

	// Full batches go out without a flush; the remainder waits.
	tr.Track(evtEvents(0, 7)...)
	evtEventually(t, "two full batches", func() bool { return tr.Stats().Sent == 6 })
	assert.Equal(t, analytics.Stats{Sent: 6, Queued: 1}, tr.Stats())
	require.NoError(t, tr.Flush(t.Context()))

	sizes, _ := evtBatchSizes(srv)
	assert.Equal(t, []int{3, 3, 1}, sizes)
	// The two full batches are sent in parallel: in either order.
	assert.ElementsMatch(t, evtUsers(0, 7), evtUserIDs(srv), "events arrive once")
	assert.Equal(t, analytics.Stats{Sent: 7}, tr.Stats())
}

func TestClientOneRequestAtATimeKeepsTheOrder(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.FlushQueueSize = 3
	cfg.MaxConcurrentRequests = 1
	tr := newEvtClient(t, cfg, log)

	tr.Track(evtEvents(0, 20)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, evtUsers(0, 20), evtUserIDs(srv), "events arrive once, in order")
}

func TestClientBatchesByInterval(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.FlushInterval = 20 * time.Millisecond
	tr := newEvtClient(t, cfg, log)

	tr.Track(evtEvents(0, 2)...)
	evtEventually(t, "the interval flush", func() bool { return len(srv.Events()) == 2 })
	sizes, _ := evtBatchSizes(srv)
	assert.Equal(t, []int{2}, sizes)
}

func TestClientUsesTheBatchEndpoint(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.ServerURL = srv.BatchURL()
	tr := newEvtClient(t, cfg, log)
	tr.Track(evtEvents(0, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	require.Len(t, srv.Requests(), 1)
	assert.Equal(t, analyticstest.BatchPath, srv.Requests()[0].Path)
}

func TestClientRetries503And429(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusRequestTimeout} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			evtLeakCheck(t)
			srv := newEvtServer(t)
			srv.Script(analyticstest.Reply{Status: status}, analyticstest.Reply{Status: status})
			log := &evtLog{}
			tr := newEvtClient(t, evtConfig(srv, log), log)

			tr.Track(evtEvents(0, 3)...)
			require.NoError(t, tr.Flush(t.Context()))
			_, statuses := evtBatchSizes(srv)
			assert.Equal(t, []int{status, status, 200}, statuses)
			assert.Equal(t, evtUsers(0, 3), evtUserIDs(srv))
			assert.Equal(t, analytics.Stats{Sent: 3}, tr.Stats())
		})
	}
}

func TestClientRetriesTransportErrors(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
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
	tr := newEvtClient(t, cfg, log)
	tr.Track(evtEvents(0, 2)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, evtUsers(0, 2), evtUserIDs(srv))
	assert.Equal(t, 2, tr.Stats().Sent)
}

type evtRoundTripper func(*http.Request) (*http.Response, error)

func (f evtRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestClientHonoursRetryAfter(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(analyticstest.Reply{Status: 429, Header: http.Header{"Retry-After": {"1"}}})
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)

	start := time.Now()
	tr.Track(evtEvents(0, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "Retry-After: 1 was not waited for")
	assert.Equal(t, 1, tr.Stats().Sent)
}

func TestClientGivesUpAfterMaxRetries(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(http.StatusBadGateway)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.FlushMaxRetries = 2
	tr := newEvtClient(t, cfg, log)

	tr.Track(evtEvents(0, 4)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Len(t, srv.Requests(), 3, "first attempt and two retries")
	assert.Equal(t, analytics.Stats{Failed: 4}, tr.Stats())
	assert.Contains(t, log.String(), "giving up on events after retries")
	assert.Contains(t, log.String(), "events=4")

	// The client goes on: the next batch is sent once the server is back.
	srv.SetDown(0)
	tr.Track(evtEvents(4, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, evtUsers(4, 1), evtUserIDs(srv))
}

func TestClientNoRetriesWhenNegative(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(http.StatusServiceUnavailable)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.FlushMaxRetries = -1
	tr := newEvtClient(t, cfg, log)
	tr.Track(evtEvents(0, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Len(t, srv.Requests(), 1)
	assert.Equal(t, 1, tr.Stats().Failed)
}

func TestClient413SplitsTheBatch(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetMaxEvents(2)
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)

	tr.Track(evtEvents(0, 5)...)
	require.NoError(t, tr.Flush(t.Context()))
	sizes, statuses := evtBatchSizes(srv)
	assert.Equal(t, []int{5, 2, 3, 1, 2}, sizes)
	assert.Equal(t, []int{413, 200, 413, 200, 200}, statuses)
	assert.Equal(t, evtUsers(0, 5), evtUserIDs(srv), "every event arrives once, in order")
	assert.Equal(t, analytics.Stats{Sent: 5}, tr.Stats())
}

func TestClient413OfOneEventFails(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(analyticstest.Reply{Status: 413}, analyticstest.Reply{Status: 413})
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)

	tr.Track(evtEvents(0, 2)...)
	require.NoError(t, tr.Flush(t.Context()))
	// [0 1] 413 -> [0] 413 (given up) -> [1] 200
	sizes, statuses := evtBatchSizes(srv)
	assert.Equal(t, []int{2, 1, 1}, sizes)
	assert.Equal(t, []int{413, 413, 200}, statuses)
	assert.Equal(t, evtUsers(1, 1), evtUserIDs(srv))
	assert.Equal(t, analytics.Stats{Sent: 1, Failed: 1}, tr.Stats())
	assert.Contains(t, log.String(), "event too large")
}

func TestClient400DropsOnlyInvalidEvents(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	reply := analyticstest.InvalidEventsReply(map[string][]int{"time": {1, 3}, "event_type": {3}})
	srv.Script(reply)
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)

	tr.Track(evtEvents(0, 5)...)
	require.NoError(t, tr.Flush(t.Context()))
	sizes, statuses := evtBatchSizes(srv)
	assert.Equal(t, []int{5, 3}, sizes)
	assert.Equal(t, []int{400, 200}, statuses)
	assert.Equal(t, []string{"user-000", "user-002", "user-004"}, evtUserIDs(srv))
	assert.Equal(t, analytics.Stats{Sent: 3, Failed: 2}, tr.Stats())
	assert.Contains(t, log.String(), "level=WARN")
	assert.Contains(t, log.String(), "dropped invalid events")
	assert.Contains(t, log.String(), "fields=\"[event_type time]\"")
}

func TestClient400MissingFieldsByTheFake(t *testing.T) {
	// Amplitude's own validation, as the fake does it: events given to
	// Track directly with a non-numeric time cannot be built, so the
	// request is altered on its way out.
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
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
	tr := newEvtClient(t, cfg, log)
	tr.Track(evtEvents(0, 3)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, []string{"user-000", "user-002"}, evtUserIDs(srv))
	assert.Equal(t, analytics.Stats{Sent: 2, Failed: 1}, tr.Stats())
}

func TestClient400WithoutIndicesDropsTheBatch(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.RequireAPIKey("the-right-analytics-key")
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)

	tr.Track(evtEvents(0, 2)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Len(t, srv.Requests(), 1, "an invalid key is not retried")
	assert.Equal(t, analytics.Stats{Failed: 2}, tr.Stats())
	// The server quotes the key; the log shows it redacted.
	assert.Contains(t, log.String(), "Invalid API key: "+redact.Key(evtAPIKey))

	// Close says the key was the reason, without the key.
	err := tr.Close(t.Context())
	var lost *analytics.LostEventsError
	require.ErrorAs(t, err, &lost)
	assert.Equal(t, 2, lost.Failed)
	assert.ErrorIs(t, err, analytics.ErrAPIKeyRejected)
	assert.NotContains(t, err.Error(), evtAPIKey)
	assert.Contains(t, err.Error(), "status=400")
}

func TestClientLossErrorIsOneRedactedLine(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(analyticstest.Reply{Status: http.StatusBadRequest,
		Body: `{"code":400,"error":"Request missing required field","missing_field":"api_key ` + evtAPIKey + `\nINJECTED"}`})
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)
	tr.Track(evtEvents(0, 1)...)
	err := tr.Close(t.Context())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), evtAPIKey)
	assert.NotContains(t, err.Error(), "\n")
	assert.NotContains(t, log.String(), evtAPIKey)
}

func TestClientOutageIsNotAKeyRejection(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(http.StatusServiceUnavailable)
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)
	tr.Track(evtEvents(0, 2)...)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := tr.Close(ctx)
	var lost *analytics.LostEventsError
	require.ErrorAs(t, err, &lost)
	assert.NotErrorIs(t, err, analytics.ErrAPIKeyRejected)
	require.Error(t, lost.Last)
	assert.Contains(t, lost.Last.Error(), "status=503")
}

func TestClientOtherClientErrorsAreNotRetried(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(analyticstest.Reply{Status: http.StatusForbidden})
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)
	tr.Track(evtEvents(0, 2)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Len(t, srv.Requests(), 1)
	assert.Equal(t, analytics.Stats{Failed: 2}, tr.Stats())
}

func TestClient429DropsEventsOverDailyQuota(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(analyticstest.Reply{Status: 429,
		Body: `{"code":429,"error":"Too many requests for some devices and users","throttled_events":[1],"exceeded_daily_quota_users":{"user-001":1000}}`})
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)
	tr.Track(evtEvents(0, 3)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, []string{"user-000", "user-002"}, evtUserIDs(srv))
	assert.Equal(t, analytics.Stats{Sent: 2, Failed: 1}, tr.Stats())
}

func TestLostEventsError(t *testing.T) {
	err := error(&analytics.LostEventsError{Dropped: 2, Failed: 3, Err: context.DeadlineExceeded})
	assert.Equal(t, "5 events lost (2 dropped from a full queue, 3 not delivered): context deadline exceeded", err.Error())
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 5, analytics.Stats{Dropped: 2, Failed: 3, Sent: 9}.Lost())

	err = &analytics.LostEventsError{Failed: 1, Last: fmt.Errorf("%w: request rejected", analytics.ErrAPIKeyRejected)}
	assert.Equal(t, "1 events lost (0 dropped from a full queue, 1 not delivered); last: API key rejected: request rejected", err.Error())
	assert.ErrorIs(t, err, analytics.ErrAPIKeyRejected)
}

// evtInsertIDs counts the insert_id of each event the server ingested.
func evtInsertIDs(t *testing.T, srv *analyticstest.Server) map[string]int {
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
