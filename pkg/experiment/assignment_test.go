package experiment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/experiment"
)

func TestAssignmentEventProtocol(t *testing.T) {
	ev, ok := experiment.AssignmentEvent(evtProtocolUser(), evtProtocolVariants(), time.UnixMilli(evtNow), false)
	require.True(t, ok)
	// One event for all flags, defaults included; no groups (as Go and
	// Python); default variants are unset.
	assert.JSONEq(t, `{"event_type":"[Experiment] Assignment","user_id":"u1","device_id":"d1",
		"event_properties":{"f.variant":"on","f.details":"v7 rule:All Other Users",
		  "g.variant":"off","g.details":"v3 rule:All Other Users"},
		"user_properties":{"$set":{"[Experiment] f":"on"},"$unset":{"[Experiment] g":"-"}},
		"insert_id":"u1 d1 891496898 19675","time":1700000000000}`, evtJSON(t, ev))
}

func TestAssignmentEventRules(t *testing.T) {
	at := time.UnixMilli(evtNow)
	user := &experiment.User{UserID: "u1"}
	props := func(v experiment.Variant) (map[string]any, map[string]any) {
		t.Helper()
		ev, ok := experiment.AssignmentEvent(user, map[string]experiment.Variant{"f": v}, at, false)
		require.True(t, ok)
		return ev.EventProperties, ev.UserProperties
	}

	t.Run("details need a non-zero version and a segment name", func(t *testing.T) {
		for _, tc := range []struct {
			meta map[string]any
			want any
		}{
			{map[string]any{"flagVersion": 7.0, "segmentName": "s"}, "v7 rule:s"},
			{map[string]any{"flagVersion": 7, "segmentName": "s"}, "v7 rule:s"},
			{map[string]any{"flagVersion": json.Number("12"), "segmentName": "s"}, "v12 rule:s"},
			{map[string]any{"flagVersion": 1e6, "segmentName": "s"}, "v1e+06 rule:s"}, // Go's %v
			{map[string]any{"flagVersion": 2.5, "segmentName": "s"}, "v2.5 rule:s"},
			{map[string]any{"flagVersion": 0.0, "segmentName": "s"}, nil},
			{map[string]any{"flagVersion": "7", "segmentName": "s"}, nil},
			{map[string]any{"flagVersion": 7.0, "segmentName": ""}, nil},
			{map[string]any{"flagVersion": 7.0}, nil},
			{nil, nil},
		} {
			ep, _ := props(experiment.Variant{Key: "on", Metadata: tc.meta})
			assert.Equal(t, tc.want, ep["f.details"], "%v", tc.meta)
			assert.Equal(t, "on", ep["f.variant"])
		}
	})
	t.Run("the variant key, even when empty", func(t *testing.T) {
		ep, up := props(experiment.Variant{Value: "blue"})
		assert.Equal(t, "", ep["f.variant"])
		assert.Equal(t, map[string]any{"[Experiment] f": ""}, up["$set"])
	})
	t.Run("mutual exclusion groups: event property only", func(t *testing.T) {
		ep, up := props(experiment.Variant{Key: "a", Metadata: map[string]any{"flagType": "mutual-exclusion-group", "default": true}})
		assert.Equal(t, "a", ep["f.variant"])
		assert.Equal(t, map[string]any{"$set": map[string]any{}, "$unset": map[string]any{}}, up)
	})
	t.Run("trackExposure false is still assigned", func(t *testing.T) {
		_, up := props(experiment.Variant{Key: "on", Metadata: map[string]any{"trackExposure": false}})
		assert.Equal(t, map[string]any{"[Experiment] f": "on"}, up["$set"])
	})
	t.Run("no user, no IDs, no variants", func(t *testing.T) {
		_, ok := experiment.AssignmentEvent(nil, evtProtocolVariants(), at, false)
		assert.False(t, ok)
		_, ok = experiment.AssignmentEvent(&experiment.User{Platform: "iOS"}, evtProtocolVariants(), at, false)
		assert.False(t, ok)
		_, ok = experiment.AssignmentEvent(user, map[string]experiment.Variant{}, at, false)
		assert.False(t, ok)
	})
}

