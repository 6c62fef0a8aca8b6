package experiment

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
)

// StatusEventKind says what changed in a LocalClient's Status.
type StatusEventKind int

const (
	// StatusEventFlagsChanged: the flags in use changed (the first flags
	// included). StatusEvent.ChangedFlags names the flags added, removed
	// or whose config changed. A flag whose own config did not change is
	// not named even when a flag it depends on is.
	StatusEventFlagsChanged StatusEventKind = iota + 1
	// StatusEventError: a flag update failed (the server or stream could
	// not be reached, rejected the key, or sent configs that do not
	// compile). StatusEvent.Err says why. When flags are in use they are
	// the last good ones and Status.State is "interrupted": they are
	// stale; when none are, Status.State is "starting" and evaluations
	// fail. Sent for every failed update, not only the first.
	StatusEventError
	// StatusEventStale: the flags in use came from the cache directory,
	// because the server could not be reached at Start. StatusEvent.Err is
	// the server's failure, when known.
	StatusEventStale
	// StatusEventReady: flag updates succeed (again): Status.State became
	// "ready" after "starting" or "interrupted".
	StatusEventReady
	// StatusEventCohortsChanged: the state of a cohort the flags target
	// changed: a new copy is in use, a download failed (StatusEvent.Err
	// joins the failures of that sync), or a cohort that failed is up to
	// date again. Status.Cohorts has every cohort's state. A cohort that
	// goes on failing the same way is not reported again.
	StatusEventCohortsChanged
)

// String is the kind's name, for logs.
func (k StatusEventKind) String() string {
	switch k {
	case StatusEventFlagsChanged:
		return "flags-changed"
	case StatusEventError:
		return "error"
	case StatusEventStale:
		return "stale"
	case StatusEventReady:
		return "ready"
	case StatusEventCohortsChanged:
		return "cohorts-changed"
	}
	return "unknown"
}

// StatusEvent is one change of a LocalClient's Status, passed to
// LocalConfig.OnStatusChange.
//
// An OpenFeature provider maps the kinds to provider events as follows:
// StatusEventFlagsChanged to PROVIDER_CONFIGURATION_CHANGED with
// ChangedFlags; StatusEventReady to PROVIDER_READY; StatusEventStale to
// PROVIDER_STALE; StatusEventError to PROVIDER_STALE when flags are in use
// (Status.Flags > 0) and to PROVIDER_ERROR when none are.
type StatusEvent struct {
	Kind StatusEventKind
	// ChangedFlags are the keys of the flags that changed, sorted; only
	// with StatusEventFlagsChanged.
	ChangedFlags []string
	// Err is the failure behind StatusEventError, StatusEventStale or
	// StatusEventCohortsChanged; nil otherwise.
	Err error
	// Status is the client's status when the callback is called, which
	// may already include later changes (their events follow).
	Status Status
}

// maxPendingStatusEvents bounds the events waiting for a callback that
// has not returned: past it the oldest are dropped, so a callback that
// hangs costs memory no more than it must.
const maxPendingStatusEvents = 1024

// statusNotifier delivers StatusEvents to LocalConfig.OnStatusChange in
// the order they happened, one call at a time, without a goroutine of its
// own and never while a lock of the client is held: code that holds one
// only queues an event (add), and deliver, called once the locks are
// released, runs the callback on the calling goroutine. When a delivery is
// already under way on another goroutine, deliver leaves the queued events
// to it and returns at once, so at most one goroutine waits on a slow
// callback.
//
// Once shut (by CloseContext) it calls the callback no more: events are
// dropped, so that no call is made once Close has returned, whichever
// goroutine (the Start caller's too, which Close does not wait for) would
// have delivered them.
type statusNotifier struct {
	fn     func(StatusEvent)
	logger *slog.Logger

	mu         sync.Mutex
	queue      []StatusEvent
	delivering bool
	dropped    int
	closed     bool
	// deliverer is the goroutine (goid) delivering, and idle is closed
	// when its delivery ends: CloseContext waits for it, unless it is that
	// goroutine itself (Close called from the callback), which would wait
	// forever.
	deliverer uint64
	idle      chan struct{}
}

// newStatusNotifier is nil without a callback: a nil notifier does nothing.
func newStatusNotifier(fn func(StatusEvent), logger *slog.Logger) *statusNotifier {
	if fn == nil {
		return nil
	}
	return &statusNotifier{fn: fn, logger: logger}
}

