package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are a Handler's own: a registry per Handler, never the global
// one, so two Handlers in a process (or a test) do not mix their figures.
type metrics struct {
	duration *prometheus.HistogramVec
	// observers caches duration's child per obsKey: resolving labels
	// (hashing them, formatting the code) on every request is work the
	// second request with the same route, method and code need not do.
	observers sync.Map // obsKey -> prometheus.Observer
	handler   http.Handler
}

// obsKey is one request's labels; all come from fixed sets, so the cache
// stays small.
type obsKey struct {
	route, method string
	code          int
}

func newMetrics(h *Handler) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "experiment_serve_request_duration_seconds",
			Help:    "Time to answer a request (a stream: its whole life), by route, method and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 10, 60},
		}, []string{"route", "method", "code"}),
	}
	reg.MustRegister(m.duration)
	for _, g := range []struct {
		name, help string
		value      func() float64
	}{
		{"experiment_serve_stream_connections", "Open flag streams (/sdk/stream/v1/flags).",
			func() float64 { return float64(h.streamCount.Load()) }},
		{"experiment_serve_flags_age_seconds", "Time since the oldest flags served were applied; -1 while a deployment has none.",
			h.flagsAge},
		{"experiment_serve_flags", "Flags served, summed over deployments.",
			h.flagsCount},
		{"experiment_serve_deployments_ready", "Deployments with flags applied.",
			h.readyCount},
	} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: g.name, Help: g.help}, g.value))
	}
	// The process collector (RSS, open fds, CPU) is what an operator of
	// thousands of streams watches. The Go collector is left out: its ~40
	// runtime series cost 1.2 MiB of resident memory from the first scrape
	// (16.0 MiB idle instead of 14.8), and go_goroutines is, give or take,
	// experiment_serve_stream_connections.
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(h.opts.Collectors...)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// flagsAge is the age of the oldest flags served, or -1 while a
// deployment has none.
func (h *Handler) flagsAge() float64 {
	oldest := 0.0
	for _, d := range h.deps {
		f := d.src.Current().Flags
		if f == nil {
			return -1
		}
		oldest = max(oldest, h.opts.Now().Sub(f.Applied).Seconds())
	}
	return oldest
}

// flagsCount is the number of flags served, summed over deployments.
func (h *Handler) flagsCount() float64 {
	n := 0
	for _, d := range h.deps {
		if f := d.src.Current().Flags; f != nil {
			n += f.Set.Snapshot().Len()
		}
	}
	return float64(n)
}

// readyCount is the number of deployments with flags applied.
func (h *Handler) readyCount() float64 {
	n := 0
	for _, d := range h.deps {
		if d.src.Current().Flags != nil {
			n++
		}
	}
	return float64(n)
}

