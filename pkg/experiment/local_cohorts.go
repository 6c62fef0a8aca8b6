package experiment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/flagkit/experiment/pkg/cohort"
)

// Cohort targeting in the local client: cohorts that new
// flags target are downloaded before those flags are used, all targeted
// cohorts are refreshed every CohortPollingInterval, a failed download keeps
// the last good copy, and every copy is cached on disk beside the flags.
//
// Two additions make a wrong membership visible and bounded. The first
// flags a client fetches bring every cohort they target up to date, cached
// copies included (a 204 each when current), so an outage or rejected keys
// are noticed rather than hidden behind an old copy. And a flag update waits
// for its cohorts at most CohortSyncConfig.LoadTimeout (during Start, also
// no longer than Start's context): a slow cohort server delays flags, never
// withholds them. Status.Cohorts says what came of each cohort.

const (
	defaultCohortPollingInterval = 60 * time.Second
	minCohortPollingInterval     = 60 * time.Second
	// defaultCohortLoadTimeout is about three attempts of a stalled
	// download: what a flag update waited before the wait had a bound.
	defaultCohortLoadTimeout = 30 * time.Second
)

// CohortStatus is the state of one cohort that the flags in use target.
type CohortStatus struct {
	ID string
	// GroupType is "User" or a group type such as "org id": the copy's,
	// or without one the type the flags target the cohort as.
	GroupType string
	// Source of the copy in use: SourceServer (downloaded, or confirmed
	// unchanged, by this client), SourceCache (read from the cache
	// directory and not confirmed since), or SourceNone when there is
	// none: then nobody is a member, and the cohort's members evaluate as
	// non-members.
	Source  Source
	Members int
	// LastModified is when the cohort last changed at Amplitude, as the
	// copy in use says.
	LastModified time.Time
	// FetchedAt is when the copy in use was last known to be current:
	// downloaded or confirmed by this client, or for a cached copy when
	// some client last did (the file's time). Zero when unknown.
	FetchedAt time.Time
	// LastError is why the cohort is not up to date, nil once a download
	// succeeds: a *cohort.DownloadError (errors.Is(err,
	// cohort.ErrUnauthorized) when the API key and secret key were
	// rejected), an unreadable cached copy (cohort.ErrMalformed, ...), or
	// ErrCohortNotCached when nothing was downloaded and the cache has no
	// copy. It names the cohort.
	LastError   error
	LastErrorAt time.Time
	// CacheError is why the copy in use could not be written to (or, when
	// unchanged, its time updated in) the cache directory, nil once that
	// succeeds: the next start that cannot reach the server will lack
	// the copy, or take it for older than it is.
	CacheError error
}

// Loaded reports whether a copy is in use.
func (s CohortStatus) Loaded() bool { return s.Source != SourceNone }

// Age is how long ago the copy in use was last known to be current; 0
// when that is unknown or there is no copy.
func (s CohortStatus) Age(now time.Time) time.Duration {
	if s.FetchedAt.IsZero() {
		return 0
	}
	return now.Sub(s.FetchedAt)
}

// ErrCohortNotCached is the LastError of a targeted cohort that nothing
// downloaded (offline, or flags from the cache) and the cache lacks.
var ErrCohortNotCached = errors.New("no copy in the cohort cache")

type cohortSync struct {
	client      *cohort.Client
	dir         string // cache directory, "" for none
	interval    time.Duration
	loadTimeout time.Duration
	logger      *slog.Logger
	// turn lets one sync run at a time; a channel, so that waiting for it
	// ends with the waiter's context.
	turn chan struct{}

	mu        sync.Mutex
	origins   map[*cohort.Cohort]origin // of the copies in use (or about to be)
	errs      map[string]timedError     // by cohort id
	cacheErrs map[string]error          // by cohort id: the last cache write's failure
	// changes gathers what the sync under way changed, for the status
	// event sync queues when it is done.
	changes cohortChanges
	notify  *statusNotifier
	// startCtx is Start's context while Start waits for the first flags;
	// startFetched is set once flags arrived then and wait for cohorts.
	startCtx     context.Context
	startFetched bool
}

type origin struct {
	source Source
	at     time.Time
}

type timedError struct {
	err error
	at  time.Time
}