// add queues ev; it never calls the callback, so it may be called with any
// lock held.
func (n *statusNotifier) add(ev StatusEvent) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return // never delivered: nothing may be called after Close
	}
	if len(n.queue) >= maxPendingStatusEvents {
		n.queue = n.queue[1:]
		n.dropped++
	}
	n.queue = append(n.queue, ev)
}

// deliver calls the callback with every queued event, each with the
// status current at the call. It must not be called with a lock of the
// client held.
func (n *statusNotifier) deliver(status func() Status) {
	if n == nil {
		return
	}
	n.mu.Lock()
	if n.delivering || n.closed || len(n.queue) == 0 {
		n.mu.Unlock()
		return
	}
	n.delivering, n.deliverer, n.idle = true, goid(), make(chan struct{})
	// Deferred, so that a callback that panics leaves the notifier usable
	// and a waiting CloseContext released (the panic goes on, as a
	// callback's own bug should).
	defer n.endDelivery()
	for len(n.queue) > 0 && !n.closed {
		ev := n.queue[0]
		n.queue[0] = StatusEvent{}
		n.queue = n.queue[1:]
		dropped := n.dropped
		n.dropped = 0
		n.mu.Unlock()
		if dropped > 0 {
			n.logger.Warn("status events dropped: OnStatusChange did not return in time", "dropped", dropped)
		}
		ev.Status = status()
		n.fn(ev)
		n.mu.Lock()
	}
	n.queue = nil // the drained slice's array is not kept
	n.mu.Unlock()
}

// endDelivery ends the delivery under way; n.mu is not held.
func (n *statusNotifier) endDelivery() {
	n.mu.Lock()
	n.delivering, n.deliverer = false, 0
	close(n.idle)
	n.idle = nil
	n.mu.Unlock()
}

// shut stops all calls for good. It returns what to wait for before Close
// may return: the end of a delivery under way on another goroutine than
// self, or nil. When that delivery is on self (Close called from the
// callback), inCallback is true: waiting would be waiting for itself.
func (n *statusNotifier) shut(self uint64) (wait <-chan struct{}, inCallback bool) {
	if n == nil {
		return nil, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	n.queue = nil
	if !n.delivering {
		return nil, false
	}
	if n.deliverer == self {
		return nil, true
	}
	return n.idle, false
}

// flagsChanged queues a StatusEventFlagsChanged for the flags of next that
// differ from prev's, if any differ.
func (n *statusNotifier) flagsChanged(prev, next *FlagSet) {
	if n == nil {
		return
	}
	if changed := changedFlags(prev, next); len(changed) > 0 {
		n.add(StatusEvent{Kind: StatusEventFlagsChanged, ChangedFlags: changed})
	}
}

// stateChanged queues the event of a change of Status.State by a
// successful update, if it is one: StateReady after anything else, or
// StateInterrupted because the flags came from the cache (cause is why the
// server was not used).
func (n *statusNotifier) stateChanged(from, to State, source Source, cause error) {
	if n == nil || from == to {
		return
	}
	switch {
	case to == StateReady:
		n.add(StatusEvent{Kind: StatusEventReady})
	case to == StateInterrupted && source == SourceCache:
		n.add(StatusEvent{Kind: StatusEventStale, Err: cause})
	}
}

// changedFlags lists, sorted, the keys of flags added, removed or changed
// from prev (nil for none) to next. Configs are compared whole, not by
// version (a flag's version in its metadata is not guaranteed to change
// with it): by their bytes, and decoded when those differ.
func changedFlags(prev, next *FlagSet) []string {
	var changed []string
	for _, k := range next.snap.Keys() {
		if prev == nil || !prev.snap.SameFlag(next.snap, k) {
			changed = append(changed, k)
		}
	}
	if prev != nil {
		for _, k := range prev.snap.Keys() {
			if !next.snap.Has(k) { // removed
				changed = append(changed, k)
			}
		}
	}
	slices.Sort(changed)
	return changed
}

// cohortChanges gathers what one cohort sync changed, for one
// StatusEventCohortsChanged.
type cohortChanges struct {
	changed bool
	errs    []error
}

func (c *cohortChanges) event() (StatusEvent, bool) {
	if !c.changed {
		return StatusEvent{}, false
	}
	return StatusEvent{Kind: StatusEventCohortsChanged, Err: errors.Join(c.errs...)}, true
}
