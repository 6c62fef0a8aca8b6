package fleettest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
)

// Figures the tests measure are logged with "measured:" (go test -v), for
// the README's fleet section.

// TestFleetOnePoller: of three relays sharing Redis only the writer asks
// Amplitude for flags; the followers ask nothing while Redis is up.
func TestFleetOnePoller(t *testing.T) {
	f := startFleet(t, 3)
	w := f.writer()
	before := f.fake.FlagRequests()
	const window = 15 * pollInterval
	time.Sleep(window) // a measuring window, not a wait for something to happen
	after := f.fake.FlagRequests()
	if w2 := f.writer(); w2 != w {
		t.Fatalf("the writer changed from relay %d to %d in a quiet fleet", w.Index, w2.Index)
	}
	total := 0
	for _, r := range f.relays {
		n := after[r.Index] - before[r.Index]
		total += n
		switch {
		case r == w && n < int(window/pollInterval)/3:
			t.Errorf("writer (relay %d) made %d flag requests in %v, want about %d: it does not poll", r.Index, n, window, window/pollInterval)
		case r != w && n != 0:
			t.Errorf("follower relay %d made %d flag requests in %v, want 0", r.Index, n, window)
		}
	}
	// One relay's worth, not three (and a poll or two of slack).
	if limit := int(window/pollInterval) + 2; total > limit {
		t.Errorf("%d flag requests upstream in %v from the fleet, want at most %d (one poller)", total, window, limit)
	}
	t.Logf("measured: %d upstream flag requests in %v from a fleet of 3 (poll interval %v), by relay %v, writer relay %d",
		total, window, pollInterval, diff(after, before), w.Index)
}

func diff(after, before map[int]int) map[int]int {
	out := map[int]int{}
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}

// TestFleetServesUpstreamBytes: every relay serves Amplitude's bytes as
// they came (the fake's own key order), with one ETag, before and after a
// change.
func TestFleetServesUpstreamBytes(t *testing.T) {
	f := startFleet(t, 3)
	check := func() {
		_, want := f.fake.Current()
		etags := map[string]bool{}
		for _, r := range f.relays {
			code, body, h, err := get(context.Background(), f.client, r.URL()+"/sdk/v2/flags")
			if err != nil || code != http.StatusOK {
				t.Fatalf("relay %d: %d %v", r.Index, code, err)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("relay %d serves\n%s\nwant the upstream bytes\n%s", r.Index, body, want)
			}
			etags[h.Get("ETag")] = true
		}
		if len(etags) != 1 {
			t.Errorf("the relays answer %d ETags: %s", len(etags), keys(etags))
		}
	}
	check()
	f.fake.SetGen(2)
	f.waitConverged("generation 2 everywhere", 10*time.Second)
	check()
}