func newCohortSync(s *localSettings) (*cohortSync, error) {
	c := s.cohorts
	if c == nil {
		return nil, nil
	}
	if c.LoadTimeout < 0 {
		return nil, fmt.Errorf("LoadTimeout is negative (%v)", c.LoadTimeout)
	}
	client, err := cohort.NewClient(cohort.Config{APIKey: c.APIKey, SecretKey: c.SecretKey, ServerURL: s.cohortURL,
		MaxCohortSize: c.MaxCohortSize, RequestTimeout: c.RequestTimeout, HTTPClient: s.httpClient,
		Logger: s.logger, Library: s.library})
	if err != nil {
		return nil, err
	}
	cs := &cohortSync{client: client, logger: s.logger, turn: make(chan struct{}, 1),
		interval:    max(cmp.Or(c.CohortPollingInterval, defaultCohortPollingInterval), minCohortPollingInterval),
		loadTimeout: cmp.Or(c.LoadTimeout, defaultCohortLoadTimeout),
		origins:     map[*cohort.Cohort]origin{}, errs: map[string]timedError{}, cacheErrs: map[string]error{},
		notify: s.notify}
	if s.cacheDir != "" {
		cs.dir = CohortCacheDir(s.cacheDir, c.APIKey)
	}
	return cs, nil
}

// cached loads the cohorts cached on disk, for a start without the server.
// A copy that cannot be read is that cohort's error until a download
// replaces it.
func (cs *cohortSync) cached() *cohort.Store {
	if cs == nil || cs.dir == "" {
		return nil
	}
	store, errs := cohort.LoadDir(cs.dir, nil)
	now := time.Now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range store.Cohorts() {
		at, _ := cohort.FileTime(cs.dir, c.ID)
		cs.origins[c] = origin{source: SourceCache, at: at}
	}
	for _, err := range errs {
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		cs.logger.Warn("ignoring an unreadable cached cohort", "error", err)
		if fe := (*cohort.FileError)(nil); errors.As(err, &fe) {
			cs.errs[fe.ID] = timedError{fmt.Errorf("cohort %s: unreadable cached copy: %w", fe.ID, err), now}
		}
	}
	return store
}

// sync downloads ids (all targeted cohorts, or those missing) into a new
// store derived from current, keeping only targeted cohorts. What ctx's end
// leaves undownloaded keeps its last good copy, with ctx's cause as its
// error.
func (cs *cohortSync) sync(ctx context.Context, current *cohort.Store, ids, targeted []string) *cohort.Store {
	// Queued, not delivered: sync may run under the client's applyMu, and
	// the callback runs once it is released.
	defer cs.queueChanges()
	select {
	case cs.turn <- struct{}{}:
		defer func() { <-cs.turn }()
	case <-ctx.Done():
		for _, id := range ids {
			cs.record(cohort.Result{ID: id, Outcome: cohort.Failed, Cohort: current.Get(id),
				Err: fmt.Errorf("cohort %s: %w", id, context.Cause(ctx))})
		}
		return cs.keep(current, current, targeted)
	}
	next, _ := cohort.Sync(ctx, cs.client, current, ids, cohort.OnResult(cs.record))
	if next == nil {
		next = current
	}
	return cs.keep(current, next, targeted)
}

// queueChanges queues the status event of what the sync changed, if
// anything.
func (cs *cohortSync) queueChanges() {
	cs.mu.Lock()
	ev, ok := cs.changes.event()
	cs.changes = cohortChanges{}
	cs.mu.Unlock()
	if ok {
		cs.notify.add(ev)
	}
}

