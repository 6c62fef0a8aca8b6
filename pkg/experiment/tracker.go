package experiment

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/flagkit/experiment/internal/httpx"
)

// TrackerConfig configures a Tracker, the analytics client that sends
// events to Amplitude's HTTP V2 API. It mirrors the
// settings of Amplitude's Python analytics client (amplitude.Config)
// with Go types; every zero value means the default.
type TrackerConfig struct {
	// APIKey is the analytics project's API key (not a deployment key). It
	// is sent in each request body and never logged in full. Required.
	APIKey string

	// ServerURL is the full events URL, e.g.
	// "https://api2.amplitude.com/2/httpapi". Default: EventsURL(ServerZone,
	// UseBatch).
	ServerURL string
	// ServerZone picks the default ServerURL. Default: ServerZoneUS.
	ServerZone ServerZone
	// UseBatch picks Amplitude's batch endpoint for the default ServerURL.
	UseBatch bool

	// FlushQueueSize is how many events one request carries at most; a
	// request is sent as soon as that many are queued. At most 2000, the
	// API's limit; a request also stays under 1 MB, the API's other limit,
	// by carrying fewer events when they are large. Default: 200, the
	// Python client's; a sender with a backlog (a batch job) wants 2000.
	FlushQueueSize int
	// FlushInterval is how often queued events are sent even when fewer
	// than FlushQueueSize are waiting. Default: 10s.
	FlushInterval time.Duration
	// FlushMaxRetries is how many times a request that failed with 408, 429,
	// a 5xx status or a transport error is retried before its events are
	// given up. Default: 12; a negative value means no retries.
	FlushMaxRetries int
	// QueueCapacity bounds the events waiting to be sent; what happens to
	// a new event when it is full is Overflow's choice. Default: 20000.
	QueueCapacity int
	// Overflow is what Track does when QueueCapacity events are waiting:
	// drop the oldest (OverflowDropOldest, the default) or wait for space
	// (OverflowBlock). See OverflowPolicy for which to choose.
	Overflow OverflowPolicy
	// MaxConcurrentRequests bounds the requests in flight at once. With a
	// backlog, that many batches are sent in parallel, so the server's
	// latency does not cap the throughput at one batch per round trip.
	// Events of different requests may therefore arrive out of order
	// (each carries its time). Default: 4.
	MaxConcurrentRequests int
	// MinIDLength, when set, is sent as options.min_id_length: Amplitude
	// ignores user and device IDs shorter than it (5 by default).
	MinIDLength *int

	// RequestTimeout bounds each request. Default: 10s.
	RequestTimeout time.Duration
	// RetryBackoffMin and RetryBackoffMax bound the delay before a retry:
	// the bound doubles from RetryBackoffMin with each retry up to
	// RetryBackoffMax, and the delay is drawn uniformly between half the
	// bound and the bound. A 429's Retry-After (at most a minute) is waited
	// for when longer. Defaults: 100ms and 3.2s, the delays of Amplitude's
	// Python analytics client.
	RetryBackoffMin time.Duration
	RetryBackoffMax time.Duration

	// HTTPClient sends the requests. Default: a client of the tracker's own
	// whose idle connections Close releases. A client given here is used as
	// is and never closed.
	HTTPClient *http.Client
	// Logger receives warnings about events that were dropped or could not
	// be sent. Default: the process's default logger, slog.Default() as it
	// is when the tracker is made; a LocalClient's trackers use its Logger.
	Logger *slog.Logger
	// Now is the clock for event times, de-duplication and day buckets.
	// Default: time.Now.
	Now func() time.Time
	// Library is sent as each event's "library" when the event has none.
	// Default: "experiment-go/<module version>" (see LibraryName), or a
	// LocalClient's Library for its trackers.
	Library string
}

// OverflowPolicy is what Track does with new events when the queue is full.
//
// The default is OverflowDropOldest because the SDK's tracking runs on its
// user's request path (LocalClient.EvaluateV2 with TracksExposure): a
// blocking queue would hand every request the analytics API's latency and,
// during an outage, stall it while the senders wait out their retries
// (a full queue then drains at a few hundred events per second). A
// service's availability must not depend on its analytics. Drops are never
// silent: TrackerStats.Dropped counts them, the log warns, and Close
// returns a *LostEventsError. A job that must deliver every event (the
// CLI's tracked batch, a backfill) chooses OverflowBlock and passes a
// context to TrackContext (or TrackExposureContext) to stay cancellable;
// it then loses nothing while the API accepts events.
type OverflowPolicy int

const (
	// OverflowDropOldest makes Track never wait: each new event beyond
	// QueueCapacity drops the oldest queued one, counted in
	// TrackerStats.Dropped and reported by Close.
	OverflowDropOldest OverflowPolicy = iota
	// OverflowBlock makes Track wait until the senders free room in the
	// queue (back-pressure): the caller slows down to the rate the
	// analytics API accepts, and no event is dropped while it accepts
	// them. While the API fails (a batch was given up after
	// FlushMaxRetries, and no request has succeeded since), a full queue
	// drops its oldest events instead: they are being lost anyway, and
	// waiting would only slow the caller to the pace of the retries (a
	// 100,000-user batch against a server that was down would have taken
	// over ten minutes).
	OverflowBlock
)

// Defaults of TrackerConfig: those of Amplitude's analytics clients,
// and the number of parallel requests.
const (
	DefaultFlushQueueSize         = 200
	DefaultFlushInterval          = 10 * time.Second
	DefaultFlushMaxRetries        = 12
	DefaultQueueCapacity          = 20000
	DefaultTrackerRequestTimeout  = 10 * time.Second
	DefaultTrackerRetryBackoffMin = 100 * time.Millisecond
	DefaultTrackerRetryBackoffMax = 3200 * time.Millisecond
	DefaultMaxConcurrentRequests  = 4
)

const (
	// maxEventsPerRequest is the HTTP V2 API's limit.
	maxEventsPerRequest = 2000
	// maxRequestBytes is the HTTP V2 API's size limit: a request body
	// stays below it (1 MB, in the decimal sense, so below a MiB too).
	maxRequestBytes = 1_000_000
	// maxEventsRetryAfter caps how long a 429's Retry-After is honoured.
	maxEventsRetryAfter = time.Minute
	// maxEventsReplyBytes is how much of a reply body is read.
	maxEventsReplyBytes = 64 << 10
	// maxServerTextLen bounds server-supplied text in a log record.
	maxServerTextLen = 200
)

