package experiment

import (
	"cmp"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/flagkit/experiment/pkg/analytics"
)

// eventService is what ExposureService and assignmentService share: the
// de-duplication cache and where events go, an analytics client or a
// printer.
type eventService struct {
	cache   *dedupCache
	client  *analytics.Client
	printer *analytics.Printer
	now     func() time.Time
	library string      // filled in printed events; the client fills in its own
	closed  atomic.Bool // printer mode
}

// newEventService makes the service of kind ("exposure", "assignment"):
// its errors are *ConfigError naming kind's config.
func newEventService(kind string, cfg analytics.Config, capacity int, printer *analytics.Printer) (*eventService, error) {
	if err := checkEventService(cfg, capacity, printer != nil); err != nil {
		return nil, newConfigError(kind+" config", err)
	}
	cache, err := newDedupCache(cmp.Or(capacity, defaultCacheCapacity))
	if err != nil {
		return nil, newConfigError(kind+" config", err)
	}
	s := &eventService{cache: cache, printer: printer, now: cfg.Now, library: cmp.Or(cfg.Library, defaultLibrary())}
	if s.now == nil {
		s.now = time.Now // the analytics client's default clock too
	}
	if printer != nil {
		return s, nil
	}
	if s.client, err = analytics.NewClient(cfg); err != nil {
		return nil, newConfigError(kind+" config", err)
	}
	return s, nil
}

// checkEventService makes the checks of newEventService without starting
// anything: a LocalClient's configs are checked by NewLocalClient, and
// their services made by Start.
func checkEventService(cfg analytics.Config, capacity int, printing bool) error {
	if capacity < 0 {
		return fmt.Errorf("CacheCapacity is negative (%d)", capacity)
	}
	if printing {
		return nil // no client: its settings are not used
	}
	return cfg.Validate()
}

// admission is an evaluation that is to be emitted: its identity, when it
// was seen, and whether it is a duplicate (emitted only to be printed).
type admission struct {
	key       dedupKey
	nowMs     int64
	duplicate bool
}

// admit decides whether an evaluation of user's variants is emitted: not
// when the user cannot be tracked or there is nothing to report, nor when
// it is a duplicate that no printer shows.
func (s *eventService) admit(user *User, variants map[string]Variant) (admission, bool) {
	if !trackable(user) || len(variants) == 0 {
		return admission{}, false
	}
	a := admission{nowMs: s.now().UnixMilli(), key: s.cache.keyOf(user, variants)}
	a.duplicate = !s.cache.admit(a.key, a.nowMs)
	return a, !a.duplicate || s.printer != nil
}

// emit hands the n events of src, an evaluation of key just seen by
// cache.admit, to the client, or prints them with the de-duplication
// decision. When the client queued none of them (ctx, Close), the
// evaluation is forgotten, so that the next one like it is sent rather
// than taken for a duplicate; when it queued some, it stays remembered, or
// the next one would queue those again.
func (s *eventService) emit(ctx context.Context, key dedupKey, src analytics.Source, n int, deduplicated bool) error {
	if s.printer == nil {
		if deduplicated {
			return nil
		}
		queued, err := s.client.TrackSource(ctx, src, n)
		if err != nil && queued == 0 {
			// Nothing of it will be sent: the next evaluation like it must
			// not be taken for a duplicate. When some events were queued,
			// forgetting would queue those again.
			s.cache.forget(key)
		}
		return err
	}
	if s.closed.Load() {
		return nil
	}
	for i := range n {
		ev := src.Event(i)
		if ev.Library == "" {
			ev.Library = s.library
		}
		_ = s.printer.Print(ev, deduplicated) // the error is kept by the printer
	}
	return nil
}

func (s *eventService) flush(ctx context.Context) error {
	if s.client == nil {
		return s.printer.Err()
	}
	return s.client.Flush(ctx)
}

func (s *eventService) close(ctx context.Context) error {
	if s.client == nil {
		s.closed.Store(true)
		return s.printer.Err()
	}
	return s.client.Close(ctx)
}

func (s *eventService) stats() analytics.Stats {
	if s.client == nil {
		return analytics.Stats{}
	}
	return s.client.Stats()
}
