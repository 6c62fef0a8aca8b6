// Package experimenttest provides fakes of Amplitude's services for tests.
// RemoteServer speaks the remote evaluation API (/sdk/v2/vardata) on an
// httptest server bound to 127.0.0.1, so SDK and CLI tests never reach the
// internet. It accepts every form the SDKs send (POST with a JSON body, GET
// with X-Amp-Exp-User in either base64 alphabet), checks the deployment key,
// honours the flag-key header, records every request and plays scripted
// answers for retry and timeout tests. A RemoteServer is safe for
// concurrent use.
package experimenttest

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flagkit/experiment/internal/httpx"
	"github.com/flagkit/experiment/pkg/experiment"
)

// RemotePath is the remote evaluation endpoint, relative to the base URL.
const RemotePath = "/sdk/v2/vardata"

// Request is one request the server received.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	// UserJSON is the user as sent: the POST body, or the decoded
	// X-Amp-Exp-User header of a GET.
	UserJSON []byte
	// User is UserJSON decoded; nil when it was not a user object.
	User *experiment.User
	// UserEncoding is "body", "base64" (standard alphabet) or "base64url".
	UserEncoding string
	// FlagKeys is the decoded X-Amp-Exp-Flag-Keys; nil without the header.
	FlagKeys []string
	// Track and ExposureTrack are the X-Amp-Exp-Track and
	// X-Amp-Exp-Exposure-Track headers, "" when absent.
	Track, ExposureTrack string
	// HasTrack and HasExposureTrack say whether those headers were sent.
	HasTrack, HasExposureTrack bool
}

// Response is a scripted answer.
type Response struct {
	// Status is the status to answer with; 0 means answer normally
	// (authenticate and evaluate), or 200 when Body is set.
	Status int
	// Body is sent verbatim instead of the evaluated variants.
	Body string
	// Header is added to the answer, e.g. Retry-After.
	Header http.Header
	// Delay holds the answer back; Hang holds it until the client goes away
	// or the server closes.
	Delay time.Duration
	Hang  bool
}

// RemoteServer is a fake remote evaluation API.
type RemoteServer struct {
	// URL is the base URL to configure clients with (RemoteConfig.ServerURL
	// or --server-url), including BasePath.
	URL string

	srv     *httptest.Server
	key     string
	base    string
	closing chan struct{}
	once    sync.Once

	mu       sync.Mutex
	variants map[string]any
	eval     func(*experiment.User) map[string]any
	script   []Response
	fallback *Response
	requests []Request
	count    int
	record   bool
}

// NewRemoteServer starts a fake that accepts deploymentKey and answers with
// no variants until SetVariants or SetEvaluator says otherwise. Close it
// when done (t.Cleanup(s.Close)).
func NewRemoteServer(deploymentKey string) *RemoteServer {
	return NewRemoteServerAt(deploymentKey, "")
}

// NewRemoteServerAt is NewRemoteServer serving under a base path, e.g.
// "/proxy/amplitude": only {basePath}/sdk/v2/vardata answers, anything else
// is 404, so a client that drops or doubles the path fails.
func NewRemoteServerAt(deploymentKey, basePath string) *RemoteServer {
	s := &RemoteServer{key: deploymentKey, base: strings.TrimRight(basePath, "/"), closing: make(chan struct{}), record: true}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + s.base
	return s
}

// Close stops the server, releasing hung requests first.
func (s *RemoteServer) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.Close()
	})
}

// SetVariants sets the answer for every user: flag key to variant, where a
// variant is an experiment.Variant or any JSON-encodable value (so tests can
// send a non-string "value" or a malformed variant).
func (s *RemoteServer) SetVariants(variants map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.variants, s.eval = maps.Clone(variants), nil
}

// SetEvaluator computes the answer per user, e.g. to echo the user id.
func (s *RemoteServer) SetEvaluator(eval func(*experiment.User) map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eval = eval
}

// Script queues answers: each request takes the next one; when the queue
// is empty the server answers normally (or with SetDefaultResponse's).
func (s *RemoteServer) Script(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, rs...)
}

// SetDefaultResponse sets the answer used when the script is empty; nil
// restores normal answers.
func (s *RemoteServer) SetDefaultResponse(r *Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = r
}

