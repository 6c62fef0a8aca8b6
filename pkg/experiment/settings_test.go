package experiment_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

// hostRecorder is an http.RoundTripper that records the host and path of
// every request it is given, and sends it to the fake standing in for that
// host (an httptest server on 127.0.0.1). A host without a fake fails: no
// request ever reaches the network.
type hostRecorder struct {
	fakes map[string]string // Amplitude host -> fake's base URL
	mu    sync.Mutex
	seen  []recordedRequest
}

type recordedRequest struct {
	host, path, library string
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.seen = append(h.seen, recordedRequest{r.URL.Host, r.URL.Path, r.Header.Get("X-Amp-Exp-Library")})
	h.mu.Unlock()
	fake, ok := h.fakes[r.URL.Host]
	if !ok {
		return nil, fmt.Errorf("no fake for host %s", r.URL.Host)
	}
	u, err := url.Parse(fake)
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, ""
	return http.DefaultTransport.RoundTrip(r)
}

func (h *hostRecorder) requests() []recordedRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]recordedRequest(nil), h.seen...)
}

// logBuffer is a slog handler's output, safe to read while written.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLocalConfigReachesEveryPart: a LocalClient in the EU zone with an
// HTTP client of the caller's sends every request (flags, stream, cohorts,
// exposure and assignment events) to the EU hosts of docs/protocol.md#base-urls-and-zones,
// through that client, and names itself the SDK, not the CLI.
func TestLocalConfigReachesEveryPart(t *testing.T) {
	noLeaks(t)
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "flags.json"))
	require.NoError(t, err)
	flags := experimenttest.NewFlagServer(localKey, body)
	defer flags.Close()
	flags.EnableStream(true)
	cohorts := cohorttest.NewServer(cohortAPIKey, cohortSecretKey)
	defer cohorts.Close()
	require.NoError(t, cohorts.AddDir(filepath.Join("..", "..", "testdata", "cohorts")))
	analyticsSrv := analyticstest.NewServer()
	defer analyticsSrv.Close()

	rec := &hostRecorder{fakes: map[string]string{
		"flag.lab.eu.amplitude.com":      flags.URL,
		"stream.lab.eu.amplitude.com":    flags.URL,
		"cohort-v2.lab.eu.amplitude.com": cohorts.URL,
		"api.eu.amplitude.com":           analyticsSrv.URL,
	}}
	tracker := analytics.Config{APIKey: "analytics-api-key"} // no zone, client, logger or URL of its own
	c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{
		ServerZone: experiment.ServerZoneEU, HTTPClient: &http.Client{Transport: rec}, Logger: quiet,
		StreamUpdates:    true,
		CohortSyncConfig: &experiment.CohortSyncConfig{APIKey: cohortAPIKey, SecretKey: cohortSecretKey},
		ExposureConfig:   &experiment.ExposureConfig{Config: tracker},
		AssignmentConfig: &experiment.AssignmentConfig{Config: tracker},
	})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Start(t.Context()))
	assert.Equal(t, "on", variantOf(t, c, member, "power-user-perks"), "the cohort arrived")
	_, err = c.EvaluateV2WithOptions(member, &experiment.EvaluateOptions{FlagKeys: []string{"power-user-perks"}, TracksExposure: true})
	require.NoError(t, err)
	_, _, err = c.FetchFlagConfigs(t.Context()) // flags came over the stream: the flag server too
	require.NoError(t, err)
	require.NoError(t, c.Close())

	hosts := map[string]bool{}
	for _, r := range rec.requests() {
		hosts[r.host] = true
		if r.path != "/2/httpapi" {
			assert.True(t, strings.HasPrefix(r.library, "experiment-go/"), "%s%s: X-Amp-Exp-Library %q", r.host, r.path, r.library)
		}
	}
	assert.Equal(t, map[string]bool{"flag.lab.eu.amplitude.com": true, "stream.lab.eu.amplitude.com": true,
		"cohort-v2.lab.eu.amplitude.com": true, "api.eu.amplitude.com": true}, hosts,
		"every part used the EU hosts, and the given client")
	types := map[string]bool{}
	for _, ev := range analyticsSrv.DecodedEvents() {
		types[ev["event_type"].(string)] = true
		assert.Regexp(t, `^experiment-go/`, ev["library"])
	}
	assert.True(t, types[experiment.ExposureEventType], "exposure events sent: %v", types)
	assert.True(t, types[experiment.AssignmentEventType], "assignment events sent: %v", types)
}