// trackerSettings is a validated TrackerConfig with its defaults filled in.
type trackerSettings struct {
	key         Secret
	url         string
	redactedURL string
	batch       int
	interval    time.Duration
	retries     int
	capacity    int
	overflow    OverflowPolicy
	concurrency int
	minIDLength *int
	timeout     time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
	client      *http.Client
	ownsClient  bool
	log         *slog.Logger
	now         func() time.Time
	library     string

	// bodyHead and bodyTail enclose a request's events: the JSON of
	// eventsPayload around its events array.
	bodyHead, bodyTail []byte
}

// resolveCommon fills the settings a printing service needs too.
func (cfg *TrackerConfig) resolveCommon() (log *slog.Logger, now func() time.Time, library string) {
	log = sdkLogger(cfg.Logger, false)
	now = cfg.Now
	if now == nil {
		now = time.Now
	}
	library = cfg.Library
	if library == "" {
		library = defaultLibrary()
	}
	return log, now, library
}

func (cfg *TrackerConfig) resolve() (*trackerSettings, error) {
	var errs []error
	key := strings.TrimSpace(cfg.APIKey)
	if key == "" {
		errs = append(errs, errors.New("analytics API key is empty"))
	} else if strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		errs = append(errs, fmt.Errorf("analytics API key %v contains white space or control characters", Secret(key)))
	}
	if err := cfg.ServerZone.valid(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"FlushInterval", cfg.FlushInterval}, {"RequestTimeout", cfg.RequestTimeout},
		{"RetryBackoffMin", cfg.RetryBackoffMin}, {"RetryBackoffMax", cfg.RetryBackoffMax},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%v)", d.name, d.v))
		}
	}
	if cfg.FlushQueueSize < 0 || cfg.FlushQueueSize > maxEventsPerRequest {
		errs = append(errs, fmt.Errorf("FlushQueueSize %d: want 1 to %d", cfg.FlushQueueSize, maxEventsPerRequest))
	}
	if cfg.QueueCapacity < 0 {
		errs = append(errs, fmt.Errorf("QueueCapacity is negative (%d)", cfg.QueueCapacity))
	}
	if cfg.Overflow != OverflowDropOldest && cfg.Overflow != OverflowBlock {
		errs = append(errs, fmt.Errorf("overflow policy %d: want OverflowDropOldest or OverflowBlock", cfg.Overflow))
	}
	if cfg.MaxConcurrentRequests < 0 {
		errs = append(errs, fmt.Errorf("MaxConcurrentRequests is negative (%d)", cfg.MaxConcurrentRequests))
	}
	if cfg.MinIDLength != nil && *cfg.MinIDLength < 1 {
		errs = append(errs, fmt.Errorf("MinIDLength %d: want at least 1", *cfg.MinIDLength))
	}
	s := &trackerSettings{
		key:         Secret(key),
		batch:       cmp.Or(cfg.FlushQueueSize, DefaultFlushQueueSize),
		interval:    cmp.Or(cfg.FlushInterval, DefaultFlushInterval),
		retries:     cmp.Or(cfg.FlushMaxRetries, DefaultFlushMaxRetries),
		capacity:    cmp.Or(cfg.QueueCapacity, DefaultQueueCapacity),
		overflow:    cfg.Overflow,
		concurrency: cmp.Or(cfg.MaxConcurrentRequests, DefaultMaxConcurrentRequests),
		timeout:     cmp.Or(cfg.RequestTimeout, DefaultTrackerRequestTimeout),
		backoffMin:  cmp.Or(cfg.RetryBackoffMin, DefaultTrackerRetryBackoffMin),
		backoffMax:  cmp.Or(cfg.RetryBackoffMax, DefaultTrackerRetryBackoffMax),
	}
	if s.retries < 0 {
		s.retries = 0
	}
	if s.backoffMax < s.backoffMin {
		errs = append(errs, fmt.Errorf("RetryBackoffMax (%v) is less than RetryBackoffMin (%v)", s.backoffMax, s.backoffMin))
	}
	if cfg.MinIDLength != nil {
		n := *cfg.MinIDLength
		s.minIDLength = &n
	}
	raw := cfg.ServerURL
	if raw == "" {
		raw = EventsURL(cfg.ServerZone, cfg.UseBatch)
	}
	if u, err := httpx.ParseURL("events server URL", raw); err != nil {
		errs = append(errs, err)
	} else {
		s.url, s.redactedURL = u.String(), httpx.RedactURL(u)
	}
	if len(errs) > 0 {
		return nil, newConfigError("tracker config", errs...)
	}
	s.log, s.now, s.library = cfg.resolveCommon()
	s.bodyHead, s.bodyTail = payloadFrame(s.key, s.minIDLength)
	s.client = cfg.HTTPClient
	if s.client == nil {
		s.client, s.ownsClient = httpx.NewClient(s.concurrency), true // an idle connection per sender
	}
	return s, nil
}

// TrackerStats counts a Tracker's events.
type TrackerStats struct {
	// Sent events were accepted by the server.
	Sent int
	// Dropped events were discarded, oldest first, because the queue was
	// full.
	Dropped int
	// Failed events were given up: rejected by the server (400, 413 for a
	// single event, another 4xx), still failing after FlushMaxRetries, not
	// sent before Close's deadline, or passed to Track without a user ID
	// and a device ID.
	Failed int
	// Queued events are waiting or being sent.
	Queued int
}

// Lost is how many events will never reach the server: Dropped + Failed.
func (s TrackerStats) Lost() int { return s.Dropped + s.Failed }

// LostEventsError is what Close returns when events were lost during the
// tracker's life. Err is the context's error when Close's deadline cut the
// final flush short.
//
// Last is why the most recent events were given up, when the server or the
// network was the reason; errors.Is(err, ErrAPIKeyRejected) tells a wrong
// API key from an outage.
type LostEventsError struct {
	Dropped, Failed int
	Err             error
	Last            error
}

func (e *LostEventsError) Error() string {
	msg := fmt.Sprintf("analytics: %d events lost (%d dropped from a full queue, %d not delivered)",
		e.Dropped+e.Failed, e.Dropped, e.Failed)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Last != nil {
		msg += "; last: " + e.Last.Error()
	}
	return msg
}

func (e *LostEventsError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Err, e.Last} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// ErrAPIKeyRejected: the analytics API refused the API key (Amplitude
// answers 400 "Invalid API key"; a proxy in front of it may say 401 or 403).
var ErrAPIKeyRejected = errors.New("API key rejected")

