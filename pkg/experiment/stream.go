package experiment

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// runStream holds one flag stream connection (server-sent events): every event
// carries the complete flag list. It returns when the stream fails: no
// first message in time, a keep-alive gap, a bad status or content type,
// data that is not a flag list, or the connection's maximum age (then with
// errStreamRecycle, and the caller reconnects at once).
func (c *LocalClient) runStream(ctx context.Context) error {
	for {
		err := c.streamOnce(ctx)
		if !errors.Is(err, errStreamRecycle) {
			return err
		}
	}
}

var errStreamRecycle = errors.New("stream reached its maximum age")

func (c *LocalClient) streamOnce(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(status int, err error) error {
		return &FlagsError{StatusCode: status, URL: c.s.redactedStreamURL, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.s.streamURL, nil)
	if err != nil {
		return fail(0, err)
	}
	c.setHeaders(req)
	req.Header.Del("Content-Type")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")

	// The watchdog ends the connection when the server goes quiet: first
	// within StreamFlagConnTimeout, then within the keep-alive timeout.
	watchdog := time.AfterFunc(c.s.streamConnTimeout, func() { cancel(errStreamSilent) })
	defer watchdog.Stop()
	maxAge := time.AfterFunc(jitter(streamMaxAge, 5*time.Second), func() { cancel(errStreamRecycle) })
	defer maxAge.Stop()

	c.inflight.Store(c.s.redactedStreamURL)
	c.answered.Store(false) // a silent stream has given no response, whatever its headers say
	resp, err := c.s.httpClient.Do(req)
	if err != nil {
		return fail(0, streamCause(ctx, transportError(ctx, err, 0)))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(resp.StatusCode, errors.New(resp.Status))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return fail(resp.StatusCode, fmt.Errorf("content type %q, want text/event-stream", resp.Header.Get("Content-Type")))
	}
	for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: maxFlagConfigBytes}) {
		if err != nil {
			return fail(resp.StatusCode, streamCause(ctx, err))
		}
		watchdog.Reset(streamKeepAliveTimeout)
		if strings.TrimSpace(ev.Data) == "" {
			continue // keep-alive
		}
		// The flag set keeps a copy of the event's bytes, the event's
		// string is garbage once loaded. A reconnection's first event is
		// mostly the flags in use: they are not loaded again.
		fc := newFlagConfigs([]byte(ev.Data), time.Now())
		err := c.loadUnlessInUse(fc)
		if err == nil {
			// Streaming before apply: apply makes the client ready, and
			// its first Status must already say how updates arrive. A
			// failure here ends the stream, and the caller clears it.
			c.setStreaming(true)
			err = c.apply(ctx, fc, SourceStream)
		}
		if err != nil {
			c.recordError(err)
			return fail(resp.StatusCode, fmt.Errorf("%w: %v", ErrMalformedResponse, err))
		}
	}
	return fail(resp.StatusCode, streamCause(ctx, errors.New("stream closed by the server")))
}

var errStreamSilent = errors.New("no message within the keep-alive timeout")

// streamCause prefers why the connection was cut (silence, maximum age)
// over the read error that cutting it caused.
func streamCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}
