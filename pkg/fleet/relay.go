package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flagkit/experiment/internal/redact"
	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/server"
)

// Roles of a relay for one deployment.
const (
	RoleWriter   = "writer"   // holds the lease: syncs from Amplitude, stores for the fleet
	RoleFollower = "follower" // loads what the writer stored
	RoleAlone    = "alone"    // Redis unreachable: syncs from Amplitude itself
)

// RelayConfig configures the Relay of one deployment.
type RelayConfig struct {
	Fleet *Fleet
	// Key is the deployment key: Redis sees only its Hash, messages its
	// fingerprint.
	Key string
	// Fetch returns the deployment's flag configs exactly as Amplitude
	// sent them (the body of GET /sdk/v2/flags), retrying as it sees fit.
	Fetch func(ctx context.Context) ([]byte, error)
	// Cohorts downloads targeted cohorts; nil: no cohort sync (the
	// cohorts the flags target have no members).
	Cohorts cohort.Downloader
	// PollInterval is how often the writer (or a relay alone) fetches
	// flags; CohortPollInterval how often a cohort is checked.
	PollInterval, CohortPollInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Say receives one line per change of role (never a key), with the
	// Relay locked so that the role and its line are seen together: it
	// must not call the Relay. Default: nothing.
	Say func(line string)
}

// Relay serves one deployment as a member of the fleet. It is a
// server.Source (and Reporter, RoleReporter): requests read its Store,
// never Redis.
type Relay struct {
	cfg   RelayConfig
	dep   string // Hash(Key)
	fp    string
	store *server.Store
	wake  chan struct{} // a notice or a change of role: sync now
	free  chan struct{} // the writer released the lease: try to take it now

	mu   sync.Mutex
	role string
	body []byte // the flags served, as Amplitude sent them
	etag string // ETag(body)
	// leaseUntil is when the deployment's lease lapses at the earliest:
	// the start of the last renew or acquire that succeeded, plus the
	// TTL (Redis started counting later). Zero when not held.
	leaseUntil time.Time
	bad        string // the ETag of a stored body that failed to compile
	source     string // where body came from: "server" or "redis"
	fetched    time.Time
	lastErr    string
	cohorts    map[string]*cohortState // targeted cohorts, by id
}

// NewRelay makes the Relay of cfg.Key; nothing happens until Run.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	switch {
	case cfg.Fleet == nil || cfg.Fetch == nil:
		return nil, errors.New("fleet relay: Fleet and Fetch are required")
	case cfg.PollInterval <= 0 || (cfg.Cohorts != nil && cfg.CohortPollInterval <= 0):
		return nil, errors.New("fleet relay: poll intervals must be positive")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Say == nil {
		cfg.Say = func(string) {}
	}
	return &Relay{cfg: cfg, dep: Hash(cfg.Key), fp: redact.Fingerprint(cfg.Key), store: server.NewStore(),
		wake: make(chan struct{}, 1), free: make(chan struct{}, 1), cohorts: map[string]*cohortState{}}, nil
}

// Current implements server.Source.
func (r *Relay) Current() *server.State { return r.store.Current() }

// Role implements server.RoleReporter: "" before Run's first lease step.
func (r *Relay) Role() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.role
}

// Report implements server.Reporter.
func (r *Relay) Report() server.Upstream {
	r.mu.Lock()
	defer r.mu.Unlock()
	up := server.Upstream{Source: r.source, State: "ready", LastError: r.lastErr}
	switch {
	case r.body == nil:
		up.State = "starting"
	case r.lastErr != "":
		up.State = "interrupted"
	}
	if !r.fetched.IsZero() {
		t := r.fetched
		up.FetchedAt = &t
	}
	for _, id := range sortedKeys(r.cohorts) {
		up.Cohorts = append(up.Cohorts, r.cohorts[id].report())
	}
	return up
}

func (r *Relay) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// checkInterval is how often a follower re-reads the meta (a notice may
// be lost) and a lease is renewed: a third of the lease, at most 5 s.
func (r *Relay) checkInterval() time.Duration {
	return min(r.cfg.Fleet.ttl/3, 5*time.Second)
}

// setRole records a change of role, says it once, counts it and wakes the
// sync loop. It says and counts under the lock that publishes the role,
// so that whoever sees the new role (/status, the sync loop, a test)
// finds its line and its count already there, and whoever reads the line
// and then Role finds the role.
func (r *Relay) setRole(role string) {
	r.mu.Lock()
	old := r.role
	if old == role {
		r.mu.Unlock()
		return
	}
	m := r.cfg.Fleet.metrics
	switch {
	case role == RoleWriter:
		m.leaseChanges.WithLabelValues("acquired").Inc()
		r.cfg.Say(fmt.Sprintf("deployment %s: writer (lease acquired)", r.fp))
	case old == RoleWriter:
		m.leaseChanges.WithLabelValues("lost").Inc()
	}
	switch role {
	case RoleFollower:
		r.cfg.Say(fmt.Sprintf("deployment %s: follower", r.fp))
	case RoleAlone:
		r.cfg.Say(fmt.Sprintf("deployment %s: alone, syncing from Amplitude", r.fp))
	}
	r.role = role
	r.mu.Unlock()
	r.notify()
}

// leaseStep renews the lease this relay holds, or takes it if free, and
// sets the role from the outcome: no answer from Redis is "alone". It
// returns when to step again: a follower steps just after the writer's
// lease would lapse, so that a writer that died is replaced at once.
func (r *Relay) leaseStep(ctx context.Context) time.Duration {
	f, key := r.cfg.Fleet, r.cfg.Fleet.depLease(r.dep)
	next := r.checkInterval()
	var ok bool
	var err error
	began := time.Now()
	if role := r.Role(); role == RoleWriter || role == RoleAlone { // alone: it may have been the writer
		ok, err = f.renew(ctx, key, f.ttl)
	}
	if err == nil && !ok {
		var left time.Duration
		ok, left, err = f.tryAcquire(ctx, key, f.ttl)
		if !ok && left >= 0 && left < next {
			next = left + 5*time.Millisecond
		}
	}
	r.mu.Lock()
	r.leaseUntil = time.Time{}
	if ok && err == nil {
		r.leaseUntil = began.Add(f.ttl)
	}
	r.mu.Unlock()
	switch {
	case ctx.Err() != nil:
	case err != nil:
		r.setRole(RoleAlone)
	case ok:
		r.setRole(RoleWriter)
	default:
		r.setRole(RoleFollower)
	}
	return next
}

// leaseDeadline is when this relay's lease lapses at the earliest; ok
// false when it is not the writer or that has passed. The wall clock is
// used, not cfg.Now: the lease lapses in Redis's real time.
func (r *Relay) leaseDeadline() (until time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leaseUntil, r.role == RoleWriter && time.Now().Before(r.leaseUntil)
}

// leaseLoop keeps the role current.
func (r *Relay) leaseLoop(ctx context.Context, first time.Duration) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.free:
			if !t.Stop() {
				<-t.C
			}
			t.Reset(r.leaseStep(ctx))
		case <-t.C:
			t.Reset(r.leaseStep(ctx))
		}
	}
}

// resign releases the lease if this relay holds it, so that another
// takes over at once (on shutdown).
func (r *Relay) resign() {
	if r.Role() != RoleWriter {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Fleet.timeout)
	defer cancel()
	f := r.cfg.Fleet
	if f.release(ctx, f.depLease(r.dep)) == nil {
		r.setRole("")
		f.publish(ctx, "lease "+r.dep+" free")
	}
}