// TestFleetChangeReachesStreams: a change upstream reaches the stream
// clients of every relay, not only the writer's, soon after the writer's
// next poll.
func TestFleetChangeReachesStreams(t *testing.T) {
	f := startFleet(t, 3)
	var streams []*streamClient
	for _, r := range f.relays {
		for range 2 {
			streams = append(streams, openStream(t, r))
		}
	}
	// A poll, a write, a notice: well within one lease TTL. The followers
	// are woken by the notice, within milliseconds of the writer; the
	// periodic re-check alone (every third of the TTL, 667ms) would lag
	// past lagBound in all but about 2% of runs of four changes.
	const bound, lagBound = leaseTTL, 250 * time.Millisecond
	w := f.writer()
	for gen := 2; gen <= 5; gen++ {
		changed := time.Now()
		f.fake.SetGen(gen)
		var last time.Duration
		perRelay := map[int]time.Duration{}
		waitFor(t, "every stream client to receive the change", 10*time.Second, func() (bool, string) {
			for _, s := range streams {
				at, ok := s.received(gen)
				if !ok {
					return false, "a stream client of relay " + itoa(s.Relay) + " has not received generation " + itoa(gen)
				}
				last = max(last, at.Sub(changed))
				perRelay[s.Relay] = max(perRelay[s.Relay], at.Sub(changed))
			}
			return true, ""
		})
		// The time to the writer's next poll is chance; what the fleet adds
		// is the followers' lag behind the writer's own stream clients.
		lag := last - perRelay[w.Index]
		t.Logf("measured: change %d reached all %d stream clients of 3 relays %v after the change upstream (the writer's %v: its next poll, every %v; the followers' %v after the writer's)",
			gen, len(streams), last.Round(time.Millisecond), perRelay[w.Index].Round(time.Millisecond), pollInterval, lag.Round(100*time.Microsecond))
		if last > bound {
			t.Errorf("change %d took %v to reach every stream client, want at most %v", gen, last, bound)
		}
		if lag > lagBound {
			t.Errorf("change %d reached the followers' stream clients %v after the writer's, want at most %v: no notice?", gen, lag, lagBound)
		}
	}
	f.waitConverged("the same bytes everywhere", 5*time.Second)
	// The notices and reloads behind it, as /metrics counts them.
	for _, r := range f.relays {
		if r == w {
			f.wantMetric(r, ">=", 4, "experiment_fleet_notices_total", "direction", "sent")
			continue
		}
		f.wantMetric(r, ">=", 4, "experiment_fleet_notices_total", "direction", "received")
		f.wantMetric(r, ">=", 4, "experiment_fleet_reloads_total")
	}
}

// TestFleetKillWriter: kill -9 of the writer; another relay becomes the
// writer once the lease lapses, and polls: a change reaches the survivors
// and their stream clients; the killed relay comes back as a follower.
func TestFleetKillWriter(t *testing.T) {
	f := startFleet(t, 3)
	w := f.writer()
	var streams []*streamClient
	for _, r := range others(f.relays, w) {
		streams = append(streams, openStream(t, r))
	}
	p := startProber(t, f.client, others(f.relays, w))
	w.Kill()
	took := f.waitConverged("a new writer", leaseTTL+10*time.Second)
	t.Logf("measured: after kill -9 of the writer, relay %d took over %v later (lease TTL %v)",
		f.writer().Index, took.Round(time.Millisecond), leaseTTL)
	if bound := leaseTTL + time.Second; took > bound {
		t.Errorf("takeover after kill -9 took %v, want at most the lease TTL and a margin, %v", took, bound)
	}
	f.wantMetric(f.writer(), "==", 1, "experiment_fleet_lease_changes_total", "role", "acquired")
	f.fake.SetGen(2)
	f.waitConverged("generation 2 from the new writer", 5*time.Second)
	waitStreams(t, streams, 2, 5*time.Second)
	if failures, checks := p.Stop(); len(failures) > 0 {
		t.Errorf("%d of %d requests to the surviving relays failed:\n%s", len(failures), checks, strings.Join(failures, "\n"))
	}
	w.Start()
	f.waitConverged("the killed relay back as follower", 10*time.Second)
}

// TestFleetTermWriter: SIGTERM of the writer releases the lease at once,
// so another relay takes over faster than after kill -9, and the writer
// exits 0.
func TestFleetTermWriter(t *testing.T) {
	// A writer renews its lease every third of the TTL, so a lease left to
	// lapse lasts at least two thirds of it after the signal, while one
	// released at once is taken at the followers' next try, within a third.
	// A longer lease than the other tests' leaves room between the two for
	// a loaded machine.
	const ttl = 3 * leaseTTL
	f := startFleetTTL(t, 3, ttl)
	w := f.writer()
	p := startProber(t, f.client, others(f.relays, w))
	stopped := time.Now()
	if err := w.Term(); err != nil {
		t.Errorf("writer after SIGTERM: %v, want exit status 0", err)
	}
	exited := time.Since(stopped)
	took := waitFor(t, "a new writer", ttl+10*time.Second, func() (bool, string) {
		return f.converged(f.running())
	}) + exited
	t.Logf("measured: after SIGTERM of the writer (exited in %v), relay %d took over %v after the signal (lease TTL %v)",
		exited.Round(time.Millisecond), f.writer().Index, took.Round(time.Millisecond), ttl)
	if bound := 2*ttl/3 - 500*time.Millisecond; took > bound {
		t.Errorf("takeover after SIGTERM took %v, want at most %v (a lease left to lapse lasts at least %v): the lease is not released at once", took, bound, 2*ttl/3)
	}
	if failures, checks := p.Stop(); len(failures) > 0 {
		t.Errorf("%d of %d requests to the surviving relays failed:\n%s", len(failures), checks, strings.Join(failures, "\n"))
	}
}

