// Package analyticstest serves a fake of Amplitude's HTTP V2 analytics API
// on an httptest server, so that tests of code that sends events (package
// analytics, exposure tracking in package experiment, the CLI) run offline
// and can see what was sent.
package analyticstest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The analytics endpoints Server answers: the HTTP V2 and Batch APIs.
const (
	Path      = "/2/httpapi"
	BatchPath = "/batch"
)

// Server is a fake of Amplitude's analytics HTTP API: POST
// /2/httpapi and POST /batch on 127.0.0.1. It checks requests as the real
// API does (a JSON body with api_key and events; each event needs an
// event_type and a user_id or device_id; time, when present, is a number),
// answers 400 in Amplitude's error format when they fail, and otherwise
// ingests the events and answers Amplitude's success JSON:
//
//	{"code":200,"events_ingested":N,"payload_size_bytes":B,"server_upload_time":ms}
//
// It records every request with the status it got. Tests script answers
// (Script, SetDown), limits (SetMaxEvents for 413s) and latency
// (SetLatency). An Server is safe for concurrent use and answers
// requests in parallel; Close it when done.
type Server struct {
	// URL is the server's base URL; EventsURL and BatchURL are the full
	// endpoint URLs to configure a client with.
	URL string

	srv     *httptest.Server
	closing chan struct{}
	once    sync.Once

	mu        sync.Mutex
	apiKey    string
	script    []Reply
	down      *Reply
	maxEvents int
	latency   time.Duration
	inFlight  int // requests being answered
	peak      int // most requests answered at once
	requests  []Request
	ingested  []json.RawMessage
}

// Request is one request the server received.
type Request struct {
	Path   string
	Header http.Header
	// Body is the request body as sent.
	Body []byte
	// APIKey, Events and Options are Body decoded; Events keep each event's
	// JSON as sent.
	APIKey  string
	Events  []json.RawMessage
	Options map[string]any
	// Status is what the server answered; 0 when the client went away
	// before the answer.
	Status int
}

// Reply scripts one answer. A zero Status means the normal
// behaviour (check, ingest, answer). Otherwise the server answers Status
// with Body (for a 2xx without Body, the success JSON, and the events are
// ingested) and Header, after Delay.
type Reply struct {
	Status int
	Body   string
	Header http.Header
	Delay  time.Duration
}

// InvalidEventsReply is a 400 that names invalid events the way Amplitude
// does: field name to the indices of the events of the request with a bad
// value for it.
func InvalidEventsReply(invalid map[string][]int) Reply {
	body, _ := json.Marshal(map[string]any{
		"code": 400, "error": "Request contains invalid events", "events_with_invalid_fields": invalid,
	})
	return Reply{Status: http.StatusBadRequest, Body: string(body)}
}

// NewServer starts a fake that accepts any API key until
// RequireAPIKey.
func NewServer() *Server {
	s := &Server{closing: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, s.serve)
	mux.HandleFunc("POST "+BatchPath, s.serve)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// EventsURL is the HTTP V2 endpoint, for analytics.Config.ServerURL.
func (s *Server) EventsURL() string { return s.URL + Path }

// BatchURL is the batch endpoint.
func (s *Server) BatchURL() string { return s.URL + BatchPath }

// Close stops the server, releasing delayed answers first.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// RequireAPIKey makes the server answer requests with another key the way
// Amplitude does: 400 {"code":400,"error":"Invalid API key: <key>"}.
func (s *Server) RequireAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = key
}

// Script queues answers for the next requests, in order.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// SetDown makes every request without a scripted answer get status
// (e.g. 503) until SetDown(0).
func (s *Server) SetDown(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		s.down = nil
		return
	}
	s.down = &Reply{Status: status, Body: `{"code":` + strconv.Itoa(status) + `,"error":"scripted failure"}`}
}

// SetMaxEvents makes requests with more than n events get 413, as requests
// over the API's size limit do; 0 removes the limit.
func (s *Server) SetMaxEvents(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxEvents = n
}

// SetLatency delays every answer by d (on top of a scripted Delay), as a
// distant server does; 0 removes it.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// PeakConcurrency is the largest number of requests the server was
// answering at the same time.
func (s *Server) PeakConcurrency() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// EventCount is len(Events()), without copying them.
func (s *Server) EventCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ingested)
}

// Requests returns a copy of the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Events returns the events ingested so far (answered 2xx), in order, each
// as the JSON it was sent as.
func (s *Server) Events() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ingested)
}

// DecodedEvents returns Events decoded into maps.
func (s *Server) DecodedEvents() []map[string]any {
	raw := s.Events()
	out := make([]map[string]any, len(raw))
	for i, e := range raw {
		_ = json.Unmarshal(e, &out[i])
	}
	return out
}

