package experiment_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/experiment"
)

func TestNewServicesValidate(t *testing.T) {
	_, err := experiment.NewExposureService(experiment.ExposureConfig{})
	require.EqualError(t, err, "exposure config: analytics config: API key is empty")
	assert.ErrorIs(t, err, experiment.ErrInvalidConfig)
	assert.ErrorIs(t, err, analytics.ErrInvalidConfig)
	_, err = experiment.NewAssignmentService(experiment.AssignmentConfig{})
	require.EqualError(t, err, "assignment config: analytics config: API key is empty")
	_, err = experiment.NewExposureService(experiment.ExposureConfig{CacheCapacity: -1,
		Config: analytics.Config{APIKey: "k"}})
	require.EqualError(t, err, "exposure config: CacheCapacity is negative (-1)")

	// Printing needs no key and starts no sender.
	evtLeakCheck(t)
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Printer: analytics.NewPrinter(&bytes.Buffer{})})
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
	p := analytics.NewPrinter(w)
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Printer: p})
	require.NoError(t, err)
	svc.TrackExposure(evtProtocolUser(), evtProtocolVariants())
	svc.TrackExposure(&experiment.User{UserID: "other"}, evtProtocolVariants())
	assert.Equal(t, 1, w.n, "nothing is written after an error")
	require.EqualError(t, p.Err(), "printing events: disk full")
	require.EqualError(t, svc.Close(t.Context()), "printing events: disk full")
}
