package analytics_test

// Tests of the queue: overflow, blocking producers, Flush and Close.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
)

func TestClientFlushesOnClose(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)

	tr.Track(evtEvents(0, 450)...) // two full batches and a partial one
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, tr.Close(ctx))
	assert.ElementsMatch(t, evtUsers(0, 450), evtUserIDs(srv), "nothing queued is lost on Close")
	assert.Equal(t, analytics.Stats{Sent: 450}, tr.Stats())

	// After Close, Track and Flush do nothing and Close again is harmless.
	tr.Track(evtEvents(450, 1)...)
	require.NoError(t, tr.Flush(t.Context()))
	require.NoError(t, tr.Close(ctx))
	assert.Equal(t, analytics.Stats{Sent: 450}, tr.Stats())
	assert.Len(t, srv.Events(), 450)
}

func TestClientQueueOverflowDropsOldest(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.QueueCapacity = 5
	cfg.FlushQueueSize = 100
	// The full queue is sent, but held until the counts are checked.
	release := make(chan struct{})
	cfg.HTTPClient = evtHeldTransport(nil, release)
	tr := newEvtClient(t, cfg, log)

	tr.Track(evtEvents(0, 4)...)
	tr.Track(evtEvents(4, 4)...) // 8 events in a queue of 5
	assert.Equal(t, analytics.Stats{Dropped: 3, Queued: 5}, tr.Stats())
	assert.Contains(t, log.String(), "queue full, dropping the oldest events")
	close(release)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := tr.Close(ctx)
	var lost *analytics.LostEventsError
	require.ErrorAs(t, err, &lost)
	assert.Equal(t, 3, lost.Dropped)
	assert.Equal(t, 0, lost.Failed)
	assert.Equal(t, evtUsers(3, 5), evtUserIDs(srv), "the newest events were kept")
	assert.Contains(t, log.String(), "dropped_total=3")
	assert.Contains(t, log.String(), "events lost")
}

func TestClientRejectsEventsWithoutIDs(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)
	tr.Track(analytics.Event{EventType: "e"}, analytics.Event{UserID: "u"}, evtEvents(0, 1)[0])
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, evtUsers(0, 1), evtUserIDs(srv))
	assert.Equal(t, analytics.Stats{Sent: 1, Failed: 2}, tr.Stats())
	assert.Contains(t, log.String(), "are not sent")
}

// TestClientServerDownCloseIsBounded: the server fails every request for
// the whole run; Close with a 2s deadline returns in about 2s and counts
// every event as lost.
func TestClientServerDownCloseIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*analyticstest.Server, *analytics.Config)
	}{
		{"503", func(s *analyticstest.Server, _ *analytics.Config) { s.SetDown(503) }},
		{"hanging", func(s *analyticstest.Server, _ *analytics.Config) {
			replies := make([]analyticstest.Reply, 50)
			for i := range replies {
				replies[i] = analyticstest.Reply{Status: 200, Delay: time.Minute}
			}
			s.Script(replies...)
		}},
		{"refused", func(s *analyticstest.Server, cfg *analytics.Config) {
			s.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evtLeakCheck(t)
			srv := newEvtServer(t)
			log := &evtLog{}
			cfg := evtConfig(srv, log)
			// The defaults: a retry every 0.1s to 3.2s, 12 retries, 10s
			// per request; far more than Close's deadline.
			cfg.RetryBackoffMin, cfg.RetryBackoffMax = 0, 0
			cfg.FlushQueueSize = 10
			cfg.FlushInterval = 10 * time.Millisecond
			tc.setup(srv, &cfg)
			tr := newEvtClient(t, cfg, log)

			tr.Track(evtEvents(0, 35)...)
			time.Sleep(50 * time.Millisecond) // a send is under way
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			start := time.Now()
			err := tr.Close(ctx)
			elapsed := time.Since(start)

			// Not respected, Close would take 10 s (a hung request) or the
			// retries' 20 s; 1.5 s past the deadline is for a loaded machine
			// to cancel the senders and see them stop.
			assert.Less(t, elapsed, 3500*time.Millisecond, "Close must respect its deadline")
			var lost *analytics.LostEventsError
			require.ErrorAs(t, err, &lost)
			assert.Equal(t, 35, lost.Failed)
			assert.Equal(t, analytics.Stats{Failed: 35}, tr.Stats())
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Contains(t, err.Error(), "35 events lost")
			assert.Contains(t, log.String(), "lost=35")
			assert.Empty(t, srv.Events())
		})
	}
}

