package experiment_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

const remoteKey = "server-T0pS3cretDeploymentKey42"

// remoteLeakCheck fails the test if it leaves goroutines behind. It ignores the
// goroutines that exist when it is called, so other tests' (including
// parallel ones elsewhere in the package) do not count. Call it first: its
// cleanup then runs after the servers and clients have been closed.
func remoteLeakCheck(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func newFakeRemote(t *testing.T) *experimenttest.RemoteServer {
	t.Helper()
	s := experimenttest.NewRemoteServer(remoteKey)
	t.Cleanup(s.Close)
	return s
}

// newTestRemoteClient is a client of s with quick retries and a silent logger; cfg
// overrides.
func newTestRemoteClient(t *testing.T, serverURL string, cfg *experiment.RemoteConfig) *experiment.RemoteClient {
	t.Helper()
	if cfg == nil {
		cfg = &experiment.RemoteConfig{}
	}
	if cfg.ServerURL == "" {
		cfg.ServerURL = serverURL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryBackoffMin == 0 {
		cfg.RetryBackoffMin = time.Millisecond
		cfg.RetryBackoffMax = 5 * time.Millisecond
	}
	c, err := experiment.NewRemoteClient(remoteKey, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

func asFetchError(t *testing.T, err error) *experiment.FetchError {
	t.Helper()
	require.Error(t, err)
	var fe *experiment.FetchError
	require.ErrorAs(t, err, &fe)
	return fe
}

var remoteSampleVariants = map[string]any{
	"checkout-flow": experiment.Variant{Key: "treatment", Value: "treatment", Payload: map[string]any{"discount": 20.0},
		Metadata: map[string]any{"experimentKey": "exp-1", "flagType": "experiment", "flagVersion": 7.0, "segmentName": "All Other Users"}},
	"new-nav": map[string]any{"key": "off", "metadata": map[string]any{"default": true}},
	"banner":  map[string]any{"key": "on", "value": "on", "metadata": map[string]any{"deployed": false}},
}

func TestNewRemoteClientRejectsBadInput(t *testing.T) {
	remoteLeakCheck(t)
	for name, tc := range map[string]struct {
		key  string
		cfg  *experiment.RemoteConfig
		want string
	}{
		"empty key":          {"", nil, "deployment key is empty"},
		"blank key":          {"  \n", nil, "deployment key is empty"},
		"key with space":     {"server-abc def-ghijkl", nil, "white space"},
		"zone":               {remoteKey, &experiment.RemoteConfig{ServerZone: "APAC"}, `server zone "APAC"`},
		"scheme":             {remoteKey, &experiment.RemoteConfig{ServerURL: "ftp://example.com"}, "want an absolute http or https URL"},
		"no host":            {remoteKey, &experiment.RemoteConfig{ServerURL: "/relative"}, "want an absolute http or https URL"},
		"unparsable":         {remoteKey, &experiment.RemoteConfig{ServerURL: "http://a b:c@[::1"}, "server URL"},
		"negative timeout":   {remoteKey, &experiment.RemoteConfig{FetchTimeout: -time.Second}, "FetchTimeout is negative"},
		"negative retries":   {remoteKey, &experiment.RemoteConfig{FetchRetries: -1}, "FetchRetries is negative"},
		"max below min":      {remoteKey, &experiment.RemoteConfig{RetryBackoffMin: time.Second, RetryBackoffMax: time.Millisecond}, "less than RetryBackoffMin"},
		"bad scalar":         {remoteKey, &experiment.RemoteConfig{RetryBackoffScalar: -2}, "RetryBackoffScalar"},
		"credentials in url": {remoteKey, &experiment.RemoteConfig{ServerURL: "gopher://user:hunter2@example.com"}, "gopher://example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := experiment.NewRemoteClient(tc.key, tc.cfg)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "hunter2")
			if len(strings.TrimSpace(tc.key)) > 8 {
				assert.NotContains(t, err.Error(), strings.TrimSpace(tc.key))
			}
		})
	}
}

func TestFetchV2WireFormat(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetVariants(remoteSampleVariants)
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{Library: "experiment-go-cli/1.2.3"})

	user := &experiment.User{UserID: "user@example.com", DeviceID: "d-1", UserProperties: map[string]any{"plan": "pro"}}
	got, err := c.FetchV2(t.Context(), user, nil)
	require.NoError(t, err)

	require.Equal(t, 1, s.RequestCount())
	req := s.LastRequest()
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/sdk/v2/vardata", req.Path)
	assert.Equal(t, "v=0", req.RawQuery)
	assert.Equal(t, "body", req.UserEncoding)
	assert.Equal(t, "Api-Key "+remoteKey, req.Header.Get("Authorization"))
	assert.Equal(t, "application/json;charset=utf-8", req.Header.Get("Content-Type"))
	assert.Empty(t, req.Header.Values("X-Amp-Exp-Flag-Keys"))
	assert.False(t, req.HasTrack, "no X-Amp-Exp-Track unless asked")
	assert.False(t, req.HasExposureTrack, "no X-Amp-Exp-Exposure-Track unless asked")
	assert.JSONEq(t, `{"user_id":"user@example.com","device_id":"d-1","user_properties":{"plan":"pro"},"library":"experiment-go-cli/1.2.3"}`, string(req.UserJSON))
	assert.Empty(t, user.Library, "the caller's user is not modified")

	want := map[string]experiment.Variant{
		"checkout-flow": {Key: "treatment", Value: "treatment", Payload: map[string]any{"discount": 20.0},
			Metadata: map[string]any{"experimentKey": "exp-1", "flagType": "experiment", "flagVersion": 7.0, "segmentName": "All Other Users"}},
		"new-nav": {Key: "off", Metadata: map[string]any{"default": true}},
		"banner":  {Key: "on", Value: "on", Metadata: map[string]any{"deployed": false}},
	}
	assert.Equal(t, want, got, "FetchV2 returns default variants too")
}

func TestFetchV2KeepsTheUsersLibrary(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	c := newTestRemoteClient(t, s.URL, nil)
	_, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u", Library: "my-app/2.0"}, nil)
	require.NoError(t, err)
	assert.Equal(t, "my-app/2.0", s.LastRequest().User.Library)

	_, err = c.FetchV2(t.Context(), nil, nil) // nil user: an empty one
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(s.LastRequest().User.Library, "experiment-go/"), s.LastRequest().User.Library)
}

func TestFetchV2FlagKeys(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetVariants(remoteSampleVariants)
	c := newTestRemoteClient(t, s.URL, nil)

	got, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, &experiment.FetchOptions{FlagKeys: []string{"checkout-flow"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"checkout-flow"}, variantKeys(got))
	assert.Equal(t, "WyJjaGVja291dC1mbG93Il0", s.LastRequest().Header.Get("X-Amp-Exp-Flag-Keys"), "the example of docs/protocol.md#remote-evaluation-request")

	got, err = c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, &experiment.FetchOptions{FlagKeys: []string{"banner", "new-nav", "missing"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"banner", "new-nav"}, variantKeys(got))
	h := s.LastRequest().Header.Get("X-Amp-Exp-Flag-Keys")
	assert.NotContains(t, h, "=", "no padding")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	require.NoError(t, err)
	assert.JSONEq(t, `["banner","new-nav","missing"]`, string(raw))

	_, err = c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, &experiment.FetchOptions{FlagKeys: []string{}})
	require.NoError(t, err)
	assert.Empty(t, s.LastRequest().Header.Values("X-Amp-Exp-Flag-Keys"), "empty flag keys: no header")
}

