package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flagkit/experiment/internal/httpx"
)

// The sender: a batch's events are built and encoded once, on the
// sender's goroutine, and delivered in requests under the API's limits,
// with retries, 413 splitting and the events a 400 names dropped.

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
func (c *Client) send(items []queueItem, start int64, closing bool) {
	defer c.batchDone(start)
	b := batchBuffers.Get().(*batchBuffer)
	defer func() {
		b.buf = b.buf[:0]
		batchBuffers.Put(b) // the events, slices of b.buf, are delivered
	}()
	events := c.encodeEvents(b, items)
	clear(items) // drop references to the captured evaluations
	for len(events) > 0 {
		n := c.fit(events)
		if gaveUp := c.deliver(events[:n]); gaveUp && closing {
			if rest := len(events) - n; rest > 0 {
				c.giveUp(rest, "events not sent before close")
			}
			c.mu.Lock()
			c.abandon = true
			c.mu.Unlock()
			return
		}
		events = events[n:]
	}
}

// batchDone ends the delivery of the batch that started at start.
func (c *Client) batchDone(start int64) {
	c.mu.Lock()
	if i := slices.Index(c.sending, start); i >= 0 {
		c.sending = slices.Delete(c.sending, i, i+1)
	}
	c.releaseWaiters()
	c.mu.Unlock()
	c.poke() // a sender is free
}

// encodeEvents encodes the items' events into one buffer: a source that
// writes its own JSON (an exposure) does so, the others' events are built
// and encoded. An event that cannot be encoded (a metadata value JSON has
// no form for) is given up alone.
func (c *Client) encodeEvents(b *batchBuffer, items []queueItem) []pendingEvent {
	events := make([]pendingEvent, 0, len(items))
	ends := make([]int, 0, len(items))
	bad := 0
	var badErr error
	for _, it := range items {
		mark := len(b.buf)
		var p pendingEvent
		var err error
		if a, ok := it.src.(Appender); ok {
			b.buf, p.userID, p.deviceID, err = a.AppendEvent(b.buf, it.i, c.s.library)
		} else {
			ev := it.src.Event(it.i)
			if ev.Library == "" {
				ev.Library = c.s.library
			}
			p.userID, p.deviceID, err = ev.UserID, ev.DeviceID, b.encode(ev)
		}
		if err != nil {
			b.buf = b.buf[:mark]
			bad, badErr = bad+1, err
			continue
		}
		events = append(events, p)
		ends = append(ends, len(b.buf))
	}
	if bad > 0 {
		c.giveUp(bad, "events cannot be encoded", "error", badErr)
	}
	data, from := b.buf, 0
	for i, end := range ends {
		events[i].json = data[from:end:end]
		from = end
	}
	return events
}

// fit is how many of events, at least one, one request carries: at most
// FlushQueueSize, in a body under maxRequestBytes. A single event over the
// limit is sent alone and the server judges it.
func (c *Client) fit(events []pendingEvent) int {
	size := len(c.s.bodyHead) + len(c.s.bodyTail) - 1 // no comma before the first
	for i, e := range events {
		if i == c.s.batch {
			return i
		}
		size += len(e.json) + 1
		if size >= maxRequestBytes && i > 0 {
			return i
		}
	}
	return len(events)
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
func (c *Client) deliver(events []pendingEvent) (gaveUp bool) {
	var body []byte
	for attempt := 0; ; attempt++ {
		if body == nil {
			body = c.body(events)
		}
		r := c.post(body)
		switch {
		case r.err == nil && r.status/100 == 2:
			c.settle(len(events), 0)
			return false

		case r.status == http.StatusRequestEntityTooLarge:
			if len(events) == 1 {
				c.giveUp(1, "event too large for the server", "status", r.status, "error", c.serverText(r.reply.Error))
				return false
			}
			half := len(events) / 2
			g1 := c.deliver(events[:half])
			g2 := c.deliver(events[half:])
			return g1 || g2

		case r.status == http.StatusBadRequest:
			bad, fields := r.reply.invalidEvents(len(events))
			if len(bad) == 0 {
				c.giveUpBecause(r.refusalCause(), len(events), "request rejected", "status", r.status,
					"error", c.serverText(r.reply.Error), "missing_field", c.serverText(r.reply.MissingField))
				return false
			}
			c.giveUp(len(bad), "dropped invalid events", "status", r.status, "fields", fields,
				"error", c.serverText(r.reply.Error))
			events = removeIndices(events, bad)
			if len(events) == 0 {
				return false
			}
			body = nil // resend the rest at once

		case r.retryable():
			left, lost := c.awaitRetry(events, &r, attempt)
			if lost || len(left) == 0 {
				return lost
			}
			if len(left) != len(events) {
				events, body = left, nil // the rest, encoded again
			}

		default:
			c.giveUpBecause(r.refusalCause(), len(events), "request refused", "status", r.status, "error", c.serverText(r.reply.Error))
			return false
		}
	}
}

// awaitRetry follows a retryable failure of attempt (0-based): it drops
// the events of users or devices a 429 says are over their daily quota,
// then waits before the next attempt, unless the retries are used up or
// Close's deadline has passed. It returns the events left to send, and
// whether they were given up (as deliver reports it).
func (c *Client) awaitRetry(events []pendingEvent, r *postResult, attempt int) (left []pendingEvent, gaveUp bool) {
	if r.status == http.StatusTooManyRequests {
		if over := r.reply.overQuota(pendingIDs(events)); len(over) > 0 {
			c.giveUp(len(over), "dropped events of users or devices over their daily quota", "status", r.status)
			if events = removeIndices(events, over); len(events) == 0 {
				return nil, false
			}
		}
	}
	why := []any{"attempts", attempt + 1}
	if r.err != nil {
		why = append(why, "error", r.err.Error())
	} else {
		why = append(why, "status", r.status, "error", c.serverText(r.reply.Error))
	}
	switch {
	case c.ctx.Err() != nil:
		c.giveUp(len(events), "events not sent before close's deadline", why...)
		return events, true
	case attempt >= c.s.retries:
		c.giveUp(len(events), "giving up on events after retries", why...)
		c.setFailing(true)
		return events, true
	}
	c.s.log.Debug("analytics: retrying", why...)
	if !c.wait(c.backoff(attempt+1, r.retryAfter)) {
		c.giveUp(len(events), "events not sent before close's deadline", why...)
		return events, true
	}
	return events, false
}

// backoff is the delay before retry n (1-based): the bound doubles from
// backoffMin up to backoffMax, the delay is drawn in [bound/2, bound], and
// a longer Retry-After wins.
func (c *Client) backoff(n int, retryAfter time.Duration) time.Duration {
	bound := c.s.backoffMax
	if n-1 < 32 {
		bound = min(c.s.backoffMin<<(n-1), c.s.backoffMax)
	}
	if bound < c.s.backoffMin { // overflow
		bound = c.s.backoffMax
	}
	d := bound/2 + time.Duration(rand.Int64N(int64(bound/2)+1))
	return max(d, min(retryAfter, maxEventsRetryAfter))
}

// wait sleeps for d unless the Client's context ends first.
func (c *Client) wait(d time.Duration) bool { return httpx.Sleep(c.ctx, d) == nil }

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

func (c *Client) post(body []byte) postResult {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.s.url, bytes.NewReader(body))
	if err != nil {
		return postResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "*/*")
	resp, err := c.s.client.Do(req)
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
