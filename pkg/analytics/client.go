package analytics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/flagkit/experiment/internal/httpx"
)

// Stats counts a Client's events.
type Stats struct {
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
func (s Stats) Lost() int { return s.Dropped + s.Failed }

// LostEventsError is what Close returns when events were lost during the
// Client's life. Err is the context's error when Close's deadline cut the
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
	msg := fmt.Sprintf("%d events lost (%d dropped from a full queue, %d not delivered)",
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

// Client queues analytics events and sends them to Amplitude's HTTP V2 API
// from background goroutines: a batch as soon as FlushQueueSize events are
// queued, everything queued every FlushInterval, up to
// MaxConcurrentRequests requests at once. Failed requests are retried with
// capped exponential backoff and jitter; a 413 splits the batch in halves;
// a 400 drops only the events the server names as invalid and resends the
// rest. The queue is bounded: when it is full, Track drops the oldest
// events or waits for room, as Config.Overflow says.
//
// A Client is safe for concurrent use. Close it: Close flushes what is
// queued within its context's deadline and stops the goroutines.
type Client struct {
	s *settings

	failingMu  sync.Mutex // one setFailing change at a time; taken before mu, never under it
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
	failing bool          // see setFailing, the only writer
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

// ErrClosed: events given to TrackContext after Close (or while a
// blocked TrackContext waited when Close came) were not queued.
var ErrClosed = errors.New("analytics client closed")

// NewClient validates cfg, fills its defaults and starts the sender. It
// fails, and never panics, on an empty API key or an invalid config.
func NewClient(cfg Config) (*Client, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if s.client == nil {
		s.client, s.ownsClient = httpx.NewClient(s.concurrency), true // an idle connection per sender
	}
	c := &Client{
		s:       s,
		queue:   eventRing{max: s.capacity},
		space:   make(chan struct{}),
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	s.log.Debug("analytics client started", "url", s.redactedURL, "api_key", s.key,
		"flush_queue_size", s.batch, "flush_interval", s.interval,
		"max_concurrent_requests", s.concurrency, "overflow", s.overflow)
	go c.run()
	return c, nil
}

// Track queues events. An event without a time gets the current one, one
// without an insert ID a random one. An event with neither a user ID nor a
// device ID, or no event type, is not queued but counted as failed, since
// the server would reject it. Track keeps the events' maps until they are
// sent: do not modify them afterwards. After Close, Track does nothing.
//
// With OverflowBlock, Track waits while the queue is full, until Close if
// need be; TrackContext bounds the wait.
func (c *Client) Track(events ...Event) {
	_ = c.TrackContext(context.Background(), events...)
}

// TrackContext is Track whose wait for room in a full queue (with
// OverflowBlock) ends with ctx: it then returns ctx's error, and the
// events it could not queue are counted as failed. It returns
// ErrClosed when the Client is closed before the events are queued;
// those of a call waiting for room when Close comes are counted as failed
// too. Either error says how many of the call's events were not queued
// (errors.Is tells which).
func (c *Client) TrackContext(ctx context.Context, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	nowMs := c.s.now().UnixMilli()
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
		c.mu.Lock()
		closed := c.closed
		if !closed {
			c.failed += invalid
		}
		c.mu.Unlock()
		if !closed {
			c.s.log.Warn("analytics: events without an event type, a user ID or a device ID are not sent", "events", invalid)
		}
	}
	if len(valid) == 0 {
		return nil
	}
	_, err := c.enqueue(ctx, &valid, len(valid))
	return err
}

// TrackSource queues n events that src builds only when a sender encodes
// them, on the sender's goroutine: a caller on a hot path hands over what
// the events need and pays for nothing more (exposure tracking does so).
// Unlike Track, it checks nothing and fills nothing in: each event must
// have an event type, a user ID or a device ID, a time and an insert ID
// of its own (Library excepted). It waits for room as TrackContext does,
// and returns how many of the n were queued, and why the others were not.
// After Close it queues nothing and returns ErrClosed.
func (c *Client) TrackSource(ctx context.Context, src Source, n int) (queued int, err error) {
	return c.enqueue(ctx, src, n)
}

// enqueue adds the n events of src to the queue. When it is full, it drops
// the oldest events or, with OverflowBlock, waits for room, until ctx is
// done or the Client closes; the events not queued then are failed. It
// returns how many of the n were queued, and an error saying how many were
// not (wrapping ctx's error or ErrClosed).
//
// While it waits, its events not queued yet are counted in c.waiting, so
// that Close can count them as failed before it computes its result: a
// producer woken by Close may run only after Close has returned.
func (c *Client) enqueue(ctx context.Context, src Source, n int) (int, error) {
	queued := 0
	c.mu.Lock()
	if c.closed {
		// Not counted: after Close, Track does nothing, and Close's result
		// (already computed, or being computed) must stay Failed+Dropped.
		c.mu.Unlock()
		return 0, notQueued(ErrClosed, n, n)
	}
	for {
		drops := 0
		for ; queued < n; queued++ {
			if c.queue.n == c.s.capacity && c.s.overflow == OverflowBlock && !c.failing {
				break
			}
			if c.queue.push(queueItem{src: src, i: queued}) {
				drops++
			}
			c.pushed++
		}
		firstDrop := drops > 0 && c.unreported == 0
		c.dropped += drops
		c.unreported += drops
		if drops > 0 {
			c.releaseWaiters() // dropped events are settled
		}
		// A full queue is sent even when it holds less than a batch:
		// otherwise a capacity below FlushQueueSize would block forever.
		due := c.queue.n >= min(c.s.batch, c.s.capacity)
		space := c.space
		left := n - queued
		// Registered under the same lock that saw closed false, so Close
		// either counts these events or has not set closed yet.
		c.waiting += left
		c.mu.Unlock()
		if due {
			c.poke()
		}
		if firstDrop {
			c.s.log.Warn("analytics: queue full, dropping the oldest events", "capacity", c.s.capacity)
		}
		if left == 0 {
			return n, nil
		}
		var ctxErr error
		select {
		case <-space:
		case <-c.closing:
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
		c.mu.Lock()
		if c.closed {
			// Close moved our waiting events to failed, and recorded why.
			c.mu.Unlock()
			return queued, notQueued(ErrClosed, left, n)
		}
		c.waiting -= left
		if ctxErr != nil {
			c.failed += left
			c.mu.Unlock()
			c.lose(ctxErr, left, "events not queued: the queue was full")
			return queued, notQueued(ctxErr, left, n)
		}
	}
}

// notQueued says how many of a call's n events were not queued, and why.
func notQueued(cause error, left, n int) error {
	return fmt.Errorf("%d of %d events not queued: %w", left, n, cause)
}

// poke wakes the dispatcher.
func (c *Client) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Flush sends what is queued now and waits until it is sent or given up,
// along with what is being sent, or until ctx is done (then sending goes
// on in the background). After Close it returns nil at once.
func (c *Client) Flush(ctx context.Context) error {
	c.mu.Lock()
	if c.closed || c.settledBelow() >= c.pushed {
		c.mu.Unlock()
		return nil
	}
	w := flushWaiter{upTo: c.pushed, ch: make(chan struct{})}
	c.flushTo = max(c.flushTo, c.pushed)
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	c.poke()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		c.waiters = slices.DeleteFunc(c.waiters, func(o flushWaiter) bool { return o.ch == w.ch })
		c.mu.Unlock()
		return ctx.Err()
	}
}

// settledBelow is the number of the oldest event not settled yet (queued
// or being sent): every event numbered below it is. The caller holds c.mu.
func (c *Client) settledBelow() int64 {
	low := c.pushed - int64(c.queue.n)
	for _, start := range c.sending {
		low = min(low, start)
	}
	return low
}

// releaseWaiters ends the Flushes whose events are all settled. The caller
// holds c.mu.
func (c *Client) releaseWaiters() {
	if len(c.waiters) == 0 {
		return
	}
	low := c.settledBelow()
	c.waiters = slices.DeleteFunc(c.waiters, func(w flushWaiter) bool {
		if w.upTo <= low {
			close(w.ch)
			return true
		}
		return false
	})
}

// Close stops the Client: Track does nothing from now on, what is queued
// is sent within ctx's deadline (a request still failing then is given
// up, and the events still queued are counted as failed, as are those of
// a Track still waiting for room with OverflowBlock), and the sender
// goroutines stop before Close returns. Close returns promptly once ctx is
// done. When events were lost during the Client's life (see Stats)
// it logs a warning and returns a *LostEventsError; otherwise nil. Calling
// Close again waits for the senders to stop (or for its own ctx) and
// returns the same result.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		// The events of producers blocked for room will never be queued;
		// count them now, as their producers may wake after Close returns.
		abandoned := c.waiting
		c.failed += abandoned
		c.waiting = 0
		c.mu.Unlock()
		if abandoned > 0 {
			c.lose(ErrClosed, abandoned, "events not queued: the client closed while they waited for room")
		}
		c.stopAfter = context.AfterFunc(ctx, c.cancel) // the deadline aborts sending
		close(c.closing)
	})
	select {
	case <-c.done:
	case <-ctx.Done():
		c.cancel()
		<-c.done
	}
	c.finishOnce.Do(func() {
		c.stopAfter()
		c.cancel()
		if c.s.ownsClient {
			c.s.client.CloseIdleConnections()
		}
		if st := c.Stats(); st.Lost() > 0 {
			c.mu.Lock()
			last := c.lastLoss
			c.mu.Unlock()
			c.closeErr = &LostEventsError{Dropped: st.Dropped, Failed: st.Failed, Err: ctx.Err(), Last: last}
			c.s.log.Warn("analytics: events lost", "lost", st.Lost(), "dropped", st.Dropped, "failed", st.Failed, "sent", st.Sent)
		}
	})
	return c.closeErr
}

// Stats returns the Client's counts so far.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Sent: c.sent, Dropped: c.dropped, Failed: c.failed, Queued: c.queue.n + c.inFlight}
}

// run is the dispatcher goroutine: it hands due batches to sender
// goroutines, at most MaxConcurrentRequests at a time, and outlives them.
// Once closed, it sends everything queued and returns when nothing is in
