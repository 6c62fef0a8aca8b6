package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flagkit/experiment/internal/redact"
)

// metrics are a Handler's own: a registry per Handler, never the global
// one, so two Handlers in a process (or a test) do not mix their figures.
type metrics struct {
	duration *prometheus.HistogramVec
	handler  http.Handler
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
	streams := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "experiment_serve_stream_connections",
		Help: "Open flag streams (/sdk/stream/v1/flags).",
	}, func() float64 { return float64(h.streamCount.Load()) })
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "experiment_serve_flags_age_seconds",
		Help: "Time since the flags served were applied; -1 before the first.",
	}, func() float64 {
		if f := h.src.Current().Flags; f != nil {
			return h.opts.Now().Sub(f.Applied).Seconds()
		}
		return -1
	})
	count := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "experiment_serve_flags",
		Help: "Flags served.",
	}, func() float64 {
		if f := h.src.Current().Flags; f != nil {
			return float64(f.Set.Snapshot().Len())
		}
		return 0
	})
	reg.MustRegister(m.duration, streams, age, count,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// observe records a request. Labels come from fixed sets only: a route
// name, a known method, a status code; never a path, a query or a key.
func (m *metrics) observe(route, method string, status int, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
	default:
		method = "other"
	}
	m.duration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
}

func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request, _ []string) {
	h.metrics.handler.ServeHTTP(w, r)
}

func (h *Handler) serveHealthz(w http.ResponseWriter, r *http.Request, _ []string) {
	writeBody(w, r, http.StatusOK, []byte(`{"status":"ok"}`))
}

// serveReadyz is 503 until flags are applied: a load balancer sends no
// SDK here before it can answer.
func (h *Handler) serveReadyz(w http.ResponseWriter, r *http.Request, _ []string) {
	if h.src.Current().Flags == nil {
		writeBody(w, r, http.StatusServiceUnavailable, []byte(`{"status":"not ready","reason":"no flag configs applied yet"}`))
		return
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
}

// DeploymentStatus is one flag source's state.
type DeploymentStatus struct {
	// Key is the fingerprint of the deployment key required, or "any".
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
}

// CohortStatus is one served cohort.
type CohortStatus struct {
	ID           string `json:"id"`
	GroupType    string `json:"group_type"`
	Size         int    `json:"size"`
	LastModified int64  `json:"last_modified"`
}

// Status reports the Handler's state, as /status serves it.
func (h *Handler) Status() Status {
	st := h.src.Current()
	d := DeploymentStatus{Key: "any", Problem: st.Problem, Cohorts: []CohortStatus{}}
	if h.opts.RequireKey != "" {
		d.Key = "fp " + redact.Fingerprint(h.opts.RequireKey)
	}
	d.StreamClients = h.streamCount.Load()
	s := Status{Status: "starting", Mode: h.opts.Mode}
	if f := st.Flags; f != nil {
		applied := f.Applied
		d.Source, d.Ready, d.AppliedAt, d.ETag = f.Origin, true, &applied, f.ETag
		d.AgeSeconds = h.opts.Now().Sub(f.Applied).Seconds()
		d.Flags = f.Set.Snapshot().Len()
		for _, c := range f.Cohorts.Cohorts() {
			d.Cohorts = append(d.Cohorts, CohortStatus{ID: c.ID, GroupType: c.GroupType, Size: c.Size, LastModified: c.LastModified})
		}
		s.Status, s.Healthy = "healthy", st.Problem == ""
		if !s.Healthy {
			s.Status = "degraded"
		}
	}
	s.Deployments = []DeploymentStatus{d}
	return s
}

func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request, _ []string) {
	b, err := json.Marshal(h.Status())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding status: "+err.Error())
		return
	}
	writeBody(w, r, http.StatusOK, b)
}