// analyticsBody is the request body of the analytics API.
type analyticsBody struct {
	APIKey  *string           `json:"api_key"`
	Events  []json.RawMessage `json:"events"`
	Options map[string]any    `json:"options"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	var parsed analyticsBody
	parseErr := json.Unmarshal(body, &parsed)
	if parseErr == nil {
		if parsed.APIKey != nil {
			req.APIKey = *parsed.APIKey
		}
		req.Events, req.Options = parsed.Events, parsed.Options
	}

	s.mu.Lock()
	s.inFlight++
	s.peak = max(s.peak, s.inFlight)
	delay := s.latency
	var reply *Reply
	if len(s.script) > 0 {
		reply = &s.script[0]
		s.script = s.script[1:]
		if reply.Status == 0 {
			reply = nil
		}
	} else if s.down != nil {
		reply = s.down
	}
	s.mu.Unlock()

	if reply != nil {
		delay += reply.Delay
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.closing:
		}
		t.Stop()
	}

	s.mu.Lock()
	var status int
	var answer []byte
	switch {
	case r.Context().Err() != nil:
		// The client went away: no answer, nothing ingested.
	case reply != nil:
		status, answer = reply.Status, []byte(reply.Body)
		if status/100 == 2 && reply.Body == "" {
			answer = s.ingest(req.Events, len(body))
		}
	default:
		status, answer = s.check(parseErr, &parsed, len(body))
	}
	req.Status = status
	s.requests = append(s.requests, req)
	s.inFlight--
	s.mu.Unlock()
	if status == 0 {
		return
	}

	if reply != nil {
		for k, v := range reply.Header {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

// check validates a request as the API does and ingests it when valid.
// The caller holds s.mu.
func (s *Server) check(parseErr error, b *analyticsBody, size int) (int, []byte) {
	fail := func(v map[string]any) (int, []byte) {
		v["code"] = http.StatusBadRequest
		out, _ := json.Marshal(v)
		return http.StatusBadRequest, out
	}
	switch {
	case parseErr != nil:
		return fail(map[string]any{"error": "Invalid JSON request body"})
	case b.APIKey == nil || *b.APIKey == "":
		return fail(map[string]any{"error": "Request missing required field", "missing_field": "api_key"})
	case s.apiKey != "" && *b.APIKey != s.apiKey:
		return fail(map[string]any{"error": "Invalid API key: " + *b.APIKey})
	case b.Events == nil:
		return fail(map[string]any{"error": "Request missing required field", "missing_field": "events"})
	case s.maxEvents > 0 && len(b.Events) > s.maxEvents:
		out, _ := json.Marshal(map[string]any{"code": http.StatusRequestEntityTooLarge, "error": "Payload too large"})
		return http.StatusRequestEntityTooLarge, out
	}
	missing, invalid := map[string][]int{}, map[string][]int{}
	for i, raw := range b.Events {
		// Only the checked fields are decoded: a fake that decoded whole
		// events into maps would cost more than the client it measures.
		var e struct {
			EventType json.RawMessage `json:"event_type"`
			UserID    json.RawMessage `json:"user_id"`
			DeviceID  json.RawMessage `json:"device_id"`
			Time      json.RawMessage `json:"time"`
		}
		if json.Unmarshal(raw, &e) != nil || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			invalid["event"] = append(invalid["event"], i)
			continue
		}
		if jsonString(e.EventType) == "" {
			missing["event_type"] = append(missing["event_type"], i)
		}
		if jsonString(e.UserID) == "" && jsonString(e.DeviceID) == "" {
			missing["device_id"] = append(missing["device_id"], i)
		}
		if e.Time != nil {
			var n float64
			if string(e.Time) == "null" || json.Unmarshal(e.Time, &n) != nil {
				invalid["time"] = append(invalid["time"], i)
			}
		}
	}
	if len(missing) > 0 || len(invalid) > 0 {
		v := map[string]any{"error": "Request contains invalid events"}
		if len(missing) > 0 {
			v["events_with_missing_fields"] = missing
		}
		if len(invalid) > 0 {
			v["events_with_invalid_fields"] = invalid
		}
		return fail(v)
	}
	return http.StatusOK, s.ingest(b.Events, size)
}

// jsonString is the string raw holds, or "" when it holds anything else.
func jsonString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// ingest records events and returns the success JSON. The caller holds s.mu.
func (s *Server) ingest(events []json.RawMessage, size int) []byte {
	for _, e := range events {
		s.ingested = append(s.ingested, bytes.Clone(e))
	}
	out, _ := json.Marshal(map[string]any{
		"code": 200, "events_ingested": len(events), "payload_size_bytes": size,
		"server_upload_time": time.Now().UnixMilli(),
	})
	return out
}