func TestAssignmentEventEvaluatedProps(t *testing.T) {
	user := &experiment.User{
		UserID: "u1", DeviceID: "d1", Country: "DE", Region: "Berlin", City: "Berlin", DMA: "dma",
		Language: "de", Platform: "iOS", Version: "2.0.0", OS: "iOS 17.1", DeviceBrand: "Apple",
		DeviceManufacturer: "Apple Inc.", DeviceModel: "iPhone15,2", Carrier: "Telekom", Library: "my-app/1.0",
		IPAddress: "192.0.2.1", UserProperties: map[string]any{"plan": "pro", "$set": "overwritten"},
		Groups: map[string][]string{"org": {"1"}},
	}
	ev, ok := experiment.AssignmentEvent(user, evtProtocolVariants(), time.UnixMilli(evtNow), true)
	require.True(t, ok)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(evtJSON(t, ev)), &got))
	for field, want := range map[string]any{
		"country": "DE", "region": "Berlin", "city": "Berlin", "dma": "dma", "language": "de", "platform": "iOS",
		"app_version": "2.0.0", "os_name": "iOS 17.1", "device_brand": "Apple", "device_manufacturer": "Apple Inc.",
		"device_model": "iPhone15,2", "carrier": "Telekom", "library": "my-app/1.0", "ip": "192.0.2.1",
	} {
		assert.Equal(t, want, got[field], field)
	}
	assert.NotContains(t, got, "groups")
	assert.Equal(t, map[string]any{
		"plan": "pro", "$set": map[string]any{"[Experiment] f": "on"}, "$unset": map[string]any{"[Experiment] g": "-"},
	}, got["user_properties"])
	assert.Equal(t, map[string]any{"plan": "pro", "$set": "overwritten"}, user.UserProperties, "the user is not modified")

	ev, _ = experiment.AssignmentEvent(user, evtProtocolVariants(), time.UnixMilli(evtNow), false)
	assert.Empty(t, ev.Country)
	assert.Empty(t, ev.Library)
	assert.NotContains(t, ev.UserProperties, "plan")
}

func TestAssignmentServiceDeduplicates(t *testing.T) {
	clock := newEvtClock(evtNow)
	var buf bytes.Buffer
	svc, err := experiment.NewAssignmentService(experiment.AssignmentConfig{
		Config:  analytics.Config{Now: clock.Now},
		Printer: analytics.NewPrinter(&buf),
	})
	require.NoError(t, err)
	decisions := func() []bool {
		var d []bool
		for _, p := range evtReadPrinted(t, &buf) {
			d = append(d, p.Deduplicated)
		}
		return d
	}
	svc.TrackAssignment(evtProtocolUser(), evtProtocolVariants())
	svc.TrackAssignment(evtProtocolUser(), evtProtocolVariants())
	assert.Equal(t, []bool{false, true}, decisions())
	// Only defaults: still one assignment event (unlike exposures).
	svc.TrackAssignment(evtProtocolUser(), map[string]experiment.Variant{"g": evtProtocolVariants()["g"]})
	assert.Equal(t, []bool{false}, decisions())
	clock.Advance(24 * time.Hour)
	svc.TrackAssignment(evtProtocolUser(), evtProtocolVariants())
	assert.Equal(t, []bool{false}, decisions())
	require.NoError(t, svc.Close(t.Context()))
}

func TestAssignmentGoldenPayload(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.Now = newEvtClock(evtNow).Now
	cfg.Library = "experiment-go-cli/test"
	minID := 1
	cfg.MinIDLength = &minID
	svc, err := experiment.NewAssignmentService(experiment.AssignmentConfig{Config: cfg, SendEvaluatedProps: true})
	require.NoError(t, err)
	for _, u := range evtGoldenUsers() {
		svc.TrackAssignment(u, evtGoldenVariants())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, svc.Close(ctx))

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	evtGolden(t, "assignment_payload.json", evtIndent(t, reqs[0].Body))
	assert.Len(t, reqs[0].Events, 2, "one event per evaluation, the duplicate held back")
	assert.Equal(t, analytics.Stats{Sent: 2}, svc.Stats())
}
