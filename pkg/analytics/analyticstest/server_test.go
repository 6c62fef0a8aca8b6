package analyticstest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newEvtServer(t *testing.T) *analyticstest.Server {
	t.Helper()
	s := analyticstest.NewServer()
	t.Cleanup(s.Close)
	return s
}

func TestServer(t *testing.T) {
	srv := newEvtServer(t)
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return resp.StatusCode, m
	}

	body := `{"api_key":"k","events":[{"event_type":"a","user_id":"u"},{"event_type":"b","device_id":"d","time":1}]}`
	status, m := post(analyticstest.Path, body)
	assert.Equal(t, 200, status)
	assert.Equal(t, 200.0, m["code"])
	assert.Equal(t, 2.0, m["events_ingested"])
	assert.Equal(t, float64(len(body)), m["payload_size_bytes"])
	assert.InDelta(t, float64(time.Now().UnixMilli()), m["server_upload_time"], 60000)
	status, _ = post(analyticstest.BatchPath, `{"api_key":"k","events":[{"event_type":"c","user_id":"u"}]}`)
	assert.Equal(t, 200, status)
	assert.Len(t, srv.Events(), 3)

	// Amplitude's validation, nothing ingested.
	status, m = post(analyticstest.Path, `{"api_key":"k","events":[{"event_type":"a","user_id":"u"},{"user_id":"u","time":"x"},{"event_type":"c"}]}`)
	assert.Equal(t, 400, status)
	assert.Equal(t, map[string]any{"event_type": []any{1.0}, "device_id": []any{2.0}}, m["events_with_missing_fields"])
	assert.Equal(t, map[string]any{"time": []any{1.0}}, m["events_with_invalid_fields"])
	status, m = post(analyticstest.Path, `{"events":[]}`)
	assert.Equal(t, 400, status)
	assert.Equal(t, "api_key", m["missing_field"])
	status, _ = post(analyticstest.Path, `not json`)
	assert.Equal(t, 400, status)
	srv.RequireAPIKey("right")
	_, m = post(analyticstest.Path, `{"api_key":"wrong","events":[]}`)
	assert.Equal(t, "Invalid API key: wrong", m["error"])
	srv.RequireAPIKey("")

	srv.SetMaxEvents(1)
	status, _ = post(analyticstest.Path, body)
	assert.Equal(t, 413, status)
	srv.SetMaxEvents(0)
	srv.SetDown(502)
	status, _ = post(analyticstest.Path, body)
	assert.Equal(t, 502, status)
	srv.Script(analyticstest.Reply{}, analyticstest.Reply{Status: 429, Body: `{"code":429}`})
	status, _ = post(analyticstest.Path, body) // scripted: normal
	assert.Equal(t, 200, status)
	status, _ = post(analyticstest.Path, body)
	assert.Equal(t, 429, status)
	srv.SetDown(0)

	assert.Len(t, srv.Events(), 5)
	reqs := srv.Requests()
	require.Len(t, reqs, 10)
	assert.Equal(t, "k", reqs[0].APIKey)
	assert.Equal(t, []int{200, 200, 400, 400, 400, 400, 413, 502, 200, 429}, func() []int {
		var s []int
		for _, r := range reqs[:10] {
			s = append(s, r.Status)
		}
		return s
	}())

	resp, err := http.Get(srv.EventsURL())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}