// SetRecording turns request recording off for load tests (it is on by
// default); RequestCount still counts.
func (s *RemoteServer) SetRecording(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record = on
}

// Requests returns the requests received so far, in arrival order.
func (s *RemoteServer) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// RequestCount is how many requests reached the endpoint.
func (s *RemoteServer) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// LastRequest is the most recent request; the zero Request if none.
func (s *RemoteServer) LastRequest() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return Request{}
	}
	return s.requests[len(s.requests)-1]
}

func (s *RemoteServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != s.base+RemotePath || (r.Method != http.MethodPost && r.Method != http.MethodGet) {
		http.NotFound(w, r)
		return
	}
	req, userErr := readRemoteRequest(r)

	s.mu.Lock()
	s.count++
	if s.record {
		s.requests = append(s.requests, req)
	}
	resp := s.fallback
	if len(s.script) > 0 {
		resp = &s.script[0]
		s.script = s.script[1:]
	}
	variants, eval := s.variants, s.eval
	s.mu.Unlock()

	if resp != nil {
		if !s.wait(r, *resp) {
			return
		}
		if resp.Status != 0 || resp.Body != "" {
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(max(resp.Status, http.StatusOK))
			io.WriteString(w, resp.Body)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
	}

	if r.Header.Get("Authorization") != "Api-Key "+s.key {
		writeRemoteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid api key"})
		return
	}
	if userErr != "" {
		writeRemoteJSON(w, http.StatusBadRequest, map[string]string{"error": userErr})
		return
	}
	if r.Header.Get("X-Amp-Exp-Flag-Keys") != "" && req.FlagKeys == nil {
		writeRemoteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid X-Amp-Exp-Flag-Keys"})
		return
	}
	if eval != nil {
		variants = eval(req.User)
	}
	out := make(map[string]any, len(variants))
	for k, v := range variants {
		if req.FlagKeys == nil || slices.Contains(req.FlagKeys, k) {
			out[k] = v
		}
	}
	writeRemoteJSON(w, http.StatusOK, out)
}

// wait applies a scripted delay or hang; false when the answer is moot.
func (s *RemoteServer) wait(r *http.Request, resp Response) bool {
	if resp.Hang {
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return false
	}
	if resp.Delay > 0 {
		t := time.NewTimer(resp.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		case <-s.closing:
			return false
		}
	}
	return true
}

// readRequest decodes what the client sent; userErr says why the user is
// unusable ("" when it is fine).
func readRemoteRequest(r *http.Request) (req Request, userErr string) {
	req = Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone()}
	req.Track, req.HasTrack = headerValue(r, "X-Amp-Exp-Track")
	req.ExposureTrack, req.HasExposureTrack = headerValue(r, "X-Amp-Exp-Exposure-Track")
	if v := r.Header.Get("X-Amp-Exp-Flag-Keys"); v != "" {
		if b, err := httpx.DecodeBase64(v); err == nil {
			var keys []string
			if json.Unmarshal(b, &keys) == nil && keys != nil {
				req.FlagKeys = keys
			}
		}
	}
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			return req, "reading body: " + err.Error()
		}
		req.UserJSON, req.UserEncoding = body, "body"
	} else {
		h := r.Header.Get("X-Amp-Exp-User")
		if h == "" {
			return req, "missing X-Amp-Exp-User"
		}
		b, enc, ok := decodeUserHeader(h)
		if !ok {
			return req, "X-Amp-Exp-User is not base64"
		}
		req.UserJSON, req.UserEncoding = b, enc
	}
	u, err := experiment.DecodeUser(req.UserJSON)
	if err != nil {
		return req, err.Error()
	}
	req.User = u
	return req, ""
}

// decodeUserHeader decodes X-Amp-Exp-User and names the form it was in.
func decodeUserHeader(s string) ([]byte, string, bool) {
	b, err := httpx.DecodeBase64(s)
	if err != nil {
		return nil, "", false
	}
	if strings.ContainsAny(s, "-_") {
		return b, "base64url", true
	}
	return b, "base64", true
}

func headerValue(r *http.Request, name string) (string, bool) {
	v, ok := r.Header[http.CanonicalHeaderKey(name)]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func writeRemoteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
