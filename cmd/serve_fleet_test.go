package cmd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
	"github.com/flagkit/experiment/pkg/server"
)

// countingProxy forwards to target and counts the flag requests: one per
// relay, so that a test knows which relay asked Amplitude.
func countingProxy(t *testing.T, target string) (*httptest.Server, *atomic.Int32) {
	u, err := url.Parse(target)
	require.NoError(t, err)
	var n atomic.Int32
	p := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/sdk/v2/flags") {
			n.Add(1)
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// fleetRelay is one `experiment serve --redis` running in the test.
type fleetRelay struct {
	base    string
	errOut  *syncBuffer
	flagReq *atomic.Int32
	stop    context.CancelFunc
	code    chan int
}

var relayAddr = regexp.MustCompile(`relaying 1 deployments on (http://[0-9.:]+)`)

func startFleetRelay(t *testing.T, redisURL, flagsURL, cohortsURL string, extra ...string) *fleetRelay {
	t.Helper()
	proxy, n := countingProxy(t, flagsURL)
	fr := startRelayServe(t, map[string]string{"EXPERIMENT_REDIS_URL": redisURL}, append([]string{
		"--server-url", proxy.URL, "--lease-ttl", "1s", "--poll-interval", "100ms", "--redis-prefix", "fleettest",
		"--api-key", "api-key-for-cohorts", "--secret-key", "secret-key-for-cohorts", "--cohort-server-url", cohortsURL,
		"--cohort-poll-interval", "1h"}, extra...)...)
	fr.flagReq = n
	return fr
}

// startRelayServe runs `serve --deployment-key cmdKey` in relay mode with
// args, on a free port, until the test ends.
func startRelayServe(t *testing.T, env map[string]string, args ...string) *fleetRelay {
	t.Helper()
	env["EXPERIMENT_CACHE_DIR"] = t.TempDir()
	var out, errOut syncBuffer
	ios := &cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	fr := &fleetRelay{errOut: &errOut, stop: cancel, code: make(chan int, 1)}
	go func() {
		fr.code <- Main(ctx, append([]string{"serve", "--deployment-key", cmdKey, "--listen", "127.0.0.1:0"}, args...), ios)
	}()
	t.Cleanup(func() { fr.halt(t) })
	require.Eventually(t, func() bool { return relayAddr.MatchString(errOut.String()) }, 10*time.Second, 10*time.Millisecond, errOut.String())
	fr.base = relayAddr.FindStringSubmatch(errOut.String())[1]
	return fr
}

func (fr *fleetRelay) halt(t *testing.T) {
	fr.stop()
	select {
	case code := <-fr.code:
		assert.Equal(t, 0, code, fr.errOut.String())
		fr.code <- code
	case <-time.After(10 * time.Second):
		t.Error("serve did not stop")
	}
}

func (fr *fleetRelay) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fr.base+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Api-Key "+cmdKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func (fr *fleetRelay) post(t *testing.T, path, body string, headers ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fr.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Api-Key "+cmdKey)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func (fr *fleetRelay) status(t *testing.T) server.Status {
	t.Helper()
	_, b := fr.get(t, "/status")
	var st server.Status
	require.NoError(t, json.Unmarshal(b, &st))
	return st
}

// waitReady waits until every relay answers /readyz with 200.
func waitReady(t *testing.T, relays ...*fleetRelay) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, fr := range relays {
			if code, _ := fr.get(t, "/readyz"); code != http.StatusOK {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "relays ready")
}

// fleetUpstreams starts the fake Amplitude of the fleet tests: a flag
// server with testdata's flags and a cohort server with its cohorts,
// closed after the test's relays (cleanups run last-in first-out).
func fleetUpstreams(t *testing.T) (*experimenttest.FlagServer, *cohorttest.Server) {
	t.Helper()
	srv := experimenttest.NewFlagServer(cmdKey, testdataFlags(t))
	t.Cleanup(srv.Close)
	cohorts := cohorttest.NewServer("api-key-for-cohorts", "secret-key-for-cohorts")
	t.Cleanup(cohorts.Close)
	require.NoError(t, cohorts.AddDir(filepath.Join("..", "testdata", "cohorts")))
	return srv, cohorts
}

