package fleet

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Run keeps relays in the fleet until ctx ends: each takes or follows its
// deployment's lease, syncs for its role, and hears the fleet's notices.
// Every relay knows its role before it first syncs, so a follower never
// asks Amplitude for flags while Redis answers. On return the leases held
// are released, so that another relay takes over at once.
func Run(ctx context.Context, f *Fleet, relays []*Relay) {
	// The first steps run at once: a slow Redis delays the start by one
	// call's deadline, not one per deployment.
	next := make([]time.Duration, len(relays))
	var wg sync.WaitGroup
	for i, r := range relays {
		wg.Add(1)
		go func() { defer wg.Done(); next[i] = r.leaseStep(ctx) }()
	}
	wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); f.listen(ctx, relays) }()
	for i, r := range relays {
		wg.Add(2)
		go func() { defer wg.Done(); r.leaseLoop(ctx, next[i]) }()
		go func() { defer wg.Done(); r.syncLoop(ctx) }()
	}
	wg.Wait()
	for _, r := range relays {
		r.resign()
	}
}

// listen hears the fleet's notices and wakes the relays they concern.
// go-redis resubscribes after a lost connection; a notice sent meanwhile
// is caught by the followers' periodic check.
func (f *Fleet) listen(ctx context.Context, relays []*Relay) {
	ps := f.rdb.Subscribe(ctx, f.channel())
	defer ps.Close()
	ch := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			f.metrics.notices.WithLabelValues("received").Inc()
			dispatch(msg.Payload, relays)
		}
	}
}

// dispatch wakes the relays a notice concerns: "flags DEP ETAG" the
// deployment's (unless it serves that ETag), "cohort ID VERSION" those
// whose flags target the cohort, "lease DEP free" the deployment's (its
// writer stopped: the first to step takes the lease).
func dispatch(payload string, relays []*Relay) {
	fields := strings.Fields(payload)
	if len(fields) != 3 {
		return
	}
	for _, r := range relays {
		switch fields[0] {
		case "flags":
			r.mu.Lock()
			mine := fields[1] == r.dep && fields[2] != r.etag
			r.mu.Unlock()
			if mine {
				r.notify()
			}
		case "lease":
			if fields[1] == r.dep {
				select {
				case r.free <- struct{}{}:
				default:
				}
			}
		case "cohort":
			if slices.Contains(r.cohortIDs(), fields[1]) {
				r.notify()
			}
		}
	}
}
