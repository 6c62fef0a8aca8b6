package server

import (
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flagkit/experiment/internal/redact"
	"github.com/flagkit/experiment/pkg/experiment"
)

// Options configure a Handler. The zero value serves any key.
type Options struct {
	// RequireKey, when set, is the only deployment key accepted (as
	// "Authorization: Api-Key K", "Authorization: Bearer K" or "X-API-Key:
	// K"); others get 401. Empty: any key, or none, is accepted, as
	// snapshot mode wants for hermetic tests.
	RequireKey string
	// KeepAlive is the interval between keep-alive events on a flag
	// stream. Default 10 s: the SDKs drop a stream silent for 17 s.
	KeepAlive time.Duration
	// Logger receives one debug record per request (route, method,
	// status, duration; never a header or a query). Default: discard.
	Logger *slog.Logger
	// Mode names the source in /status ("snapshot", "relay").
	Mode string
	// Now is the clock for ages in /status and /metrics. Default time.Now.
	Now func() time.Time
	// Deployments, when set, is relay mode: each deployment key is served
	// from its own Source, and a request with any other key, or none, gets
	// 401. The Source given to New and RequireKey are then ignored.
	Deployments []Deployment
	// CohortAPIKey and CohortSecretKey, when both set, are the only
	// credentials /sdk/v1/cohort accepts, as "Authorization: Basic
	// base64(apiKey:secretKey)" (what the SDKs send Amplitude); others get
	// 401. Unset: any, as snapshot mode wants.
	CohortAPIKey, CohortSecretKey string
	// Track, when set, receives the remote evaluations that requests ask
	// to track (X-Amp-Exp-Track, X-Amp-Exp-Exposure-Track); unset, the
	// headers are ignored. It is called on the request's goroutine and
	// must not block.
	Track func(Tracked)
	// Fleet, when set, is /status's "fleet" member: the relay fleet's
	// Redis as this relay sees it.
	Fleet func() *FleetStatus
	// Collectors are more metrics for /metrics (a fleet's counters),
	// registered in the Handler's own registry; a name that clashes with
	// another is a programming error (New panics).
	Collectors []prometheus.Collector
}

// Deployment is one deployment key and the Source of its flags.
type Deployment struct {
	Key    string
	Source Source
}

// Tracked is one remote evaluation whose events a request asked for.
type Tracked struct {
	User *experiment.User
	// Variants are the evaluated variants, default variants included.
	Variants map[string]experiment.Variant
	// Assignment: X-Amp-Exp-Track was "track" or absent. Exposure:
	// X-Amp-Exp-Exposure-Track was "track".
	Assignment, Exposure bool
}

// DefaultKeepAlive is Options.KeepAlive's default.
const DefaultKeepAlive = 10 * time.Second

// maxBodyBytes bounds a request body: a user object or an OFREP context.
const maxBodyBytes = 1 << 20

// Handler serves flags, evaluations and cohorts from a Source, and the
// operational endpoints. It is safe for concurrent use. Close ends its
// streams; it holds no other goroutine.
type Handler struct {
	deps    []*deployment // one, with an empty key, serves any key
	relay   bool          // Options.Deployments: an unknown key is refused
	basic   string        // the cohort endpoint's Authorization value; "" accepts any
	opts    Options
	metrics *metrics

	mu      sync.Mutex    // guards closed against streams opening
	closed  bool          // set by Close
	done    chan struct{} // closed by Close: streams end
	streams sync.WaitGroup
	results sync.Pool // *[]eval.Result, scratch for evaluations
	bufs    sync.Pool // *[]byte, scratch for request and response bodies

	streamCount atomic.Int64 // open streams, for /status and /metrics
}

// New returns a Handler serving src.
func New(src Source, opts Options) *Handler {
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Mode == "" {
		opts.Mode = "embedded"
	}
	h := &Handler{opts: opts, done: make(chan struct{})}
	if len(opts.Deployments) > 0 {
		h.relay = true
		for _, d := range opts.Deployments {
			h.deps = append(h.deps, newDeployment(d.Key, d.Source))
		}
	} else {
		h.deps = []*deployment{newDeployment(opts.RequireKey, src)}
	}
	if opts.CohortAPIKey != "" && opts.CohortSecretKey != "" {
		h.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(opts.CohortAPIKey+":"+opts.CohortSecretKey))
	}
	h.metrics = newMetrics(h)
	return h
}

