package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/flagkit/experiment/pkg/experiment"
)

// Relay is the Source of one deployment kept fresh from Amplitude by a
// LocalClient (stream or poll, last good flags, disk cache, cohort sync):
// each flag or cohort update the client applies is served at once, and a
// failed update leaves the last good flags served, with the failure as the
// State's problem.
type Relay struct {
	store  *Store
	client *experiment.LocalClient
	now    func() time.Time

	mu      sync.Mutex          // serialises apply
	applied *experiment.FlagSet // the set served
}

// NewRelay makes the relay of deploymentKey with the client's config (its
// OnUpdate and OnStatusChange are kept, called after the relay's own).
// Nothing is fetched until Start.
func NewRelay(deploymentKey string, cfg experiment.LocalConfig) (*Relay, error) {
	r := &Relay{store: NewStore(), now: time.Now}
	onUpdate, onStatus := cfg.OnUpdate, cfg.OnStatusChange
	cfg.OnUpdate = func(prev, next *experiment.FlagSet) {
		r.apply(next)
		if onUpdate != nil {
			onUpdate(prev, next)
		}
	}
	cfg.OnStatusChange = func(ev experiment.StatusEvent) {
		r.noteStatus(ev)
		if onStatus != nil {
			onStatus(ev)
		}
	}
	c, err := experiment.NewLocalClient(deploymentKey, &cfg)
	if err != nil {
		return nil, err
	}
	r.client = c
	return r, nil
}

// Start waits for the first flags (from Amplitude, else the disk cache)
// as LocalClient.Start does. When it fails the client goes on trying in
// the background, and the deployment is served (503 until then) as soon
// as flags arrive; only a rejected key ends the attempts
// (errors.Is(err, experiment.ErrUnauthorized)).
func (r *Relay) Start(ctx context.Context) error {
	if err := r.client.Start(ctx); err != nil {
		return err
	}
	// The client says it is ready before its OnUpdate has run: serve its
	// flags now, so that a relay started is a relay serving.
	if fs := r.client.FlagSet(); fs != nil {
		r.apply(fs)
	}
	return nil
}

// Close stops the client's updates; the flags last applied stay served.
func (r *Relay) Close() error {
	err := r.client.Close()
	if errors.Is(err, experiment.ErrClosed) {
		return nil
	}
	return err
}

// Current implements Source.
func (r *Relay) Current() *State { return r.store.Current() }

// apply serves a flag set the client put in use. It runs on the client's
// updater, so it only encodes (compiling is done).
func (r *Relay) apply(fs *experiment.FlagSet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fs == r.applied {
		return
	}
	r.applied = fs
	f, err := FlagsOfSet(fs, "relay", r.now())
	if err != nil {
		r.store.SetProblem("serving the updated flags: " + err.Error())
		return
	}
	// The problem stays: the client's status events (which follow)
	// clear it once updates succeed; a cohort update while the flag
	// source is failing does not make the flags current.
	r.store.SetKeepingProblem(f)
}

// noteStatus keeps the State's problem in step with the client: a failed
// update is one, flags from the cache are one, success again clears it.
func (r *Relay) noteStatus(ev experiment.StatusEvent) {
	switch ev.Kind {
	case experiment.StatusEventError:
		r.store.SetProblem("upstream update failed: " + ev.Err.Error() + "; serving the last good flags")
	case experiment.StatusEventStale:
		msg := "flags from the cache"
		if ev.Err != nil {
			msg += ": upstream unreachable: " + ev.Err.Error()
		}
		r.store.SetProblem(msg)
	case experiment.StatusEventReady:
		r.store.SetProblem("")
	}
}

// Report implements Reporter.
func (r *Relay) Report() Upstream {
	st := r.client.Status()
	up := Upstream{Source: string(st.Source), State: string(st.State), Streaming: st.Streaming}
	if !st.LastSuccess.IsZero() {
		t := st.LastSuccess
		up.FetchedAt = &t
	}
	if st.LastError != nil && st.State != experiment.StateReady {
		up.LastError = st.LastError.Error()
	}
	for _, c := range st.Cohorts {
		uc := UpstreamCohort{ID: c.ID, Source: string(c.Source), Members: c.Members}
		if !c.FetchedAt.IsZero() {
			t := c.FetchedAt
			uc.FetchedAt = &t
		}
		if c.LastError != nil {
			uc.LastError = c.LastError.Error()
		}
		up.Cohorts = append(up.Cohorts, uc)
	}
	return up
}