func (fr *fleetRelay) role(t *testing.T) string {
	if st := fr.status(t); len(st.Deployments) == 1 {
		return st.Deployments[0].Role
	}
	return ""
}

// TestServeFleet runs two relays of one fleet in the process: one asks
// Amplitude, both serve its exact bytes, a change reaches both, and when
// the writer stops the other takes over at once.
func TestServeFleet(t *testing.T) {
	m := miniredis.RunT(t)
	srv, cohorts := fleetUpstreams(t)
	redisURL := "redis://:redis-pass-1@" + m.Addr()
	m.RequireAuth("redis-pass-1")

	a := startFleetRelay(t, redisURL, srv.URL, cohorts.URL)
	b := startFleetRelay(t, redisURL, srv.URL, cohorts.URL)
	waitReady(t, a, b)

	for _, fr := range []*fleetRelay{a, b} {
		code, body := fr.get(t, "/sdk/v2/flags")
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, testdataFlags(t), body, "the upstream bytes, exactly")
	}
	writer, follower := a, b
	if b.role(t) == "writer" {
		writer, follower = b, a
	}
	assert.Equal(t, "writer", writer.role(t))
	assert.Equal(t, "follower", follower.role(t))
	assert.Zero(t, follower.flagReq.Load(), "a follower never asks Amplitude")
	assert.Positive(t, writer.flagReq.Load())
	st := follower.status(t)
	require.NotNil(t, st.Fleet)
	assert.Equal(t, "up", st.Fleet.Redis)
	assert.Equal(t, "fleettest", st.Fleet.Prefix)
	assert.Equal(t, writer.status(t).Deployments[0].ETag, st.Deployments[0].ETag)
	// Cohorts are synced after the flags, so after /readyz: count the
	// downloads once both relays serve them.
	require.Eventually(t, func() bool {
		return len(writer.status(t).Deployments[0].Cohorts) == 2 && len(follower.status(t).Deployments[0].Cohorts) == 2
	}, 10*time.Second, 20*time.Millisecond, "both relays serve the flags with their cohorts")
	assert.Equal(t, 1, cohorts.Count("k3v9qa"), "a cohort downloaded once for the fleet")

	// A change upstream reaches both.
	changed := strings.Replace(string(testdataFlags(t)), `"flagVersion": 4`, `"flagVersion": 5`, 1)
	srv.SetFlags([]byte(changed))
	require.Eventually(t, func() bool {
		_, x := a.get(t, "/sdk/v2/flags")
		_, y := b.get(t, "/sdk/v2/flags")
		return string(x) == changed && string(y) == changed
	}, 10*time.Second, 20*time.Millisecond)
	assert.Zero(t, follower.flagReq.Load())
	_, metrics := follower.get(t, "/metrics")
	assert.Contains(t, string(metrics), `experiment_fleet_notices_total{direction="received"}`)
	assert.Regexp(t, `experiment_fleet_reloads_total [1-9]`, string(metrics))

	// The writer stops: it releases its lease and the follower takes over.
	writer.halt(t)
	// Within a second or so (the release's notice, else the next lease
	// step); 10 s is room for a loaded -race machine, not the bound.
	require.Eventually(t, func() bool { return follower.role(t) == "writer" }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return follower.flagReq.Load() > 0 }, 10*time.Second, 20*time.Millisecond)

	logs := a.errOut.String() + b.errOut.String()
	assert.Contains(t, logs, "writer (lease acquired)")
	assert.Contains(t, logs, ": follower")
	for _, secret := range []string{cmdKey, "redis-pass-1", "secret-key-for-cohorts"} {
		assert.NotContains(t, logs, secret)
		assert.NotContains(t, string(metrics), secret)
	}
	for _, k := range m.Keys() {
		assert.NotContains(t, k, cmdKey)
	}
}

