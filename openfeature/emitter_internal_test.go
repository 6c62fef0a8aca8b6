package openfeature

import (
	"testing"

	of "github.com/open-feature/go-sdk/openfeature"
)

// TestEmitterQueueBounded: with nobody reading, events wait in a queue of
// at most maxQueued, the oldest dropped; repeated states and consecutive
// changes are merged; and the latest event is the one kept last.
func TestEmitterQueueBounded(t *testing.T) {
	stop := make(chan struct{})
	e := newEmitter(stop)
	e.setState(of.ReadyState)
	for i := range 3 * maxQueued {
		if i%2 == 0 {
			e.transition(of.StaleState, "stale")
		} else {
			e.transition(of.ReadyState, "ready")
		}
		e.transition(of.ReadyState, "ready again") // no change: no event
	}
	e.mu.Lock()
	n := len(e.queue)
	last := e.queue[n-1].event.EventType
	e.mu.Unlock()
	if n != maxQueued {
		t.Errorf("%d events queued, want the bound %d", n, maxQueued)
	}
	if last != of.ProviderReady {
		t.Errorf("last queued %s, want the latest transition, READY", last)
	}

	e.transition(of.StaleState, "first")
	e.transition(of.StaleState, "second") // same state: not an event
	e.transition(of.ReadyState, "back")
	e.start()
	got := 0
	var final of.Event
	for got < maxQueued {
		final = <-e.out
		got++
	}
	if final.EventType != of.ProviderReady || final.Message != "back" || final.ProviderName != Name {
		t.Errorf("last event %+v", final)
	}
	close(stop)
	e.wait()
	e.closeChannel()
	if _, ok := <-e.out; ok {
		t.Error("an event after the channel was closed")
	}
}

// TestTransitionsWaitForInit: before Init has reported (NOT_READY) and
// after a fatal Init, status changes are not events: the SDK reports
// Init's outcome, and nothing follows a rejected key.
func TestTransitionsWaitForInit(t *testing.T) {
	for _, s := range []of.State{of.NotReadyState, of.FatalState} {
		e := newEmitter(make(chan struct{}))
		e.setState(s)
		e.transition(of.StaleState, "x")
		e.transition(of.ReadyState, "y")
		if len(e.queue) != 0 {
			t.Errorf("%s: %d events queued", s, len(e.queue))
		}
	}
}

func TestCovers(t *testing.T) {
	for _, c := range []struct {
		ranges [][2]uint64
		span   uint64
		want   bool
	}{
		{nil, 100, false},
		{[][2]uint64{{0, 100}}, 100, true},
		{[][2]uint64{{60, 100}, {0, 60}}, 100, true},
		{[][2]uint64{{0, 50}, {51, 100}}, 100, false},
		{[][2]uint64{{0, 70}, {30, 99}}, 100, false},
		{[][2]uint64{{0, 70}, {30, 120}}, 100, true},
	} {
		if got := covers(c.ranges, c.span); got != c.want {
			t.Errorf("covers(%v, %d) = %v", c.ranges, c.span, got)
		}
	}
}
