package fleettest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFleetChaos kills relays (kill -9 and SIGTERM) and stops Redis
// (SIGKILL and SIGTERM) at random, and starts them again, for
// EXPERIMENT_CHAOS_DURATION (default 15s, 5s with -short; CI: 60s), while
// the flags change upstream every few seconds and clients request
// /sdk/v2/flags from the relays without pause. The run is reproducible
// from its seed, EXPERIMENT_CHAOS_SEED (default: the clock), which it logs.
// Everything is on 127.0.0.1 and ends with the test.
//
// What a failure is, precisely. A relay slot is serving from the moment
// the test has seen the relay's /readyz answer 200 after its latest start,
// until the moment the test decides to kill or stop it: the slot is marked
// not serving before the signal is sent. At least one slot is serving at
// every instant (a relay is killed only while two serve). A client picks a
// serving slot at random and notes the slot's epoch, which each of those
// two marks advances. Its request counts when the slot is serving at the
// same epoch once the answer is in; a counted request must get status 200
// with the deployment's flags (a body naming a generation). Anything else
// is a failure: another status, a refused or reset connection, a timeout
// (5s). Requests to a relay being killed or not yet ready are not counted,
// as a load balancer would not send them. Redis is no excuse: a relay
// must answer while Redis is down or empty after a restart.
//
// At the end Redis and every relay are started again, and the fleet must
// converge (one writer, the others followers, every relay serving the
// latest flags with one ETag) within 20s.
func TestFleetChaos(t *testing.T) {
	redisServerPath(t) // skip before saying anything else
	duration, seed := chaosSettings(t)
	t.Logf("chaos: %v with seed %d (EXPERIMENT_CHAOS_SEED=%d reproduces the schedule)", duration, seed, seed)
	f := startFleet(t, 3)
	c := &chaos{f: f, rng: rand.New(rand.NewPCG(seed, 1)), start: time.Now()}
	for _, r := range f.relays {
		c.slots = append(c.slots, &slot{serving: true, url: r.URL()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var clients sync.WaitGroup
	for i := range 4 {
		clients.Add(1)
		hc, rng := httpClient(t), rand.New(rand.NewPCG(seed, uint64(i)+2))
		go func() {
			defer clients.Done()
			c.client(ctx, hc, rng)
		}()
	}
	c.run(duration)
	cancel()
	clients.Wait()

	if !f.redis.Running() {
		f.redis.Start()
	}
	for i, r := range f.relays {
		if !r.Running() {
			c.logf("restart relay %d for the end", i)
			r.Start()
		}
	}
	gen := f.fake.SetGen(c.gen + 1)
	converged := f.waitConverged("the fleet to converge after the chaos", 20*time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Logf("measured: chaos %v (seed %d): %d actions (%s); %d flag requests counted, %d failed, %d not counted (relay going down or not ready); converged on generation %d %v after the end",
		duration, seed, len(c.actions), summarize(c.actions), c.ok+len(c.failures), len(c.failures), c.skipped, genOf(gen), converged.Round(time.Millisecond))
	if len(c.failures) > 0 {
		t.Errorf("%d requests to serving relays failed (first %d):\n%s", len(c.failures), min(len(c.failures), 20), strings.Join(c.failures[:min(len(c.failures), 20)], "\n"))
	}
	if c.ok == 0 {
		t.Error("no request was counted: the clients tested nothing")
	}
}

// chaosSettings reads EXPERIMENT_CHAOS_DURATION and EXPERIMENT_CHAOS_SEED.
func chaosSettings(t *testing.T) (time.Duration, uint64) {
	duration := 15 * time.Second
	if testing.Short() {
		duration = 5 * time.Second
	}
	if v := os.Getenv("EXPERIMENT_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 10*time.Minute {
			t.Fatalf("EXPERIMENT_CHAOS_DURATION=%q: want a duration up to 10m", v)
		}
		duration = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("EXPERIMENT_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("EXPERIMENT_CHAOS_SEED=%q: want an unsigned integer", v)
		}
		seed = n
	}
	return duration, seed
}

// chaos is one chaos run: the schedule (on the test's goroutine) and the
// clients' tally.
type chaos struct {
	f     *fleet
	rng   *rand.Rand // the schedule's; the test goroutine's only
	start time.Time
	gen   int

	mu       sync.Mutex // guards slots and the tally
	slots    []*slot
	ok       int
	skipped  int
	failures []string
	actions  []string
}

// slot is a relay's serving state as the clients see it.
type slot struct {
	serving bool
	epoch   int
	url     string
}

func (c *chaos) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.f.t.Logf("chaos %6.2fs: %s", time.Since(c.start).Seconds(), msg)
}

// setServing marks relay i serving or not, advancing its epoch.
func (c *chaos) setServing(i int, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.slots[i]
	s.serving, s.url = on, c.f.relays[i].URL()
	s.epoch++
}

// serving counts the serving slots.
func (c *chaos) serving() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.slots {
		if s.serving {
			n++
		}
	}
	return n
}

// client requests flags from serving relays until ctx ends.
func (c *chaos) client(ctx context.Context, hc *http.Client, rng *rand.Rand) {
	for ctx.Err() == nil {
		c.mu.Lock()
		var picks []int
		for i, s := range c.slots {
			if s.serving {
				picks = append(picks, i)
			}
		}
		i := picks[rng.IntN(len(picks))]
		url, epoch := c.slots[i].url, c.slots[i].epoch
		c.mu.Unlock()
		code, body, _, err := get(context.Background(), hc, url+"/sdk/v2/flags")
		c.mu.Lock()
		switch s := c.slots[i]; {
		case !s.serving || s.epoch != epoch:
			c.skipped++
		case err == nil && code == http.StatusOK && genOf(body) > 0:
			c.ok++
		default:
			c.failures = append(c.failures, fmt.Sprintf("%6.2fs relay %d: %d %v %.200s",
				time.Since(c.start).Seconds(), i, code, err, body))
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond) // pacing: busy clients, not a benchmark that starves the rest of CI
	}
}

// run is the schedule: an action every 0.3 to 1.5s, a flag change every 2
// to 4s, until duration has passed.
func (c *chaos) run(duration time.Duration) {
	f := c.f
	c.gen, _ = f.fake.Current()
	end := time.Now().Add(duration)
	nextChange := time.Now().Add(c.jitter(2*time.Second, 4*time.Second))
	for time.Now().Before(end) {
		time.Sleep(c.jitter(300*time.Millisecond, 1500*time.Millisecond)) // pacing of the schedule
		if time.Now().After(nextChange) {
			c.gen++
			f.fake.SetGen(c.gen)
			c.act("flags: generation %d upstream", c.gen)
			nextChange = time.Now().Add(c.jitter(2*time.Second, 4*time.Second))
		}
		c.step()
	}
}

func (c *chaos) jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)))
}