func TestServeFleetUsage(t *testing.T) {
	env := map[string]string{"EXPERIMENT_CACHE_DIR": t.TempDir()}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--flags", "f.json", "--redis", "redis://h"}, "--redis is for relay mode"},
		{[]string{"serve", "--deployment-key", cmdKey, "--redis-prefix", "p"}, "pass --redis too"},
		{[]string{"serve", "--deployment-key", cmdKey, "--redis", "redis://:hunter22@a,b"}, "--redis-cluster"},
		{[]string{"serve", "--deployment-key", cmdKey, "--redis", "redis://h", "--lease-ttl", "500ms"}, "at least 1s"},
		{[]string{"serve", "--deployment-key", cmdKey, "--redis", "redis://h", "--redis-prefix", "a b"}, "--redis-prefix"},
		{[]string{"serve", "--deployment-key", cmdKey, "--redis", "ftp://:hunter22@h"}, "scheme"},
		// No scheme, or a "?" left unescaped in the password: neither is
		// a URL the parsers agree on, and neither may echo the password.
		{[]string{"serve", "--deployment-key", cmdKey, "--redis", "u:hunter22@h"}, "want a redis://"},
		{[]string{"serve", "--deployment-key", cmdKey, "--redis", "redis://u:hun?ter22@h"}, "%3F"},
		{[]string{"serve", "--deployment-key", cmdKey, "--redis", "redis://:hun?ter22@h"}, "%3F"},
		{[]string{"config", "set", "redis", "u:hunter22@h"}, "want a redis://"},
		{[]string{"config", "set", "redis", "redis://u:hunter?22@h"}, "%3F"},
	} {
		code, _, errOut := run(t, env, c.args...)
		assert.Equal(t, ExitUsage, code, errOut)
		assert.Contains(t, errOut, c.want)
		for _, part := range []string{"hunter22", "hun", "ter22"} {
			assert.NotContains(t, errOut, part)
		}
		assert.True(t, strings.HasPrefix(errOut, "experiment: "), errOut)
	}
	env["EXPERIMENT_REDIS_URL"] = "redis://:hunter22@cache.example:6380"
	code, out, errOut := run(t, env, "config", "get", "redis")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "redis://:xxxxx@cache.example:6380")
	assert.NotContains(t, out, "hunter22")
}

// TestServeFleetRedisDownAtStart: a Redis that does not answer is no
// reason not to serve: the relay syncs alone and says so. It also says
// that --stream, given, is not used in fleet mode (docs/serve.md).
func TestServeFleetRedisDownAtStart(t *testing.T) {
	m := miniredis.RunT(t)
	addr := m.Addr()
	m.Close()
	srv, cohorts := fleetUpstreams(t)
	fr := startFleetRelay(t, "redis://"+addr, srv.URL, cohorts.URL, "--stream")
	waitReady(t, fr)
	assert.Contains(t, fr.errOut.String(), "fleet: --stream is not used", "an option ignored is said")
	st := fr.status(t)
	assert.Equal(t, "alone", st.Deployments[0].Role)
	assert.Equal(t, "down", st.Fleet.Redis)
	assert.NotEmpty(t, st.Fleet.LastError)
	assert.Contains(t, fr.errOut.String(), "redis unreachable")
	assert.Positive(t, fr.flagReq.Load())
}