func variantKeys(m map[string]experiment.Variant) []string { return slices.Sorted(maps.Keys(m)) }

func TestFetchV2TrackingHeaders(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	c := newTestRemoteClient(t, s.URL, nil)
	yes, no := true, false
	for _, tc := range []struct {
		name                 string
		assignment, exposure *bool
		wantTrack, wantExp   string // "-" for absent
	}{
		{"unset", nil, nil, "-", "-"},
		{"assignment on", &yes, nil, "track", "-"},
		{"assignment off", &no, nil, "no-track", "-"},
		{"exposure on", nil, &yes, "-", "track"},
		{"exposure off", nil, &no, "-", "no-track"},
		{"both", &no, &yes, "no-track", "track"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"},
				&experiment.FetchOptions{TracksAssignment: tc.assignment, TracksExposure: tc.exposure})
			require.NoError(t, err)
			req := s.LastRequest()
			assert.Equal(t, tc.wantTrack, headerOrDash(req.Track, req.HasTrack))
			assert.Equal(t, tc.wantExp, headerOrDash(req.ExposureTrack, req.HasExposureTrack))
		})
	}
}

func headerOrDash(v string, present bool) string {
	if !present {
		return "-"
	}
	return v
}

func TestFetchV2RendersNonStringValues(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetVariants(map[string]any{
		"string": map[string]any{"key": "on", "value": "on"},
		"number": json.RawMessage(`{"key":"n","value":1.50}`),
		"int":    json.RawMessage(`{"key":"i","value":42}`),
		"bool":   map[string]any{"key": "b", "value": true},
		"object": json.RawMessage(`{"key":"o","value":{ "a" : [1, 2], "b":"<x>" }}`),
		"array":  map[string]any{"key": "a", "value": []any{"x", 1}},
		"null":   map[string]any{"key": "z", "value": nil},
		"absent": map[string]any{"key": "off"},
		"extra":  map[string]any{"key": "e", "value": "v", "unknown": map[string]any{"x": 1}, "metadata": "not an object"},
		"nokey":  map[string]any{"value": "v"},
		"numkey": map[string]any{"key": 7, "value": "v"},
		"gone":   nil,
	})
	c := newTestRemoteClient(t, s.URL, nil)
	got, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
	require.NoError(t, err)
	values := map[string]string{}
	for k, v := range got {
		values[k] = v.Key + "=" + v.Value
	}
	assert.Equal(t, map[string]string{
		"string": "on=on", "number": "n=1.50", "int": "i=42", "bool": "b=true",
		"object": `o={"a":[1,2],"b":"<x>"}`, "array": `a=["x",1]`, "null": "z=", "absent": "off=",
		"extra": "e=v", "nokey": "=v", "numkey": "7=v",
	}, values, "a null variant is no variant")
	assert.Nil(t, got["extra"].Metadata, "metadata that is not an object is dropped")
}

