package openfeature

import (
	"reflect"
	"slices"
	"sync"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
	of "github.com/open-feature/go-sdk/openfeature"
)

// maxQueued bounds the events waiting for a reader. The SDK reads them as
// they come; a provider used without the SDK, whose channel nobody reads,
// must not grow without bound, so past this the oldest are dropped.
const maxQueued = 256

// pending is one event to deliver, or a flag update whose changed keys are
// still to be worked out (next != nil): the diff runs on the emitter's
// goroutine, not on the client's updater, which waits for OnUpdate.
type pending struct {
	event      of.Event
	prev, next *experiment.FlagSet
}

// emitter queues events and hands them to EventChannel from a goroutine of
// its own, so that neither the client's updater nor a caller ever blocks on
// a reader. It also holds the provider state that events report, so that
// only transitions are emitted.
type emitter struct {
	out  chan of.Event
	stop <-chan struct{}

	mu      sync.Mutex
	queue   []pending
	state   of.State
	started bool
	wake    chan struct{}
	wg      sync.WaitGroup
}

func newEmitter(stop <-chan struct{}) *emitter {
	return &emitter{out: make(chan of.Event), stop: stop, wake: make(chan struct{}, 1), state: of.NotReadyState}
}

// start launches the delivery goroutine; it ends when stop is closed.
func (e *emitter) start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return
	}
	e.started = true
	e.wg.Add(1)
	go e.run()
}

func (e *emitter) wait() { e.wg.Wait() }

// closeChannel ends the SDK's reader; called once the goroutine has
// stopped, so nothing sends on a closed channel.
func (e *emitter) closeChannel() { close(e.out) }

func (e *emitter) run() {
	defer e.wg.Done()
	for {
		select {
		case <-e.wake:
		case <-e.stop:
			return
		}
		for {
			item, ok := e.pop()
			if !ok {
				break
			}
			ev := item.event
			if item.next != nil {
				keys := ChangedFlags(item.prev, item.next)
				if len(keys) == 0 {
					continue // e.g. cohorts re-downloaded with the same members
				}
				ev.ProviderEventDetails = of.ProviderEventDetails{Message: "flag configs updated", FlagChanges: keys}
			}
			select {
			case e.out <- ev:
			case <-e.stop:
				return
			}
		}
	}
}

func (e *emitter) pop() (pending, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.queue) == 0 {
		return pending{}, false
	}
	item := e.queue[0]
	e.queue[0] = pending{}
	e.queue = e.queue[1:]
	return item, true
}

// enqueue appends item, merging it into the last queued one when they say
// the same thing, and wakes the goroutine. Called with e.mu held.
func (e *emitter) enqueue(item pending) {
	if n := len(e.queue); n > 0 {
		last := &e.queue[n-1]
		switch {
		case item.next != nil && last.next != nil:
			// Two updates not yet diffed: one diff from the first's
			// prev to the second's next says what changed in all.
			last.next = item.next
			return
		case item.next == nil && last.next == nil && last.event.EventType == item.event.EventType:
			last.event = item.event // the latest message for the same state
			return
		}
	}
	if len(e.queue) >= maxQueued {
		e.queue[0] = pending{}
		e.queue = e.queue[1:]
	}
	e.queue = append(e.queue, item)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *emitter) event(t of.EventType, msg string, code of.ErrorCode) pending {
	return pending{event: of.Event{ProviderName: Name, EventType: t,
		ProviderEventDetails: of.ProviderEventDetails{Message: msg, ErrorCode: code}}}
}

// setState records a state the SDK announces itself (the outcome of Init).
func (e *emitter) setState(s of.State) {
	e.mu.Lock()
	e.state = s
	e.mu.Unlock()
}

// transition emits the event of state s unless the provider is in it
// already, not yet initialized (the SDK reports the outcome of Init), or
// fatally failed (the key was rejected: nothing will change).
func (e *emitter) transition(s of.State, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == s || e.state == of.NotReadyState || e.state == of.FatalState {
		return
	}
	e.state = s
	switch s {
	case of.ReadyState:
		e.enqueue(e.event(of.ProviderReady, msg, ""))
	case of.StaleState:
		e.enqueue(e.event(of.ProviderStale, msg, ""))
	case of.ErrorState:
		e.enqueue(e.event(of.ProviderError, msg, of.GeneralCode))
	}
}

func (e *emitter) pushChange(prev, next *experiment.FlagSet) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.enqueue(pending{event: of.Event{ProviderName: Name, EventType: of.ProviderConfigChange}, prev: prev, next: next})
}

// ChangedFlags lists, sorted, the keys of the flags whose evaluation may
// differ between two flag sets: flags added or removed, flags whose config
// changed, flags targeting a cohort whose membership changed, and every
// flag that depends, directly or not, on one of those. A nil set has no
// flags. It is what CONFIGURATION_CHANGED carries.
func ChangedFlags(prev, next *experiment.FlagSet) []string {
	before, after := flagsOf(prev), flagsOf(next)
	changed := map[string]bool{}
	for key, f := range after {
		old, ok := before[key]
		if !ok || (old != f && !reflect.DeepEqual(old, f)) || cohortsChanged(f, prev, next) {
			changed[key] = true
		}
	}
	for key := range before {
		if _, ok := after[key]; !ok {
			changed[key] = true
		}
	}
	// A dependent's result reads its dependencies' results.
	dependents := map[string][]string{}
	for key, f := range after {
		for _, d := range f.Dependencies {
			dependents[d] = append(dependents[d], key)
		}
	}
	work := make([]string, 0, len(changed))
	for key := range changed {
		work = append(work, key)
	}
	for len(work) > 0 {
		key := work[len(work)-1]
		work = work[:len(work)-1]
		for _, dep := range dependents[key] {
			if !changed[dep] {
				changed[dep] = true
				work = append(work, dep)
			}
		}
	}
	keys := make([]string, 0, len(changed))
	for key := range changed {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

func flagsOf(fs *experiment.FlagSet) map[string]*eval.Flag {
	if fs == nil {
		return nil
	}
	snap := fs.Snapshot()
	out := make(map[string]*eval.Flag, snap.Len())
	for _, key := range snap.Keys() {
		out[key] = snap.Flag(key) // the definition in use when a key repeats
	}
	return out
}

// cohortsChanged reports whether a cohort the flag targets differs between
// the two sets' stores: present in one only, or another download (a new
// last-modified time or member count).
func cohortsChanged(f *eval.Flag, prev, next *experiment.FlagSet) bool {
	ids := cohort.Referenced([]*eval.Flag{f}).All()
	if len(ids) == 0 {
		return false
	}
	var before, after *cohort.Store
	if prev != nil {
		before = prev.Cohorts()
	}
	if next != nil {
		after = next.Cohorts()
	}
	for _, id := range ids {
		a, b := before.Get(id), after.Get(id)
		switch {
		case a == b:
		case a == nil || b == nil:
			return true
		case a.LastModified != b.LastModified || a.Len() != b.Len():
			return true
		}
	}
	return false
}
