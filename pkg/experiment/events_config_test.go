package experiment_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/experiment"
)

func TestEventsURL(t *testing.T) {
	for _, tc := range []struct {
		zone  experiment.ServerZone
		batch bool
		want  string
	}{
		{"", false, "https://api2.amplitude.com/2/httpapi"},
		{experiment.ServerZoneUS, false, "https://api2.amplitude.com/2/httpapi"},
		{experiment.ServerZoneUS, true, "https://api2.amplitude.com/batch"},
		{experiment.ServerZoneEU, false, "https://api.eu.amplitude.com/2/httpapi"},
		{experiment.ServerZoneEU, true, "https://api.eu.amplitude.com/batch"},
	} {
		assert.Equal(t, tc.want, experiment.EventsURL(tc.zone, tc.batch), "%q %v", tc.zone, tc.batch)
	}
}

func TestTrackerDefaultURLFollowsZone(t *testing.T) {
	// An explicit ServerURL wins; otherwise zone and UseBatch pick it. The
	// transport answers locally, so nothing leaves the machine.
	for _, tc := range []struct {
		cfg  experiment.TrackerConfig
		want string
	}{
		{experiment.TrackerConfig{ServerZone: experiment.ServerZoneEU, UseBatch: true}, "https://api.eu.amplitude.com/batch"},
		{experiment.TrackerConfig{}, "https://api2.amplitude.com/2/httpapi"},
		{experiment.TrackerConfig{ServerZone: experiment.ServerZoneEU, ServerURL: "http://127.0.0.1:1/x/2/httpapi"}, "http://127.0.0.1:1/x/2/httpapi"},
	} {
		evtLeakCheck(t)
		got := make(chan string, 1)
		cfg := tc.cfg
		cfg.APIKey = evtAPIKey
		cfg.FlushMaxRetries = -1
		cfg.Logger = (&evtLog{}).logger()
		cfg.HTTPClient = evtLocalClient(func(u string) { got <- u })
		tr, err := experiment.NewTracker(cfg)
		require.NoError(t, err)
		tr.Track(evtEvents(0, 1)...)
		require.NoError(t, tr.Flush(t.Context()))
		assert.Equal(t, tc.want, <-got)
		require.NoError(t, tr.Close(t.Context()))
	}
}

func TestNewServicesValidate(t *testing.T) {
	_, err := experiment.NewExposureService(experiment.ExposureConfig{})
	require.EqualError(t, err, "experiment: exposure config: tracker config: analytics API key is empty")
	_, err = experiment.NewAssignmentService(experiment.AssignmentConfig{})
	require.EqualError(t, err, "experiment: assignment config: tracker config: analytics API key is empty")
	_, err = experiment.NewExposureService(experiment.ExposureConfig{CacheCapacity: -1,
		TrackerConfig: experiment.TrackerConfig{APIKey: "k"}})
	require.EqualError(t, err, "experiment: exposure config: CacheCapacity is negative (-1)")

	// Printing needs no key and starts no sender.
	evtLeakCheck(t)
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Printer: experiment.NewEventPrinter(&bytes.Buffer{})})
	require.NoError(t, err)
	require.NoError(t, svc.Flush(t.Context()))
	require.NoError(t, svc.Close(t.Context()))
}

type evtFailingWriter struct{ n int }

func (w *evtFailingWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("disk full")
}

func TestEventPrinterKeepsTheFirstError(t *testing.T) {
	w := &evtFailingWriter{}
	p := experiment.NewEventPrinter(w)
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Printer: p})
	require.NoError(t, err)
	svc.TrackExposure(evtProtocolUser(), evtProtocolVariants())
	svc.TrackExposure(&experiment.User{UserID: "other"}, evtProtocolVariants())
	assert.Equal(t, 1, w.n, "nothing is written after an error")
	require.EqualError(t, p.Err(), "printing events: disk full")
	require.EqualError(t, svc.Close(t.Context()), "printing events: disk full")
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
