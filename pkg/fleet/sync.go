package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/server"
)

// syncLoop keeps the served flags current for the role: the writer and a
// relay alone poll Amplitude every PollInterval, a follower re-reads the
// meta every checkInterval and on each notice; cohorts follow.
func (r *Relay) syncLoop(ctx context.Context) {
	var nextPoll time.Time
	lastRole := ""
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		role := r.Role()
		if role != lastRole && role == RoleWriter {
			nextPoll = time.Time{} // a new writer fetches at once
		}
		lastRole = role
		// Real time, as the wait below: cfg.Now stamps reports and may be
		// any clock; a stopped one must not stop the polls.
		now := time.Now()
		switch role {
		case RoleWriter, RoleAlone:
			if !now.Before(nextPoll) {
				r.poll(ctx, role)
				nextPoll = now.Add(r.cfg.PollInterval)
			}
		case RoleFollower:
			r.follow(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		r.syncCohorts(ctx, role)
		wait := r.checkInterval()
		if role != RoleFollower {
			wait = min(wait, max(time.Until(nextPoll), time.Millisecond))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
	}
}

// poll fetches the flags from Amplitude, serves them if they changed and,
// as the writer, stores them for the fleet.
func (r *Relay) poll(ctx context.Context, role string) {
	body, err := r.cfg.Fetch(ctx)
	if ctx.Err() != nil {
		return
	}
	now := r.cfg.Now()
	r.mu.Lock()
	failing := r.lastErr != ""
	if err != nil {
		r.lastErr = err.Error()
		r.mu.Unlock()
		if !failing {
			r.cfg.Say(fmt.Sprintf("experiment: warning: deployment %s: update failed (%v); serving the last good flags", r.fp, err))
		}
		r.store.SetProblem("upstream update failed: " + err.Error() + "; serving the last good flags")
		return
	}
	r.fetched, r.lastErr = now, ""
	etag := ETag(body)
	same := etag == r.etag
	r.mu.Unlock()
	if failing {
		r.cfg.Say(fmt.Sprintf("deployment %s: updates succeed again", r.fp))
	}
	if !same && !r.apply(ctx, body, etag, "server", role) {
		return
	}
	if same && r.store.Current().Problem != "" {
		r.store.SetProblem("")
	}
	if role == RoleWriter {
		r.storeForFleet(ctx, body, etag, now)
	}
}

// storeForFleet stores body for the fleet unless Redis holds it already. It asks
// Redis rather than remembering what it wrote: a failover to a lagging
// replica, an eviction or another relay's late write may have replaced
// or dropped the copy, and followers would wait for it forever. It writes
// only while its lease surely lasts, its calls cut at the lease's end:
// the fetch before may have outlived the lease, and another relay may be
// the writer now.
func (r *Relay) storeForFleet(ctx context.Context, body []byte, etag string, now time.Time) {
	f := r.cfg.Fleet
	until, ok := r.leaseDeadline()
	if !ok {
		return
	}
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	if stored, err := f.storedETag(ctx, r.dep); err != nil || stored == etag {
		return
	}
	m := Meta{ETag: etag, FetchedAt: now, Cohorts: r.cohortIDs()}
	if cur := r.store.Current().Flags; cur != nil {
		m.Flags = cur.Set.Snapshot().Len()
	}
	f.putFlags(ctx, r.dep, body, m)
}

// follow loads the body the writer stored when its ETag is not the one
// served.
func (r *Relay) follow(ctx context.Context) {
	f := r.cfg.Fleet
	m, err := f.meta(ctx, r.dep)
	r.mu.Lock()
	known := m.ETag == "" || m.ETag == r.etag || m.ETag == r.bad
	current := err == nil && m.ETag != "" && m.ETag == r.etag && r.lastErr != ""
	if current {
		r.lastErr = "" // a failure from when it synced alone: the fleet's flags are served
	}
	r.mu.Unlock()
	if current {
		r.store.SetProblem("")
	}
	if err != nil || known {
		return
	}
	body, err := f.flags(ctx, r.dep)
	if err != nil || body == nil {
		return
	}
	etag := ETag(body)
	r.mu.Lock()
	if etag == r.etag {
		r.mu.Unlock()
		return
	}
	r.fetched, r.lastErr = m.FetchedAt, ""
	r.mu.Unlock()
	if r.apply(ctx, body, etag, "redis", RoleFollower) {
		f.metrics.reloads.Inc()
	} else {
		r.mu.Lock()
		r.bad = etag
		r.mu.Unlock()
	}
}

// apply serves body, whose ETag is etag, with the cohorts held; false when
// it does not compile (the last good flags stay, with the problem said).
// The cohorts it targets that the flags served before did not are brought
// in first (from Redis, or from Amplitude as role allows), within
// cohortLoadTimeout: as the local client does, new flags never evaluate a
// cohort's members as non-members for want of waiting, and a slow cohort
// server delays them a bounded time. The writer stores the flags for the
// fleet after this, so followers find their cohorts in Redis.
func (r *Relay) apply(ctx context.Context, body []byte, etag, source, role string) bool {
	fl, err := server.NewFlagsExact(body, nil, "relay", r.cfg.Now())
	if err != nil {
		r.store.SetProblem("serving the updated flags: " + err.Error())
		return false
	}
	var added []string
	r.mu.Lock()
	next := map[string]*cohortState{}
	for _, id := range fl.Set.CohortReferences().All() {
		if c := r.cohorts[id]; c != nil {
			next[id] = c
		} else {
			next[id] = &cohortState{id: id}
			added = append(added, id)
		}
	}
	r.cohorts = next
	r.mu.Unlock()
	r.loadCohorts(ctx, added, role)
	r.mu.Lock()
	// Only now: the report says the flags served (a relay loading the
	// cohorts of its first flags is "starting", as /readyz says).
	r.body, r.etag, r.source = body, etag, source
	store := r.cohortStore()
	r.mu.Unlock()
	r.store.Set(fl.WithCohorts(store, r.cfg.Now()))
	return true
}

// cohortLoadTimeout bounds how long new flags wait for the cohorts they
// newly target: the local client's default (CohortSyncConfig.LoadTimeout).
const cohortLoadTimeout = 30 * time.Second

// loadCohorts brings cohorts ids in, as syncCohorts does for role.
func (r *Relay) loadCohorts(ctx context.Context, ids []string, role string) {
	if r.cfg.Cohorts == nil || len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cohortLoadTimeout)
	defer cancel()
	for _, id := range ids {
		if role == RoleAlone {
			r.downloadCohort(ctx, id, false)
		} else {
			r.shareCohort(ctx, id)
		}
	}
}

// reapply serves the flags served with the cohorts now held. A problem
// said stays: refreshed cohorts do not make the flags current.
func (r *Relay) reapply() {
	cur := r.store.Current().Flags
	if cur == nil {
		return
	}
	r.mu.Lock()
	store := r.cohortStore()
	r.mu.Unlock()
	r.store.SetKeepingProblem(cur.WithCohorts(store, r.cfg.Now()))
}

func (r *Relay) cohortIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sortedKeys(r.cohorts)
}

// cohortStore holds the targeted cohorts loaded; r.mu is held.
func (r *Relay) cohortStore() *cohort.Store {
	var cs []*cohort.Cohort
	for _, c := range r.cohorts {
		if c.c != nil {
			cs = append(cs, c.c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return cohort.NewStore(cs...)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