// Tracker queues analytics events and sends them to Amplitude's HTTP V2 API
// from background goroutines: a batch as soon as FlushQueueSize events are
// queued, everything queued every FlushInterval, up to
// MaxConcurrentRequests requests at once. Failed requests are retried with
// capped exponential backoff and jitter; a 413 splits the batch in halves;
// a 400 drops only the events the server names as invalid and resends the
// rest. The queue is bounded: when it is full, Track drops the oldest
// events or waits for room, as TrackerConfig.Overflow says.
//
// A Tracker is safe for concurrent use. Close it: Close flushes what is
// queued within its context's deadline and stops the goroutines.
type Tracker struct {
	s *trackerSettings

	mu         sync.Mutex
	queue      eventRing
	closed     bool
	inFlight   int // events taken from the queue and not settled yet
	sent       int
	dropped    int
	failed     int
	unreported int   // drops not yet logged
	waiting    int   // events of blocked producers, not queued yet
	lastLoss   error // why events were last given up

	// Events are numbered in the order they are queued; the queue holds
	// pushed-queue.n to pushed-1, and each batch being delivered a range
	// starting at one of sending. Everything below the smallest of those
	// starts is settled, which is what Flush waits for.
	pushed  int64
	sending []int64 // first number of each batch being delivered
	flushTo int64   // events numbered below it are due even in a partial batch
	waiters []flushWaiter
	abandon bool          // closing, a batch was given up: so is the rest
	failing bool          // see setFailing
	space   chan struct{} // closed, and replaced, when events leave the queue

	kick    chan struct{} // the dispatcher has something to look at
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when run returns

	// ctx aborts requests and backoff; canceled when Close's context is done.
	ctx        context.Context
	cancel     context.CancelFunc
	closeOnce  sync.Once
	stopAfter  func() bool // unregisters the first Close's deadline
	finishOnce sync.Once
	closeErr   error
}

// flushWaiter is a Flush waiting until the events numbered below upTo are
// settled.
type flushWaiter struct {
	upTo int64
	ch   chan struct{}
}

// ErrTrackerClosed: events given to TrackContext after Close (or while a
// blocked TrackContext waited when Close came) were not queued.
var ErrTrackerClosed = errors.New("analytics tracker closed")

// NewTracker validates cfg, fills its defaults and starts the sender. It
// fails, and never panics, on an empty API key or an invalid config.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	t := &Tracker{
		s:       s,
		queue:   eventRing{max: s.capacity},
		space:   make(chan struct{}),
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	s.log.Debug("analytics tracker started", "url", s.redactedURL, "api_key", s.key,
		"flush_queue_size", s.batch, "flush_interval", s.interval,
		"max_concurrent_requests", s.concurrency, "overflow", s.overflow)
	go t.run()
	return t, nil
}

// Track queues events. An event without a time gets the current one, one
// without an insert ID a random one. An event with neither a user ID nor a
// device ID, or no event type, is not queued but counted as failed, since
// the server would reject it. Track keeps the events' maps until they are
// sent: do not modify them afterwards. After Close, Track does nothing.
//
// With OverflowBlock, Track waits while the queue is full, until Close if
// need be; TrackContext bounds the wait.
func (t *Tracker) Track(events ...Event) {
	_ = t.TrackContext(context.Background(), events...)
}

// TrackContext is Track whose wait for room in a full queue (with
// OverflowBlock) ends with ctx: it then returns ctx's error, and the
// events it could not queue are counted as failed. It returns
// ErrTrackerClosed when the tracker is closed before the events are queued;
// those of a call waiting for room when Close comes are counted as failed
// too. Either error says how many of the call's events were not queued
// (errors.Is tells which).
func (t *Tracker) TrackContext(ctx context.Context, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	nowMs := t.s.now().UnixMilli()
	valid := make(plainEvents, 0, len(events))
	for _, e := range events {
		if e.EventType == "" || (e.UserID == "" && e.DeviceID == "") {
			continue
		}
		if e.Time == 0 {
			e.Time = nowMs
		}
		if e.InsertID == "" {
			e.InsertID = randomInsertID()
		}
		valid = append(valid, e)
	}
	if invalid := len(events) - len(valid); invalid > 0 {
		t.mu.Lock()
		closed := t.closed
		if !closed {
			t.failed += invalid
		}
		t.mu.Unlock()
		if !closed {
			t.s.log.Warn("analytics: events without an event type, a user ID or a device ID are not sent", "events", invalid)
		}
	}
	if len(valid) == 0 {
		return nil
	}
	_, err := t.enqueue(ctx, &valid, len(valid))
	return err
}

// enqueue adds the n events of src to the queue. When it is full, it drops
// the oldest events or, with OverflowBlock, waits for room, until ctx is
// done or the tracker closes; the events not queued then are failed. It
// returns how many of the n were queued, and an error saying how many were
// not (wrapping ctx's error or ErrTrackerClosed).
//
// While it waits, its events not queued yet are counted in t.waiting, so
// that Close can count them as failed before it computes its result: a
// producer woken by Close may run only after Close has returned.
func (t *Tracker) enqueue(ctx context.Context, src eventSource, n int) (int, error) {
	queued := 0
	t.mu.Lock()
	if t.closed {
		// Not counted: after Close, Track does nothing, and Close's result
		// (already computed, or being computed) must stay Failed+Dropped.
		t.mu.Unlock()
		return 0, notQueued(ErrTrackerClosed, n, n)
	}
	for {
		drops := 0
		for ; queued < n; queued++ {
			if t.queue.n == t.s.capacity && t.s.overflow == OverflowBlock && !t.failing {
				break
			}
			if t.queue.push(queueItem{src: src, i: queued}) {
				drops++
			}
			t.pushed++
		}
		firstDrop := drops > 0 && t.unreported == 0
		t.dropped += drops
		t.unreported += drops
		if drops > 0 {
			t.releaseWaiters() // dropped events are settled
		}
		// A full queue is sent even when it holds less than a batch:
		// otherwise a capacity below FlushQueueSize would block forever.
		due := t.queue.n >= min(t.s.batch, t.s.capacity)
		space := t.space
		left := n - queued
		// Registered under the same lock that saw closed false, so Close
		// either counts these events or has not set closed yet.
		t.waiting += left
		t.mu.Unlock()
		if due {
			t.poke()
		}
		if firstDrop {
			t.s.log.Warn("analytics: queue full, dropping the oldest events", "capacity", t.s.capacity)
		}
		if left == 0 {
			return n, nil
		}
		var ctxErr error
		select {
		case <-space:
		case <-t.closing:
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
		t.mu.Lock()
		if t.closed {
			// Close moved our waiting events to failed, and recorded why.
			t.mu.Unlock()
			return queued, notQueued(ErrTrackerClosed, left, n)
		}
		t.waiting -= left
		if ctxErr != nil {
			t.failed += left
			t.mu.Unlock()
			t.lose(ctxErr, left, "events not queued: the queue was full")
			return queued, notQueued(ctxErr, left, n)
		}
	}
}

// notQueued says how many of a call's n events were not queued, and why.
func notQueued(cause error, left, n int) error {
	return fmt.Errorf("analytics: %d of %d events not queued: %w", left, n, cause)
}

// poke wakes the dispatcher.
func (t *Tracker) poke() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Flush sends what is queued now and waits until it is sent or given up,
// along with what is being sent, or until ctx is done (then sending goes
// on in the background). After Close it returns nil at once.
func (t *Tracker) Flush(ctx context.Context) error {
	t.mu.Lock()
	if t.closed || t.settledBelow() >= t.pushed {
		t.mu.Unlock()
		return nil
	}
	w := flushWaiter{upTo: t.pushed, ch: make(chan struct{})}
	t.flushTo = max(t.flushTo, t.pushed)
	t.waiters = append(t.waiters, w)
	t.mu.Unlock()
	t.poke()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		t.waiters = slices.DeleteFunc(t.waiters, func(o flushWaiter) bool { return o.ch == w.ch })
		t.mu.Unlock()
		return ctx.Err()
	}
}

