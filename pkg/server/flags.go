package server

import (
	"bytes"
	"net/http"
	"time"
)

// streamWriteTimeout bounds each write to a stream client: one that stops
// reading is dropped instead of holding its goroutine and buffers forever.
const streamWriteTimeout = 10 * time.Second

// keepAliveEvent is an event whose data is one space: the SDKs count it as
// life and ignore it (SSE strips the first space after "data:").
var keepAliveEvent = []byte("data:  \n\n")

// sseEvent renders body as one server-sent event, a data line per line.
func sseEvent(body []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(body) + 8)
	for _, line := range bytes.Split(body, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// current is the flags in use, or nil after answering 503: nothing has
// been applied yet.
func (h *Handler) current(w http.ResponseWriter, d *deployment) *State {
	st := d.src.Current()
	if st.Flags == nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "no flag configs applied yet")
		return nil
	}
	return st
}

// serveFlags answers GET /sdk/v2/flags with the flag configs.
func (h *Handler) serveFlags(w http.ResponseWriter, r *http.Request, d *deployment, _ []string) {
	st := h.current(w, d)
	if st == nil {
		return
	}
	f := st.Flags
	hd := w.Header()
	hd.Set("ETag", f.ETag)
	hd.Set("Cache-Control", "no-cache")
	if notModified(r, f.ETag) {
		writeNotModified(w, f.ETag)
		return
	}
	if len(f.Body) >= gzipMin {
		hd.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			hd.Set("Content-Type", "application/json")
			writeGzipped(w, http.StatusOK, f.gzBody)
			return
		}
	}
	writeBody(w, nil, http.StatusOK, f.Body)
}

// openStream registers a stream, or reports that the Handler is closed.
func (h *Handler) openStream() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.streams.Add(1)
	return true
}

// serveStream answers GET /sdk/stream/v1/flags: the flags as the first
// event at once (SDKs give up after 1.5 s), then every change, with
// keep-alives in between, until the client leaves or Close.
func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request, d *deployment, _ []string) {
	st := h.current(w, d)
	if st == nil {
		return
	}
	if !h.openStream() {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer h.streams.Done()
	h.streamCount.Add(1)
	defer h.streamCount.Add(-1)
	d.streams.Add(1)
	defer d.streams.Add(-1)
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // proxies in front must not hold events back
	w.WriteHeader(http.StatusOK)
	sent := st.Flags
	if !writeEvent(w, rc, sent.event) {
		return
	}
	tick := time.NewTicker(h.opts.KeepAlive)
	defer tick.Stop()
	for {
		ev := keepAliveEvent
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-st.Changed:
			st = d.src.Current()
			if st.Flags == nil || st.Flags == sent {
				continue // a problem noted, the flags unchanged
			}
			same := st.Flags.ETag == sent.ETag // new cohorts, the same configs
			sent, ev = st.Flags, st.Flags.event
			if same {
				continue
			}
			tick.Reset(h.opts.KeepAlive)
		case <-tick.C:
		}
		if !writeEvent(w, rc, ev) {
			return
		}
	}
}

func writeEvent(w http.ResponseWriter, rc *http.ResponseController, ev []byte) bool {
	rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) // not every writer has one
	if _, err := w.Write(ev); err != nil {
		return false
	}
	return rc.Flush() == nil
}