// record notes one download's outcome (cohort.OnResult: calls never
// overlap), and caches what arrived; a cache write that fails is the
// cohort's CacheError.
func (cs *cohortSync) record(r cohort.Result) {
	now := time.Now()
	var cacheErr error
	switch r.Outcome {
	case cohort.Updated:
		if cs.dir != "" {
			if cacheErr = cohort.SaveDir(cs.dir, r.Cohort); cacheErr != nil {
				cs.logger.Warn("could not cache a cohort", "cohort_id", r.Cohort.ID, "error", cacheErr)
			}
		}
	case cohort.Unchanged:
		// The cached file's time then says how old the copy is, for the
		// next start that cannot reach the server.
		if cs.dir != "" {
			if cacheErr = cohort.Touch(cs.dir, r.Cohort.ID, now); cacheErr != nil {
				cs.logger.Warn("could not update a cached cohort's time", "cohort_id", r.Cohort.ID, "error", cacheErr)
			}
		}
	case cohort.Failed:
		if errors.Is(r.Err, context.Canceled) {
			return // the client is closing: nothing went wrong with the cohort
		}
		if errors.Is(r.Err, cohort.ErrTooLarge) {
			cs.logger.Warn("cohort skipped: larger than the maximum cohort size", "error", r.Err)
		} else {
			cs.logger.Warn("cohort download failed; keeping the last good copy", "error", r.Err)
		}
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	prev, failing := cs.errs[r.ID]
	if r.Outcome == cohort.Failed {
		cs.errs[r.ID] = timedError{r.Err, now}
		// A cohort that goes on failing the same way is reported once.
		if !failing || prev.err.Error() != r.Err.Error() {
			cs.changes.changed = true
			cs.changes.errs = append(cs.changes.errs, r.Err)
		}
		return
	}
	cs.origins[r.Cohort] = origin{source: SourceServer, at: now}
	delete(cs.errs, r.ID)
	if r.Outcome == cohort.Updated || failing {
		cs.changes.changed = true
	}
	prevCache := cs.cacheErrs[r.ID]
	if cacheErr == nil {
		delete(cs.cacheErrs, r.ID)
		if prevCache != nil {
			cs.changes.changed = true
		}
		return
	}
	cacheErr = fmt.Errorf("cohort %s: caching: %w", r.ID, cacheErr)
	cs.cacheErrs[r.ID] = cacheErr
	if prevCache == nil || prevCache.Error() != cacheErr.Error() {
		cs.changes.changed = true
		cs.changes.errs = append(cs.changes.errs, cacheErr)
	}
}

// keep drops the cohorts of next that no flag targets any more, and
// forgets what is known of copies neither current nor next hold.
func (cs *cohortSync) keep(current, next *cohort.Store, targeted []string) *cohort.Store {
	var stale []string
	for _, id := range next.IDs() {
		if !slices.Contains(targeted, id) {
			stale = append(stale, id)
		}
	}
	if len(stale) > 0 {
		next = next.Without(stale...)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for c := range cs.origins {
		if next.Get(c.ID) != c && current.Get(c.ID) != c {
			delete(cs.origins, c)
		}
	}
	for id := range cs.errs {
		if !slices.Contains(targeted, id) {
			delete(cs.errs, id)
		}
	}
	for id := range cs.cacheErrs {
		if !slices.Contains(targeted, id) {
			delete(cs.cacheErrs, id)
		}
	}
	return next
}

// startWait marks Start as waiting for the first flags (ctx non-nil) or
// done waiting (nil): while it waits, the first flags' wait for their
// cohorts also ends with ctx.
func (cs *cohortSync) startWait(ctx context.Context) {
	if cs == nil {
		return
	}
	cs.mu.Lock()
	cs.startCtx = ctx
	cs.mu.Unlock()
}

// fetchedInStart reports whether flags arrived while Start waited, and are
// (or were) waiting for their cohorts: they are in use as soon as that wait
// ends, which Start's context ending cuts short.
func (cs *cohortSync) fetchedInStart() bool {
	if cs == nil {
		return false
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.startFetched
}

// waitContext bounds a flag update's wait for cohorts: LoadTimeout, and
// for the first flags fetched while Start waits, Start's context too. The
// cause says which ended it.
func (cs *cohortSync) waitContext(ctx context.Context, first bool) (context.Context, func()) {
	began := time.Now()
	wctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(cs.loadTimeout, func() {
		cancel(fmt.Errorf("%w: not loaded within %v", cohort.ErrTimeout, cs.loadTimeout))
	})
	stop := func() bool { return false }
	cs.mu.Lock()
	start := cs.startCtx
	if first && start != nil {
		cs.startFetched = true
		stop = context.AfterFunc(start, func() {
			cs.mu.Lock()
			waiting := cs.startCtx == start
			cs.mu.Unlock()
			switch {
			case !waiting: // Start returned; its context is no longer ours to heed
			case errors.Is(start.Err(), context.Canceled):
				cancel(context.Canceled)
			default:
				cancel(fmt.Errorf("%w: still loading at the start deadline, after %v",
					cohort.ErrTimeout, time.Since(began).Round(10*time.Millisecond)))
			}
		})
	}
	cs.mu.Unlock()
	return wctx, func() {
		stop()
		timer.Stop()
		cancel(nil)
	}
}

// cohortsFor returns the memberships to use with new flags, which target
// the cohorts of refs: those already
// known, plus the targeted cohorts not yet downloaded. With refreshAll, for
// the first flags from the server (even after the cache's), every targeted
// cohort is brought up to date, cached ones included.
func (c *LocalClient) cohortsFor(ctx context.Context, refs cohort.References, prev *FlagSet, refreshAll bool) *cohort.Store {
	current := c.initialCohorts
	if prev != nil {
		current = prev.cohorts
	}
	if c.cohorts == nil || c.s.offline {
		return current
	}
	targeted := refs.All()
	ids := targeted
	if !refreshAll {
		ids = nil
		for _, id := range targeted {
			if current.Get(id) == nil {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return current
	}
	wctx, done := c.cohorts.waitContext(ctx, prev == nil)
	defer done()
	return c.cohorts.sync(wctx, current, ids, targeted)
}

// pollCohorts refreshes every targeted cohort each interval; unchanged
// cohorts answer 204 thanks to lastModified.
func (c *LocalClient) pollCohorts(ctx context.Context) {
	t := time.NewTicker(c.cohorts.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fs := c.flags.Load()
		if fs == nil {
			continue
		}
		targeted := fs.refs.All()
		next := c.cohorts.sync(ctx, fs.cohorts, targeted, targeted)
		if ctx.Err() != nil {
			return
		}
		c.swapCohorts(fs, next)
		c.s.notify.deliver(c.Status) // what the sync changed: no lock is held here
	}
}

// swapCohorts installs new memberships with the flags in use, unless the
// flags changed meanwhile (their update brought its own memberships).
func (c *LocalClient) swapCohorts(fs *FlagSet, store *cohort.Store) {
	if store == fs.cohorts {
		return
	}
	// Same flags: no recompile. Indexing millions of members takes a while,
	// so it happens before flag updates are held off.
	next := newFlagSet(fs.snap, fs.flags, store, fs.refs)
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	if c.flags.Load() != fs || c.life.ctx.Err() != nil {
		return // closed: Close waited for applyMu, and OnUpdate is not called after it
	}
	c.flags.Store(next)
	c.callOnUpdate(fs, next)
}

// cohortStatus is Status.Cohorts: one entry per cohort the flags in use
// target, by id; nil without cohort sync or flags.
func (c *LocalClient) cohortStatus() []CohortStatus {
	cs := c.cohorts
	fs := c.flags.Load()
	if cs == nil || fs == nil {
		return nil
	}
	ids := fs.refs.All()
	out := make([]CohortStatus, 0, len(ids))
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, id := range ids {
		st := CohortStatus{ID: id, GroupType: targetedAs(fs.refs, id)}
		if e, ok := cs.errs[id]; ok {
			st.LastError, st.LastErrorAt = e.err, e.at
		}
		st.CacheError = cs.cacheErrs[id]
		if co := fs.cohorts.Get(id); co != nil {
			st.GroupType, st.Members = co.GroupType, co.Len()
			if co.LastModified != 0 {
				st.LastModified = time.UnixMilli(co.LastModified)
			}
			// A copy of unknown origin can only be one read from the
			// cache before anything was recorded.
			o, ok := cs.origins[co]
			if !ok {
				o.source = SourceCache
			}
			st.Source, st.FetchedAt = o.source, o.at
		} else if st.LastError == nil {
			st.LastError = fmt.Errorf("cohort %s: %w", id, ErrCohortNotCached)
		}
		out = append(out, st)
	}
	return out
}

// targetedAs is the group type the flags target a cohort as.
func targetedAs(refs cohort.References, id string) string {
	types := make([]string, 0, len(refs))
	for t := range refs {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		if slices.Contains(refs[t], id) {
			return t
		}
	}
	return ""
}