// settledBelow is the number of the oldest event not settled yet (queued
// or being sent): every event numbered below it is. The caller holds t.mu.
func (t *Tracker) settledBelow() int64 {
	low := t.pushed - int64(t.queue.n)
	for _, start := range t.sending {
		low = min(low, start)
	}
	return low
}

// releaseWaiters ends the Flushes whose events are all settled. The caller
// holds t.mu.
func (t *Tracker) releaseWaiters() {
	if len(t.waiters) == 0 {
		return
	}
	low := t.settledBelow()
	t.waiters = slices.DeleteFunc(t.waiters, func(w flushWaiter) bool {
		if w.upTo <= low {
			close(w.ch)
			return true
		}
		return false
	})
}

// Close stops the tracker: Track does nothing from now on, what is queued
// is sent within ctx's deadline (a request still failing then is given
// up, and the events still queued are counted as failed, as are those of
// a Track still waiting for room with OverflowBlock), and the sender
// goroutines stop before Close returns. Close returns promptly once ctx is
// done. When events were lost during the tracker's life (see TrackerStats)
// it logs a warning and returns a *LostEventsError; otherwise nil. Calling
// Close again waits for the senders to stop (or for its own ctx) and
// returns the same result.
func (t *Tracker) Close(ctx context.Context) error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		// The events of producers blocked for room will never be queued;
		// count them now, as their producers may wake after Close returns.
		abandoned := t.waiting
		t.failed += abandoned
		t.waiting = 0
		t.mu.Unlock()
		if abandoned > 0 {
			t.lose(ErrTrackerClosed, abandoned, "events not queued: the tracker closed while they waited for room")
		}
		t.stopAfter = context.AfterFunc(ctx, t.cancel) // the deadline aborts sending
		close(t.closing)
	})
	select {
	case <-t.done:
	case <-ctx.Done():
		t.cancel()
		<-t.done
	}
	t.finishOnce.Do(func() {
		t.stopAfter()
		t.cancel()
		if t.s.ownsClient {
			t.s.client.CloseIdleConnections()
		}
		if st := t.Stats(); st.Lost() > 0 {
			t.mu.Lock()
			last := t.lastLoss
			t.mu.Unlock()
			t.closeErr = &LostEventsError{Dropped: st.Dropped, Failed: st.Failed, Err: ctx.Err(), Last: last}
			t.s.log.Warn("analytics: events lost", "lost", st.Lost(), "dropped", st.Dropped, "failed", st.Failed, "sent", st.Sent)
		}
	})
	return t.closeErr
}

// Stats returns the tracker's counts so far.
func (t *Tracker) Stats() TrackerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TrackerStats{Sent: t.sent, Dropped: t.dropped, Failed: t.failed, Queued: t.queue.n + t.inFlight}
}

// run is the dispatcher goroutine: it hands due batches to sender
// goroutines, at most MaxConcurrentRequests at a time, and outlives them.
// Once closed, it sends everything queued and returns when nothing is in
// flight.
func (t *Tracker) run() {
	defer close(t.done)
	ticker := time.NewTicker(t.s.interval)
	defer ticker.Stop()
	var senders sync.WaitGroup
	defer senders.Wait() // a sender giving up at close's deadline is still settling
	closing := t.closing
	for {
		if t.dispatch(&senders) {
			t.abandonQueued()
			t.reportDrops()
			return
		}
		t.reportDrops()
		select {
		case <-t.kick: // a full batch, a Flush, or a sender done
		case <-ticker.C:
			t.mu.Lock()
			t.flushTo = max(t.flushTo, t.pushed)
			t.mu.Unlock()
		case <-closing:
			closing = nil // closed is seen by dispatch
		}
	}
}

// dispatch starts a sender for each due batch while fewer than
// MaxConcurrentRequests are in flight. A batch is due when it is full, when
// its events were queued before a Flush or a tick, when the queue is full,
// and at close. It reports whether the tracker is closed and nothing is in
// flight or left to send (the queue is then empty, or given up). Once
// Close's deadline has passed, nothing more is encoded only to fail.
func (t *Tracker) dispatch(senders *sync.WaitGroup) (finished bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	stopped := t.abandon || t.ctx.Err() != nil
	for len(t.sending) < t.s.concurrency && t.queue.n > 0 && !stopped {
		start := t.pushed - int64(t.queue.n)
		k := min(t.queue.n, t.s.batch)
		if k < t.s.batch && !t.closed && start >= t.flushTo && t.queue.n < t.s.capacity {
			break
		}
		items := t.queue.pop(make([]queueItem, 0, k), k)
		t.inFlight += k
		t.sending = append(t.sending, start)
		close(t.space)
		t.space = make(chan struct{})
		closing := t.closed
		senders.Add(1)
		go func() {
			defer senders.Done()
			t.send(items, start, closing)
		}()
	}
	return t.closed && len(t.sending) == 0 && (t.queue.n == 0 || stopped)
}

// pendingEvent is an event encoded for a request, with the IDs a 429's
// quota lists name.
type pendingEvent struct {
	userID, deviceID string
	json             []byte
}

// pendingIDs are the events' IDs, what eventsReply.overQuota reads.
func pendingIDs(events []pendingEvent) []Event {
	ids := make([]Event, len(events))
	for i, e := range events {
		ids[i] = Event{UserID: e.userID, DeviceID: e.deviceID}
	}
	return ids
}