// observe records a request. Labels come from fixed sets only: a route
// name, a known method, a status code; never a path, a query or a key.
func (m *metrics) observe(route, method string, status int, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
	default:
		method = "other"
	}
	k := obsKey{route, method, status}
	o, ok := m.observers.Load(k)
	if !ok {
		o, _ = m.observers.LoadOrStore(k, m.duration.WithLabelValues(route, method, strconv.Itoa(status)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request, _ *deployment, _ []string) {
	h.metrics.handler.ServeHTTP(w, r)
}

func (h *Handler) serveHealthz(w http.ResponseWriter, r *http.Request, _ *deployment, _ []string) {
	writeBody(w, r, http.StatusOK, []byte(`{"status":"ok"}`))
}

// serveReadyz is 503 until every deployment has flags applied: a load
// balancer sends no SDK here before it can answer all of them.
func (h *Handler) serveReadyz(w http.ResponseWriter, r *http.Request, _ *deployment, _ []string) {
	for _, d := range h.deps {
		if d.src.Current().Flags == nil {
			writeBody(w, r, http.StatusServiceUnavailable, []byte(`{"status":"not ready","reason":"no flag configs applied yet"}`))
			return
		}
	}
	writeBody(w, r, http.StatusOK, []byte(`{"status":"ready"}`))
}

// Status is the document /status serves. Its JSON form may gain fields,
// never lose or rename one.
type Status struct {
	// Status is "healthy", "degraded" (flags in use, but a newer change
	// could not be applied) or "starting" (no flags yet).
	Status      string             `json:"status"`
	Healthy     bool               `json:"healthy"`
	Mode        string             `json:"mode"`
	Deployments []DeploymentStatus `json:"deployments"`
	// Fleet is set for a relay of a fleet (Options.Fleet).
	Fleet *FleetStatus `json:"fleet,omitempty"`
}

// FleetStatus is a fleet relay's view of the shared Redis.
type FleetStatus struct {
	// Redis is "up" or "down" (the last call failed).
	Redis string `json:"redis"`
	// Instance is this relay's random id (its lease token).
	Instance string `json:"instance"`
	Prefix   string `json:"prefix"`
	// LastError is Redis's last failure, without credentials.
	LastError string `json:"last_error,omitempty"`
	// Dedup is where forwarded events are de-duplicated: "fleet" (Redis),
	// or "local" (this relay only, while Redis is down); "" without
	// --forward-events.
	Dedup string `json:"dedup,omitempty"`
}

// DeploymentStatus is one flag source's state.
type DeploymentStatus struct {
	// Key is "fp " and the fingerprint of the deployment key, or "any".
	// Source is the flags' origin ("file flags.json"), or in relay mode
	// Upstream.Source.
	Key           string         `json:"key"`
	Source        string         `json:"source"`
	Ready         bool           `json:"ready"`
	AppliedAt     *time.Time     `json:"applied_at,omitempty"`
	AgeSeconds    float64        `json:"age_seconds"`
	ETag          string         `json:"etag,omitempty"`
	Flags         int            `json:"flags"`
	Problem       string         `json:"problem,omitempty"`
	StreamClients int64          `json:"stream_clients"`
	Cohorts       []CohortStatus `json:"cohorts"`
	// Upstream is set for a Source that is a Reporter (relay mode).
	Upstream *Upstream `json:"upstream,omitempty"`
	// Role is a fleet relay's part for this deployment: "writer" (holds
	// the lease, syncs from Amplitude), "follower" (loads from Redis) or
	// "alone" (Redis unreachable: syncs from Amplitude itself). Set for a
	// Source that is a RoleReporter.
	Role string `json:"role,omitempty"`
}

// RoleReporter is a Source that is one relay of a fleet.
type RoleReporter interface {
	Role() string
}

// CohortStatus is one served cohort.
type CohortStatus struct {
	ID           string `json:"id"`
	GroupType    string `json:"group_type"`
	Size         int    `json:"size"`
	LastModified int64  `json:"last_modified"`
}

// Status reports the Handler's state, as /status serves it: "starting"
// while a deployment has no flags, else "degraded" when one has a problem.
func (h *Handler) Status() Status {
	s := Status{Status: "healthy", Healthy: true, Mode: h.opts.Mode}
	for _, dep := range h.deps {
		d := h.deploymentStatus(dep)
		switch {
		case !d.Ready:
			s.Status, s.Healthy = "starting", false
		case d.Problem != "" && s.Status != "starting":
			s.Status, s.Healthy = "degraded", false
		}
		s.Deployments = append(s.Deployments, d)
	}
	if h.opts.Fleet != nil {
		s.Fleet = h.opts.Fleet()
	}
	return s
}

// Reporter is a Source that says where its flags come from, for /status
// (Relay does).
type Reporter interface {
	Report() Upstream
}

// Upstream is what a Reporter says: Amplitude's side of a deployment.
type Upstream struct {
	// Source of the flags in use: "server", "stream", "cache" or "".
	Source    string     `json:"source"`
	State     string     `json:"state"`
	Streaming bool       `json:"streaming"`
	FetchedAt *time.Time `json:"fetched_at,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	// Cohorts are the targeted cohorts' sync states.
	Cohorts []UpstreamCohort `json:"cohorts,omitempty"`
}

// UpstreamCohort is one targeted cohort's sync state.
type UpstreamCohort struct {
	ID        string     `json:"id"`
	Source    string     `json:"source"`
	Members   int        `json:"members"`
	FetchedAt *time.Time `json:"fetched_at,omitempty"`
	LastError string     `json:"last_error,omitempty"`
}

func (h *Handler) deploymentStatus(dep *deployment) DeploymentStatus {
	st := dep.src.Current()
	d := DeploymentStatus{Key: dep.fp, Problem: st.Problem, Cohorts: []CohortStatus{}, StreamClients: dep.streams.Load()}
	if f := st.Flags; f != nil {
		applied := f.Applied
		d.Source, d.Ready, d.AppliedAt, d.ETag = f.Origin, true, &applied, f.ETag
		d.AgeSeconds = h.opts.Now().Sub(f.Applied).Seconds()
		d.Flags = f.Set.Snapshot().Len()
		for _, c := range f.Cohorts.Cohorts() {
			d.Cohorts = append(d.Cohorts, CohortStatus{ID: c.ID, GroupType: c.GroupType, Size: c.Size, LastModified: c.LastModified})
		}
	}
	if rep, ok := dep.src.(Reporter); ok {
		up := rep.Report()
		d.Upstream = &up
		if up.Source != "" {
			d.Source = up.Source
		}
	}
	if rr, ok := dep.src.(RoleReporter); ok {
		d.Role = rr.Role()
	}
	return d
}

func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request, _ *deployment, _ []string) {
	b, err := json.Marshal(h.Status())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding status: "+err.Error())
		return
	}
	writeBody(w, r, http.StatusOK, b)
}
