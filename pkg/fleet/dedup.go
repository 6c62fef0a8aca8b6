package fleet

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Dedup sends each forwarded event once per fleet and day. An identity
// is first checked against this relay's memory (no Redis call for what
// it saw itself), then recorded in Redis (SET NX EX of its hash) by a
// worker: Admit never waits on Redis. While Redis fails, an event new to
// this relay is sent (local de-duplication only) rather than lost.
type Dedup struct {
	f     *Fleet
	queue chan pending
	done  chan struct{}
	local atomic.Bool // the last Redis check failed: Mode "local"

	mu     sync.Mutex
	seen   *simplelru.LRU[string, time.Time] // hashed identity -> first sight
	closed bool                              // the queue is closed: Admit sends at once
}

type pending struct {
	hash string // of the identity
	send func()
}

// NewDedup starts the worker; Close stops it. capacity bounds both the
// memory of identities and the queue of checks waiting for Redis.
func NewDedup(f *Fleet, capacity int) (*Dedup, error) {
	lru, err := simplelru.NewLRU[string, time.Time](capacity, nil)
	if err != nil {
		return nil, err
	}
	d := &Dedup{f: f, queue: make(chan pending, capacity), done: make(chan struct{}), seen: lru}
	go d.work()
	return d, nil
}

// Admit calls send (on the worker, later) unless identity was seen in
// the last 24 hours, by this relay or by the fleet. When the queue is
// full or closed send is called at once: a duplicate rather than a loss.
func (d *Dedup) Admit(identity string, send func()) {
	// Kept hashed: an identity grows with the flags a request evaluates
	// (kilobytes), a hash does not, so capacity bounds the memory.
	h, now := hashBytes([]byte(identity)), time.Now()
	d.mu.Lock()
	if t, ok := d.seen.Get(h); ok && now.Sub(t) < SeenTTL {
		d.mu.Unlock()
		return
	}
	d.seen.Add(h, now)
	queued := false
	if !d.closed { // under mu: Close cannot close the queue meanwhile
		select {
		case d.queue <- pending{h, send}:
			queued = true
		default:
		}
	}
	d.mu.Unlock()
	if !queued {
		send()
	}
}

// Mode is "fleet" while Redis answers the checks, "local" while not.
func (d *Dedup) Mode() string {
	if d.local.Load() {
		return "local"
	}
	return "fleet"
}

// retryAfter is how long the worker sends without asking Redis after a
// failed check: a slow or dead Redis costs one timeout a second, not one
// per event.
const retryAfter = time.Second

func (d *Dedup) work() {
	defer close(d.done)
	var skipUntil time.Time
	for p := range d.queue {
		if time.Now().Before(skipUntil) {
			p.send()
			continue
		}
		seen, err := d.f.seen(context.Background(), p.hash)
		d.local.Store(err != nil)
		switch {
		case err != nil:
			skipUntil = time.Now().Add(retryAfter)
			p.send()
		case seen:
			d.f.metrics.deduplicated.Inc()
		default:
			p.send()
		}
	}
}

// Close checks and sends what is queued, then stops the worker. An
// Admit after it (a request the drain's deadline left running) sends at
// once, unchecked.
func (d *Dedup) Close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.queue)
	}
	d.mu.Unlock()
	<-d.done
}