// TestServeFleetForwardsEventsOnce: the same evaluation tracked on two
// relays is sent by one.
func TestServeFleetForwardsEventsOnce(t *testing.T) {
	m := miniredis.RunT(t)
	srv, cohorts := fleetUpstreams(t)
	events := analyticstest.NewServer()
	t.Cleanup(events.Close) // after the relays stop (cleanups run last first): they flush to it
	extra := []string{"--forward-events", "--events-server-url", events.EventsURL()}
	a := startFleetRelay(t, "redis://"+m.Addr(), srv.URL, cohorts.URL, extra...)
	b := startFleetRelay(t, "redis://"+m.Addr(), srv.URL, cohorts.URL, extra...)
	waitReady(t, a, b)
	// Ready is before the follower has loaded the cohorts from Redis; an
	// evaluation without them is another assignment, no duplicate.
	require.Eventually(t, func() bool {
		return len(a.status(t).Deployments[0].Cohorts) == 2 && len(b.status(t).Deployments[0].Cohorts) == 2
	}, 10*time.Second, 20*time.Millisecond, "both relays serve the flags with their cohorts")
	user := `{"user_id":"user-1","user_properties":{"email":"alice@acme.com"}}`
	track := "X-Amp-Exp-Exposure-Track: track"

	require.Equal(t, http.StatusOK, a.post(t, "/sdk/v2/vardata", user, track))
	a.halt(t) // flushes: the evaluation is sent, and recorded in Redis
	sent := len(events.Events())
	require.Positive(t, sent)
	assert.Equal(t, "fleet", b.status(t).Fleet.Dedup)

	require.Equal(t, http.StatusOK, b.post(t, "/sdk/v2/vardata", user, track))
	require.Eventually(t, func() bool {
		_, metrics := b.get(t, "/metrics")
		return regexp.MustCompile(`experiment_fleet_events_deduplicated_total [1-9]`).Match(metrics)
	}, 5*time.Second, 20*time.Millisecond)
	b.halt(t)
	assert.Len(t, events.Events(), sent, "the other relay sent nothing again")
}

// TestServeRejectedKeyExits: a deployment key Amplitude rejects ends serve
// with exit 4 naming it by fingerprint, in relay mode and in fleet mode
// (where the writer is the one to hear it), instead of serving 503 for
// ever.
func TestServeRejectedKeyExits(t *testing.T) {
	srv := experimenttest.NewFlagServer("another-key-entirely", testdataFlags(t))
	t.Cleanup(srv.Close)
	m := miniredis.RunT(t)
	for name, extra := range map[string][]string{
		"relay": nil,
		"fleet": {"--redis", "redis://" + m.Addr(), "--lease-ttl", "1s"},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"EXPERIMENT_CACHE_DIR": t.TempDir()}
			args := append([]string{"serve", "--deployment-key", cmdKey, "--server-url", srv.URL,
				"--listen", "127.0.0.1:0", "--poll-interval", "100ms"}, extra...)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var out, errOut syncBuffer
			ios := &cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(k string) string { return env[k] }}
			code := Main(ctx, args, ios)
			require.NoError(t, ctx.Err(), "serve did not end on its own: %s", errOut.String())
			assert.Equal(t, ExitAuth, code, errOut.String())
			assert.Contains(t, errOut.String(), "rejected")
			assert.Contains(t, errOut.String(), "hint:")
			assert.NotContains(t, errOut.String(), cmdKey)
		})
	}
}

// TestServeRelayStream: with --stream, a relay gets its updates on
// Amplitude's stream (no poll in an hour), serves them at once, and says
// where its flags came from.
func TestServeRelayStream(t *testing.T) {
	srv := experimenttest.NewFlagServer(cmdKey, testdataFlags(t))
	t.Cleanup(srv.Close)
	srv.EnableStream(true)
	fr := startRelayServe(t, map[string]string{}, "--server-url", srv.URL, "--stream-server-url", srv.URL,
		"--stream", "--poll-interval", "1h")
	waitReady(t, fr)
	require.Eventually(t, func() bool { return srv.StreamConnections() == 1 }, 10*time.Second, 10*time.Millisecond)
	polls := srv.Requests()

	changed := []byte(`[{"key":"streamed-flag","metadata":{"flagVersion":1},"segments":[{"variant":"on"}],"variants":{"on":{"key":"on","value":"on"}}}]`)
	srv.SetFlags(changed)
	require.Eventually(t, func() bool {
		code, body := fr.get(t, "/sdk/v2/flags")
		return code == http.StatusOK && strings.Contains(string(body), "streamed-flag")
	}, 10*time.Second, 10*time.Millisecond, "the update arrives on the stream")
	assert.Equal(t, polls, srv.Requests(), "no poll brought it")
	assert.Equal(t, 1, srv.StreamConnections())
	assert.Equal(t, "stream", fr.status(t).Deployments[0].Source)
}