// TestLocalConfigOverridesWin: a tracker's own zone, URL or logger is not
// replaced by the LocalClient's.
func TestLocalConfigOverridesWin(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	analyticsSrv := analyticstest.NewServer()
	defer analyticsSrv.Close()
	analyticsSrv.SetDown(http.StatusBadRequest)
	var local, own logBuffer
	c := newLocal(t, srv, experiment.LocalConfig{
		ServerZone: experiment.ServerZoneEU, Logger: slog.New(slog.NewTextHandler(&local, nil)),
		ExposureConfig: &experiment.ExposureConfig{Config: analytics.Config{APIKey: "k",
			ServerURL: analyticsSrv.EventsURL(), Logger: slog.New(slog.NewTextHandler(&own, nil))}},
		AssignmentConfig: &experiment.AssignmentConfig{Config: analytics.Config{APIKey: "k",
			ServerURL: analyticsSrv.EventsURL()}},
	})
	require.NoError(t, c.Start(t.Context()))
	_, err := c.EvaluateV2WithOptions(&experiment.User{UserID: "user-1"}, &experiment.EvaluateOptions{TracksExposure: true})
	require.NoError(t, err)
	_ = c.Close()
	require.Len(t, analyticsSrv.Requests(), 2, "both trackers used their own URL")
	assert.Contains(t, own.String(), "level=WARN", "the exposure tracker's own logger")
	assert.Contains(t, local.String(), "level=WARN", "the assignment tracker warns through the LocalClient's logger")
}

// TestDefaultLoggerIsSlogDefault: without a Logger, the SDK's warnings go
// to the process's default logger, as it is when the client is made.
func TestDefaultLoggerIsSlogDefault(t *testing.T) {
	var logs logBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	noLeaks(t)

	srv := experimenttest.NewFlagServer(localKey, flagsV("1"))
	defer srv.Close()
	srv.SetDown(http.StatusServiceUnavailable)
	cfg := &experiment.LocalConfig{ServerURL: srv.URL}
	c, err := experiment.NewLocalClient(srv.Key, cfg)
	require.NoError(t, err)
	// A second, not less: the warning is logged when a 503 has come back
	// before Start gives up, which a loaded machine can take a while for.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	require.Error(t, c.Start(ctx))
	require.NoError(t, c.Close())
	assert.Contains(t, logs.String(), "flag config update failed", "the local client's warning")

	analyticsSrv := analyticstest.NewServer()
	defer analyticsSrv.Close()
	analyticsSrv.SetDown(http.StatusBadRequest)
	tr, err := experiment.NewExposureService(experiment.ExposureConfig{Config: analytics.Config{APIKey: "k", ServerURL: analyticsSrv.EventsURL()}})
	require.NoError(t, err)
	tr.TrackExposure(&experiment.User{UserID: "user-1"}, map[string]experiment.Variant{"f": {Key: "on"}})
	_ = tr.Close(t.Context())
	assert.Contains(t, logs.String(), "analytics: request rejected", "the analytics client's warning")

	// Debug lets the SDK's DEBUG records through to the default handler.
	logs = logBuffer{}
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	c, err = experiment.NewLocalClient(srv.Key, &experiment.LocalConfig{ServerURL: srv.URL, Debug: true,
		ExposureConfig: &experiment.ExposureConfig{Config: analytics.Config{APIKey: "k", ServerURL: analyticsSrv.EventsURL()}}})
	require.NoError(t, err)
	srv.SetDown(0)
	require.NoError(t, c.Start(t.Context())) // the trackers may start only with the client
	require.NoError(t, c.Close())
	assert.Contains(t, logs.String(), "level=DEBUG msg=\"analytics client started\"")
}

// TestServerZoneAnyCase: ServerZone("eu") is the EU zone everywhere, as
// ParseServerZone("eu") is (package analytics's zones are tested there).
func TestServerZoneAnyCase(t *testing.T) {
	for _, z := range []experiment.ServerZone{"eu", "Eu", " EU "} {
		assert.Equal(t, "https://flag.lab.eu.amplitude.com", z.FlagsServerURL(), z)
		assert.Equal(t, "https://api.lab.eu.amplitude.com", z.RemoteServerURL(), z)
		c, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{ServerZone: z})
		require.NoError(t, err, z)
		require.NoError(t, c.Close())
		rc, err := experiment.NewRemoteClient(remoteKey, &experiment.RemoteConfig{ServerZone: z})
		require.NoError(t, err, z)
		rc.Close()
		parsed, err := experiment.ParseServerZone(string(z))
		require.NoError(t, err)
		assert.Equal(t, experiment.ServerZoneEU, parsed)
	}
	assert.Equal(t, "https://cohort-v2.lab.amplitude.com", experiment.ServerZone("us").CohortServerURL())
	_, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{ServerZone: "apac"})
	assert.ErrorContains(t, err, `server zone "apac"`)
}
