package cohort

import (
	"context"
	"errors"
	"sync"
)

// Downloader downloads one cohort, given the copy already stored (nil if
// none), and returns that same copy when it is unchanged. *Client is one.
type Downloader interface {
	Download(ctx context.Context, id string, stored *Cohort) (*Cohort, error)
}

// Outcome is what a Sync did with one cohort.
type Outcome int

// The outcomes of a cohort in a Sync.
const (
	Updated   Outcome = iota + 1 // a new copy was downloaded
	Unchanged                    // the server said the stored copy is current (204)
	Failed                       // the download failed; the last good copy, if any, is kept
)

func (o Outcome) String() string {
	switch o {
	case Updated:
		return "updated"
	case Unchanged:
		return "unchanged"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Result is the outcome of one cohort in a Sync.
type Result struct {
	ID      string // the id asked for
	Outcome Outcome
	// Cohort is the copy now in the store: the new one, the unchanged
	// one, or after a failure the last good one (nil when there is none).
	Cohort *Cohort
	Err    error // the download error when Outcome is Failed
}

// SyncOption adjusts a Sync.
type SyncOption func(*syncConfig)

type syncConfig struct {
	concurrency int
	onResult    func(Result)
}

// defaultConcurrency is how many downloads a Sync runs at once by default.
const defaultConcurrency = 8

// WithConcurrency bounds how many downloads run at once (default 8).
func WithConcurrency(n int) SyncOption {
	return func(c *syncConfig) {
		if n > 0 {
			c.concurrency = n
		}
	}
}

// OnResult has f called once per cohort as each download ends, for
// progress reports. Calls never overlap; f must not block for long.
func OnResult(f func(Result)) SyncOption {
	return func(c *syncConfig) { c.onResult = f }
}

// Sync downloads the cohorts ids, concurrently (at most 8 at a time, one
// request in flight per id, duplicates ignored), sending the lastModified
// of the copies in current so that unchanged cohorts cost a 204. It returns
// a new store: current with every downloaded cohort added or replaced, and
// the last good copy kept for every download that failed (a cohort over the
// size limit, say). Cohorts of current not in ids are kept as they are;
// current itself is never modified, and is returned as is when nothing
// changed. The errors are the failed downloads', in the order of ids (each
// a *DownloadError from a *Client, naming its cohort). A cancelled ctx
// fails the downloads not yet done.
func Sync(ctx context.Context, d Downloader, current *Store, ids []string, opts ...SyncOption) (*Store, []error) {
	cfg := syncConfig{concurrency: defaultConcurrency}
	for _, o := range opts {
		o(&cfg)
	}
	ids = unique(ids)
	results := make([]Result, len(ids))

	var mu sync.Mutex // serialises onResult
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(cfg.concurrency, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r := download(ctx, d, current, ids[i])
				results[i] = r
				if cfg.onResult != nil {
					mu.Lock()
					cfg.onResult(r)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range ids {
		work <- i
	}
	close(work)
	wg.Wait()

	var updated []*Cohort
	var errs []error
	for _, r := range results {
		switch r.Outcome {
		case Updated:
			updated = append(updated, r.Cohort)
		case Failed:
			errs = append(errs, r.Err)
		}
	}
	if len(updated) == 0 {
		if current == nil {
			current = NewStore()
		}
		return current, errs
	}
	return current.With(updated...), errs
}

func download(ctx context.Context, d Downloader, current *Store, id string) Result {
	stored := current.Get(id)
	if ctx.Err() != nil {
		return Result{ID: id, Outcome: Failed, Cohort: stored, Err: &DownloadError{CohortID: id, Err: context.Cause(ctx)}}
	}
	c, err := d.Download(ctx, id, stored)
	switch {
	case err != nil:
		return Result{ID: id, Outcome: Failed, Cohort: stored, Err: err}
	case c == nil:
		return Result{ID: id, Outcome: Failed, Cohort: stored, Err: &DownloadError{CohortID: id, Err: errors.New("no cohort downloaded")}}
	case c == stored:
		return Result{ID: id, Outcome: Unchanged, Cohort: c}
	}
	return Result{ID: id, Outcome: Updated, Cohort: c}
}

// unique drops repeated ids, keeping the first of each.
func unique(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}
