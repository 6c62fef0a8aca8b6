package fleet

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/server"
)

// cohortState is one targeted cohort as this relay holds it.
type cohortState struct {
	id      string
	c       *cohort.Cohort // nil until loaded
	source  string         // "server" or "redis"
	fetched time.Time      // last check with Amplitude (by whoever did it)
	lastErr string
}

func (s *cohortState) report() server.UpstreamCohort {
	u := server.UpstreamCohort{ID: s.id, Source: s.source, LastError: s.lastErr}
	if s.c != nil {
		u.Members = s.c.Len()
	}
	if !s.fetched.IsZero() {
		t := s.fetched
		u.FetchedAt = &t
	}
	return u
}

// syncCohorts brings every targeted cohort up to date: from Redis, and
// from Amplitude by the one relay holding the cohort's lease when it is
// due; alone, from Amplitude. The flags are served again when one changed.
func (r *Relay) syncCohorts(ctx context.Context, role string) {
	if r.cfg.Cohorts == nil {
		return
	}
	changed := false
	for _, id := range r.cohortIDs() {
		if role == RoleAlone {
			changed = r.downloadCohort(ctx, id, false) || changed
		} else {
			changed = r.shareCohort(ctx, id) || changed
		}
		if ctx.Err() != nil {
			return
		}
	}
	if changed {
		r.reapply()
	}
}

func (r *Relay) held(id string) (*cohort.Cohort, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.cohorts[id]; s != nil {
		return s.c, s.fetched
	}
	return nil, time.Time{}
}

func (r *Relay) setCohort(id string, update func(*cohortState)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.cohorts[id]; s != nil {
		update(s)
	}
}

// shareCohort loads the fleet's version of cohort id when it is not the
// one held, and refreshes it from Amplitude when due and its lease is
// free. It reports whether the cohort held changed.
func (r *Relay) shareCohort(ctx context.Context, id string) bool {
	f := r.cfg.Fleet
	d, ok, err := f.cohortDesc(ctx, id)
	if err != nil {
		return false
	}
	changed := false
	unreadable := ""
	held, _ := r.held(id)
	if ok && (held == nil || held.LastModified != d.Version) {
		c, err := f.cohortBlob(ctx, id, d.Version)
		switch {
		case err == nil:
			r.setCohort(id, func(s *cohortState) { s.c, s.source = c, "redis" })
			f.metrics.reloads.Inc()
			changed = true
		case errors.Is(err, errUnreadable), errors.Is(err, errMissing):
			// Said in /status: the version held stays served, and the
			// next check with Amplitude stores a readable one.
			unreadable = err.Error()
		}
	}
	if !d.FetchedAt.IsZero() || unreadable != "" {
		r.setCohort(id, func(s *cohortState) {
			if !d.FetchedAt.IsZero() {
				s.fetched = d.FetchedAt
			}
			s.lastErr = cmp.Or(unreadable, d.Error)
		})
	}
	if !d.FetchedAt.IsZero() && r.cfg.Now().Sub(d.FetchedAt) < r.cfg.CohortPollInterval {
		return changed
	}
	lease := f.cohortLease(id)
	if got, err := f.acquire(ctx, lease, f.ttl); err != nil || !got {
		return changed
	}
	stop := r.keepLease(ctx, lease)
	defer func() {
		stop()
		rctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		f.release(rctx, lease)
	}()
	// Another relay may have checked it between the read above and the
	// lease: then its notice brings the new version, and this one waits.
	if d, _, err := f.cohortDesc(ctx, id); err != nil || r.cfg.Now().Sub(d.FetchedAt) < r.cfg.CohortPollInterval {
		return changed
	}
	return r.downloadCohort(ctx, id, true) || changed
}

// keepLease renews lease while a download runs; the returned func stops.
func (r *Relay) keepLease(ctx context.Context, lease string) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.checkInterval())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.cfg.Fleet.renew(ctx, lease, r.cfg.Fleet.ttl)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// downloadCohort checks cohort id with Amplitude (when due, or always
// for the lease holder) and, shared, stores the outcome for the fleet.
// It reports whether the cohort held changed.
func (r *Relay) downloadCohort(ctx context.Context, id string, shared bool) bool {
	held, fetched := r.held(id)
	now := r.cfg.Now()
	if !shared && held != nil && now.Sub(fetched) < r.cfg.CohortPollInterval {
		return false
	}
	c, err := r.cfg.Cohorts.Download(ctx, id, held)
	if ctx.Err() != nil {
		return false
	}
	f := r.cfg.Fleet
	if err != nil {
		r.setCohort(id, func(s *cohortState) { s.fetched, s.lastErr = now, err.Error() })
		if shared {
			f.touchCohort(ctx, id, held, now, err.Error(), r.cohortKeep())
		}
		return false
	}
	changed := held == nil || c.LastModified != held.LastModified
	r.setCohort(id, func(s *cohortState) {
		s.fetched, s.lastErr = now, ""
		if changed {
			s.c, s.source = c, "server"
		}
	})
	switch {
	case shared && changed:
		f.putCohort(ctx, c, now, r.cohortKeep())
	case shared:
		f.touchCohort(ctx, id, held, now, "", r.cohortKeep())
	}
	return changed
}

// cohortKeepMin is the least time a cohort stays in Redis after its last
// check with Amplitude.
const cohortKeepMin = 7 * 24 * time.Hour

// cohortKeep is how long a cohort stays in Redis unchecked: long past
// any relay's next check, so only a cohort no flag targets any more
// (nobody checks it) expires.
func (r *Relay) cohortKeep() time.Duration {
	return max(cohortKeepMin, 3*r.cfg.CohortPollInterval)
}