func (c *chaos) act(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.actions = append(c.actions, msg)
	c.mu.Unlock()
	c.logf("%s", msg)
}

// step does one random action among those possible now.
func (c *chaos) step() {
	f := c.f
	var alive, dead []int
	for i, r := range f.relays {
		if r.Running() {
			alive = append(alive, i)
		} else {
			dead = append(dead, i)
		}
	}
	type action struct {
		weight int
		do     func()
	}
	var options []action
	if c.serving() >= 2 {
		options = append(options, action{3, func() {
			i := alive[c.rng.IntN(len(alive))]
			c.setServing(i, false)
			c.act("kill -9 relay %d", i)
			f.relays[i].Kill()
		}}, action{1, func() {
			i := alive[c.rng.IntN(len(alive))]
			c.setServing(i, false)
			c.act("SIGTERM relay %d", i)
			if err := f.relays[i].Term(); err != nil {
				c.fail("relay %d after SIGTERM: %v, want exit status 0", i, err)
			}
		}})
	}
	if len(dead) > 0 {
		options = append(options, action{3, func() { c.restart(dead[c.rng.IntN(len(dead))]) }})
	}
	if f.redis.Running() {
		options = append(options, action{1, func() {
			if c.rng.IntN(2) == 0 {
				c.act("redis: SIGKILL")
				f.redis.Kill()
			} else {
				c.act("redis: SIGTERM")
				f.redis.Stop()
			}
		}})
	} else {
		options = append(options, action{2, func() {
			c.act("redis: start (empty)")
			f.redis.Start()
		}})
	}
	total := 0
	for _, o := range options {
		total += o.weight
	}
	n := c.rng.IntN(total)
	for _, o := range options {
		if n < o.weight {
			o.do()
			return
		}
		n -= o.weight
	}
}

// restart starts relay i again and marks it serving once /readyz says so.
func (c *chaos) restart(i int) {
	r := c.f.relays[i]
	c.act("start relay %d", i)
	if err := r.start(); err != nil {
		c.fail("%v", err)
		return
	}
	started := time.Now()
	hc := c.f.client
	for {
		code, _, _, err := get(context.Background(), hc, r.URL()+"/readyz")
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Since(started) > 20*time.Second {
			c.fail("relay %d not ready 20s after its start: %d %v", i, code, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.setServing(i, true)
	c.logf("relay %d ready %v after its start", i, time.Since(started).Round(time.Millisecond))
}

func (c *chaos) fail(format string, args ...any) {
	msg := fmt.Sprintf("%6.2fs ", time.Since(c.start).Seconds()) + fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.failures = append(c.failures, msg)
	c.mu.Unlock()
	c.logf("FAIL %s", msg)
}

// summarize counts actions by kind ("kill -9 relay 1" is a "kill -9").
func summarize(actions []string) string {
	counts := map[string]int{}
	var order []string
	for _, a := range actions {
		kind := a
		for _, k := range []string{"kill -9", "SIGTERM relay", "start relay", "redis: SIGKILL", "redis: SIGTERM", "redis: start", "flags"} {
			if strings.HasPrefix(a, k) {
				kind = k
				break
			}
		}
		if counts[kind] == 0 {
			order = append(order, kind)
		}
		counts[kind]++
	}
	var out []string
	for _, k := range order {
		out = append(out, fmt.Sprintf("%s ×%d", k, counts[k]))
	}
	return strings.Join(out, ", ")
}