func others(all []*relayProc, not *relayProc) []*relayProc {
	var out []*relayProc
	for _, r := range all {
		if r != not {
			out = append(out, r)
		}
	}
	return out
}

// TestFleetRedisDown: with Redis stopped every relay keeps answering 200
// and stays ready, says Redis is down, and once its lease lapses runs
// alone, polling Amplitude itself (a change still reaches it and its stream
// clients); with Redis back the fleet converges to one writer and followers
// on the latest flags, and changes flow through Redis again.
func TestFleetRedisDown(t *testing.T) {
	f := startFleet(t, 3)
	var streams []*streamClient
	for _, r := range f.relays {
		streams = append(streams, openStream(t, r))
	}
	p := startProber(t, f.client, f.relays)
	stopped := time.Now()
	f.redis.Stop()
	alone := waitFor(t, "every relay alone with Redis down", 3*leaseTTL+5*time.Second, func() (bool, string) {
		for _, r := range f.relays {
			s, err := r.status(f.client)
			switch {
			case err != nil:
				return false, err.Error()
			case s.redis() != "down" || s.role() != "alone":
				return false, "relay " + itoa(r.Index) + ": redis " + s.redis() + ", role " + s.role()
			}
		}
		return true, ""
	})
	for _, r := range f.relays {
		f.wantMetric(r, ">=", 1, "experiment_fleet_redis_errors_total")
	}
	before := f.fake.FlagRequests()
	changed := time.Now()
	f.fake.SetGen(2)
	waitFor(t, "generation 2 on every relay alone", 5*time.Second, func() (bool, string) {
		for _, r := range f.relays {
			_, body, _, err := get(context.Background(), f.client, r.URL()+"/sdk/v2/flags")
			if err != nil || genOf(body) != 2 {
				return false, "relay " + itoa(r.Index) + " serves generation " + itoa(genOf(body))
			}
		}
		return true, ""
	})
	waitStreams(t, streams, 2, 5*time.Second)
	aloneChange := time.Since(changed)
	after := f.fake.FlagRequests()
	for _, r := range f.relays {
		if after[r.Index] == before[r.Index] {
			t.Errorf("relay %d alone made no flag request of its own", r.Index)
		}
	}
	restarted := time.Now()
	f.redis.Start()
	back := f.waitConverged("the fleet to converge with Redis back", 15*time.Second)
	f.fake.SetGen(3)
	f.waitConverged("generation 3 in the fleet again", 5*time.Second)
	waitStreams(t, streams, 3, 5*time.Second)
	t.Logf("measured: Redis stopped: all relays alone %v later (lease TTL %v), a change reached all of them alone in %v; Redis back (empty): converged %v after its start; Redis was down %v",
		alone.Round(time.Millisecond), leaseTTL, aloneChange.Round(time.Millisecond), back.Round(time.Millisecond), restarted.Sub(stopped).Round(time.Millisecond))
	failures, checks := p.Stop()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests for flags or readiness failed:\n%s", len(failures), checks, strings.Join(failures, "\n"))
	}
	t.Logf("measured: %d requests for /sdk/v2/flags and /readyz during the outage and recovery, %d not 200", checks, len(failures))
}