// deployment is one Source as served: its key (empty: any), the key's
// fingerprint for /status, and its open streams.
type deployment struct {
	key     []byte
	fp      string
	src     Source
	streams atomic.Int64
}

func newDeployment(key string, src Source) *deployment {
	d := &deployment{key: []byte(key), fp: "any", src: src}
	if key != "" {
		d.fp = "fp " + redact.Fingerprint(key)
	}
	return d
}

// Close ends every open flag stream, so that http.Server.Shutdown, which
// waits for requests to finish, can finish; streams opened afterwards are
// refused with 503. It returns once the streams have ended.
func (h *Handler) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	h.mu.Unlock()
	h.streams.Wait()
}

// ServeHTTP serves every endpoint.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serve(w, r, true, true) }

// API serves the endpoints for SDKs and OFREP providers only, for a
// listener of their own; Ops serves the rest.
func (h *Handler) API() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, true, false) })
}

// Ops serves /healthz, /readyz, /status and /metrics only.
func (h *Handler) Ops() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, false, true) })
}

// route is one endpoint: its name (a metrics label), whether it is an
// operational endpoint, the methods it takes and what serves it.
type route struct {
	name    string
	ops     bool
	methods string // space-separated
	serve   func(h *Handler, w http.ResponseWriter, r *http.Request, d *deployment, params []string)
}

var (
	routeFlags       = route{"flags", false, "GET HEAD", (*Handler).serveFlags}
	routeStream      = route{"stream", false, "GET", (*Handler).serveStream}
	routeVardata     = route{"vardata", false, "GET POST", (*Handler).serveVardataV2}
	routeVardataV1   = route{"vardata_v1", false, "GET POST", (*Handler).serveVardataV1}
	routeCohort      = route{"cohort", false, "GET", (*Handler).serveCohort}
	routeMemberships = route{"memberships", false, "GET", (*Handler).serveMemberships}
	routeOFREP       = route{"ofrep", false, "POST", (*Handler).serveOFREP}
	routeOFREPBulk   = route{"ofrep_bulk", false, "POST", (*Handler).serveOFREPBulk}
	routeHealthz     = route{"healthz", true, "GET HEAD", (*Handler).serveHealthz}
	routeReadyz      = route{"readyz", true, "GET HEAD", (*Handler).serveReadyz}
	routeStatus      = route{"status", true, "GET", (*Handler).serveStatus}
	routeMetrics     = route{"metrics", true, "GET", (*Handler).serveMetrics}
	routeNotFound    = route{name: "unknown"}
)

// match finds the route of a normalised path and its parameters.
func match(path string) (route, []string) {
	switch path {
	case "/sdk/v2/flags":
		return routeFlags, nil
	case "/sdk/stream/v1/flags":
		return routeStream, nil
	case "/sdk/v2/vardata":
		return routeVardata, nil
	case "/sdk/vardata", "/v1/vardata":
		return routeVardataV1, nil
	case "/ofrep/v1/evaluate/flags":
		return routeOFREPBulk, nil
	case "/healthz":
		return routeHealthz, nil
	case "/readyz":
		return routeReadyz, nil
	case "/status":
		return routeStatus, nil
	case "/metrics":
		return routeMetrics, nil
	}
	if p, ok := params(path, "/sdk/v1/cohort/", 1); ok {
		return routeCohort, p
	}
	if p, ok := params(path, "/sdk/v2/memberships/", 2); ok {
		return routeMemberships, p
	}
	if p, ok := params(path, "/ofrep/v1/evaluate/flags/", 1); ok {
		return routeOFREP, p
	}
	return routeNotFound, nil
}

// params splits what follows prefix into exactly n non-empty segments.
func params(path, prefix string, n int) ([]string, bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return nil, false
	}
	p := strings.Split(rest, "/")
	for _, s := range p {
		if s == "" {
			return nil, false
		}
	}
	return p, len(p) == n
}