// send builds and encodes a batch's events, on the sender's goroutine, and
// delivers them in requests under the API's size limit. When closing, a
// request the server keeps refusing ends the flush: the rest is given up
// instead of waiting out its retries too.
func (t *Tracker) send(items []queueItem, start int64, closing bool) {
	defer t.batchDone(start)
	w := jsonWriters.Get().(*jsonWriter)
	defer func() {
		w.buf = w.buf[:0]
		jsonWriters.Put(w) // the events, slices of w.buf, are delivered
	}()
	events := t.encodeEvents(w, items)
	clear(items) // drop references to the captured evaluations
	for len(events) > 0 {
		n := t.fit(events)
		if gaveUp := t.deliver(events[:n]); gaveUp && closing {
			if rest := len(events) - n; rest > 0 {
				t.giveUp(rest, "events not sent before close")
			}
			t.mu.Lock()
			t.abandon = true
			t.mu.Unlock()
			return
		}
		events = events[n:]
	}
}

// batchDone ends the delivery of the batch that started at start.
func (t *Tracker) batchDone(start int64) {
	t.mu.Lock()
	if i := slices.Index(t.sending, start); i >= 0 {
		t.sending = slices.Delete(t.sending, i, i+1)
	}
	t.releaseWaiters()
	t.mu.Unlock()
	t.poke() // a sender is free
}

// encodeEvents encodes the items' events into one buffer: a source that
// writes its own JSON (an exposure) does so, the others' events are built
// and encoded. An event that cannot be encoded (a metadata value JSON has
// no form for) is given up alone.
func (t *Tracker) encodeEvents(w *jsonWriter, items []queueItem) []pendingEvent {
	events := make([]pendingEvent, 0, len(items))
	ends := make([]int, 0, len(items))
	bad := 0
	var badErr error
	for _, it := range items {
		mark := len(w.buf)
		var p pendingEvent
		var err error
		if a, ok := it.src.(eventAppender); ok {
			p.userID, p.deviceID, err = a.appendEvent(w, it.i, t.s.library)
		} else {
			ev := it.src.event(it.i)
			if ev.Library == "" {
				ev.Library = t.s.library
			}
			p.userID, p.deviceID, err = ev.UserID, ev.DeviceID, w.value(ev)
		}
		if err != nil {
			w.buf = w.buf[:mark]
			bad, badErr = bad+1, err
			continue
		}
		events = append(events, p)
		ends = append(ends, len(w.buf))
	}
	if bad > 0 {
		t.giveUp(bad, "events cannot be encoded", "error", badErr)
	}
	data, from := w.buf, 0
	for i, end := range ends {
		events[i].json = data[from:end:end]
		from = end
	}
	return events
}

// fit is how many of events, at least one, one request carries: at most
// FlushQueueSize, in a body under maxRequestBytes. A single event over the
// limit is sent alone and the server judges it.
func (t *Tracker) fit(events []pendingEvent) int {
	size := len(t.s.bodyHead) + len(t.s.bodyTail) - 1 // no comma before the first
	for i, e := range events {
		if i == t.s.batch {
			return i
		}
		size += len(e.json) + 1
		if size >= maxRequestBytes && i > 0 {
			return i
		}
	}
	return len(events)
}

// abandonQueued counts what is left in the queue at close as failed.
func (t *Tracker) abandonQueued() {
	t.mu.Lock()
	n := t.queue.n
	t.queue.reset()
	t.failed += n
	t.releaseWaiters()
	t.mu.Unlock()
	if n > 0 {
		t.s.log.Warn("analytics: events not sent before close", "events", n)
	}
}

func (t *Tracker) reportDrops() {
	t.mu.Lock()
	n, total := t.unreported, t.dropped
	t.unreported = 0
	t.mu.Unlock()
	if n > 0 {
		t.s.log.Warn("analytics: queue was full, dropped the oldest events", "dropped", n, "dropped_total", total)
	}
}

// settle moves n in-flight events to sent or failed.
func (t *Tracker) settle(sent, failed int) {
	t.mu.Lock()
	t.sent += sent
	t.failed += failed
	t.inFlight -= sent + failed
	recovered := sent > 0 && t.failing
	t.mu.Unlock()
	if recovered {
		t.setFailing(false)
	}
}

// setFailing records whether the server fails past the retries: a batch
// was given up after all of them, and no request has succeeded since.
// Meanwhile a blocking queue drops instead of waiting (OverflowBlock).
func (t *Tracker) setFailing(failing bool) {
	t.mu.Lock()
	changed := t.failing != failing
	t.failing = failing
	if changed && failing {
		close(t.space) // producers waiting for room stop waiting
		t.space = make(chan struct{})
	}
	t.mu.Unlock()
	if !changed || t.s.overflow != OverflowBlock {
		return
	}
	if failing {
		t.s.log.Warn("analytics: the server keeps failing; until it recovers, a full queue drops its oldest events instead of waiting")
	} else {
		t.s.log.Warn("analytics: the server recovered; a full queue waits again")
	}
}

// giveUp counts events as failed and says why, in the log and in what
// Close returns.
func (t *Tracker) giveUp(n int, msg string, attrs ...any) {
	t.giveUpBecause(nil, n, msg, attrs...)
}

// giveUpBecause is giveUp for a reason callers may test for (cause).
func (t *Tracker) giveUpBecause(cause error, n int, msg string, attrs ...any) {
	t.settle(0, n)
	t.lose(cause, n, msg, attrs...)
}

// lose says why n events, already counted as failed, were lost: in the
// log and in what Close returns.
func (t *Tracker) lose(cause error, n int, msg string, attrs ...any) {
	t.s.log.Warn("analytics: "+msg, append([]any{"events", n}, attrs...)...)
	err := errors.New(msg + t.lossDetails(attrs))
	if cause != nil {
		err = fmt.Errorf("%w: %s", cause, err)
	}
	t.mu.Lock()
	t.lastLoss = err
	t.mu.Unlock()
}