// TestClientCloseGivesUpTheRestWhenTheServerKeepsFailing: during Close, a
// batch that exhausts its retries ends the flush; the batches behind it are
// given up at once instead of each waiting out its own retries.
func TestClientCloseGivesUpTheRestWhenTheServerKeepsFailing(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(503)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
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
	tr := newEvtClient(t, cfg, log)

	tr.Track(evtEvents(0, 3)...) // a full batch: sent at once, held by the transport
	<-arrived
	tr.Track(evtEvents(3, 6)...)
	closed := make(chan error, 1)
	go func() { closed <- tr.Close(context.Background()) }()
	for { // Flush returns nil at once when the client is closing
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		err := tr.Flush(ctx)
		cancel()
		if err == nil {
			break
		}
	}
	close(release)

	var lost *analytics.LostEventsError
	require.ErrorAs(t, <-closed, &lost)
	assert.Equal(t, 9, lost.Failed)
	assert.NotErrorIs(t, lost, context.DeadlineExceeded)
	// batch 1: 2 attempts; batch 2 (at close): 2 attempts; batch 3: none.
	sizes, _ := evtBatchSizes(srv)
	assert.Equal(t, []int{3, 3, 3, 3}, sizes)
	assert.Contains(t, log.String(), "events not sent before close")
}

func TestClientFlushRespectsItsContext(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.Script(analyticstest.Reply{Status: 200, Delay: time.Minute})
	log := &evtLog{}
	tr := newEvtClient(t, evtConfig(srv, log), log)
	tr.Track(evtEvents(0, 1)...)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, tr.Flush(ctx), context.DeadlineExceeded)
	closeCtx, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel2()
	var lost *analytics.LostEventsError
	require.ErrorAs(t, tr.Close(closeCtx), &lost)
	assert.Equal(t, 1, lost.Failed)
}

func TestClientConcurrentUse(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.FlushQueueSize = 7
	cfg.FlushInterval = time.Millisecond
	tr := newEvtClient(t, cfg, log)

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
	assert.Equal(t, analytics.Stats{Sent: 400}, tr.Stats())
}

// TestClientBlockingLosesNothing is the tracked batch's contract: with
// OverflowBlock and a healthy but distant server, producers far faster
// than the server wait for room, and every event arrives exactly once.
func TestClientBlockingLosesNothing(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetLatency(20 * time.Millisecond)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.Overflow = analytics.OverflowBlock
	cfg.QueueCapacity = 5000 // a twentieth of what is tracked: producers must wait
	cfg.FlushQueueSize = 2000
	tr := newEvtClient(t, cfg, log)

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
	assert.Equal(t, analytics.Stats{Sent: producers * each}, tr.Stats())
	assert.Greater(t, srv.PeakConcurrency(), 1, "requests are sent in parallel")
	assert.LessOrEqual(t, srv.PeakConcurrency(), analytics.DefaultMaxConcurrentRequests)
	for _, r := range srv.Requests() {
		assert.LessOrEqual(t, len(r.Events), 2000)
	}
	assert.NotContains(t, log.String(), "level=WARN")
}

