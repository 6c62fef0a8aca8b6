package server_test

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
	"github.com/flagkit/experiment/pkg/server"
)

const (
	relayKeyA = "server-relay-key-aaaaaaaa"
	relayKeyB = "server-relay-key-bbbbbbbb"
)

var oneFlag = []byte(`[{"key":"dark-mode","variants":{"off":{"key":"off","metadata":{"default":true}},"on":{"key":"on","value":"on"}},"segments":[{"variant":"on"}]}]`)

// relayConfig is a quick-polling client config against a fake flag server.
func relayConfig(t testing.TB, url string) experiment.LocalConfig {
	return experiment.LocalConfig{
		ServerURL: url, CacheDir: t.TempDir(),
		FlagConfigPollingInterval: 50 * time.Millisecond, StartTimeout: 2 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	}
}

func newRelay(t testing.TB, key string, cfg experiment.LocalConfig) *server.Relay {
	t.Helper()
	r, err := server.NewRelay(key, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// newRelayServer serves relays by key.
func newRelayServer(t testing.TB, opts server.Options, relays map[string]*server.Relay) *testServer {
	t.Helper()
	for key, r := range relays {
		opts.Deployments = append(opts.Deployments, server.Deployment{Key: key, Source: r})
	}
	opts.Mode = "relay"
	h := server.New(nil, opts)
	srv := newHTTPServer(t, h)
	t.Cleanup(h.Close)
	return &testServer{Server: srv, handler: h}
}

// eventually retries check until it holds or 5 s pass.
func eventually(t testing.TB, what string, check func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if check() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRelayKeysAndFirstSync(t *testing.T) {
	up := experimenttest.NewFlagServer(relayKeyA, oneFlag)
	defer up.Close()
	up.SetDown(http.StatusServiceUnavailable)
	cfg := relayConfig(t, up.URL)
	cfg.StartTimeout = 200 * time.Millisecond
	relay := newRelay(t, relayKeyA, cfg)
	ts := newRelayServer(t, server.Options{}, map[string]*server.Relay{relayKeyA: relay})

	if err := relay.Start(t.Context()); err == nil {
		t.Fatal("Start succeeded against a server that is down")
	}
	r := ts.do(t, "GET", "/sdk/v2/flags", "", "Authorization: Api-Key "+relayKeyA).want(t, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	ts.do(t, "GET", "/readyz", "").want(t, http.StatusServiceUnavailable)
	for _, h := range []string{"Authorization: Api-Key " + relayKeyB, "Authorization: Bearer nope", "X-API-Key: " + relayKeyA + "x", "X-Nothing: 1"} {
		ts.do(t, "GET", "/sdk/v2/flags", "", h).want(t, http.StatusUnauthorized)
	}
	ts.do(t, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u"}}`, "Authorization: Bearer "+relayKeyB).want(t, http.StatusUnauthorized)

	up.SetDown(0) // the client goes on trying by itself
	eventually(t, "the first sync", func() bool {
		return ts.do(t, "GET", "/sdk/v2/flags", "", "Authorization: Api-Key "+relayKeyA).status == http.StatusOK
	})
	ts.do(t, "GET", "/readyz", "").want(t, http.StatusOK)
	ts.do(t, "POST", "/ofrep/v1/evaluate/flags/dark-mode", `{"context":{"targetingKey":"u"}}`, "X-API-Key: "+relayKeyA).want(t, http.StatusOK)
	var st server.Status
	ts.do(t, "GET", "/status", "").want(t, http.StatusOK).decode(t, &st)
	if st.Status != "healthy" || st.Deployments[0].Source != "server" || st.Deployments[0].Upstream == nil {
		t.Errorf("status %+v", st)
	}
}

func TestRelayTwoDeploymentsSideBySide(t *testing.T) {
	upA := experimenttest.NewFlagServer(relayKeyA, fixture(t, "flags.json"))
	defer upA.Close()
	upB := experimenttest.NewFlagServer(relayKeyB, oneFlag)
	defer upB.Close()
	ra, rb := newRelay(t, relayKeyA, relayConfig(t, upA.URL)), newRelay(t, relayKeyB, relayConfig(t, upB.URL))
	for _, r := range []*server.Relay{ra, rb} {
		if err := r.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ts := newRelayServer(t, server.Options{}, map[string]*server.Relay{relayKeyA: ra, relayKeyB: rb})
	var a, b []map[string]any
	ts.do(t, "GET", "/sdk/v2/flags", "", "Authorization: Api-Key "+relayKeyA).want(t, 200).decode(t, &a)
	ts.do(t, "GET", "/sdk/v2/flags", "", "Authorization: Api-Key "+relayKeyB).want(t, 200).decode(t, &b)
	if len(a) != 18 || len(b) != 1 {
		t.Fatalf("deployment A has %d flags, B %d; want 18 and 1", len(a), len(b))
	}
	body := ts.do(t, "GET", "/status", "").want(t, 200).body
	for _, key := range []string{relayKeyA, relayKeyB} {
		if strings.Contains(string(body), key) {
			t.Errorf("/status holds a deployment key: %s", body)
		}
		if !strings.Contains(string(body), experiment.Secret(key).Fingerprint()) {
			t.Errorf("/status lacks the fingerprint of a key: %s", body)
		}
	}
	metrics := ts.do(t, "GET", "/metrics", "").body
	if strings.Contains(string(metrics), relayKeyA) || strings.Contains(string(metrics), relayKeyB) {
		t.Error("/metrics holds a deployment key")
	}
}

func TestRelayPushesChangesAndKeepsLastGood(t *testing.T) {
	up := experimenttest.NewFlagServer(relayKeyA, fixture(t, "flags.json"))
	defer up.Close()
	relay := newRelay(t, relayKeyA, relayConfig(t, up.URL))
	if err := relay.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ts := newRelayServer(t, server.Options{}, map[string]*server.Relay{relayKeyA: relay})

	req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/sdk/stream/v1/flags", nil)
	req.Header.Set("Authorization", "Api-Key "+relayKeyA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	events := readEvents(resp.Body)
	if first := <-events; strings.Count(first, `"key":`) < 18 {
		t.Fatalf("first event: %.200s", first)
	}
	up.SetFlags(oneFlag)
	select {
	case ev := <-events:
		if !strings.Contains(ev, `"dark-mode"`) || strings.Contains(ev, "new-editor") {
			t.Fatalf("pushed event: %.200s", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the change upstream never reached the stream")
	}

	up.SetDown(http.StatusInternalServerError)
	eventually(t, "a degraded status", func() bool {
		var st server.Status
		ts.do(t, "GET", "/status", "").decode(t, &st)
		return st.Status == "degraded" && st.Deployments[0].Problem != ""
	})
	var flags []map[string]any
	ts.do(t, "GET", "/sdk/v2/flags", "", "Authorization: Api-Key "+relayKeyA).want(t, 200).decode(t, &flags)
	if len(flags) != 1 {
		t.Errorf("served %d flags while upstream is down, want the last good 1", len(flags))
	}
	up.SetDown(0)
	eventually(t, "healthy again", func() bool {
		var st server.Status
		ts.do(t, "GET", "/status", "").decode(t, &st)
		return st.Status == "healthy"
	})
}

// readEvents sends each server-sent event's data that is not a keep-alive.
func readEvents(r io.Reader) <-chan string {
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<22)
		var data strings.Builder
		for sc.Scan() {
			line := sc.Text()
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				data.WriteString(d)
				continue
			}
			if line == "" && strings.TrimSpace(data.String()) != "" {
				ch <- data.String()
			}
			if line == "" {
				data.Reset()
			}
		}
	}()
	return ch
}

func TestRelayCohortsAndTheirCredentials(t *testing.T) {
	up := experimenttest.NewFlagServer(relayKeyA, fixture(t, "flags.json"))
	defer up.Close()
	const apiKey, secretKey = "relay-api-key", "relay-secret-key"
	cs := cohorttest.NewServer(apiKey, secretKey)
	defer cs.Close()
	if err := cs.AddDir(filepath.Join("..", "..", "testdata", "cohorts")); err != nil {
		t.Fatal(err)
	}
	cfg := relayConfig(t, up.URL)
	cfg.CohortSyncConfig = &experiment.CohortSyncConfig{APIKey: apiKey, SecretKey: secretKey, CohortServerURL: cs.URL}
	relay := newRelay(t, relayKeyA, cfg)
	if err := relay.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ts := newRelayServer(t, server.Options{CohortAPIKey: apiKey, CohortSecretKey: secretKey}, map[string]*server.Relay{relayKeyA: relay})

	basic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(apiKey+":"+secretKey))
	ts.do(t, "GET", "/sdk/v1/cohort/k3v9qa?maxCohortSize=1000", "", basic).want(t, 200)
	wrong := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(apiKey+":nope"))
	for _, h := range []string{wrong, "X-Nothing: 1", "Authorization: Api-Key " + relayKeyA} {
		ts.do(t, "GET", "/sdk/v1/cohort/k3v9qa?maxCohortSize=1000", "", h).want(t, http.StatusUnauthorized)
	}
	var st server.Status
	ts.do(t, "GET", "/status", "").want(t, 200).decode(t, &st)
	if len(st.Deployments[0].Upstream.Cohorts) == 0 || len(st.Deployments[0].Cohorts) == 0 {
		t.Errorf("no cohorts in /status: %+v", st.Deployments[0])
	}
}

func TestTrackHeaders(t *testing.T) {
	var mu sync.Mutex
	var got []server.Tracked
	ts := newTestServer(t, server.Options{Track: func(tr server.Tracked) {
		mu.Lock()
		got = append(got, tr)
		mu.Unlock()
	}})
	user := `{"user_id":"user-1"}`
	cases := []struct {
		headers              []string
		assignment, exposure bool
	}{
		{nil, true, false},
		{[]string{"X-Amp-Exp-Track: no-track"}, false, false},
		{[]string{"X-Amp-Exp-Track: read-only", "X-Amp-Exp-Exposure-Track: track"}, false, true},
		{[]string{"X-Amp-Exp-Track: track", "X-Amp-Exp-Exposure-Track: track"}, true, true},
	}
	for i, c := range cases {
		mu.Lock()
		got = nil
		mu.Unlock()
		ts.do(t, "POST", "/sdk/v2/vardata", user, c.headers...).want(t, 200)
		mu.Lock()
		n := len(got)
		var tr server.Tracked
		if n > 0 {
			tr = got[0]
		}
		mu.Unlock()
		if want := c.assignment || c.exposure; (n == 1) != want {
			t.Errorf("case %d: %d calls of Track", i, n)
			continue
		}
		if n == 1 && (tr.Assignment != c.assignment || tr.Exposure != c.exposure || tr.User.UserID != "user-1" || len(tr.Variants) == 0) {
			t.Errorf("case %d: tracked %+v", i, tr)
		}
	}
}

func TestRelayRejectedKeyIsFinal(t *testing.T) {
	up := experimenttest.NewFlagServer("some-other-key", oneFlag)
	defer up.Close()
	relay := newRelay(t, relayKeyA, relayConfig(t, up.URL))
	if err := relay.Start(t.Context()); !errors.Is(err, experiment.ErrUnauthorized) {
		t.Fatalf("Start: %v, want ErrUnauthorized", err)
	}
	if strings.Contains(relay.Report().LastError, relayKeyA) {
		t.Error("the report holds the key")
	}
}

// TestRelayServesUpstreamBytes: a relay serves the flags as Amplitude sent
// them, byte for byte: a field this engine does not know reaches the SDKs
// behind it, and the ETag is the same on any relay of the same upstream.
func TestRelayServesUpstreamBytes(t *testing.T) {
	upstream := []byte("[{\"key\":\"dark-mode\",\"futureField\":{\"kept\":[1,2]},\n \"variants\":{\"on\":{\"key\":\"on\",\"value\":\"on\"}},\"segments\":[{\"variant\":\"on\"}]}]")
	up := experimenttest.NewFlagServer(relayKeyA, upstream)
	defer up.Close()
	relay := newRelay(t, relayKeyA, relayConfig(t, up.URL))
	if err := relay.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ts := newRelayServer(t, server.Options{}, map[string]*server.Relay{relayKeyA: relay})
	r := ts.do(t, "GET", "/sdk/v2/flags", "", "Authorization: Api-Key "+relayKeyA).want(t, http.StatusOK)
	if string(r.body) != string(upstream) {
		t.Fatalf("served %s\nwant %s", r.body, upstream)
	}
	if got := relay.Current().Flags.ETag; got != mustFlagsExact(t, upstream).ETag {
		t.Errorf("ETag %s is not the upstream body's", got)
	}
}

func mustFlagsExact(t testing.TB, body []byte) *server.Flags {
	t.Helper()
	f, err := server.NewFlagsExact(body, nil, "test", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}