// lossDetails spells the log attributes of a loss for an error message.
// Every value goes through serverText: some come from the server's reply
// (missing_field, error), which may quote the API key or hold newlines,
// and this message becomes a command's one error line.
func (t *Tracker) lossDetails(attrs []any) string {
	var b strings.Builder
	for i := 0; i+1 < len(attrs); i += 2 {
		if v := t.serverText(fmt.Sprint(attrs[i+1])); v != "" && v != "[]" {
			fmt.Fprintf(&b, " %v=%s", attrs[i], v)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return " (" + strings.TrimPrefix(b.String(), " ") + ")"
}

// refusalCause is ErrAPIKeyRejected when a refusal is about the API key,
// nil otherwise.
func (r *postResult) refusalCause() error {
	if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden ||
		(r.status == http.StatusBadRequest && strings.Contains(strings.ToLower(r.reply.Error), "invalid api key")) {
		return ErrAPIKeyRejected
	}
	return nil
}

// deliver sends events until the server accepts them or they are given up,
// retrying, splitting on 413 and dropping the invalid ones on 400. It
// reports whether it gave up on events the server might have accepted
// later (retries exhausted, or Close's deadline).
func (t *Tracker) deliver(events []pendingEvent) (gaveUp bool) {
	var body []byte
	for attempt := 0; ; attempt++ {
		if body == nil {
			body = t.body(events)
		}
		r := t.post(body)
		switch {
		case r.err == nil && r.status/100 == 2:
			t.settle(len(events), 0)
			return false

		case r.status == http.StatusRequestEntityTooLarge:
			if len(events) == 1 {
				t.giveUp(1, "event too large for the server", "status", r.status, "error", t.serverText(r.reply.Error))
				return false
			}
			half := len(events) / 2
			g1 := t.deliver(events[:half])
			g2 := t.deliver(events[half:])
			return g1 || g2

		case r.status == http.StatusBadRequest:
			bad, fields := r.reply.invalidEvents(len(events))
			if len(bad) == 0 {
				t.giveUpBecause(r.refusalCause(), len(events), "request rejected", "status", r.status,
					"error", t.serverText(r.reply.Error), "missing_field", t.serverText(r.reply.MissingField))
				return false
			}
			t.giveUp(len(bad), "dropped invalid events", "status", r.status, "fields", fields,
				"error", t.serverText(r.reply.Error))
			events = removeIndices(events, bad)
			if len(events) == 0 {
				return false
			}
			body = nil // resend the rest at once

		case r.retryable():
			if r.status == http.StatusTooManyRequests {
				if over := r.reply.overQuota(pendingIDs(events)); len(over) > 0 {
					t.giveUp(len(over), "dropped events of users or devices over their daily quota", "status", r.status)
					if events, body = removeIndices(events, over), nil; len(events) == 0 {
						return false
					}
				}
			}
			why := []any{"attempts", attempt + 1}
			if r.err != nil {
				why = append(why, "error", r.err.Error())
			} else {
				why = append(why, "status", r.status, "error", t.serverText(r.reply.Error))
			}
			if t.ctx.Err() != nil {
				t.giveUp(len(events), "events not sent before close's deadline", why...)
				return true
			}
			if attempt >= t.s.retries {
				t.giveUp(len(events), "giving up on events after retries", why...)
				t.setFailing(true)
				return true
			}
			t.s.log.Debug("analytics: retrying", why...)
			if !t.wait(t.backoff(attempt+1, r.retryAfter)) {
				t.giveUp(len(events), "events not sent before close's deadline", why...)
				return true
			}

		default:
			t.giveUpBecause(r.refusalCause(), len(events), "request refused", "status", r.status, "error", t.serverText(r.reply.Error))
			return false
		}
	}
}

// backoff is the delay before retry n (1-based): the bound doubles from
// backoffMin up to backoffMax, the delay is drawn in [bound/2, bound], and
// a longer Retry-After wins.
func (t *Tracker) backoff(n int, retryAfter time.Duration) time.Duration {
	bound := t.s.backoffMax
	if n-1 < 32 {
		bound = min(t.s.backoffMin<<(n-1), t.s.backoffMax)
	}
	if bound < t.s.backoffMin { // overflow
		bound = t.s.backoffMax
	}
	d := bound/2 + time.Duration(rand.Int64N(int64(bound/2)+1))
	return max(d, min(retryAfter, maxEventsRetryAfter))
}

// wait sleeps for d unless the tracker's context ends first.
func (t *Tracker) wait(d time.Duration) bool { return httpx.Sleep(t.ctx, d) == nil }

// eventsPayload is the HTTP V2 API's request body.
type eventsPayload struct {
	APIKey  string         `json:"api_key"`
	Events  []Event        `json:"events"`
	Options *eventsOptions `json:"options,omitempty"`
}

type eventsOptions struct {
	MinIDLength int `json:"min_id_length"`
}

// payloadFrame is the JSON of eventsPayload before and after its events
// array, exactly as encoding/json writes it: a request body is the frame
// around the events, encoded once each, so that splitting a batch (413,
// the size limit) costs no re-encoding.
func payloadFrame(key Secret, minIDLength *int) (head, tail []byte) {
	p := eventsPayload{APIKey: string(key), Events: []Event{}}
	if minIDLength != nil {
		p.Options = &eventsOptions{MinIDLength: *minIDLength}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p) // strings and an int: cannot fail
	whole := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	i := bytes.Index(whole, []byte(`"events":[]`)) + len(`"events":[`)
	return slices.Clip(whole[:i]), whole[i:]
}

// body is the request body carrying events.
func (t *Tracker) body(events []pendingEvent) []byte {
	size := len(t.s.bodyHead) + len(t.s.bodyTail) + len(events)
	for _, e := range events {
		size += len(e.json)
	}
	b := make([]byte, 0, size)
	b = append(b, t.s.bodyHead...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.json...)
	}
	return append(b, t.s.bodyTail...)
}

// postResult is one request's outcome: a transport error, or a status and
// the decoded reply.
type postResult struct {
	err        error
	status     int
	reply      eventsReply
	retryAfter time.Duration
}

func (r *postResult) retryable() bool {
	return r.err != nil || r.status == http.StatusRequestTimeout || r.status == http.StatusTooManyRequests || r.status >= 500
}

func (t *Tracker) post(body []byte) postResult {
	ctx, cancel := context.WithTimeout(t.ctx, t.s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.s.url, bytes.NewReader(body))
	if err != nil {
		return postResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "*/*")
	resp, err := t.s.client.Do(req)
	if err != nil {
		return postResult{err: httpx.StripURL(err)} // no URL in the log
	}
	defer httpx.DrainClose(resp.Body)
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxEventsReplyBytes))
	r := postResult{status: resp.StatusCode}
	if err != nil && resp.StatusCode/100 == 2 {
		r.err = err // the server may not have answered in full
	}
	_ = json.Unmarshal(data, &r.reply) // error bodies are best effort
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		r.retryAfter = httpx.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}

// eventsReply is the part of the HTTP V2 API's reply the tracker reads.
type eventsReply struct {
	Code                       int              `json:"code"`
	Error                      string           `json:"error"`
	MissingField               string           `json:"missing_field"`
	EventsWithInvalidFields    map[string][]int `json:"events_with_invalid_fields"`
	EventsWithMissingFields    map[string][]int `json:"events_with_missing_fields"`
	EventsWithInvalidIDLengths map[string][]int `json:"events_with_invalid_id_lengths"`
	SilencedEvents             []int            `json:"silenced_events"`
	ExceededDailyQuotaUsers    map[string]int   `json:"exceeded_daily_quota_users"`
	ExceededDailyQuotaDevices  map[string]int   `json:"exceeded_daily_quota_devices"`
}

