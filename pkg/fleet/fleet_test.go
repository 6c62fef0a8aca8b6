package fleet

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/server"
)

const testKey = "server-fleet-test-key"

func newFleet(t *testing.T, m *miniredis.Miniredis, ttl time.Duration) *Fleet {
	t.Helper()
	opts, err := ParseURL("redis://"+m.Addr(), false)
	require.NoError(t, err)
	// The default call deadline, not a shorter one: a call to the
	// in-process miniredis that a loaded -race machine delays past it
	// counts as Redis down, and the relay turns alone and asks Amplitude,
	// which the tests take for a follower's fault. No test here waits on
	// the deadline: a closed miniredis refuses at once.
	f, err := New(Config{Redis: opts, Prefix: "t", LeaseTTL: ttl, CallTimeout: DefaultCallTimeout})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// upstream is a fake Amplitude flag service: one body, counted fetches.
type upstream struct {
	mu    sync.Mutex
	body  []byte
	calls map[*Fleet]int
}

func newUpstream(body []byte) *upstream { return &upstream{body: body, calls: map[*Fleet]int{}} }

func (u *upstream) fetch(f *Fleet) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.calls[f]++
		return u.body, nil
	}
}

func (u *upstream) set(body []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.body = body
}

func (u *upstream) count(f *Fleet) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[f]
}

func flagsBody(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "flags.json"))
	require.NoError(t, err)
	return b
}

// member is one relay of a test fleet, running until stop.
type member struct {
	f     *Fleet
	r     *Relay
	stop  context.CancelFunc
	done  chan struct{}
	lines *lines
}

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) say(s string) { l.mu.Lock(); l.l = append(l.l, s); l.mu.Unlock() }
func (l *lines) all() string  { l.mu.Lock(); defer l.mu.Unlock(); return strings.Join(l.l, "\n") }

func start(t *testing.T, m *miniredis.Miniredis, up *upstream, cohorts cohort.Downloader) *member {
	t.Helper()
	return startTTL(t, m, up, cohorts, time.Second)
}

func startTTL(t *testing.T, m *miniredis.Miniredis, up *upstream, cohorts cohort.Downloader, ttl time.Duration) *member {
	t.Helper()
	f := newFleet(t, m, ttl)
	ls := &lines{}
	f.say = ls.say
	r, err := NewRelay(RelayConfig{Fleet: f, Key: testKey, Fetch: up.fetch(f), Cohorts: cohorts,
		PollInterval: 50 * time.Millisecond, CohortPollInterval: time.Hour, Say: ls.say})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	mb := &member{f: f, r: r, stop: cancel, done: make(chan struct{}), lines: ls}
	go func() { defer close(mb.done); Run(ctx, f, []*Relay{r}) }()
	t.Cleanup(mb.halt)
	return mb
}

func (mb *member) halt() { mb.stop(); <-mb.done }

// startPair starts two relays of one fleet on m, both fetching from up,
// and waits until both serve up's flags, whose quoted ETag it returns.
func startPair(t *testing.T, m *miniredis.Miniredis, up *upstream) (a, b *member, etag string) {
	t.Helper()
	a, b = start(t, m, up, nil), start(t, m, up, nil)
	return a, b, waitServing(t, up.body, a, b)
}

