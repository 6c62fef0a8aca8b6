package fleet

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the fleet does, for /metrics. Labels come from fixed
// sets; no key or secret is ever one.
type Metrics struct {
	leaseChanges *prometheus.CounterVec // role: acquired, lost
	notices      *prometheus.CounterVec // direction: sent, received
	reloads      prometheus.Counter
	redisErrors  prometheus.Counter
	deduplicated prometheus.Counter
}

// NewMetrics makes unregistered counters; Collectors lists them for a
// registry (server.Options.Collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		leaseChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "experiment_fleet_lease_changes_total",
			Help: "Deployment leases this relay acquired or lost.",
		}, []string{"role"}),
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "experiment_fleet_notices_total",
			Help: "Change notices published (sent) and heard (received) on the fleet's channel.",
		}, []string{"direction"}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "experiment_fleet_reloads_total",
			Help: "Flag or cohort changes loaded from Redis and put in use.",
		}),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "experiment_fleet_redis_errors_total",
			Help: "Redis calls that failed (unreachable, timed out, refused).",
		}),
		deduplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "experiment_fleet_events_deduplicated_total",
			Help: "Forwarded events not sent because another relay of the fleet had sent them.",
		}),
	}
	// Every series exists from the start, at 0, so a dashboard sees them.
	for _, r := range []string{"acquired", "lost"} {
		m.leaseChanges.WithLabelValues(r)
	}
	for _, d := range []string{"sent", "received"} {
		m.notices.WithLabelValues(d)
	}
	return m
}

// Collectors are the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.leaseChanges, m.notices, m.reloads, m.redisErrors, m.deduplicated}
}