// invalidEvents lists, sorted, the indices of a 400's invalid events below
// n, and the fields the server complained about.
func (r *eventsReply) invalidEvents(n int) (idx []int, fields []string) {
	seen := make(map[int]bool)
	add := func(is []int) {
		for _, i := range is {
			if i >= 0 && i < n && !seen[i] {
				seen[i] = true
				idx = append(idx, i)
			}
		}
	}
	for _, m := range []map[string][]int{r.EventsWithInvalidFields, r.EventsWithMissingFields, r.EventsWithInvalidIDLengths} {
		for field, is := range m {
			fields = append(fields, field)
			add(is)
		}
	}
	if len(r.SilencedEvents) > 0 {
		fields = append(fields, "silenced")
		add(r.SilencedEvents)
	}
	slices.Sort(idx)
	slices.Sort(fields)
	return idx, slices.Compact(fields)
}

// overQuota lists the events of users or devices a 429 says have used up
// their daily quota: retrying them today is pointless.
func (r *eventsReply) overQuota(events []Event) []int {
	var idx []int
	for i, e := range events {
		_, u := r.ExceededDailyQuotaUsers[e.UserID]
		_, d := r.ExceededDailyQuotaDevices[e.DeviceID]
		if (u && e.UserID != "") || (d && e.DeviceID != "") {
			idx = append(idx, i)
		}
	}
	return idx
}

// removeIndices returns events without the sorted indices idx, in a new
// slice (the old one may still be read by a caller).
func removeIndices[E any](events []E, idx []int) []E {
	out := make([]E, 0, len(events)-len(idx))
	j := 0
	for i, e := range events {
		if j < len(idx) && idx[j] == i {
			j++
			continue
		}
		out = append(out, e)
	}
	return out
}

// serverText makes server-supplied text safe to log: the API key redacted
// in any form (Amplitude quotes it in "Invalid API key" errors) before the
// length is bounded, one line of printable characters.
func (t *Tracker) serverText(s string) string {
	return httpx.Snippet([]byte(s), maxServerTextLen, string(t.s.key))
}

// randomInsertID is a random UUID (version 4), what Amplitude's analytics
// clients put in an event that has no insert ID.
func randomInsertID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// eventSource produces queued events on demand: the sender builds an event
// from what TrackExposure captured only when it encodes it.
type eventSource interface {
	event(i int) Event
}

// eventAppender is an eventSource that writes its events' JSON itself,
// without building them (their maps, then reflection, were most of a
// tracked batch's cost). appendEvent must write exactly what encoding/json
// writes for event(i) with Library set to library when empty, and return
// the event's IDs.
type eventAppender interface {
	eventSource
	appendEvent(w *jsonWriter, i int, library string) (userID, deviceID string, err error)
}

// jsonWriter appends JSON to buf byte for byte as an encoding/json Encoder
// without HTML escaping writes it: plain strings directly, anything else
// through such an Encoder.
type jsonWriter struct {
	buf     []byte
	scratch bytes.Buffer
	enc     *json.Encoder
}

func newJSONWriter() *jsonWriter {
	w := &jsonWriter{}
	w.enc = json.NewEncoder(&w.scratch)
	w.enc.SetEscapeHTML(false)
	return w
}

// raw appends s as is.
func (w *jsonWriter) raw(s string) { w.buf = append(w.buf, s...) }

// plainJSON reports whether encoding/json writes s as is between quotes:
// printable ASCII other than the quote and the backslash.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// str appends s as a JSON string.
func (w *jsonWriter) str(s string) {
	if !plainJSON(s) {
		_ = w.encode(s) // a string always encodes; this is its exact form
		return
	}
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '"')
}

// strings appends a JSON array of ss (null for nil, as encoding/json).
func (w *jsonWriter) strings(ss []string) {
	if ss == nil {
		w.raw("null")
		return
	}
	w.buf = append(w.buf, '[')
	for i, s := range ss {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.str(s)
	}
	w.buf = append(w.buf, ']')
}

// jsonWriters recycles the writers of sent batches: a batch's buffer
// grows to a megabyte, and growing a fresh one for each batch was a tenth
// of the sender's time.
var jsonWriters = sync.Pool{New: func() any { return newJSONWriter() }}

// value appends v's JSON.
func (w *jsonWriter) value(v any) error {
	switch x := v.(type) {
	case string:
		w.str(x) // plain strings, the most common metadata, cost no reflection
		return nil
	case bool:
		w.buf = strconv.AppendBool(w.buf, x)
		return nil
	case nil:
		w.raw("null")
		return nil
	case float64:
		// Numbers decoded from JSON, such as flagVersion. NaN and the
		// infinities have no JSON form: the Encoder says so.
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			w.buf = appendJSONFloat(w.buf, x)
			return nil
		}
	}
	return w.encode(v)
}

// appendJSONFloat formats f as encoding/json does: like ES6, the shortest
// decimal, in exponent form below 1e-6 and from 1e21, with a one-digit
// negative exponent written without its leading zero.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1] // e-09 becomes e-9
		b = b[:n-1]
	}
	return b
}

// encode appends v's JSON as the Encoder writes it.
func (w *jsonWriter) encode(v any) error {
	w.scratch.Reset()
	if err := w.enc.Encode(v); err != nil {
		return err
	}
	w.buf = append(w.buf, bytes.TrimSuffix(w.scratch.Bytes(), []byte("\n"))...)
	return nil
}

// plainEvents are events given to Track.
type plainEvents []Event

func (p *plainEvents) event(i int) Event { return (*p)[i] }

type queueItem struct {
	src eventSource
	i   int
}

// eventRing is the bounded FIFO of queued events; it grows up to max and
// then drops its oldest item for each new one.
type eventRing struct {
	buf     []queueItem
	head, n int
	max     int
}

// push appends it and reports whether the oldest item was dropped for it.
func (r *eventRing) push(it queueItem) (dropped bool) {
	if r.n == r.max {
		r.buf[r.head] = queueItem{}
		r.head = (r.head + 1) % len(r.buf)
		r.n--
		dropped = true
	}
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = it
	r.n++
	return dropped
}