// waitServing waits until every member serves body, by its quoted ETag,
// which it returns.
func waitServing(t *testing.T, body []byte, mbs ...*member) string {
	t.Helper()
	want := `"` + ETag(body) + `"`
	require.Eventually(t, func() bool {
		for _, mb := range mbs {
			if mb.etag() != want {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "all serving %s", want)
	return want
}

func (mb *member) etag() string {
	if fl := mb.r.Current().Flags; fl != nil {
		return fl.ETag
	}
	return ""
}

func TestLeaseCompareAndSet(t *testing.T) {
	m := miniredis.RunT(t)
	a, b := newFleet(t, m, 3*time.Second), newFleet(t, m, 3*time.Second)
	ctx := t.Context()
	key := a.depLease(Hash(testKey))
	assert.NotContains(t, key, testKey)

	ok, err := a.acquire(ctx, key, a.ttl)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, _ = b.acquire(ctx, key, b.ttl)
	assert.False(t, ok, "held")
	ok, _ = b.renew(ctx, key, b.ttl)
	assert.False(t, ok, "not b's to renew")
	ok, _ = a.renew(ctx, key, a.ttl)
	assert.True(t, ok)

	m.FastForward(4 * time.Second) // a's lease lapses; b steals it
	ok, _ = b.acquire(ctx, key, b.ttl)
	assert.True(t, ok)
	ok, _ = a.renew(ctx, key, a.ttl)
	assert.False(t, ok, "a lost it")
	require.NoError(t, a.release(ctx, key))
	got, _ := m.Get(key)
	assert.Equal(t, b.Instance(), got, "a's release leaves b's lease")
	require.NoError(t, b.release(ctx, key))
	assert.False(t, m.Exists(key))
}

func TestFleetSharesOneWriter(t *testing.T) {
	m := miniredis.RunT(t)
	body := flagsBody(t)
	up := newUpstream(body)
	a, b, _ := startPair(t, m, up)
	assert.Equal(t, body, a.r.Current().Flags.Body, "served byte for byte")
	assert.Equal(t, body, b.r.Current().Flags.Body)
	roles := []string{a.r.Role(), b.r.Role()}
	assert.ElementsMatch(t, []string{RoleWriter, RoleFollower}, roles)
	writer, follower := a, b
	if b.r.Role() == RoleWriter {
		writer, follower = b, a
	}
	assert.Zero(t, up.count(follower.f), "a follower never asks Amplitude")
	assert.Contains(t, writer.lines.all(), "writer (lease acquired)")
	assert.NotContains(t, writer.lines.all()+follower.lines.all(), testKey)

	// A change reaches both, by the notice.
	changed := []byte(strings.Replace(string(body), `"flagVersion": 4`, `"flagVersion": 5`, 1))
	require.NotEqual(t, body, changed)
	up.set(changed)
	waitServing(t, changed, a, b)
	assert.Positive(t, testutil.ToFloat64(follower.f.metrics.reloads))
	assert.Positive(t, testutil.ToFloat64(writer.f.metrics.notices.WithLabelValues("sent")))
	assert.Zero(t, up.count(follower.f))

	// The writer stops (releasing its lease): the follower takes over.
	writer.halt()
	require.Eventually(t, func() bool { return follower.r.Role() == RoleWriter }, 3*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return up.count(follower.f) > 0 }, 3*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1.0, testutil.ToFloat64(follower.f.metrics.leaseChanges.WithLabelValues("acquired")))
}

func TestFollowerCatchesALostNotice(t *testing.T) {
	m := miniredis.RunT(t)
	body := flagsBody(t)
	f := newFleet(t, m, time.Second)
	dep := Hash(testKey)
	// Another relay holds the lease and has stored the flags.
	m.Set(f.depLease(dep), "someone-else")
	m.Set(f.flagsKey(dep), string(body))
	m.HSet(f.metaKey(dep), "etag", ETag(body))
	up := newUpstream(nil)
	r, err := NewRelay(RelayConfig{Fleet: f, Key: testKey, Fetch: up.fetch(f), PollInterval: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, f, []*Relay{r}) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return r.Current().Flags != nil }, 3*time.Second, 10*time.Millisecond)
	assert.Equal(t, RoleFollower, r.Role())

	// A change stored without a notice is found by the periodic check.
	changed := []byte("[]")
	m.Set(f.flagsKey(dep), string(changed))
	m.HSet(f.metaKey(dep), "etag", ETag(changed))
	require.Eventually(t, func() bool { return string(r.Current().Flags.Body) == "[]" }, 3*time.Second, 10*time.Millisecond)
	assert.Zero(t, up.count(f))
	assert.Equal(t, "redis", r.Report().Source)
}

// runBelowEphemeral starts miniredis on a loopback port below Linux's
// ephemeral range (32768 and up), for a test that stops it and starts it
// again on the same port: meanwhile an outgoing connection of any process
// on the machine may take an ephemeral port as its own, and Restart then
// fails with "address already in use". (internal/fleettest picks its
// ports between 20000 and 32000: this range stays clear of it too.)
func runBelowEphemeral(t *testing.T) *miniredis.Miniredis {
	t.Helper()
	m := miniredis.NewMiniRedis()
	for range 100 {
		if m.StartAddr("127.0.0.1:"+strconv.Itoa(10000+rand.IntN(10000))) == nil {
			t.Cleanup(m.Close)
			return m
		}
	}
	t.Fatal("no free loopback port between 10000 and 20000")
	return nil
}

func TestRedisDownAndBack(t *testing.T) {
	m := runBelowEphemeral(t)
	up := newUpstream(flagsBody(t))
	a, b, want := startPair(t, m, up)

	m.Close()
	require.Eventually(t, func() bool { return a.r.Role() == RoleAlone && b.r.Role() == RoleAlone }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, want, a.etag(), "serving what it has")
	ok, _ := a.f.Up()
	assert.False(t, ok)
	before := up.count(a.f) + up.count(b.f)
	require.Eventually(t, func() bool { return up.count(a.f) > 0 && up.count(b.f) > 0 && up.count(a.f)+up.count(b.f) > before+2 },
		5*time.Second, 10*time.Millisecond, "both sync from Amplitude alone")
	assert.Contains(t, a.lines.all(), "redis unreachable")
	assert.Positive(t, testutil.ToFloat64(a.f.metrics.redisErrors))

	require.NoError(t, m.Restart())
	require.Eventually(t, func() bool {
		roles := []string{a.r.Role(), b.r.Role()}
		return (roles[0] == RoleWriter) != (roles[1] == RoleWriter) && roles[0] != RoleAlone && roles[1] != RoleAlone
	}, 5*time.Second, 10*time.Millisecond, "one writer again")
	assert.Contains(t, a.lines.all(), "redis reachable again")

	// Notices flow again (go-redis resubscribed).
	heard := testutil.ToFloat64(a.f.metrics.notices.WithLabelValues("received"))
	up.set([]byte("[]"))
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(a.f.metrics.notices.WithLabelValues("received")) > heard
	}, 5*time.Second, 10*time.Millisecond)
	waitServing(t, []byte("[]"), a, b)
}

