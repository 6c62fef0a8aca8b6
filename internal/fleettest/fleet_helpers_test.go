package fleettest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fleet's timing in these tests: short, so that a takeover or a lapse
// fits in a test of seconds, and far apart enough to tell a poll from a
// lease.
const (
	pollInterval = 200 * time.Millisecond
	leaseTTL     = 2 * time.Second
	prefix       = "fleettest"
)

// fleet is one Redis, one fake Amplitude and n relays of one deployment.
type fleet struct {
	t      *testing.T
	fake   *fakeAmplitude
	redis  *redisProc
	relays []*relayProc
	client *http.Client
}

// startFleet starts Redis, the fake and n relays (with extra serve
// arguments) and waits until the fleet has converged: ready, one writer,
// the others followers, all serving generation 1.
func startFleet(t *testing.T, n int, extra ...string) *fleet {
	t.Helper()
	return startFleetTTL(t, n, leaseTTL, extra...)
}

// startFleetTTL is startFleet with another --lease-ttl.
func startFleetTTL(t *testing.T, n int, ttl time.Duration, extra ...string) *fleet {
	t.Helper()
	f := &fleet{t: t, redis: startRedis(t), fake: newFakeAmplitude(t), client: httpClient(t)}
	for i := range n {
		args := []string{"--deployment-key", deploymentKey, "--redis", f.redis.URL(), "--redis-prefix", prefix,
			"--lease-ttl", ttl.String(), "--server-url", f.fake.URL(i), "--poll-interval", pollInterval.String(),
			"--listen", "127.0.0.1:0"}
		f.relays = append(f.relays, newRelay(t, i, append(args, extra...)...))
	}
	start := time.Now()
	for _, r := range f.relays {
		r.Start()
	}
	d := f.waitConverged("the fleet to start", 20*time.Second)
	t.Logf("fleet of %d ready %v after the first start (converged %v after the last)", n, time.Since(start).Round(time.Millisecond), d.Round(time.Millisecond))
	return f
}

// running are the relays running now.
func (f *fleet) running() []*relayProc {
	var out []*relayProc
	for _, r := range f.relays {
		if r.Running() {
			out = append(out, r)
		}
	}
	return out
}

// waitConverged waits until the fleet has converged (see converged) and
// returns how long that took.
func (f *fleet) waitConverged(what string, timeout time.Duration) time.Duration {
	f.t.Helper()
	return waitFor(f.t, what, timeout, func() (bool, string) { return f.converged(f.running()) })
}

// converged reports whether the relays have converged: Redis up for each
// (with the fleet's prefix and an instance id of its own), each ready, exactly one writer and the others followers, one ETag, and
// each serving the fake's current generation with the same bytes.
func (f *fleet) converged(relays []*relayProc) (bool, string) {
	gen, _ := f.fake.Current()
	writers, etags, instances := 0, map[string]bool{}, map[string]bool{}
	var first []byte
	for _, r := range relays {
		s, err := r.status(f.client)
		if err != nil {
			return false, fmt.Sprintf("relay %d: %v", r.Index, err)
		}
		switch {
		case s.redis() != "up":
			return false, fmt.Sprintf("relay %d: fleet.redis %q, want up", r.Index, s.redis())
		case s.Fleet.Prefix != prefix || s.Fleet.Instance == "" || instances[s.Fleet.Instance]:
			return false, fmt.Sprintf("relay %d: fleet.prefix %q (want %q), fleet.instance %q (want one of its own)",
				r.Index, s.Fleet.Prefix, prefix, s.Fleet.Instance)
		case len(s.Deployments) != 1 || !s.Deployments[0].Ready:
			return false, fmt.Sprintf("relay %d: deployment not ready", r.Index)
		case s.role() == "writer":
			writers++
		case s.role() != "follower":
			return false, fmt.Sprintf("relay %d: role %q", r.Index, s.role())
		}
		etags[s.etag()], instances[s.Fleet.Instance] = true, true
		code, body, _, err := get(context.Background(), f.client, r.URL()+"/sdk/v2/flags")
		switch {
		case err != nil || code != http.StatusOK:
			return false, fmt.Sprintf("relay %d: /sdk/v2/flags: %d %v", r.Index, code, err)
		case genOf(body) != gen:
			return false, fmt.Sprintf("relay %d serves generation %d, want %d", r.Index, genOf(body), gen)
		case first != nil && !bytes.Equal(body, first):
			return false, fmt.Sprintf("relay %d serves other bytes than relay %d:\n%s\n%s", r.Index, relays[0].Index, body, first)
		}
		first = body
	}
	switch {
	case writers != 1:
		return false, fmt.Sprintf("%d writers among %d relays, want 1", writers, len(relays))
	case len(etags) != 1:
		return false, fmt.Sprintf("%d ETags among the relays: %v", len(etags), keys(etags))
	}
	return true, ""
}

// roles maps each running relay to its role now.
func (f *fleet) roles() map[int]string {
	f.t.Helper()
	out := map[int]string{}
	for _, r := range f.running() {
		s, err := r.status(f.client)
		if err != nil {
			f.t.Fatalf("relay %d: %v", r.Index, err)
		}
		out[r.Index] = s.role()
	}
	return out
}

// writer is the running relay whose role is writer; the test fails when
// there is not exactly one.
func (f *fleet) writer() *relayProc {
	f.t.Helper()
	var w []*relayProc
	roles := f.roles()
	for _, r := range f.running() {
		if roles[r.Index] == "writer" {
			w = append(w, r)
		}
	}
	if len(w) != 1 {
		f.t.Fatalf("want one writer, roles: %v", roles)
	}
	return w[0]
}

// prober checks, every 50ms until stopped, that each relay it watches
// answers 200 on /sdk/v2/flags and /readyz; it keeps the failures.
type prober struct {
	mu       sync.Mutex
	failures []string
	checks   int
	stop     chan struct{}
	done     chan struct{}
}

func startProber(t *testing.T, c *http.Client, relays []*relayProc) *prober {
	p := &prober{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, r := range relays {
				for _, path := range []string{"/sdk/v2/flags", "/readyz"} {
					code, body, _, err := get(context.Background(), c, r.URL()+path)
					p.mu.Lock()
					p.checks++
					if err != nil || code != http.StatusOK {
						p.failures = append(p.failures, fmt.Sprintf("%s relay %d %s: %d %v %s",
							time.Now().Format("15:04:05.000"), r.Index, path, code, err, body))
					}
					p.mu.Unlock()
				}
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { p.Stop() })
	return p
}

// Stop stops the prober and returns its failures and the checks made.
func (p *prober) Stop() ([]string, int) {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failures, p.checks
}

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return strings.Join(out, " ")
}

// wantMetric fails the test unless relay r's metric (the sum of the series
// with these label pairs) compares to want as op ("==" or ">=") says.
func (f *fleet) wantMetric(r *relayProc, op string, want float64, name string, labels ...string) {
	f.t.Helper()
	got, err := r.metric(f.client, name, labels...)
	switch {
	case err != nil:
		f.t.Error(err)
	case op == "==" && got != want, op == ">=" && got < want:
		f.t.Errorf("relay %d: %s%v = %v, want %s %v", r.Index, name, labels, got, op, want)
	}
}