func (r *eventRing) grow() {
	buf := make([]queueItem, min(max(2*len(r.buf), 64), r.max))
	for i := range r.n {
		buf[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}

// pop moves the k oldest items to dst.
func (r *eventRing) pop(dst []queueItem, k int) []queueItem {
	for range k {
		dst = append(dst, r.buf[r.head])
		r.buf[r.head] = queueItem{}
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
	return dst
}

func (r *eventRing) reset() {
	r.buf, r.head, r.n = nil, 0, 0
}

// dedupKey identifies an evaluation: who, and which variant of which flag
// (what Amplitude's canonical string spells out), as seeded
// 64-bit hashes. Two different evaluations share a key with a probability
// of about 2^-64; an entry takes 24 bytes instead of the canonical string,
// which is kilobytes long for a hundred flags. The set hash is a sum, so
// the key needs no sorting: a duplicate evaluation is recognised in one
// pass over its results, without allocating.
type dedupKey struct {
	ids, set uint64
	n        int
}

// dedupCache remembers evaluations for 24 hours from their first sight:
// an LRU of bounded size, whose entries expire by the
// injected clock. It starts no goroutine; expired entries are replaced
// when seen again or evicted as least recently used.
type dedupCache struct {
	seed maphash.Seed
	ttl  int64 // ms

	mu  sync.Mutex
	lru *simplelru.LRU[dedupKey, int64] // key -> expiry, Unix ms
}

func newDedupCache(capacity int) (*dedupCache, error) {
	lru, err := simplelru.NewLRU[dedupKey, int64](capacity, nil)
	if err != nil {
		return nil, err
	}
	return &dedupCache{seed: maphash.MakeSeed(), ttl: dayMillis, lru: lru}, nil
}

// keyOf is the key of an evaluation.
func (c *dedupCache) keyOf(user *User, variants map[string]Variant) dedupKey {
	var h maphash.Hash
	h.SetSeed(c.seed)
	_, _ = h.WriteString(user.UserID)
	_ = h.WriteByte(0)
	_, _ = h.WriteString(user.DeviceID)
	k := dedupKey{ids: h.Sum64(), n: len(variants)}
	for flag, v := range variants {
		h.Reset()
		_, _ = h.WriteString(flag)
		_ = h.WriteByte(0)
		_, _ = h.WriteString(v.Key)
		k.set += h.Sum64()
	}
	return k
}

// admit reports whether k is new (or its entry expired) and, if so,
// remembers it until nowMs + 24h.
func (c *dedupCache) admit(k dedupKey, nowMs int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if expiry, ok := c.lru.Get(k); ok && nowMs < expiry {
		return false
	}
	c.lru.Add(k, nowMs+c.ttl)
	return true
}

// forget removes k: its events were not queued after all.
func (c *dedupCache) forget(k dedupKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(k)
}

// eventService is what ExposureService and AssignmentService share: the
// de-duplication cache and where events go, a Tracker or a printer.
type eventService struct {
	cache   *dedupCache
	tracker *Tracker
	printer *EventPrinter
	now     func() time.Time
	library string
	closed  atomic.Bool // printer mode
}

func newEventService(kind string, cfg TrackerConfig, capacity int, printer *EventPrinter) (*eventService, error) {
	if capacity < 0 {
		return nil, fmt.Errorf("experiment: %w", newConfigError(kind+" config", fmt.Errorf("CacheCapacity is negative (%d)", capacity)))
	}
	cache, err := newDedupCache(cmp.Or(capacity, DefaultCacheCapacity))
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", newConfigError(kind+" config", err))
	}
	s := &eventService{cache: cache, printer: printer}
	if printer != nil {
		_, s.now, s.library = cfg.resolveCommon()
		return s, nil
	}
	if s.tracker, err = NewTracker(cfg); err != nil {
		return nil, fmt.Errorf("experiment: %s config: %w", kind, errors.Unwrap(err))
	}
	s.now, s.library = s.tracker.s.now, s.tracker.s.library
	return s, nil
}

// emit hands the n events of src, an evaluation of key just seen by
// cache.admit, to the tracker, or prints them with the de-duplication
// decision. When the tracker queued none of them (ctx, Close), the
// evaluation is forgotten, so that the next one like it is sent rather
// than taken for a duplicate; when it queued some, it stays remembered, or
// the next one would queue those again.
func (s *eventService) emit(ctx context.Context, key dedupKey, src eventSource, n int, deduplicated bool) error {
	if s.printer == nil {
		if deduplicated {
			return nil
		}
		queued, err := s.tracker.enqueue(ctx, src, n)
		if err != nil && queued == 0 {
			// Nothing of it will be sent: the next evaluation like it must
			// not be taken for a duplicate. When some events were queued,
			// forgetting would queue those again.
			s.cache.forget(key)
		}
		return err
	}
	if s.closed.Load() {
		return nil
	}
	for i := range n {
		ev := src.event(i)
		if ev.Library == "" {
			ev.Library = s.library
		}
		_ = s.printer.Print(ev, deduplicated) // the error is kept by the printer
	}
	return nil
}

func (s *eventService) flush(ctx context.Context) error {
	if s.tracker == nil {
		return s.printer.Err()
	}
	return s.tracker.Flush(ctx)
}

func (s *eventService) close(ctx context.Context) error {
	if s.tracker == nil {
		s.closed.Store(true)
		return s.printer.Err()
	}
	return s.tracker.Close(ctx)
}

func (s *eventService) stats() TrackerStats {
	if s.tracker == nil {
		return TrackerStats{}
	}
	return s.tracker.Stats()
}

// EventPrinter writes events as JSON Lines instead of sending them, for a
// dry run, a test, or a pipeline of one's own: set it as
// ExposureConfig.Printer (or AssignmentConfig.Printer) and the service
// prints what it would send, with the de-duplication decision:
//
//	{"event":{"event_type":"[Experiment] Exposure",...},"deduplicated":false}
//
// An event with "deduplicated":true would not have been sent. It is safe
// for concurrent use, so the exposure and assignment services can share
// one; each line is one Write. After a write error it writes nothing more
// and Err reports the error.
type EventPrinter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewEventPrinter returns a printer writing to w.
func NewEventPrinter(w io.Writer) *EventPrinter { return &EventPrinter{w: w} }

// printedEvent is one line of EventPrinter output.
type printedEvent struct {
	Event        Event `json:"event"`
	Deduplicated bool  `json:"deduplicated"`
}

// Print writes one event.
func (p *EventPrinter) Print(ev Event, deduplicated bool) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(printedEvent{Event: ev, Deduplicated: deduplicated}); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if _, err := p.w.Write(buf.Bytes()); err != nil {
		p.err = fmt.Errorf("printing events: %w", err)
	}
	return p.err
}

// Err is the first write error, if any.
func (p *EventPrinter) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