func TestFetchAppliesTheLegacyFilter(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetVariants(remoteSampleVariants)
	c := newTestRemoteClient(t, s.URL, nil)
	got, err := c.Fetch(t.Context(), &experiment.User{UserID: "u"}, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"checkout-flow"}, variantKeys(got), "default and undeployed variants are dropped")

	s.Script(experimenttest.Response{Status: http.StatusUnauthorized})
	got, err = c.Fetch(t.Context(), &experiment.User{UserID: "u"}, nil)
	assert.Nil(t, got)
	assert.ErrorIs(t, err, experiment.ErrUnauthorized, "legacy Fetch returns errors, not {}")
}

// urlRecordingTransport answers every request itself, so URL selection can be
// tested without a network.
type urlRecordingTransport struct {
	mu   sync.Mutex
	urls []string
}

func (rt *urlRecordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.urls = append(rt.urls, r.URL.String())
	rt.mu.Unlock()
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"f":{"key":"on","value":"on"}}`)), ContentLength: -1, Request: r}, nil
}

func TestServerZoneSelectsTheURL(t *testing.T) {
	remoteLeakCheck(t)
	for _, tc := range []struct {
		name string
		cfg  experiment.RemoteConfig
		want string
	}{
		{"default is US", experiment.RemoteConfig{}, "https://api.lab.amplitude.com/sdk/v2/vardata?v=0"},
		{"US", experiment.RemoteConfig{ServerZone: experiment.ServerZoneUS}, "https://api.lab.amplitude.com/sdk/v2/vardata?v=0"},
		{"EU", experiment.RemoteConfig{ServerZone: experiment.ServerZoneEU}, "https://api.lab.eu.amplitude.com/sdk/v2/vardata?v=0"},
		{"explicit URL wins over EU", experiment.RemoteConfig{ServerZone: experiment.ServerZoneEU, ServerURL: "https://proxy.example.com"}, "https://proxy.example.com/sdk/v2/vardata?v=0"},
		{"explicit US URL wins over EU", experiment.RemoteConfig{ServerZone: experiment.ServerZoneEU, ServerURL: "https://api.lab.amplitude.com"}, "https://api.lab.amplitude.com/sdk/v2/vardata?v=0"},
		{"base path kept", experiment.RemoteConfig{ServerURL: "https://proxy.example.com/amp"}, "https://proxy.example.com/amp/sdk/v2/vardata?v=0"},
		{"trailing slash", experiment.RemoteConfig{ServerURL: "https://proxy.example.com/amp/"}, "https://proxy.example.com/amp/sdk/v2/vardata?v=0"},
		{"slashes", experiment.RemoteConfig{ServerURL: "https://proxy.example.com/amp///"}, "https://proxy.example.com/amp/sdk/v2/vardata?v=0"},
		{"query and fragment dropped", experiment.RemoteConfig{ServerURL: "https://proxy.example.com/?x=1#f"}, "https://proxy.example.com/sdk/v2/vardata?v=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &urlRecordingTransport{}
			cfg := tc.cfg
			cfg.HTTPClient = &http.Client{Transport: rt}
			cfg.Logger = slog.New(slog.DiscardHandler)
			c, err := experiment.NewRemoteClient(remoteKey, &cfg)
			require.NoError(t, err)
			defer c.Close()
			v, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
			require.NoError(t, err)
			assert.Equal(t, "on", v["f"].Value)
			assert.Equal(t, []string{tc.want}, rt.urls)
		})
	}

	for in, want := range map[string]experiment.ServerZone{"us": "US", "EU": "EU", " eu ": "EU", "": "US"} {
		z, err := experiment.ParseServerZone(in)
		require.NoError(t, err)
		assert.Equal(t, want, z)
	}
	_, err := experiment.ParseServerZone("asia")
	assert.ErrorContains(t, err, `"asia"`)
	assert.Equal(t, "https://flag.lab.eu.amplitude.com", experiment.ServerZoneEU.FlagsServerURL())
	assert.Equal(t, "https://cohort-v2.lab.amplitude.com", experiment.ServerZone("").CohortServerURL())
	assert.Equal(t, "https://stream.lab.eu.amplitude.com", experiment.ServerZoneEU.StreamServerURL())
}

func TestFetchV2KeepsTheBasePath(t *testing.T) {
	remoteLeakCheck(t)
	s := experimenttest.NewRemoteServerAt(remoteKey, "/proxy/amplitude")
	t.Cleanup(s.Close)
	s.SetVariants(map[string]any{"f": map[string]any{"key": "on"}})
	for _, base := range []string{s.URL, s.URL + "/", s.URL + "//"} {
		c := newTestRemoteClient(t, base, nil)
		got, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
		require.NoError(t, err, base)
		assert.Equal(t, "on", got["f"].Key)
		assert.Equal(t, "/proxy/amplitude/sdk/v2/vardata", s.LastRequest().Path)
	}
	// Without the base path the fake answers 404, which is not retried.
	c := newTestRemoteClient(t, strings.TrimSuffix(s.URL, "/proxy/amplitude"), &experiment.RemoteConfig{FetchRetries: 3})
	_, err := c.FetchV2(t.Context(), nil, nil)
	fe := asFetchError(t, err)
	assert.Equal(t, http.StatusNotFound, fe.StatusCode)
	assert.Equal(t, 1, fe.Attempts)
}

func TestRetry503Then200(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetVariants(map[string]any{"f": map[string]any{"key": "on", "value": "on"}})
	s.Script(experimenttest.Response{Status: http.StatusServiceUnavailable, Body: "busy"})
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{FetchRetries: 1})
	got, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
	require.NoError(t, err)
	assert.Equal(t, "on", got["f"].Value)
	assert.Equal(t, 2, s.RequestCount())
	reqs := s.Requests()
	assert.Equal(t, reqs[0].UserJSON, reqs[1].UserJSON, "the retry sends the same body")
}

func TestRetriesExhausted(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetDefaultResponse(&experimenttest.Response{Status: http.StatusBadGateway, Body: "upstream\nfailed"})
	u := strings.Replace(s.URL, "http://", "http://admin:hunter2@", 1)
	c := newTestRemoteClient(t, u, &experiment.RemoteConfig{FetchRetries: 2})
	_, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
	fe := asFetchError(t, err)
	assert.Equal(t, 3, s.RequestCount(), "1 + FetchRetries requests")
	assert.Equal(t, http.StatusBadGateway, fe.StatusCode)
	assert.Equal(t, 3, fe.Attempts)
	assert.Equal(t, s.URL+"/sdk/v2/vardata?v=0", fe.URL)
	assert.Equal(t, "POST "+s.URL+"/sdk/v2/vardata?v=0: 502 Bad Gateway: upstream failed (3 attempts)", err.Error())
	assert.NotContains(t, err.Error(), "hunter2")
	assert.NotErrorIs(t, err, experiment.ErrUnauthorized)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetVariants(map[string]any{"f": map[string]any{"key": "on"}})
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{FetchRetries: 1})

	t.Run("seconds", func(t *testing.T) {
		s.Script(experimenttest.Response{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}})
		start := time.Now()
		_, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), 950*time.Millisecond, "waited for Retry-After: 1")
	})
	t.Run("HTTP date", func(t *testing.T) {
		at := time.Now().Add(2 * time.Second).UTC() // whole seconds on the wire: 1-2s from now
		s.Script(experimenttest.Response{Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {at.Format(http.TimeFormat)}}})
		start := time.Now()
		_, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond)
	})
	t.Run("too long", func(t *testing.T) {
		n := s.RequestCount()
		s.Script(experimenttest.Response{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3600"}}})
		start := time.Now()
		_, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
		fe := asFetchError(t, err)
		assert.Less(t, time.Since(start), time.Second, "an hour is not waited for")
		assert.Equal(t, 1, s.RequestCount()-n)
		assert.Contains(t, err.Error(), "429 Too Many Requests")
		assert.Contains(t, err.Error(), "Retry-After 1h0m0s")
		assert.Equal(t, http.StatusTooManyRequests, fe.StatusCode)
	})
	t.Run("caller deadline too close", func(t *testing.T) {
		s.Script(experimenttest.Response{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"30"}}})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.FetchV2(ctx, &experiment.User{UserID: "u"}, nil)
		asFetchError(t, err)
		assert.Less(t, time.Since(start), time.Second)
		assert.Contains(t, err.Error(), "no time left for a retry")
	})
}

func TestNonRetryableStatusesFailAtOnce(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{FetchRetries: 3})
	for _, status := range []int{400, 401, 403, 404, 413} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			n := s.RequestCount()
			s.Script(experimenttest.Response{Status: status, Body: `{"error":"no"}`})
			_, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
			fe := asFetchError(t, err)
			assert.Equal(t, 1, s.RequestCount()-n, "4xx other than 429 is never retried")
			assert.Equal(t, status, fe.StatusCode)
			assert.Equal(t, 1, fe.Attempts)
			assert.Contains(t, err.Error(), fmt.Sprintf("%d %s", status, http.StatusText(status)))
			assert.Equal(t, status == 401 || status == 403, errors.Is(err, experiment.ErrUnauthorized))
		})
	}
}

func TestWrongKeyIsUnauthorized(t *testing.T) {
	remoteLeakCheck(t)
	s := experimenttest.NewRemoteServer("server-the-right-one")
	t.Cleanup(s.Close)
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{FetchRetries: 2})
	_, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
	assert.ErrorIs(t, err, experiment.ErrUnauthorized)
	assert.Equal(t, 1, s.RequestCount())
	assert.Contains(t, err.Error(), "401 Unauthorized")
}

func TestHangingServerTimesOut(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetDefaultResponse(&experimenttest.Response{Hang: true})
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{FetchTimeout: 100 * time.Millisecond, FetchRetryTimeout: 150 * time.Millisecond, FetchRetries: 1})
	start := time.Now()
	_, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
	elapsed := time.Since(start)
	fe := asFetchError(t, err)
	assert.Less(t, elapsed, 2*time.Second)
	assert.GreaterOrEqual(t, elapsed, 250*time.Millisecond, "two attempts: 100ms + 150ms")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, context.Canceled)
	assert.Equal(t, 0, fe.StatusCode)
	assert.Equal(t, 2, fe.Attempts)
	assert.Contains(t, err.Error(), "no response within 150ms (2 attempts)")
}

func TestRetryUsesFetchRetryTimeout(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetVariants(map[string]any{"f": map[string]any{"key": "on"}})
	s.Script(experimenttest.Response{Hang: true}, experimenttest.Response{Delay: 300 * time.Millisecond})
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{FetchTimeout: 100 * time.Millisecond, FetchRetryTimeout: 5 * time.Second, FetchRetries: 1})
	got, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
	require.NoError(t, err, "the retry may take longer than the first attempt")
	assert.Equal(t, "on", got["f"].Key)
}

func TestMalformedResponsesFailCleanly(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{FetchRetries: 1})
	for name, tc := range map[string]struct{ body, want string }{
		"not JSON":          {"<html>oops</html>", "want a JSON object, got invalid JSON"},
		"array":             {"[1,2]", "want a JSON object, got array"},
		"null":              {"null", "want a JSON object, got null"},
		"string":            {`"on"`, "want a JSON object, got string"},
		"empty":             {" ", "empty body"},
		"truncated":         {`{"f":{"key":"on"`, "malformed response"},
		"trailing garbage":  {`{"f":{"key":"on"}} x`, "malformed response"},
		"variant not obj":   {`{"f":"on"}`, `flag "f": want a variant object, got string`},
		"bad payload":       {`{"f":{"key":"on","payload":}}`, "malformed response"},
		"variant is number": {`{"f":1}`, `flag "f": want a variant object, got number`},
	} {
		t.Run(name, func(t *testing.T) {
			n := s.RequestCount()
			s.Script(experimenttest.Response{Status: 200, Body: tc.body}, experimenttest.Response{Status: 200, Body: tc.body})
			got, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
			assert.Nil(t, got)
			fe := asFetchError(t, err)
			assert.ErrorIs(t, err, experiment.ErrMalformedResponse)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, 200, fe.StatusCode)
			assert.Equal(t, 2, s.RequestCount()-n, "a malformed response is retried")
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	remoteLeakCheck(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	c := newTestRemoteClient(t, "http://"+addr, &experiment.RemoteConfig{FetchRetries: 2})
	start := time.Now()
	_, err = c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
	fe := asFetchError(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, 0, fe.StatusCode)
	assert.Equal(t, 3, fe.Attempts, "transport errors are retried")
	assert.Contains(t, err.Error(), "connection refused")
	assert.Equal(t, 1, strings.Count(err.Error(), "http://"+addr), "the URL is named once")
}

func TestCancelDuringBackoffReturnsPromptly(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetDefaultResponse(&experimenttest.Response{Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"30"}}})
	// The retry's debug line is written just before the 30s wait: cancel
	// once it is there. (Cancelling a fixed time after the server saw the
	// request could come before a loaded machine's client had read the
	// 503, and the error would then have nothing to say about it.)
	var logs logBuffer
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{FetchRetries: 5,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for ctx.Err() == nil && !strings.Contains(logs.String(), `msg="experiment: fetch retry"`) {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	_, err := c.FetchV2(ctx, &experiment.User{UserID: "u"}, nil)
	assert.Less(t, time.Since(start), time.Second)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "503 Service Unavailable", "the error says what was being retried")
	assert.Equal(t, 1, s.RequestCount())
}

func TestCancelDuringRequest(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetDefaultResponse(&experimenttest.Response{Hang: true})
	c := newTestRemoteClient(t, s.URL, nil)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.FetchV2(ctx, &experiment.User{UserID: "u"}, nil)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
}

func TestFetchV2Async(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetEvaluator(func(u *experiment.User) map[string]any {
		return map[string]any{"f": map[string]any{"key": u.UserID}}
	})
	c := newTestRemoteClient(t, s.URL, nil)

	user := &experiment.User{UserID: "first"}
	ch := c.FetchV2Async(t.Context(), user, nil)
	user.UserID = "changed" // the user was read before FetchV2Async returned
	r, ok := <-ch
	require.True(t, ok)
	require.NoError(t, r.Err)
	assert.Equal(t, "first", r.Variants["f"].Key)
	_, ok = <-ch
	assert.False(t, ok, "one result, then closed")

	s.Script(experimenttest.Response{Status: http.StatusUnauthorized})
	r = <-c.FetchV2Async(t.Context(), user, nil)
	assert.ErrorIs(t, r.Err, experiment.ErrUnauthorized, "errors are delivered")
	assert.Nil(t, r.Variants)

	// Nobody receives: the goroutine still ends (Close waits for it).
	c.FetchV2Async(t.Context(), user, nil)
}

func TestCloseCancelsAndWaits(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetDefaultResponse(&experimenttest.Response{Hang: true})
	c, err := experiment.NewRemoteClient(remoteKey, &experiment.RemoteConfig{ServerURL: s.URL, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ch := c.FetchV2Async(t.Context(), &experiment.User{UserID: "u"}, nil)
	for s.RequestCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, c.Close())
	r := <-ch
	assert.ErrorIs(t, r.Err, experiment.ErrClosed)

	_, err = c.FetchV2(t.Context(), nil, nil)
	assert.ErrorIs(t, err, experiment.ErrClosed)
	r = <-c.FetchV2Async(t.Context(), nil, nil)
	assert.ErrorIs(t, r.Err, experiment.ErrClosed)
	require.NoError(t, c.Close(), "Close twice")
}

func TestConcurrentFetches(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetEvaluator(func(u *experiment.User) map[string]any {
		return map[string]any{"echo": map[string]any{"key": "on", "value": u.UserID}}
	})
	c := newTestRemoteClient(t, s.URL, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("user-%d", i)
			v, err := c.FetchV2(t.Context(), &experiment.User{UserID: id}, nil)
			if err == nil && v["echo"].Value != id {
				err = fmt.Errorf("got %q for %s", v["echo"].Value, id)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, 64, s.RequestCount())
}

func TestSecretRedacts(t *testing.T) {
	remoteLeakCheck(t)
	k := experiment.Secret(remoteKey)
	fp := k.Fingerprint()
	assert.Regexp(t, `^[0-9a-f]{8}$`, fp)
	assert.Equal(t, fp, experiment.Secret(remoteKey).Fingerprint(), "stable")
	assert.NotEqual(t, fp, experiment.Secret(remoteKey+"x").Fingerprint())
	want := "server…(fp " + fp + ")"
	assert.Equal(t, want, k.String())

	type holder struct {
		Key experiment.Secret `json:"key"`
	}
	js, err := json.Marshal(holder{k})
	require.NoError(t, err)
	text, err := k.MarshalText()
	require.NoError(t, err)
	outputs := []string{
		k.String(), k.GoString(), string(js), string(text),
		fmt.Sprint(k), fmt.Sprintf("%v|%+v|%#v|%s|%q|%x|%X|%d|%10s|%-8v", k, k, k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v", holder{k}), fmt.Sprintf("%+v", &holder{k}), fmt.Sprintf("%#v", holder{k}),
		fmt.Errorf("with %v", k).Error(), fmt.Sprint([]experiment.Secret{k}), fmt.Sprint(map[string]experiment.Secret{"k": k}),
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "key", k, slog.Any("k2", k))
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "key", k, slog.Group("g", "k", k))
	outputs = append(outputs, logs.String())
	for _, out := range outputs {
		assert.NotContains(t, out, remoteKey)
		assert.NotContains(t, out, "T0pS3cret")
		assert.Contains(t, out, fp)
	}
	assert.JSONEq(t, `{"key":"`+want+`"}`, string(js))

	assert.Equal(t, "(empty)", experiment.Secret("").String())
	assert.Empty(t, experiment.Secret("").Fingerprint())
	short := experiment.Secret("abc12")
	assert.Equal(t, "a…(fp "+short.Fingerprint()+")", short.String(), "a short secret shows at most a third")
	assert.NotContains(t, experiment.Secret("ab").String(), "a")
}

// TestKeyNeverLeaks drives every failure with a debug logger and checks
// neither errors nor logs contain the key, even when the server echoes it.
func TestKeyNeverLeaks(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&syncWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{Logger: logger, FetchRetries: 1, FetchTimeout: 100 * time.Millisecond})

	var errs []string
	for _, r := range []experimenttest.Response{
		{Status: 401, Body: "bad key " + remoteKey},
		{Status: 503, Body: "Api-Key " + remoteKey},
		{Status: 200, Body: `{"` + remoteKey + `"`},
		{Hang: true},
	} {
		s.Script(r, r)
		_, err := c.FetchV2(t.Context(), &experiment.User{UserID: "u"}, nil)
		require.Error(t, err)
		errs = append(errs, err.Error(), fmt.Sprintf("%+v %#v", err, err))
	}
	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	require.Contains(t, out, `"msg":"experiment: fetch"`, "debug records were written")
	require.Contains(t, out, `"deployment_key":"server…(fp `)
	for _, e := range append(errs, out) {
		assert.NotContains(t, e, remoteKey)
		assert.NotContains(t, e, "T0pS3cret")
	}
	assert.Contains(t, errs[0], "bad key server…(fp ", "an echoed key is redacted")
}

type syncWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *syncWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestLoggerRule: a custom logger wins over Debug; without one, the
// process's default logger (slog.Default) is used, and Debug lets DEBUG
// records through to it.
func TestLoggerRule(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)

	var buf bytes.Buffer
	var mu sync.Mutex
	custom := slog.New(slog.NewTextHandler(&syncWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := newTestRemoteClient(t, s.URL, &experiment.RemoteConfig{Debug: true, Logger: custom})
	_, err := c.FetchV2(t.Context(), nil, nil)
	require.NoError(t, err)
	s.Script(experimenttest.Response{Status: 400})
	_, err = c.FetchV2(t.Context(), nil, nil)
	require.Error(t, err)
	mu.Lock()
	assert.NotContains(t, buf.String(), "level=DEBUG", "the custom logger's level stands")
	assert.Contains(t, buf.String(), "level=WARN msg=\"experiment: fetch failed\"")
	mu.Unlock()

	prev := slog.Default()
	defer slog.SetDefault(prev)
	for _, debug := range []bool{true, false} {
		var out bytes.Buffer
		slog.SetDefault(slog.New(slog.NewTextHandler(&syncWriter{w: &out, mu: &mu}, nil))) // INFO and up
		c, err := experiment.NewRemoteClient(remoteKey, &experiment.RemoteConfig{ServerURL: s.URL, Debug: debug})
		require.NoError(t, err)
		_, err = c.FetchV2(t.Context(), nil, nil)
		require.NoError(t, err)
		s.Script(experimenttest.Response{Status: 400})
		_, err = c.FetchV2(t.Context(), nil, nil)
		require.Error(t, err)
		c.Close()
		mu.Lock()
		logged := out.String()
		mu.Unlock()
		assert.Equal(t, debug, strings.Contains(logged, "level=DEBUG"), logged)
		assert.Contains(t, logged, "level=WARN")
		assert.NotContains(t, logged, remoteKey)
	}
}

// TestFakeRemoteServer checks the fake itself speaks every form of
// docs/protocol.md#remote-evaluation-request ("Request forms of other SDKs"),
// so other SDKs' requests would be understood too.
func TestFakeRemoteServer(t *testing.T) {
	remoteLeakCheck(t)
	s := newFakeRemote(t)
	s.SetVariants(remoteSampleVariants)
	userJSON := `{"user_id":"u?>","user_properties":{"k":"ü~~~"}}`
	client := &http.Client{}
	defer client.CloseIdleConnections()
	do := func(method, userHeader string, body io.Reader, hdr map[string]string) (int, map[string]json.RawMessage) {
		req, err := http.NewRequestWithContext(t.Context(), method, s.URL+"/sdk/v2/vardata?v=0&d=abcde", body)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Api-Key "+remoteKey)
		if userHeader != "" {
			req.Header.Set("X-Amp-Exp-User", userHeader)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	for name, enc := range map[string]*base64.Encoding{
		"std padded": base64.StdEncoding, "std raw": base64.RawStdEncoding,
		"url padded": base64.URLEncoding, "url raw": base64.RawURLEncoding,
	} {
		status, out := do(http.MethodGet, enc.EncodeToString([]byte(userJSON)), nil, nil)
		assert.Equal(t, 200, status, name)
		assert.Len(t, out, 3, name)
		assert.Equal(t, "u?>", s.LastRequest().User.UserID, name)
	}
	fk := base64.URLEncoding.EncodeToString([]byte(`["banner"]`)) // padded: accepted too
	status, out := do(http.MethodPost, "", strings.NewReader(userJSON), map[string]string{"X-Amp-Exp-Flag-Keys": fk, "X-Amp-Exp-Track": "read-only"})
	assert.Equal(t, 200, status)
	assert.Len(t, out, 1)
	assert.Contains(t, out, "banner")
	assert.Equal(t, "read-only", s.LastRequest().Track)

	status, _ = do(http.MethodPost, "", strings.NewReader(`{"user_id":`), nil)
	assert.Equal(t, 400, status, "bad user JSON")
	status, _ = do(http.MethodGet, "", nil, nil)
	assert.Equal(t, 400, status, "GET without a user")
	status, _ = do(http.MethodPost, "", strings.NewReader(userJSON), map[string]string{"Authorization": "Api-Key nope"})
	assert.Equal(t, 401, status)
	status, _ = do(http.MethodPost, "", strings.NewReader(userJSON), map[string]string{"X-Amp-Exp-Flag-Keys": "!!"})
	assert.Equal(t, 400, status)
	assert.Equal(t, 9, s.RequestCount())
}

func TestDecodeVariants(t *testing.T) {
	got, err := experiment.DecodeVariants([]byte(`{}`))
	require.NoError(t, err)
	assert.Empty(t, got)
	got, err = experiment.DecodeVariants([]byte(` {"a":{"key":"on","value":"on","payload":[1,{"x":null}],"metadata":{"default":false}}} `))
	require.NoError(t, err)
	assert.Equal(t, experiment.Variant{Key: "on", Value: "on", Payload: []any{1.0, map[string]any{"x": nil}}, Metadata: map[string]any{"default": false}}, got["a"])
}

func FuzzDecodeVariants(f *testing.F) {
	for _, seed := range []string{
		`{}`, `null`, `[]`, `""`, ``, `{"a":null}`, `{"a":"on"}`, `{"a":{}}`,
		`{"checkout-flow":{"key":"treatment","value":"treatment","payload":{"discount":20},"metadata":{"experimentKey":"exp-1","flagVersion":7}},"new-nav":{"key":"off","metadata":{"default":true}}}`,
		`{"a":{"key":1,"value":{"x":[1,2.50,"\u00fc"]},"metadata":[1]}}`,
		`{"a":{"key":"on","value":"on"`, `{"a":{"value":1e400}}`, "{\"a\":{\"value\":\"\xff\"}}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := experiment.DecodeVariants(data)
		if err != nil {
			if !errors.Is(err, experiment.ErrMalformedResponse) {
				t.Fatalf("error does not wrap ErrMalformedResponse: %v", err)
			}
			if got != nil {
				t.Fatalf("variants with an error: %v", got)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		// What was decoded encodes again.
		if _, err := json.Marshal(got); err != nil {
			t.Fatalf("decoded variants do not encode: %v", err)
		}
	})
}

// ExampleRemoteClient_FetchV2 fetches a user's variants from a fake
// evaluation server; in production, leave ServerURL empty (or set
// ServerZone) to reach Amplitude.
func ExampleRemoteClient_FetchV2() {
	server := experimenttest.NewRemoteServer("server-example-key")
	defer server.Close()
	server.SetVariants(map[string]any{"checkout-flow": experiment.Variant{Key: "treatment", Value: "treatment"}})

	client, err := experiment.NewRemoteClient("server-example-key", &experiment.RemoteConfig{ServerURL: server.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	track := true // FetchOptions leaves tracking to the server unless set
	variants, err := client.FetchV2(context.Background(), &experiment.User{UserID: "user@company.com"},
		&experiment.FetchOptions{FlagKeys: []string{"checkout-flow"}, TracksExposure: &track})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(variants["checkout-flow"].Value)
	// Output: treatment
}
