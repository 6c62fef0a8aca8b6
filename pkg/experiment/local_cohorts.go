package experiment

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
)

// Cohort targeting in the local client (PROTOCOL.md 3.3): cohorts that new
// flags target are downloaded before those flags are used, all targeted
// cohorts are refreshed every CohortPollingInterval, a failed download keeps
// the last good copy, and every copy is cached on disk beside the flags.

const (
	DefaultCohortPollingInterval = 60 * time.Second
	minCohortPollingInterval     = 60 * time.Second
)

type cohortSync struct {
	client   *cohort.Client
	dir      string // cache directory, "" for none
	interval time.Duration
	logger   *slog.Logger
	mu       sync.Mutex // one sync at a time
}

func newCohortSync(s *localSettings) (*cohortSync, error) {
	c := s.cohorts
	if c == nil {
		return nil, nil
	}
	client, err := cohort.NewClient(cohort.Config{APIKey: c.APIKey, SecretKey: c.SecretKey, ServerURL: s.cohortURL,
		MaxCohortSize: c.MaxCohortSize, RequestTimeout: c.RequestTimeout, HTTPClient: s.httpClient,
		Logger: s.logger, Library: s.library})
	if err != nil {
		return nil, err
	}
	cs := &cohortSync{client: client, interval: max(orDefault(c.CohortPollingInterval, DefaultCohortPollingInterval), minCohortPollingInterval), logger: s.logger}
	if s.cacheDir != "" {
		cs.dir = CohortCacheDir(s.cacheDir, c.APIKey)
	}
	return cs, nil
}

// cached loads the cohorts cached on disk, for a start without the server.
func (cs *cohortSync) cached() *cohort.Store {
	if cs == nil || cs.dir == "" {
		return nil
	}
	store, errs := cohort.LoadDir(cs.dir, nil)
	for _, err := range errs {
		if !errors.Is(err, os.ErrNotExist) {
			cs.logger.Warn("ignoring an unreadable cached cohort", "error", err)
		}
	}
	return store
}

// sync downloads ids (all targeted cohorts, or those missing) into a new
// store derived from current, keeping only targeted cohorts.
func (cs *cohortSync) sync(ctx context.Context, current *cohort.Store, ids, targeted []string) *cohort.Store {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	next, errs := cohort.Sync(ctx, cs.client, current, ids, cohort.OnResult(func(r cohort.Result) {
		if r.Outcome == cohort.Updated && cs.dir != "" {
			if err := os.MkdirAll(cs.dir, 0o700); err == nil {
				err = cohort.SaveDir(cs.dir, r.Cohort)
			}
		}
	}))
	for _, err := range errs {
		switch {
		case errors.Is(err, cohort.ErrTooLarge):
			cs.logger.Warn("cohort skipped: larger than the maximum cohort size", "error", err)
		case ctx.Err() == nil:
			cs.logger.Warn("cohort download failed; keeping the last good copy", "error", err)
		}
	}
	if next == nil {
		next = current
	}
	var stale []string
	for _, id := range next.IDs() {
		if !slices.Contains(targeted, id) {
			stale = append(stale, id)
		}
	}
	if len(stale) > 0 {
		next = next.Without(stale...)
	}
	return next
}

// cohortsFor returns the memberships to use with new flags: those already
// known, plus the targeted cohorts not yet downloaded.
func (c *LocalClient) cohortsFor(ctx context.Context, flags []*eval.Flag, prev *FlagSet) *cohort.Store {
	current := c.initialCohorts
	if prev != nil {
		current = prev.cohorts
	}
	if c.cohorts == nil {
		return current
	}
	targeted := cohort.Referenced(flags).All()
	var missing []string
	for _, id := range targeted {
		if current.Get(id) == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 || c.s.offline {
		return current
	}
	return c.cohorts.sync(ctx, current, missing, targeted)
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
	if c.flags.Load() != fs {
		return
	}
	c.flags.Store(next)
	if c.s.onUpdate != nil {
		c.s.onUpdate(fs, next)
	}
}
