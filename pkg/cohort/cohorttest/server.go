// Package cohorttest is a fake of Amplitude's cohort download API
// (GET /sdk/v1/cohort/<id>) on an httptest server at 127.0.0.1, for tests of cohort
// sync: it checks the Basic credentials, answers 204 to a matching
// lastModified and 413 over maxCohortSize, 404 for unknown ids, and can be
// scripted to answer statuses, to stall, or to trickle. It records every
// request.
package cohorttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagkit/experiment/pkg/cohort"
)

// Script statuses that are not HTTP statuses.
const (
	// Stall holds the request without answering until the client gives
	// up (or the server closes).
	Stall = -1
	// StallBody answers 200 with the cohort's headers and the first half
	// of its body, then holds the rest until the client gives up.
	StallBody = -2
	// Trickle answers 200, then sends a space (which JSON allows before
	// a document) every TrickleInterval until the client gives up: data
	// keeps arriving, so only a deadline on the whole download ends it.
	Trickle = -3
)

// TrickleInterval is how often Trickle sends a byte: well inside any stall
// timeout a test would use.
const TrickleInterval = 100 * time.Millisecond

// Server serves GET <any prefix>/sdk/v1/cohort/<id>. The embedded
// httptest.Server's URL is the base URL to configure.
type Server struct {
	*httptest.Server
	APIKey, SecretKey string

	done     chan struct{}
	closing  sync.Once
	mu       sync.Mutex
	cohorts  map[string]served
	scripts  map[string][]int
	requests []Request
}

type served struct {
	body         []byte
	lastModified int64
	size         int
}

// Request is what the server received.
type Request struct {
	CohortID string
	Path     string // as sent, escaped
	Query    url.Values
	Header   http.Header
	Status   int // what the server answered (Stall, StallBody, Trickle for those)
}

// NewServer starts a server that accepts apiKey:secretKey and serves no
// cohorts yet. Close it when done.
func NewServer(apiKey, secretKey string) *Server {
	s := &Server{APIKey: apiKey, SecretKey: secretKey, done: make(chan struct{}),
		cohorts: map[string]served{}, scripts: map[string][]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close releases stalled requests and stops the server.
func (s *Server) Close() {
	s.closing.Do(func() { close(s.done) })
	s.Server.Close()
}

// Put serves body, a download API document, under its cohortId; it
// replaces what was served for that id.
func (s *Server) Put(body []byte) error {
	c, err := cohort.Decode(body)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cohorts[c.ID] = served{body: body, lastModified: c.LastModified, size: c.Size}
	return nil
}

// PutCohort serves c.
func (s *Server) PutCohort(c *cohort.Cohort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cohorts[c.ID] = served{body: c.AppendJSON(nil), lastModified: c.LastModified, size: c.Size}
}

// Remove stops serving a cohort: it answers 404 from now on.
func (s *Server) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cohorts, id)
}

// AddDir serves every <id>.json file of dir.
func (s *Server) AddDir(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := s.Put(body); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

// Script makes the next requests for id answer these statuses, in order,
// whatever the credentials and query; then the server answers normally
// again. Stall and StallBody hold the request instead.
func (s *Server) Script(id string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[id] = append(s.scripts[id], statuses...)
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count is how many requests for id were received.
func (s *Server) Count(id string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.CohortID == id {
			n++
		}
	}
	return n
}

const endpoint = "/sdk/v1/cohort/"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	i := strings.LastIndex(r.URL.Path, endpoint)
	if r.Method != http.MethodGet || i < 0 {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	id := r.URL.Path[i+len(endpoint):]
	status, c := s.answer(id, r)
	s.mu.Lock()
	s.requests = append(s.requests, Request{CohortID: id, Path: r.URL.EscapedPath(), Query: r.URL.Query(),
		Header: r.Header.Clone(), Status: status})
	s.mu.Unlock()

	switch status {
	case Stall:
		s.hold(r)
	case StallBody:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(c.body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(c.body[:len(c.body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		s.hold(r)
	case Trickle:
		s.trickle(w, r)
	case http.StatusOK:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(c.body)))
		_, _ = w.Write(c.body)
	case http.StatusNoContent:
		w.WriteHeader(status)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": http.StatusText(status)})
	}
}

// answer decides the status of a request, and the cohort it serves.
func (s *Server) answer(id string, r *http.Request) (int, served) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, known := s.cohorts[id]
	if script := s.scripts[id]; len(script) > 0 {
		s.scripts[id] = script[1:]
		if script[0] == StallBody && !known {
			return Stall, c
		}
		return script[0], c
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != s.APIKey || pass != s.SecretKey {
		return http.StatusUnauthorized, c
	}
	q := r.URL.Query()
	maxSize, err := strconv.Atoi(q.Get("maxCohortSize"))
	if err != nil {
		return http.StatusBadRequest, c
	}
	switch {
	case !known:
		return http.StatusNotFound, c
	case c.size > maxSize:
		return http.StatusRequestEntityTooLarge, c
	case q.Has("lastModified") && q.Get("lastModified") == strconv.FormatInt(c.lastModified, 10):
		return http.StatusNoContent, c
	}
	return http.StatusOK, c
}

// trickle sends a byte every TrickleInterval until the client gives up or
// the server closes.
func (s *Server) trickle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	t := time.NewTicker(TrickleInterval)
	defer t.Stop()
	for {
		if _, err := w.Write([]byte{' '}); err != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
	}
}

// hold waits until the client gives up or the server closes.
func (s *Server) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.done:
	}
}