// TestFleetEventsOncePerIdentity: the same tracked remote evaluation sent
// to all three relays is one assignment event and one exposure per flag for
// each user, fleet-wide, once the relays have flushed (SIGTERM drains).
func TestFleetEventsOncePerIdentity(t *testing.T) {
	events := analyticstest.NewServer()
	t.Cleanup(events.Close)
	f := startFleet(t, 3, "--forward-events", "--api-key", "fleetTestApiKey0123", "--events-server-url", events.URL)
	evaluate := func(r *relayProc, user string) {
		req, _ := http.NewRequest(http.MethodPost, r.URL()+"/sdk/v2/vardata", strings.NewReader(`{"user_id":"`+user+`"}`))
		req.Header.Set("Authorization", "Api-Key "+deploymentKey)
		req.Header.Set("X-Amp-Exp-Track", "track")
		req.Header.Set("X-Amp-Exp-Exposure-Track", "track")
		resp, err := f.client.Do(req)
		if err != nil {
			t.Errorf("relay %d: %v", r.Index, err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("relay %d: vardata %d", r.Index, resp.StatusCode)
		}
	}
	users := []string{"fleet-user-0", "fleet-user-1", "fleet-user-2", "fleet-user-3", "fleet-user-4", "fleet-user-5"}
	for _, u := range users[:3] { // one relay after another
		for _, r := range f.relays {
			evaluate(r, u)
		}
	}
	var wg sync.WaitGroup
	for _, u := range users[3:] { // all three at once
		for _, r := range f.relays {
			wg.Add(1)
			go func() { defer wg.Done(); evaluate(r, u) }()
		}
	}
	wg.Wait()
	// Each user's assignment reached three relays: two of them at least
	// drop it as the fleet's duplicate (the checks run behind the answers).
	waitFor(t, "the fleet's duplicates counted", 5*time.Second, func() (bool, string) {
		sum := 0.0
		for _, r := range f.relays {
			n, err := r.metric(f.client, "experiment_fleet_events_deduplicated_total")
			if err != nil {
				return false, err.Error()
			}
			sum += n
		}
		return sum >= float64(2*len(users)), fmt.Sprintf("experiment_fleet_events_deduplicated_total: %v in all, want at least %d", sum, 2*len(users))
	})
	for _, r := range f.relays {
		if err := r.Term(); err != nil {
			t.Errorf("relay %d after SIGTERM: %v, want exit status 0", r.Index, err)
		}
	}
	counts := map[string]int{}
	for _, ev := range events.DecodedEvents() {
		typ, _ := ev["event_type"].(string)
		user, _ := ev["user_id"].(string)
		flag := ""
		if p, ok := ev["event_properties"].(map[string]any); ok {
			flag, _ = p["[Experiment] Flag Key"].(string)
		}
		counts[typ+" "+user+" "+flag]++
	}
	for _, u := range users {
		if n := counts["[Experiment] Assignment "+u+" "]; n != 1 {
			t.Errorf("%s: %d assignment events, want 1 across the fleet", u, n)
		}
		for _, flag := range []string{"fleet-gen", "fleet-static"} {
			if n := counts["[Experiment] Exposure "+u+" "+flag]; n != 1 {
				t.Errorf("%s: %d exposure events for %s, want 1 across the fleet", u, n, flag)
			}
		}
	}
	if t.Failed() {
		t.Logf("events by type, user and flag: %v", counts)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// waitStreams waits until every stream client has received generation gen.
func waitStreams(t *testing.T, streams []*streamClient, gen int, timeout time.Duration) {
	t.Helper()
	waitFor(t, "generation "+itoa(gen)+" on every stream", timeout, func() (bool, string) {
		for _, s := range streams {
			if _, ok := s.received(gen); !ok {
				return false, "a stream client of relay " + itoa(s.Relay) + " has not received it"
			}
		}
		return true, ""
	})
}
