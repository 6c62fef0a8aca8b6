package analytics

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// The outbox: the bounded queue of events, the dispatcher that hands due
// batches to senders, and the accounting of what was sent, dropped or
// given up, and why.

// run is the dispatcher goroutine: it hands due batches to sender
// goroutines, at most MaxConcurrentRequests at a time, and outlives them.
// Once closed, it sends everything queued and returns when nothing is in
// flight.
func (c *Client) run() {
	defer close(c.done)
	ticker := time.NewTicker(c.s.interval)
	defer ticker.Stop()
	var senders sync.WaitGroup
	defer senders.Wait() // a sender giving up at close's deadline is still settling
	closing := c.closing
	for {
		if c.dispatch(&senders) {
			c.abandonQueued()
			c.reportDrops()
			return
		}
		c.reportDrops()
		select {
		case <-c.kick: // a full batch, a Flush, or a sender done
		case <-ticker.C:
			c.mu.Lock()
			c.flushTo = max(c.flushTo, c.pushed)
			c.mu.Unlock()
		case <-closing:
			closing = nil // closed is seen by dispatch
		}
	}
}

// dispatch starts a sender for each due batch while fewer than
// MaxConcurrentRequests are in flight. A batch is due when it is full, when
// its events were queued before a Flush or a tick, when the queue is full,
// and at close. It reports whether the Client is closed and nothing is in
// flight or left to send (the queue is then empty, or given up). Once
// Close's deadline has passed, nothing more is encoded only to fail.
func (c *Client) dispatch(senders *sync.WaitGroup) (finished bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stopped := c.abandon || c.ctx.Err() != nil
	for len(c.sending) < c.s.concurrency && c.queue.n > 0 && !stopped {
		start := c.pushed - int64(c.queue.n)
		k := min(c.queue.n, c.s.batch)
		if k < c.s.batch && !c.closed && start >= c.flushTo && c.queue.n < c.s.capacity {
			break
		}
		items := c.queue.pop(make([]queueItem, 0, k), k)
		c.inFlight += k
		c.sending = append(c.sending, start)
		close(c.space)
		c.space = make(chan struct{})
		closing := c.closed
		senders.Add(1)
		go func() {
			defer senders.Done()
			c.send(items, start, closing)
		}()
	}
	return c.closed && len(c.sending) == 0 && (c.queue.n == 0 || stopped)
}

// abandonQueued counts what is left in the queue at close as failed.
func (c *Client) abandonQueued() {
	c.mu.Lock()
	n := c.queue.n
	c.queue.reset()
	c.failed += n
	c.releaseWaiters()
	c.mu.Unlock()
	if n > 0 {
		c.s.log.Warn("analytics: events not sent before close", "events", n)
	}
}

func (c *Client) reportDrops() {
	c.mu.Lock()
	n, total := c.unreported, c.dropped
	c.unreported = 0
	c.mu.Unlock()
	if n > 0 {
		c.s.log.Warn("analytics: queue was full, dropped the oldest events", "dropped", n, "dropped_total", total)
	}
}

// settle moves n in-flight events to sent or failed.
func (c *Client) settle(sent, failed int) {
	c.mu.Lock()
	c.sent += sent
	c.failed += failed
	c.inFlight -= sent + failed
	recovered := sent > 0 && c.failing
	c.mu.Unlock()
	if recovered {
		c.setFailing(false)
	}
}

// setFailing records whether the server fails past the retries: a batch
// was given up after all of them, and no request has succeeded since.
// Meanwhile a blocking queue drops instead of waiting (OverflowBlock).
func (c *Client) setFailing(failing bool) {
	// One change at a time, said before any producer is released or sees
	// the new state: the log then reads cause before effect ("keeps
	// failing" before "queue full"). Said outside c.mu, as every line: a
	// log handler may call the Client back, and a slow log must not stall
	// the producers.
	c.failingMu.Lock()
	defer c.failingMu.Unlock()
	c.mu.Lock()
	changed := c.failing != failing
	c.mu.Unlock()
	if !changed {
		return
	}
	if c.s.overflow == OverflowBlock {
		if failing {
			c.s.log.Warn("analytics: the server keeps failing; until it recovers, a full queue drops its oldest events instead of waiting")
		} else {
			c.s.log.Warn("analytics: the server recovered; a full queue waits again")
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failing = failing
	if failing {
		close(c.space) // producers waiting for room stop waiting
		c.space = make(chan struct{})
	}
}

// giveUp counts events as failed and says why, in the log and in what
// Close returns.
func (c *Client) giveUp(n int, msg string, attrs ...any) {
	c.giveUpBecause(nil, n, msg, attrs...)
}

// giveUpBecause is giveUp for a reason callers may test for (cause).
func (c *Client) giveUpBecause(cause error, n int, msg string, attrs ...any) {
	c.settle(0, n)
	c.lose(cause, n, msg, attrs...)
}

// lose says why n events, already counted as failed, were lost: in the
// log and in what Close returns.
func (c *Client) lose(cause error, n int, msg string, attrs ...any) {
	c.s.log.Warn("analytics: "+msg, append([]any{"events", n}, attrs...)...)
	err := errors.New(msg + c.lossDetails(attrs))
	if cause != nil {
		err = fmt.Errorf("%w: %s", cause, err)
	}
	c.mu.Lock()
	c.lastLoss = err
	c.mu.Unlock()
}

// lossDetails spells the log attributes of a loss for an error message.
// Every value goes through serverText: some come from the server's reply
// (missing_field, error), which may quote the API key or hold newlines,
// and this message becomes a command's one error line.
func (c *Client) lossDetails(attrs []any) string {
	var b strings.Builder
	for i := 0; i+1 < len(attrs); i += 2 {
		if v := c.serverText(fmt.Sprint(attrs[i+1])); v != "" && v != "[]" {
			fmt.Fprintf(&b, " %v=%s", attrs[i], v)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return " (" + strings.TrimPrefix(b.String(), " ") + ")"
}

// queueItem is one queued event: the i-th of its source.
type queueItem struct {
	src Source
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