// normalPath collapses runs of slashes and drops a trailing one: a server
// URL configured with a trailing slash gives "//sdk/v2/flags", which is
// served rather than redirected (Node's client follows no redirect).
func normalPath(p string) string {
	if !strings.Contains(p, "//") && (len(p) <= 1 || p[len(p)-1] != '/') {
		return p // the common case allocates nothing
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && b.Len() > 0 && b.String()[b.Len()-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	s := b.String()
	if len(s) > 1 {
		s = strings.TrimSuffix(s, "/")
	}
	return s
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, api, ops bool) {
	start := time.Now()
	rt, p := match(normalPath(r.URL.EscapedPath()))
	if rt.serve != nil && ((rt.ops && !ops) || (!rt.ops && !api)) {
		rt = routeNotFound
	}
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	switch {
	case rt.serve == nil:
		writeError(rec, http.StatusNotFound, "no such endpoint: "+r.Method+" "+shortPath(r.URL.Path))
	case !allowed(rt.methods, r.Method):
		rec.Header().Set("Allow", strings.ReplaceAll(rt.methods, " ", ", "))
		writeError(rec, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; want "+strings.ReplaceAll(rt.methods, " ", " or "))
	case rt.name == "cohort":
		if !h.cohortAuthorized(r) {
			writeError(rec, http.StatusUnauthorized, "cohort credentials not accepted")
			break
		}
		rt.serve(h, rec, r, nil, p)
	case rt.ops:
		rt.serve(h, rec, r, nil, p)
	default:
		d := h.deploymentOf(r)
		if d == nil {
			writeError(rec, http.StatusUnauthorized, "deployment key not accepted")
			break
		}
		rt.serve(h, rec, r, d, p)
	}
	d := time.Since(start)
	h.metrics.observe(rt.name, r.Method, rec.status, d)
	// Enabled first: the arguments would be boxed, three allocations a
	// request, only for the default logger to drop them.
	if h.opts.Logger.Enabled(r.Context(), slog.LevelDebug) {
		h.opts.Logger.Debug("request", "route", rt.name, "method", r.Method, "status", rec.status, "duration", d)
	}
}

// allowed reports whether m is one of the space-separated methods. It runs
// on every request, so it splits without allocating.
func allowed(methods, m string) bool {
	for methods != "" {
		var a string
		a, methods, _ = strings.Cut(methods, " ")
		if a == m {
			return true
		}
	}
	return false
}

// shortPath is a path as an error may quote it: bounded, so that a huge
// request cannot make a huge answer.
func shortPath(p string) string {
	if len(p) > 100 {
		return p[:100] + "…"
	}
	return p
}

// deploymentOf is the deployment whose key the request carries
// ("Authorization: Api-Key K", "Authorization: Bearer K" or "X-API-Key:
// K"), or nil. Every key is compared, each in constant time, so the time
// taken says nothing of which key came close.
func (h *Handler) deploymentOf(r *http.Request) *deployment {
	if !h.relay && len(h.deps[0].key) == 0 {
		return h.deps[0]
	}
	key := requestKey(r)
	var found *deployment
	for _, d := range h.deps {
		if subtle.ConstantTimeCompare(key, d.key) == 1 {
			found = d
		}
	}
	return found
}

func requestKey(r *http.Request) []byte {
	key := r.Header.Get("X-API-Key")
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, rest, _ := strings.Cut(a, " ")
		switch strings.ToLower(scheme) {
		case "api-key", "bearer":
			key = strings.TrimSpace(rest)
		}
	}
	return []byte(key)
}

// cohortAuthorized checks the cohort endpoint's Basic credentials, in
// constant time, when the Handler has some to check against.
func (h *Handler) cohortAuthorized(r *http.Request) bool {
	if h.basic == "" {
		return true
	}
	got := strings.TrimSpace(r.Header.Get("Authorization"))
	if scheme, rest, ok := strings.Cut(got, " "); ok && strings.EqualFold(scheme, "basic") {
		got = "Basic " + strings.TrimSpace(rest) // the scheme is case-insensitive
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.basic)) == 1
}

// recorder remembers the status for metrics and logs; Unwrap lets
// http.ResponseController reach the connection (flush, write deadlines).
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Flush() {
	r.wrote = true
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