// downloads is a cohort.Downloader counting downloads per relay.
type downloads struct {
	n     atomic.Int32
	cs    map[string]*cohort.Cohort
	delay time.Duration // each download takes this long
}

func (d *downloads) Download(ctx context.Context, id string, stored *cohort.Cohort) (*cohort.Cohort, error) {
	d.n.Add(1)
	select {
	case <-time.After(d.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c := d.cs[id]
	if c == nil {
		return nil, errors.New("no such cohort")
	}
	if stored != nil && stored.LastModified == c.LastModified {
		return stored, nil
	}
	return c, nil
}

func TestCohortsDownloadedOncePerFleet(t *testing.T) {
	m := miniredis.RunT(t)
	c1, err := cohort.New("k3v9qa", "", 1000, []string{"user-1", "user-2"})
	require.NoError(t, err)
	dl := &downloads{cs: map[string]*cohort.Cohort{"k3v9qa": c1}} // x7m2pd fails
	up := newUpstream(flagsBody(t))
	a := start(t, m, up, dl)
	b := start(t, m, up, dl)
	loaded := func(mb *member) bool {
		fl := mb.r.Current().Flags
		return fl != nil && fl.Cohorts.Get("k3v9qa") != nil
	}
	require.Eventually(t, func() bool { return loaded(a) && loaded(b) }, 5*time.Second, 10*time.Millisecond)
	assert.EqualValues(t, 2, dl.n.Load(), "each cohort checked once for the fleet")
	f := a.f
	assert.True(t, m.Exists(f.blobKey("k3v9qa", 1000)))
	assert.True(t, m.Exists(f.descKey("k3v9qa")))
	// Kept a week past its last check: a cohort no flag targets any more
	// (nobody checks it) leaves Redis.
	for _, k := range []string{f.blobKey("k3v9qa", 1000), f.descKey("k3v9qa"), f.descKey("x7m2pd")} {
		assert.Equal(t, cohortKeepMin, m.TTL(k), k)
	}
	require.Eventually(t, func() bool {
		for _, c := range b.r.Report().Cohorts {
			if c.ID == "x7m2pd" && c.LastError != "" {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "a cohort that failed shows, on every relay")

	// A new version replaces the old, which expires.
	c2, _ := cohort.New("k3v9qa", "", 2000, []string{"user-3"})
	require.NoError(t, f.putCohort(t.Context(), c2, time.Now(), a.r.cohortKeep()))
	require.Eventually(t, func() bool {
		return a.r.Current().Flags.Cohorts.Get("k3v9qa").LastModified == 2000 &&
			b.r.Current().Flags.Cohorts.Get("k3v9qa").LastModified == 2000
	}, 5*time.Second, 10*time.Millisecond)
	assert.Positive(t, m.TTL(f.blobKey("k3v9qa", 1000)))
}

func TestDedup(t *testing.T) {
	m := miniredis.RunT(t)
	fa, fb := newFleet(t, m, time.Second), newFleet(t, m, time.Second)
	da, err := NewDedup(fa, 10)
	require.NoError(t, err)
	db, err := NewDedup(fb, 10)
	require.NoError(t, err)
	var sent atomic.Int32
	send := func() { sent.Add(1) }
	da.Admit("exposure u1 flag=on", send)
	da.Admit("exposure u1 flag=on", send) // locally known: no Redis call
	da.Close()
	db.Admit("exposure u1 flag=on", send) // another relay: Redis knows it
	db.Admit("exposure u2 flag=on", send)
	db.Close()
	assert.EqualValues(t, 2, sent.Load())
	assert.Equal(t, 1.0, testutil.ToFloat64(fb.metrics.deduplicated))
	assert.Equal(t, "fleet", db.Mode())
	assert.Positive(t, m.TTL(fa.seenKey(hashBytes([]byte("exposure u1 flag=on")))))
	for _, k := range m.Keys() {
		assert.NotContains(t, k, "u1")
	}

	down := newFleet(t, m, time.Second)
	m.Close() // Redis down: local de-duplication only, nothing lost
	dc, err := NewDedup(down, 10)
	require.NoError(t, err)
	dc.Admit("exposure u1 flag=on", send)
	dc.Admit("exposure u1 flag=on", send)
	dc.Close()
	assert.EqualValues(t, 3, sent.Load())
	assert.Equal(t, "local", dc.Mode())
}

func TestStatusAndMetricsThroughServer(t *testing.T) {
	m := miniredis.RunT(t)
	up := newUpstream(flagsBody(t))
	a := start(t, m, up, nil)
	h := server.New(nil, server.Options{Deployments: []server.Deployment{{Key: testKey, Source: a.r}},
		Collectors: a.f.Metrics().Collectors(),
		Fleet:      func() *server.FleetStatus { return &server.FleetStatus{Redis: "up", Instance: a.f.Instance()} }})
	require.Eventually(t, func() bool { return a.r.Current().Flags != nil }, 5*time.Second, 10*time.Millisecond)
	st := h.Status()
	require.NotNil(t, st.Fleet)
	assert.Equal(t, a.f.Instance(), st.Fleet.Instance)
	assert.Equal(t, RoleWriter, st.Deployments[0].Role)
	assert.Equal(t, `"`+ETag(flagsBody(t))+`"`, st.Deployments[0].ETag)
}

// TestReleasedLeaseIsTakenAtOnce: a writer that stops says so, and a
// follower takes the lease without waiting for its next step (2 s here).
func TestReleasedLeaseIsTakenAtOnce(t *testing.T) {
	m := miniredis.RunT(t)
	up := newUpstream(flagsBody(t))
	a := startTTL(t, m, up, nil, 6*time.Second)
	require.Eventually(t, func() bool { return a.r.Role() == RoleWriter }, 3*time.Second, 5*time.Millisecond)
	b := startTTL(t, m, up, nil, 6*time.Second)
	require.Eventually(t, func() bool { return b.r.Role() == RoleFollower && b.r.Current().Flags != nil }, 3*time.Second, 5*time.Millisecond)
	start := time.Now()
	a.halt()
	require.Eventually(t, func() bool { return b.r.Role() == RoleWriter }, 3*time.Second, 5*time.Millisecond)
	assert.Less(t, time.Since(start), time.Second, "taken on the notice, not at the next step")
}

// TestFollowerStepsWhenTheLeaseLapses: a follower that finds the lease
// held tries again when it would lapse, not a whole step later.
func TestFollowerStepsWhenTheLeaseLapses(t *testing.T) {
	m := miniredis.RunT(t)
	f := newFleet(t, m, 6*time.Second)
	r, err := NewRelay(RelayConfig{Fleet: f, Key: testKey, Fetch: newUpstream(nil).fetch(f), PollInterval: time.Hour})
	require.NoError(t, err)
	m.Set(f.depLease(r.dep), "another")
	m.SetTTL(f.depLease(r.dep), 300*time.Millisecond)
	next := r.leaseStep(t.Context())
	assert.Equal(t, RoleFollower, r.Role())
	assert.Equal(t, 305*time.Millisecond, next)
	m.Del(f.depLease(r.dep))
	r.leaseStep(t.Context())
	assert.Equal(t, RoleWriter, r.Role())
}

// A Redis that loses the writer's copy between two lease steps (a
// failover to a replica that lagged, an eviction, a FLUSHALL) gets it
// again from the writer at its next poll: the writer checks what Redis
// holds, not what it once wrote, so a relay that joins later still finds
// flags.
func TestWriterStoresAgainWhatRedisLost(t *testing.T) {
	m := miniredis.RunT(t)
	body := flagsBody(t)
	up := newUpstream(body)
	a := start(t, m, up, nil)
	dep := Hash(testKey)
	stored := func() bool { v, err := m.Get(a.f.flagsKey(dep)); return err == nil && v == string(body) }
	require.Eventually(t, stored, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, RoleWriter, a.r.Role())

	m.FlushAll()
	require.Eventually(t, stored, 5*time.Second, 10*time.Millisecond, "the writer stores its flags again")
	held := func() bool { v, err := m.Get(a.f.depLease(dep)); return err == nil && v == a.f.Instance() }
	require.Eventually(t, held, 5*time.Second, 10*time.Millisecond, "and takes its lease again")
	b := start(t, m, up, nil)
	require.Eventually(t, func() bool { return b.etag() == a.etag() }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, RoleFollower, b.r.Role())
}

// A writer whose fetch outlives its lease (Amplitude slow, retries) does
// not store what it fetched: another relay may be the writer by then, and
// an older body written over its newer one would stay until the flags
// change again.
func TestWriterThatLostItsLeaseDoesNotWrite(t *testing.T) {
	m := miniredis.RunT(t)
	body := flagsBody(t)
	f := newFleet(t, m, time.Second)
	dep := Hash(testKey)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	fetch := func(ctx context.Context) ([]byte, error) {
		if calls.Add(1) == 2 { // the second poll hangs until the lease is gone
			close(entered)
			<-release
			return []byte("[]"), nil
		}
		return body, nil
	}
	r, err := NewRelay(RelayConfig{Fleet: f, Key: testKey, Fetch: fetch, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, f, []*Relay{r}) }()
	defer func() { cancel(); <-done }()

	<-entered
	require.Equal(t, RoleWriter, r.Role())
	m.Set(f.depLease(dep), "another-relay")
	require.Eventually(t, func() bool { return r.Role() == RoleFollower }, 3*time.Second, 10*time.Millisecond)
	close(release)
	// As a follower it loads the fleet's body again, which is still the
	// one stored before: the body it fetched late was not written.
	require.Eventually(t, func() bool { return r.Report().Source == "redis" }, 3*time.Second, 10*time.Millisecond)
	meta, err := f.meta(context.Background(), dep)
	require.NoError(t, err)
	assert.Equal(t, ETag(body), meta.ETag, "the stale writer stored nothing")
	assert.Equal(t, body, r.Current().Flags.Body)
}

// An event tracked after Close (a request the drain's deadline left
// running) is sent unchecked, not a panic on the closed queue.
func TestDedupAdmitAfterClose(t *testing.T) {
	d, err := NewDedup(newFleet(t, miniredis.RunT(t), time.Second), 10)
	require.NoError(t, err)
	d.Close()
	sent := 0
	require.NotPanics(t, func() { d.Admit("exposure u1 flag=on", func() { sent++ }) })
	assert.Equal(t, 1, sent)
	d.Close() // twice: harmless
}

// The memory of identities holds hashes: an identity grows with the flags
// a request evaluated, and may hold user ids.
func TestDedupRemembersHashes(t *testing.T) {
	d, err := NewDedup(newFleet(t, miniredis.RunT(t), time.Second), 10)
	require.NoError(t, err)
	defer d.Close()
	d.Admit("exposure\x00u1"+strings.Repeat("\x00flag=on", 1000), func() {})
	keys := d.seen.Keys()
	require.Len(t, keys, 1)
	assert.Len(t, keys[0], 32)
	assert.NotContains(t, keys[0], "u1")
}

// A call cut short because the relay stops is no sign of Redis's: it
// neither marks Redis down nor warns, so a graceful stop says nothing
// false on stderr.
func TestCanceledCallIsNotRedisDown(t *testing.T) {
	f := newFleet(t, miniredis.RunT(t), time.Second)
	ls := &lines{}
	f.say = ls.say
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, f.Ping(ctx))
	up, _ := f.Up()
	assert.True(t, up)
	assert.Empty(t, ls.all())
	assert.Zero(t, testutil.ToFloat64(f.metrics.redisErrors))
}

// TestWriterPollsWithAFrozenClock: RelayConfig.Now stamps what is
// reported; the poll schedule runs on real time, so a clock that stands
// still (a test's, a replay's) neither stops the polls nor spins the loop.
func TestWriterPollsWithAFrozenClock(t *testing.T) {
	m := miniredis.RunT(t)
	f := newFleet(t, m, time.Second)
	up := newUpstream(flagsBody(t))
	frozen := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	r, err := NewRelay(RelayConfig{Fleet: f, Key: testKey, Fetch: up.fetch(f), PollInterval: 20 * time.Millisecond,
		Now: func() time.Time { return frozen }})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, f, []*Relay{r}) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return up.count(f) >= 3 }, 3*time.Second, 10*time.Millisecond, "polls go on")
	assert.Equal(t, RoleWriter, r.Role())
	assert.Equal(t, frozen, *r.Report().FetchedAt, "stamped by the configured clock")
}

// TestCohortBodyLostFromRedisIsStoredAgain: when Redis loses a cohort's
// body (eviction, a failover to a lagging replica) but keeps its
// description, the next check that finds the cohort unchanged stores it
// again; otherwise a relay that joins later never loads it.
func TestCohortBodyLostFromRedisIsStoredAgain(t *testing.T) {
	m := miniredis.RunT(t)
	c1, err := cohort.New("k3v9qa", "", 1000, []string{"user-1", "user-2"})
	require.NoError(t, err)
	dl := &downloads{cs: map[string]*cohort.Cohort{"k3v9qa": c1}}
	f := newFleet(t, m, time.Second)
	up := newUpstream(flagsBody(t))
	r, err := NewRelay(RelayConfig{Fleet: f, Key: testKey, Fetch: up.fetch(f), Cohorts: dl,
		PollInterval: 20 * time.Millisecond, CohortPollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, f, []*Relay{r}) }()
	defer func() { cancel(); <-done }()
	blob := f.blobKey("k3v9qa", 1000)
	require.Eventually(t, func() bool { return m.Exists(blob) }, 3*time.Second, 10*time.Millisecond)

	m.Del(blob)
	require.True(t, m.Exists(f.descKey("k3v9qa")), "the description stays")
	require.Eventually(t, func() bool { return m.Exists(blob) }, 5*time.Second, 10*time.Millisecond, "stored again")
	got, err := f.cohortBlob(context.Background(), "k3v9qa", 1000)
	require.NoError(t, err)
	assert.Equal(t, 2, got.Len())
}

// TestUnreadableCohortInRedisIsReported: a cohort version in Redis that
// does not decode is said in the relay's report, not skipped in silence;
// the relay keeps serving what it holds.
func TestUnreadableCohortInRedisIsReported(t *testing.T) {
	m := miniredis.RunT(t)
	c1, err := cohort.New("k3v9qa", "", 1000, []string{"user-1", "user-2"})
	require.NoError(t, err)
	dl := &downloads{cs: map[string]*cohort.Cohort{"k3v9qa": c1}}
	up := newUpstream(flagsBody(t))
	a := start(t, m, up, dl)
	require.Eventually(t, func() bool {
		fl := a.r.Current().Flags
		return fl != nil && fl.Cohorts.Get("k3v9qa") != nil
	}, 5*time.Second, 10*time.Millisecond)

	f := a.f
	m.Set(f.blobKey("k3v9qa", 2000), "{not a cohort")
	m.HSet(f.descKey("k3v9qa"), "version", "2000")
	require.NoError(t, f.publish(t.Context(), "cohort k3v9qa 2000"))
	lastErr := func() string {
		for _, c := range a.r.Report().Cohorts {
			if c.ID == "k3v9qa" {
				return c.LastError
			}
		}
		return ""
	}
	require.Eventually(t, func() bool { return strings.Contains(lastErr(), "version 2000 in Redis is unreadable") },
		5*time.Second, 10*time.Millisecond, lastErr())
	assert.EqualValues(t, 1000, a.r.Current().Flags.Cohorts.Get("k3v9qa").LastModified, "the version held stays served")
}

// TestMissingCohortBodyKeepsTheVersionHeld: a description naming a
// version whose body Redis no longer has (evicted, expired, a failover)
// leaves the version held served; it is no empty cohort to serve.
func TestMissingCohortBodyKeepsTheVersionHeld(t *testing.T) {
	m := miniredis.RunT(t)
	c1, err := cohort.New("k3v9qa", "", 1000, []string{"user-1", "user-2"})
	require.NoError(t, err)
	a := start(t, m, newUpstream(flagsBody(t)), &downloads{cs: map[string]*cohort.Cohort{"k3v9qa": c1}})
	require.Eventually(t, func() bool {
		fl := a.r.Current().Flags
		return fl != nil && fl.Cohorts.Get("k3v9qa") != nil
	}, 5*time.Second, 10*time.Millisecond)
	a.halt() // the sync below is the only one

	m.HSet(a.f.descKey("k3v9qa"), "version", "2000") // checked just now: no download is due
	require.False(t, m.Exists(a.f.blobKey("k3v9qa", 2000)))
	a.r.syncCohorts(t.Context(), RoleFollower)
	held := a.r.Current().Flags.Cohorts.Get("k3v9qa")
	require.NotNil(t, held, "the cohort is still served")
	assert.EqualValues(t, 1000, held.LastModified)
	assert.Equal(t, 2, held.Len())
	assert.Contains(t, a.r.Report().Cohorts[0].LastError, "version 2000 in Redis is missing", "said in /status")
}

// TestFlagsServedWithTheirCohorts: new flags are served with the cohorts
// they target already loaded, by the writer and by a follower, as the
// local client does: never a moment where a member evaluates as a
// non-member because the cohort was still downloading.
func TestFlagsServedWithTheirCohorts(t *testing.T) {
	m := miniredis.RunT(t)
	c1, err := cohort.New("k3v9qa", "", 1000, []string{"user-1", "user-2"})
	require.NoError(t, err)
	dl := &downloads{cs: map[string]*cohort.Cohort{"k3v9qa": c1}, delay: 300 * time.Millisecond}
	up := newUpstream(flagsBody(t))
	a := start(t, m, up, dl)
	b := start(t, m, up, dl)
	for _, mb := range []*member{a, b} {
		require.Eventually(t, func() bool { return mb.r.Current().Flags != nil }, 5*time.Second, time.Millisecond)
		assert.NotNil(t, mb.r.Current().Flags.Cohorts.Get("k3v9qa"), "the first flags served came with their cohort")
	}
}

// TestPutFlagsIsFencedByTheLease: the flags are stored only while the
// lease holds this relay's token, checked in the same atomic step as the
// writes: a command from a writer whose lease lapsed stores nothing.
func TestPutFlagsIsFencedByTheLease(t *testing.T) {
	m := miniredis.RunT(t)
	f := newFleet(t, m, time.Second)
	dep := Hash(testKey)
	body := flagsBody(t)
	meta := Meta{ETag: ETag(body), FetchedAt: time.UnixMilli(1000), Flags: 18}

	require.ErrorIs(t, f.putFlags(t.Context(), dep, body, meta), errNotWriter, "no lease")
	m.Set(f.depLease(dep), "another-relay")
	require.ErrorIs(t, f.putFlags(t.Context(), dep, body, meta), errNotWriter, "another's lease")
	assert.False(t, m.Exists(f.flagsKey(dep)))
	assert.False(t, m.Exists(f.metaKey(dep)))

	m.Set(f.depLease(dep), f.Instance())
	require.NoError(t, f.putFlags(t.Context(), dep, body, meta))
	stored, err := f.flags(t.Context(), dep)
	require.NoError(t, err)
	assert.Equal(t, body, stored)
	got, err := f.meta(t.Context(), dep)
	require.NoError(t, err)
	assert.Equal(t, meta.ETag, got.ETag)
	assert.Equal(t, 18, got.Flags)
	assert.Equal(t, int64(1000), got.FetchedAt.UnixMilli())
}

// TestStartingWhileCohortsLoad: while new flags wait for their cohorts,
// the report says the flags served, not the ones waiting: "starting"
// before any are served (as /readyz says), and a halt (SIGTERM) cuts the
// wait at once.
func TestStartingWhileCohortsLoad(t *testing.T) {
	m := miniredis.RunT(t)
	c1, err := cohort.New("k3v9qa", "", 1000, []string{"user-1"})
	require.NoError(t, err)
	dl := &downloads{cs: map[string]*cohort.Cohort{"k3v9qa": c1}, delay: time.Minute}
	a := start(t, m, newUpstream(flagsBody(t)), dl)
	require.Eventually(t, func() bool { return dl.n.Load() > 0 }, 5*time.Second, time.Millisecond)
	assert.Nil(t, a.r.Current().Flags)
	assert.Equal(t, "starting", a.r.Report().State)
	halted := make(chan struct{})
	go func() { a.halt(); close(halted) }()
	select {
	case <-halted:
	case <-time.After(5 * time.Second):
		t.Fatal("the halt waited for the cohort download")
	}
}

// TestCohortUpdateKeepsTheProblem: a new version of a cohort serves the
// same flags with it; it does not make them current. A follower whose
// stored update does not compile still says so after a cohort update.
func TestCohortUpdateKeepsTheProblem(t *testing.T) {
	m := miniredis.RunT(t)
	w := newFleet(t, m, time.Second) // the writer, elsewhere
	dep := Hash(testKey)
	m.Set(w.depLease(dep), w.Instance())
	good := flagsBody(t)
	require.NoError(t, w.putFlags(t.Context(), dep, good, Meta{ETag: ETag(good), FetchedAt: time.Now()}))
	c1, err := cohort.New("k3v9qa", "", 1000, []string{"user-1"})
	require.NoError(t, err)
	require.NoError(t, w.putCohort(t.Context(), c1, time.Now(), time.Hour))
	b := start(t, m, newUpstream(nil), &downloads{})
	require.Eventually(t, func() bool {
		fl := b.r.Current().Flags
		return fl != nil && fl.Cohorts.Get("k3v9qa") != nil
	}, 5*time.Second, time.Millisecond)

	bad := []byte(`[{"key":1}]`)
	require.NoError(t, w.putFlags(t.Context(), dep, bad, Meta{ETag: ETag(bad), FetchedAt: time.Now()}))
	require.Eventually(t, func() bool { return b.r.Current().Problem != "" }, 5*time.Second, time.Millisecond)
	c2, err := cohort.New("k3v9qa", "", 2000, []string{"user-1", "user-2"})
	require.NoError(t, err)
	require.NoError(t, w.putCohort(t.Context(), c2, time.Now(), time.Hour))
	require.Eventually(t, func() bool { return b.r.Current().Flags.Cohorts.Get("k3v9qa").LastModified == 2000 },
		5*time.Second, time.Millisecond)
	assert.Contains(t, b.r.Current().Problem, "serving the updated flags")
}