// TestClientDropsOnlyWhenAskedTo: the default queue, at the same pace,
// drops, and counts and reports what it dropped.
func TestClientDropsOnlyWhenAskedTo(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetLatency(20 * time.Millisecond)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.QueueCapacity = 500
	cfg.FlushQueueSize = 100
	tr := newEvtClient(t, cfg, log)

	for i := 0; i < 5000; i += 100 {
		require.NoError(t, tr.TrackContext(t.Context(), evtEvents(i, 100)...))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := tr.Close(ctx)
	st := tr.Stats()
	var lost *analytics.LostEventsError
	require.ErrorAs(t, err, &lost)
	assert.Positive(t, st.Dropped)
	assert.Equal(t, st.Dropped, lost.Dropped)
	assert.Equal(t, 5000, st.Sent+st.Dropped)
	assert.Len(t, srv.Events(), st.Sent)
	assert.Contains(t, err.Error(), "dropped from a full queue")
}

// TestClientRequestsStayUnder1MB: large events make smaller requests,
// each under the API's 1 MB, none lost.
func TestClientRequestsStayUnder1MB(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.FlushQueueSize = 2000
	tr := newEvtClient(t, cfg, log)

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

// TestClientBatchesUpTo2000Events: small events go 2000 to a request.
func TestClientBatchesUpTo2000Events(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.FlushQueueSize = 2000
	cfg.QueueCapacity = 10000
	tr := newEvtClient(t, cfg, log)
	tr.Track(evtEvents(0, 4500)...)
	require.NoError(t, tr.Flush(t.Context()))
	sizes, _ := evtBatchSizes(srv)
	assert.ElementsMatch(t, []int{2000, 2000, 500}, sizes)
}

// TestClientFlushWaitsForWhatIsInFlight: a full batch already being sent
// when Flush is called is waited for too.
func TestClientFlushWaitsForWhatIsInFlight(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetLatency(100 * time.Millisecond)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.FlushQueueSize = 10
	tr := newEvtClient(t, cfg, log)

	tr.Track(evtEvents(0, 10)...) // a full batch: sent at once
	evtEventually(t, "the batch in flight", func() bool { return tr.Stats().Queued == 10 && srv.PeakConcurrency() == 1 })
	tr.Track(evtEvents(10, 3)...)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, analytics.Stats{Sent: 13}, tr.Stats())
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

// evtHeldBlocking is a blocking client's config against srv, sending one
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

// TestClientBlockingWaitEndsWithItsContext: a producer waiting for room
// returns when its context ends (Ctrl-C in the CLI), and the events it
// could not queue are counted as failed, not forgotten.
func TestClientBlockingWaitEndsWithItsContext(t *testing.T) {
	evtLeakCheck(t)
	srv, cfg, log, arrived, release := evtHeldBlocking(t, 10)
	tr := newEvtClient(t, cfg, log)

	require.NoError(t, tr.TrackContext(t.Context(), evtEvents(0, 10)...)) // sent, held
	<-arrived
	require.NoError(t, tr.TrackContext(t.Context(), evtEvents(10, 10)...)) // fills the queue
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := tr.TrackContext(ctx, evtEvents(20, 5)...)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, analytics.Stats{Failed: 5, Queued: 20}, tr.Stats())

	close(release)
	require.NoError(t, tr.Flush(t.Context()))
	assert.ElementsMatch(t, evtUsers(0, 20), evtUserIDs(srv))
	closeCtx, cancel2 := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel2()
	var lost *analytics.LostEventsError
	require.ErrorAs(t, tr.Close(closeCtx), &lost)
	assert.Equal(t, 5, lost.Failed)
	assert.ErrorIs(t, lost, context.DeadlineExceeded, "why the last events were lost")
}

// TestClientBlockedTrackEndsWithClose: Close releases a producer waiting
// for room; TrackContext says its events were not queued.
func TestClientBlockedTrackEndsWithClose(t *testing.T) {
	evtLeakCheck(t)
	_, cfg, log, arrived, release := evtHeldBlocking(t, 4)
	tr, err := analytics.NewClient(cfg)
	require.NoError(t, err)

	tr.Track(evtEvents(0, 4)...)
	<-arrived
	tr.Track(evtEvents(4, 4)...)
	blocked := make(chan error, 1)
	go func() { blocked <- tr.TrackContext(context.Background(), evtEvents(8, 1)...) }()
	// Close must find the producer waiting: one that only calls
	// TrackContext after Close is refused uncounted, as it should be.
	require.Eventually(t, func() bool { return tr.Waiting() == 1 }, 10*time.Second, time.Millisecond, "the producer waits for room")
	select {
	case err := <-blocked:
		t.Fatalf("TrackContext returned %v with the queue full", err)
	default:
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var lost *analytics.LostEventsError
	require.ErrorAs(t, tr.Close(ctx), &lost)
	err = <-blocked
	assert.ErrorIs(t, err, analytics.ErrClosed)
	assert.Contains(t, err.Error(), "1 of 1 events not queued")
	assert.Equal(t, 9, lost.Failed, "the held batch, the queued one and the blocked event")
	assert.Equal(t, analytics.Stats{Failed: 9}, tr.Stats())
	assert.Contains(t, log.String(), "the client closed while they waited for room", "the loss is not silent")
	close(release)
	assert.ErrorIs(t, tr.TrackContext(t.Context(), evtEvents(9, 1)...), analytics.ErrClosed)
}

// TestClientCloseCountsEveryBlockedEvent: producers waiting for room when
// Close comes, some with part of their events queued, lose the rest as
// failed events, counted before Close returns: Stats adds up to what was
// tracked, Close's error says as much, and each TrackContext says how many
// of its events were not queued.
func TestClientCloseCountsEveryBlockedEvent(t *testing.T) {
	evtLeakCheck(t)
	_, cfg, _, arrived, release := evtHeldBlocking(t, 4)
	tr, err := analytics.NewClient(cfg)
	require.NoError(t, err)

	tr.Track(evtEvents(0, 4)...) // sent, held
	<-arrived
	const producers, each = 6, 3 // 18 events for 4 places: some calls queue part
	tracked := 4 + producers*each
	errs := make(chan error, producers)
	for p := range producers {
		go func() { errs <- tr.TrackContext(context.Background(), evtEvents(4+p*each, each)...) }()
	}
	// Every producer waits before Close: 4 of their 18 events queued, the
	// other 14 waiting for room. (A producer that came only after Close
	// would be refused uncounted, and the sum below would miss its events.)
	require.Eventually(t, func() bool { return tr.Stats().Queued == 8 && tr.Waiting() == producers*each-4 },
		10*time.Second, time.Millisecond, "the producers wait for room")

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var lost *analytics.LostEventsError
	require.ErrorAs(t, tr.Close(ctx), &lost)
	st := tr.Stats() // as Close left them: the producers may not have returned yet
	assert.Equal(t, tracked, st.Sent+st.Failed+st.Dropped+st.Queued, "%+v", st)
	assert.Equal(t, st.Failed, lost.Failed)
	assert.Equal(t, st.Dropped, lost.Dropped)

	notQueued := 0
	for range producers {
		if err := <-errs; err != nil {
			assert.ErrorIs(t, err, analytics.ErrClosed)
			var left, of int
			_, scanErr := fmt.Sscanf(err.Error(), "%d of %d events not queued", &left, &of)
			require.NoError(t, scanErr, err.Error())
			assert.Equal(t, each, of)
			notQueued += left
		}
	}
	close(release)
	assert.Equal(t, producers*each-4, notQueued, "each event not queued is reported once")
	assert.Equal(t, st, tr.Stats(), "nothing counted after Close returned")
}

// TestClientQueueSmallerThanABatchIsSent: a full queue is sent even when
// it holds less than FlushQueueSize, so a blocked producer goes on.
func TestClientQueueSmallerThanABatchIsSent(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.Overflow = analytics.OverflowBlock
	cfg.QueueCapacity = 3
	cfg.FlushQueueSize = 100
	tr := newEvtClient(t, cfg, log)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, tr.TrackContext(ctx, evtEvents(0, 10)...))
	require.NoError(t, tr.Flush(ctx))
	assert.ElementsMatch(t, evtUsers(0, 10), evtUserIDs(srv))
}

// TestClientCloseDeadlineStopsSending: once Close's deadline has passed,
// the batches still queued are given up at once, not each encoded and
// attempted.
func TestClientCloseDeadlineStopsSending(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
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
	tr := newEvtClient(t, cfg, log)
	tr.Track(evtEvents(0, 100)...)
	evtEventually(t, "the first batch sent before Close", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return attempts == 1
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var lost *analytics.LostEventsError
	require.ErrorAs(t, tr.Close(ctx), &lost)
	assert.Equal(t, 100, lost.Failed)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, attempts, "only the batch in flight at the deadline was attempted")
	assert.Contains(t, log.String(), `msg="analytics: events not sent before close" events=90`)
}

// TestClientBlockingStopsWaitingForAFailingServer: once a batch has
// failed past its retries, a blocking queue drops instead of holding the
// producer to the pace of the retries; when a request succeeds again, it
// waits again and loses nothing.
func TestClientBlockingStopsWaitingForAFailingServer(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(http.StatusServiceUnavailable)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.Overflow = analytics.OverflowBlock
	cfg.QueueCapacity = 10
	cfg.FlushQueueSize = 10
	cfg.MaxConcurrentRequests = 1
	cfg.FlushMaxRetries = 2
	cfg.RetryBackoffMin, cfg.RetryBackoffMax = 20*time.Millisecond, 20*time.Millisecond
	tr := newEvtClient(t, cfg, log)

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

// callingHandler is a log handler that calls the Client for each line, as
// one counting what it logs alongside the Client's Stats might.
type callingHandler struct {
	client *atomic.Pointer[analytics.Client]
	logged chan string
}

func (h callingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h callingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h callingHandler) WithGroup(string) slog.Handler            { return h }
func (h callingHandler) Handle(_ context.Context, r slog.Record) error {
	if c := h.client.Load(); c != nil {
		c.Stats()
	}
	select {
	case h.logged <- r.Message:
	default:
	}
	return nil
}

// TestClientLogHandlerMayCallTheClient: the Client writes no log line
// while it holds its lock, so a handler calling it back does not hang it
// (nor does a slow log stall every producer).
func TestClientLogHandlerMayCallTheClient(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetDown(http.StatusServiceUnavailable)
	var client atomic.Pointer[analytics.Client]
	h := callingHandler{client: &client, logged: make(chan string, 100)}
	cfg := evtConfig(srv, &evtLog{})
	cfg.Logger = slog.New(h)
	cfg.Overflow = analytics.OverflowBlock
	cfg.QueueCapacity, cfg.FlushQueueSize, cfg.MaxConcurrentRequests, cfg.FlushMaxRetries = 10, 10, 1, 1
	tr, err := analytics.NewClient(cfg)
	require.NoError(t, err)
	client.Store(tr)
	tr.Track(evtEvents(0, 10)...)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case msg := <-h.logged:
			if !strings.Contains(msg, "keeps failing") {
				continue
			}
			// Not deferred: after a hang, Close would hang too.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			tr.Close(ctx)
			return
		case <-deadline:
			t.Fatal("the handler's call back into the Client hung")
		}
	}
}
