package experiment_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/experiment"
)

// AssignmentTracker, for evaluations made outside a LocalClient (a relay's
// remote evaluations): the same user with the same variants is sent once;
// Flush delivers without closing, Close stops the sender.
func TestAssignmentTrackerDeduplicatesAndFlushes(t *testing.T) {
	noLeaks(t)
	srv := newEvtServer(t)
	var log evtLog
	tr, err := experiment.NewAssignmentTracker(evtConfig(srv, &log), 0)
	require.NoError(t, err)
	user := &experiment.User{UserID: "u1"}
	variants := map[string]experiment.Variant{"f": {Key: "on", Value: "on"}}

	tr.TrackAssignment(user, variants)
	tr.TrackAssignment(user, variants) // a duplicate within 24 h
	tr.TrackAssignment(&experiment.User{UserID: "u2"}, variants)
	require.NoError(t, tr.Flush(t.Context()))
	assert.Equal(t, 2, srv.EventCount(), "one event per distinct evaluation, delivered by Flush")
	assert.Equal(t, 2, tr.Stats().Sent)

	require.NoError(t, tr.Close(t.Context()))
	tr.TrackAssignment(&experiment.User{UserID: "u3"}, variants) // after Close: nothing
	assert.Equal(t, 2, srv.EventCount())
}
