package analytics_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/analytics"
)

func TestEventsURL(t *testing.T) {
	for _, tc := range []struct {
		zone  analytics.ServerZone
		batch bool
		want  string
	}{
		{"", false, "https://api2.amplitude.com/2/httpapi"},
		{analytics.ServerZoneUS, false, "https://api2.amplitude.com/2/httpapi"},
		{analytics.ServerZoneUS, true, "https://api2.amplitude.com/batch"},
		{analytics.ServerZoneEU, false, "https://api.eu.amplitude.com/2/httpapi"},
		{analytics.ServerZoneEU, true, "https://api.eu.amplitude.com/batch"},
		{"eu", false, "https://api.eu.amplitude.com/2/httpapi"},
		{" Eu ", true, "https://api.eu.amplitude.com/batch"},
	} {
		assert.Equal(t, tc.want, analytics.EventsURL(tc.zone, tc.batch), "%q %v", tc.zone, tc.batch)
	}
}

func TestClientDefaultURLFollowsZone(t *testing.T) {
	// An explicit ServerURL wins; otherwise zone and UseBatch pick it. The
	// transport answers locally, so nothing leaves the machine.
	for _, tc := range []struct {
		cfg  analytics.Config
		want string
	}{
		{analytics.Config{ServerZone: analytics.ServerZoneEU, UseBatch: true}, "https://api.eu.amplitude.com/batch"},
		{analytics.Config{ServerZone: "eu"}, "https://api.eu.amplitude.com/2/httpapi"},
		{analytics.Config{}, "https://api2.amplitude.com/2/httpapi"},
		{analytics.Config{ServerZone: analytics.ServerZoneEU, ServerURL: "http://127.0.0.1:1/x/2/httpapi"}, "http://127.0.0.1:1/x/2/httpapi"},
	} {
		evtLeakCheck(t)
		got := make(chan string, 1)
		cfg := tc.cfg
		cfg.APIKey = evtAPIKey
		cfg.FlushMaxRetries = -1
		cfg.Logger = (&evtLog{}).logger()
		cfg.HTTPClient = evtLocalClient(func(u string) { got <- u })
		c, err := analytics.NewClient(cfg)
		require.NoError(t, err)
		c.Track(evtEvents(0, 1)...)
		require.NoError(t, c.Flush(t.Context()))
		assert.Equal(t, tc.want, <-got)
		require.NoError(t, c.Close(t.Context()))
	}
}

// evtLocalClient answers every request with Amplitude's success JSON
// without a network, reporting each request's URL.
func evtLocalClient(record func(url string)) *http.Client {
	return &http.Client{Transport: evtRoundTripper(func(r *http.Request) (*http.Response, error) {
		record(r.URL.String())
		return &http.Response{
			StatusCode: http.StatusOK, Header: http.Header{}, Request: r,
			Body: io.NopCloser(strings.NewReader(`{"code":200,"events_ingested":1,"payload_size_bytes":1,"server_upload_time":1}`)),
		}, nil
	})}
}

func TestNewClientRejectsBadConfig(t *testing.T) {
	neg := 0
	for _, tc := range []struct {
		name string
		cfg  analytics.Config
		want string
	}{
		{"no key", analytics.Config{}, "API key is empty"},
		{"blank key", analytics.Config{APIKey: "  "}, "API key is empty"},
		{"key with space", analytics.Config{APIKey: "abc def-secret"}, "white space"},
		{"bad URL", analytics.Config{APIKey: "k", ServerURL: "ftp://x/2/httpapi"}, "want an absolute http or https URL"},
		{"relative URL", analytics.Config{APIKey: "k", ServerURL: "/2/httpapi"}, "want an absolute http or https URL"},
		{"zone", analytics.Config{APIKey: "k", ServerZone: "APAC"}, `server zone "APAC"`},
		{"batch too big", analytics.Config{APIKey: "k", FlushQueueSize: 2001}, "FlushQueueSize 2001: want 1 to 2000"},
		{"negative interval", analytics.Config{APIKey: "k", FlushInterval: -time.Second}, "FlushInterval is negative"},
		{"negative capacity", analytics.Config{APIKey: "k", QueueCapacity: -1}, "QueueCapacity is negative"},
		{"min id length", analytics.Config{APIKey: "k", MinIDLength: &neg}, "MinIDLength 0"},
		{"backoff order", analytics.Config{APIKey: "k", RetryBackoffMin: time.Second, RetryBackoffMax: time.Millisecond}, "RetryBackoffMax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := analytics.NewClient(tc.cfg)
			require.Error(t, err)
			assert.Nil(t, tr)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "analytics config: "), err.Error())
			assert.NotContains(t, err.Error(), "def-secret")
		})
	}
}

// A config NewClient cannot use is ErrInvalidConfig, every problem
// reachable through *ConfigError; Validate says the same without starting
// anything.
func TestConfigErrorsAreInspectable(t *testing.T) {
	cfg := analytics.Config{FlushInterval: -time.Second, QueueCapacity: -1}
	c, err := analytics.NewClient(cfg)
	require.Error(t, err)
	assert.Nil(t, c)
	assert.ErrorIs(t, err, analytics.ErrInvalidConfig)
	var ce *analytics.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Len(t, ce.Problems, 3, err.Error())
	assert.Equal(t, err.Error(), cfg.Validate().Error())
	assert.NoError(t, analytics.Config{APIKey: "k"}.Validate())
	assert.False(t, errors.Is(analytics.ErrClosed, analytics.ErrInvalidConfig))
}
