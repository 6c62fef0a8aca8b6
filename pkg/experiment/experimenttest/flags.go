package experimenttest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// FlagServer is a fake flag config service: GET /sdk/v2/flags and the SSE
// stream GET /sdk/stream/v1/flags, on 127.0.0.1. Tests script its answers:
// statuses, stalls, garbage bodies, dropped streams, new flags.
type FlagServer struct {
	*httptest.Server
	Key string

	mu       sync.Mutex
	body     []byte
	script   []Reply // answers of the next flag requests, in order
	stall    time.Duration
	down     int // status of every unscripted answer; 0: serve the flags
	requests int
	streamOK bool
	streams  map[chan []byte]struct{}
	streamN  int
}

// Reply scripts one answer: a status and, for 200, an optional body that
// replaces the current flags for that one answer.
type Reply struct {
	Status int
	Body   string
}

// NewFlagServer serves flags (a JSON array) for key. The stream is off
// (404) until EnableStream.
func NewFlagServer(key string, flags []byte) *FlagServer {
	s := &FlagServer{Key: key, body: flags, streams: map[chan []byte]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sdk/v2/flags", s.serveFlags)
	mux.HandleFunc("GET /sdk/stream/v1/flags", s.serveStream)
	s.Server = httptest.NewServer(mux)
	return s
}

// SetFlags replaces the flags served and pushes them to open streams.
func (s *FlagServer) SetFlags(flags []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = flags
	for ch := range s.streams {
		select {
		case ch <- flags:
		default:
		}
	}
}

// Script queues answers for the next flag requests.
func (s *FlagServer) Script(replies ...Reply) {
	s.mu.Lock()
	s.script = append(s.script, replies...)
	s.mu.Unlock()
}

// SetDown makes every flag request without a scripted answer get status
// (e.g. 503) until SetDown(0).
func (s *FlagServer) SetDown(status int) {
	s.mu.Lock()
	s.down = status
	s.mu.Unlock()
}

// Stall makes every request wait d before answering (or until the client
// gives up).
func (s *FlagServer) Stall(d time.Duration) {
	s.mu.Lock()
	s.stall = d
	s.mu.Unlock()
}

// Requests counts flag requests (not stream connections).
func (s *FlagServer) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// StreamConnections counts stream connections accepted.
func (s *FlagServer) StreamConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streamN
}

// EnableStream turns the stream on or off; off also drops open streams.
func (s *FlagServer) EnableStream(on bool) {
	s.mu.Lock()
	s.streamOK = on
	if !on {
		for ch := range s.streams {
			close(ch)
			delete(s.streams, ch)
		}
	}
	s.mu.Unlock()
}

func (s *FlagServer) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Api-Key "+s.Key {
		http.Error(w, `{"error":"invalid api key"}`, http.StatusUnauthorized)
		return false
	}
	return true
}

func (s *FlagServer) wait(r *http.Request) {
	s.mu.Lock()
	d := s.stall
	s.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
	}
}

func (s *FlagServer) serveFlags(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	body := s.body
	var reply *Reply
	if len(s.script) > 0 {
		reply = &s.script[0]
		s.script = s.script[1:]
	} else if s.down != 0 {
		reply = &Reply{Status: s.down}
	}
	s.mu.Unlock()
	s.wait(r)
	if !s.authorized(w, r) {
		return
	}
	if reply != nil {
		if reply.Status != http.StatusOK {
			http.Error(w, http.StatusText(reply.Status), reply.Status)
			return
		}
		if reply.Body != "" {
			body = []byte(reply.Body)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (s *FlagServer) serveStream(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	s.mu.Lock()
	if !s.streamOK {
		s.mu.Unlock()
		http.Error(w, "stream off", http.StatusNotFound)
		return
	}
	ch := make(chan []byte, 4)
	s.streams[ch] = struct{}{}
	s.streamN++
	ch <- s.body
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, ch)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	keepAlive := time.NewTicker(time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case body, ok := <-ch:
			if !ok {
				return // dropped
			}
			// A body with line breaks goes out as one data: line per
			// line, which SSE readers join back with "\n".
			for line := range bytes.Lines(body) {
				fmt.Fprintf(w, "data: %s\n", bytes.TrimRight(line, "\r\n"))
			}
			fmt.Fprint(w, "\n")
		case <-keepAlive.C:
			fmt.Fprint(w, "data:  \n\n")
		case <-r.Context().Done():
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}
