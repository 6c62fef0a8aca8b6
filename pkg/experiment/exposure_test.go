package experiment_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// evtNow is the composed example's time: day 19675.
const evtNow = 1700000000000

// evtProtocolVariants are the results of the example in
// docs/protocol.md#exposure-events: f -> on, g -> off (default).
func evtProtocolVariants() map[string]experiment.Variant {
	return map[string]experiment.Variant{
		"f": {Key: "on", Value: "on", Metadata: map[string]any{
			"flagType": "experiment", "flagVersion": 7.0, "segmentName": "All Other Users", "experimentKey": "exp-1"}},
		"g": {Key: "off", Metadata: map[string]any{
			"default": true, "flagType": "experiment", "flagVersion": 3.0, "segmentName": "All Other Users"}},
	}
}

func evtProtocolUser() *experiment.User {
	return &experiment.User{UserID: "u1", DeviceID: "d1", Groups: map[string][]string{"org id": {"42"}}}
}

// evtHashCode is the hashCode of docs/protocol.md#canonical-string-and-hashcode
// written out naively: over UTF-8 bytes, modulo 2^32, unsigned.
func evtHashCode(s string) uint32 {
	var h uint32
	for _, c := range []byte(s) {
		h = (h << 5) - h + uint32(c)
	}
	return h
}

// evtCanonical is the canonical string of
// docs/protocol.md#canonical-string-and-hashcode written out naively.
func evtCanonical(u *experiment.User, variants map[string]experiment.Variant) string {
	s := u.UserID + " " + u.DeviceID + " "
	for _, k := range slices.Sorted(maps.Keys(variants)) {
		s += k + " " + variants[k].Key + " "
	}
	return s
}

func evtJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return string(data)
}

func TestHashCodeVectors(t *testing.T) {
	// The vectors of docs/protocol.md#canonical-string-and-hashcode, first
	// through the naive reference...
	assert.Equal(t, uint32(891496898), evtHashCode("u1 d1 f on g off "))
	assert.Equal(t, uint32(3108135048), evtHashCode("f u1 d1 f on g off "))
	assert.Equal(t, "u1 d1 f on g off ", evtCanonical(evtProtocolUser(), evtProtocolVariants()))

	// ...then through the events: the exposure's insert_id hashes
	// flagKey + " " + canonical, the assignment's the canonical alone.
	at := time.UnixMilli(evtNow)
	events := experiment.ExposureEvents(evtProtocolUser(), evtProtocolVariants(), at)
	require.Len(t, events, 1)
	assert.Equal(t, "u1 d1 3108135048 19675", events[0].InsertID)
	ev, ok := experiment.AssignmentEvent(evtProtocolUser(), evtProtocolVariants(), at, false)
	require.True(t, ok)
	assert.Equal(t, "u1 d1 891496898 19675", ev.InsertID)
}

func TestExposureEventsProtocolExample(t *testing.T) {
	events := experiment.ExposureEvents(evtProtocolUser(), evtProtocolVariants(), time.UnixMilli(evtNow))
	require.Len(t, events, 1, "only f is exposed: g is a default variant")
	assert.JSONEq(t, `{"event_type":"[Experiment] Exposure","user_id":"u1","device_id":"d1",
		"event_properties":{"[Experiment] Flag Key":"f","[Experiment] Variant":"on",
		  "[Experiment] Experiment Key":"exp-1",
		  "metadata":{"flagType":"experiment","flagVersion":7,"segmentName":"All Other Users","experimentKey":"exp-1"}},
		"user_properties":{"$set":{"[Experiment] f":"on"},"$unset":{}},
		"groups":{"org id":["42"]},
		"insert_id":"u1 d1 3108135048 19675","time":1700000000000}`, evtJSON(t, events[0]))
}

func TestExposureEventsRules(t *testing.T) {
	at := time.UnixMilli(evtNow)
	user := &experiment.User{UserID: "u1", DeviceID: "d1"}
	one := func(v experiment.Variant) map[string]any {
		t.Helper()
		events := experiment.ExposureEvents(user, map[string]experiment.Variant{"f": v}, at)
		if len(events) == 0 {
			return nil
		}
		require.Len(t, events, 1)
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(evtJSON(t, events[0])), &m))
		return m
	}

	t.Run("trackExposure false is skipped", func(t *testing.T) {
		assert.Nil(t, one(experiment.Variant{Key: "on", Metadata: map[string]any{"trackExposure": false}}))
		assert.NotNil(t, one(experiment.Variant{Key: "on", Metadata: map[string]any{"trackExposure": true}}))
		assert.NotNil(t, one(experiment.Variant{Key: "on", Metadata: map[string]any{"trackExposure": "false"}}), "only the boolean false")
	})
	t.Run("default variants are skipped", func(t *testing.T) {
		assert.Nil(t, one(experiment.Variant{Key: "off", Metadata: map[string]any{"default": true}}))
	})
	t.Run("the value stands in for an empty key", func(t *testing.T) {
		m := one(experiment.Variant{Value: "blue"})
		assert.Equal(t, "blue", m["event_properties"].(map[string]any)["[Experiment] Variant"])
		assert.Equal(t, map[string]any{"[Experiment] f": "blue"}, m["user_properties"].(map[string]any)["$set"])
		assert.NotContains(t, m["event_properties"], "metadata", "no metadata without a metadata map")
	})
	t.Run("no key and no value", func(t *testing.T) {
		m := one(experiment.Variant{Metadata: map[string]any{}})
		assert.NotContains(t, m["event_properties"], "[Experiment] Variant")
		assert.Equal(t, map[string]any{}, m["user_properties"].(map[string]any)["$set"])
		assert.Equal(t, map[string]any{}, m["event_properties"].(map[string]any)["metadata"], "an empty map is sent, as Go does")
	})
	t.Run("mutual exclusion groups set no user property", func(t *testing.T) {
		m := one(experiment.Variant{Key: "on", Metadata: map[string]any{"flagType": "mutual-exclusion-group"}})
		assert.Equal(t, map[string]any{"$set": map[string]any{}, "$unset": map[string]any{}}, m["user_properties"])
		assert.Equal(t, "on", m["event_properties"].(map[string]any)["[Experiment] Variant"])
	})
	t.Run("experiment key only when a non-empty string", func(t *testing.T) {
		for _, ek := range []any{"", 7.0, nil} {
			m := one(experiment.Variant{Key: "on", Metadata: map[string]any{"experimentKey": ek}})
			assert.NotContains(t, m["event_properties"], "[Experiment] Experiment Key", "%v", ek)
		}
	})
	t.Run("no groups", func(t *testing.T) {
		assert.NotContains(t, one(experiment.Variant{Key: "on"}), "groups")
	})
	t.Run("payload is not sent", func(t *testing.T) {
		m := one(experiment.Variant{Key: "on", Payload: map[string]any{"secret": 1}})
		assert.NotContains(t, evtJSON(t, m), "secret")
	})
}

func TestExposureEventsNeedAnID(t *testing.T) {
	at := time.UnixMilli(evtNow)
	v := evtProtocolVariants()
	assert.Nil(t, experiment.ExposureEvents(nil, v, at))
	assert.Nil(t, experiment.ExposureEvents(&experiment.User{Country: "x"}, v, at))
	assert.Nil(t, experiment.ExposureEvents(evtProtocolUser(), nil, at))

	// Either ID is enough; the missing one is an empty string (Go's
	// formation, docs/protocol.md#canonical-string-and-hashcode).
	events := experiment.ExposureEvents(&experiment.User{DeviceID: "d1"}, v, at)
	require.Len(t, events, 1)
	assert.Equal(t, fmt.Sprintf(" d1 %d 19675", evtHashCode("f  d1 f on g off ")), events[0].InsertID)
	assert.Empty(t, events[0].UserID)
	events = experiment.ExposureEvents(&experiment.User{UserID: "u1"}, v, at)
	require.Len(t, events, 1)
	assert.Equal(t, fmt.Sprintf("u1  %d 19675", evtHashCode("f u1  f on g off ")), events[0].InsertID)
}

func TestExposureInsertIDOverUTF8(t *testing.T) {
	user := &experiment.User{UserID: "jürgen", DeviceID: "設備-1"}
	variants := map[string]experiment.Variant{
		"fläg": {Key: "grün"}, "a-flag": {Key: "on"}, "z": {Key: "x"}, "ℌ": {Key: ""}, "empty": {Key: "", Value: "v"},
	}
	at := time.UnixMilli(evtNow + 5*86400000 + 1)
	events := experiment.ExposureEvents(user, variants, at)
	canonical := evtCanonical(user, variants)
	var keys []string
	for _, e := range events {
		key := e.EventProperties["[Experiment] Flag Key"].(string)
		keys = append(keys, key)
		want := fmt.Sprintf("jürgen 設備-1 %d 19680", evtHashCode(key+" "+canonical))
		assert.Equal(t, want, e.InsertID, key)
	}
	// One event per flag, in byte order of the keys; ℌ has neither key nor
	// value but is not a default variant, so it is exposed, as in Go.
	assert.Equal(t, []string{"a-flag", "empty", "fläg", "z", "ℌ"}, keys)
}

func TestExposureEventsFromEngine(t *testing.T) {
	// The bench flags through the real engine: every non-default flag whose
	// trackExposure is not false gets one event, with Go's insert_id.
	fs := evtBenchFlagSet(t, 100)
	user := evtBenchUser()
	variants, err := fs.EvaluateV2(user)
	require.NoError(t, err)
	canonical := evtCanonical(user, variants)
	var want []string
	for k, v := range variants {
		if te, ok := v.Metadata["trackExposure"].(bool); (ok && !te) || v.IsDefault() {
			continue
		}
		want = append(want, k)
	}
	slices.Sort(want)
	events := experiment.ExposureEvents(user, variants, time.UnixMilli(evtNow))
	var got []string
	for _, e := range events {
		key := e.EventProperties["[Experiment] Flag Key"].(string)
		got = append(got, key)
		assert.Equal(t, fmt.Sprintf("%s %s %d 19675", user.UserID, user.DeviceID, evtHashCode(key+" "+canonical)), e.InsertID)
		assert.Equal(t, variants[key].Metadata, e.EventProperties["metadata"])
	}
	assert.Equal(t, want, got)
	assert.NotEmpty(t, got)
}

// evtBenchUser is the benchmark user of testdata/bench/README.md.
func evtBenchUser() *experiment.User {
	u, err := experiment.DecodeUser([]byte(`{"user_id":"user-12","device_id":"0f8fad5b-d9cb-469f-a165-70867728950e","country":"United States","platform":"iOS","version":"2.0.0","os":"iOS 17.1","user_properties":{"plan":"pro","age":30,"tags":["alpha","beta"],"app_version":"1.2.3","email":"alice@example.com","beta_tester":true},"groups":{"org id":["42"]},"group_properties":{"org id":{"42":{"plan":"enterprise","seats":50}}}}`))
	if err != nil {
		panic(err)
	}
	return u
}

func evtBenchFlagSet(tb testing.TB, n int) *experiment.FlagSet {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bench", fmt.Sprintf("flags-%d.json", n)))
	require.NoError(tb, err)
	flags, err := eval.DecodeFlags(data)
	require.NoError(tb, err)
	fs, err := experiment.NewFlagSet(flags, nil)
	require.NoError(tb, err)
	return fs
}

// evtPrinted decodes EventPrinter output.
type evtPrinted struct {
	Event        map[string]any `json:"event"`
	Deduplicated bool           `json:"deduplicated"`
}

func evtReadPrinted(t *testing.T, buf *bytes.Buffer) []evtPrinted {
	t.Helper()
	var out []evtPrinted
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var p evtPrinted
		require.NoError(t, json.Unmarshal(sc.Bytes(), &p), sc.Text())
		out = append(out, p)
	}
	buf.Reset()
	return out
}

func TestExposureServiceDeduplicatesFor24Hours(t *testing.T) {
	clock := newEvtClock(evtNow)
	var buf bytes.Buffer
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{
		Config:  analytics.Config{Now: clock.Now},
		Printer: analytics.NewPrinter(&buf),
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, svc.Close(t.Context())) }()

	user, variants := evtProtocolUser(), evtProtocolVariants()
	decisions := func() []bool {
		var d []bool
		for _, p := range evtReadPrinted(t, &buf) {
			d = append(d, p.Deduplicated)
		}
		return d
	}

	svc.TrackExposure(user, variants)
	assert.Equal(t, []bool{false}, decisions(), "first sight")
	svc.TrackExposure(user, variants)
	assert.Equal(t, []bool{true}, decisions(), "same evaluation")
	svc.TrackExposure(&experiment.User{UserID: "u1", DeviceID: "d1"}, evtProtocolVariants())
	assert.Equal(t, []bool{true}, decisions(), "only IDs and variant keys matter")

	clock.Advance(24*time.Hour - time.Millisecond)
	svc.TrackExposure(user, variants)
	assert.Equal(t, []bool{true}, decisions(), "within the TTL, fixed from insertion")
	clock.Advance(time.Millisecond)
	svc.TrackExposure(user, variants)
	assert.Equal(t, []bool{false}, decisions(), "after the TTL")
	svc.TrackExposure(user, variants)
	assert.Equal(t, []bool{true}, decisions(), "the TTL restarts")

	changed := evtProtocolVariants()
	changed["f"] = experiment.Variant{Key: "treatment", Metadata: changed["f"].Metadata}
	svc.TrackExposure(user, changed)
	assert.Equal(t, []bool{false}, decisions(), "another variant")
	svc.TrackExposure(&experiment.User{UserID: "u2", DeviceID: "d1"}, variants)
	assert.Equal(t, []bool{false}, decisions(), "another user")
	fewer := evtProtocolVariants()
	delete(fewer, "g")
	svc.TrackExposure(user, fewer)
	assert.Equal(t, []bool{false}, decisions(), "another set of flags (g is a default, but part of the evaluation)")

	// A hit is not refreshed: 24h after the first sight of u2 it is new.
	clock.Advance(12 * time.Hour)
	svc.TrackExposure(&experiment.User{UserID: "u2", DeviceID: "d1"}, variants)
	clock.Advance(12 * time.Hour)
	svc.TrackExposure(&experiment.User{UserID: "u2", DeviceID: "d1"}, variants)
	assert.Equal(t, []bool{true, false}, decisions())
}

func TestExposureServiceCacheIsLRU(t *testing.T) {
	var buf bytes.Buffer
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{
		CacheCapacity: 2,
		Printer:       analytics.NewPrinter(&buf),
	})
	require.NoError(t, err)
	v := map[string]experiment.Variant{"f": {Key: "on"}}
	track := func(ids ...string) []bool {
		for _, id := range ids {
			svc.TrackExposure(&experiment.User{UserID: id}, v)
		}
		var d []bool
		for _, p := range evtReadPrinted(t, &buf) {
			d = append(d, p.Deduplicated)
		}
		return d
	}
	assert.Equal(t, []bool{false, false, true}, track("a", "b", "a"))
	// a was used last, so c evicts b.
	assert.Equal(t, []bool{false, true, false}, track("c", "a", "b"))
	require.NoError(t, svc.Close(t.Context()))
	assert.Empty(t, track("z"), "nothing is printed after Close")
}

func TestExposureServiceSkipsUnidentifiedUsers(t *testing.T) {
	var buf bytes.Buffer
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Printer: analytics.NewPrinter(&buf)})
	require.NoError(t, err)
	svc.TrackExposure(nil, evtProtocolVariants())
	svc.TrackExposure(&experiment.User{Country: "DE"}, evtProtocolVariants())
	svc.TrackExposure(evtProtocolUser(), nil)
	svc.TrackExposure(evtProtocolUser(), map[string]experiment.Variant{"g": evtProtocolVariants()["g"]})
	assert.Empty(t, buf.String())
}

func TestExposureServiceCopiesWhatItKeeps(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.Now = newEvtClock(evtNow).Now
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Config: cfg})
	require.NoError(t, err)

	user, variants := evtProtocolUser(), evtProtocolVariants()
	svc.TrackExposure(user, variants)
	// The caller reuses its user and variants before the events are sent.
	user.Groups["org id"][0] = "changed"
	user.Groups["new"] = []string{"x"}
	variants["f"].Metadata["experimentKey"] = "changed"
	variants["f"] = experiment.Variant{Key: "changed"}

	require.NoError(t, svc.Close(t.Context()))
	events := srv.DecodedEvents()
	require.Len(t, events, 1)
	assert.Equal(t, map[string]any{"org id": []any{"42"}}, events[0]["groups"])
	assert.Equal(t, "exp-1", events[0]["event_properties"].(map[string]any)["[Experiment] Experiment Key"])
	assert.Equal(t, "on", events[0]["event_properties"].(map[string]any)["[Experiment] Variant"])
}

func TestExposureServiceSendsOncePerTTL(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	clock := newEvtClock(evtNow)
	cfg := evtConfig(srv, log)
	cfg.Now = clock.Now
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Config: cfg})
	require.NoError(t, err)

	for range 3 {
		svc.TrackExposure(evtProtocolUser(), evtProtocolVariants())
	}
	require.NoError(t, svc.Flush(t.Context()))
	clock.Advance(25 * time.Hour)
	for range 3 {
		svc.TrackExposure(evtProtocolUser(), evtProtocolVariants())
	}
	require.NoError(t, svc.Close(t.Context()))

	var ids []string
	for _, e := range srv.DecodedEvents() {
		ids = append(ids, e["insert_id"].(string))
	}
	assert.Equal(t, []string{"u1 d1 3108135048 19675", "u1 d1 3108135048 19676"}, ids)
	assert.Equal(t, analytics.Stats{Sent: 2}, svc.Stats())
}

// evtGoldenVariants cover every rule of docs/protocol.md, sections
// "Exposure events" and "Assignment events".
func evtGoldenVariants() map[string]experiment.Variant {
	return map[string]experiment.Variant{
		"checkout-flow": {Key: "treatment", Value: "treatment", Payload: map[string]any{"steps": 3.0}, Metadata: map[string]any{
			"flagType": "experiment", "flagVersion": 12.0, "segmentName": "Beta users", "experimentKey": "exp-checkout-2"}},
		"colour": {Key: "", Value: "blue", Metadata: map[string]any{"flagType": "release", "flagVersion": 3.0, "segmentName": "All Other Users"}},
		"mutex": {Key: "slot-a", Value: "slot-a", Metadata: map[string]any{
			"flagType": "mutual-exclusion-group", "flagVersion": 2.0, "segmentName": "All Other Users"}},
		"quiet": {Key: "on", Value: "on", Metadata: map[string]any{"flagType": "release", "flagVersion": 5.0, "trackExposure": false}},
		"legacy": {Key: "off", Metadata: map[string]any{"default": true, "flagType": "experiment", "flagVersion": 9.0,
			"segmentName": "All Other Users"}},
		"grün-ß": {Key: "an", Value: "an", Metadata: map[string]any{"flagVersion": 1.0, "segmentName": "<Ünïcode & co>"}},
	}
}

func evtGoldenUsers() []*experiment.User {
	return []*experiment.User{
		{UserID: "user-1", DeviceID: "device-1", Country: "DE", Groups: map[string][]string{"org id": {"42"}}},
		{DeviceID: "device-only-2"},
		{Country: "no IDs: skipped"},
		{UserID: "user-1", DeviceID: "device-1"}, // a duplicate
	}
}

func TestExposureGoldenPayload(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	log := &evtLog{}
	cfg := evtConfig(srv, log)
	cfg.Now = newEvtClock(evtNow).Now
	cfg.Library = "experiment-go-cli/test"
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Config: cfg})
	require.NoError(t, err)
	for _, u := range evtGoldenUsers() {
		svc.TrackExposure(u, evtGoldenVariants())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, svc.Close(ctx))

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	evtGolden(t, "exposure_payload.json", evtIndent(t, reqs[0].Body))
	assert.Len(t, reqs[0].Events, 8, "4 exposed flags (not quiet, not legacy) for 2 users")
	assert.NotContains(t, log.String(), "level=WARN")
}

func TestPrintEventsGolden(t *testing.T) {
	// The CLI's --print-events: exposure and assignment services sharing a
	// printer, nothing sent, de-duplication decisions shown.
	var buf bytes.Buffer
	p := analytics.NewPrinter(&buf)
	tc := analytics.Config{Now: newEvtClock(evtNow).Now, Library: "experiment-go-cli/test"}
	exp, err := experiment.NewExposureService(experiment.ExposureConfig{Config: tc, Printer: p})
	require.NoError(t, err)
	asg, err := experiment.NewAssignmentService(experiment.AssignmentConfig{Config: tc, Printer: p})
	require.NoError(t, err)
	for _, u := range evtGoldenUsers() {
		exp.TrackExposure(u, evtGoldenVariants())
		asg.TrackAssignment(u, evtGoldenVariants())
	}
	require.NoError(t, exp.Close(t.Context()))
	require.NoError(t, asg.Close(t.Context()))
	assert.Equal(t, analytics.Stats{}, exp.Stats())
	evtGolden(t, "print_events.jsonl", buf.Bytes())
	for line := range strings.Lines(buf.String()) {
		assert.True(t, json.Valid([]byte(line)), line)
		assert.NotContains(t, line, "\\u003c", "no HTML escaping")
	}
}

// TestExposureServiceBlockingDeliversEveryExposure: exposures of many
// users through a blocking queue, with batches that end inside an
// evaluation's events (so parallel senders build one record's events at
// once): every exposure arrives once, as ExposureEvents builds it.
func TestExposureServiceBlockingDeliversEveryExposure(t *testing.T) {
	evtLeakCheck(t)
	srv := newEvtServer(t)
	srv.SetLatency(2 * time.Millisecond)
	log := &evtLog{}
	clock := newEvtClock(evtNow)
	cfg := evtConfig(srv, log)
	cfg.Now = clock.Now
	cfg.Overflow = analytics.OverflowBlock
	cfg.FlushQueueSize = 13 // the bench user has about 74 exposures
	cfg.QueueCapacity = 50
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Config: cfg})
	require.NoError(t, err)

	fs := evtBenchFlagSet(t, 100)
	want := make(map[string]string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				u := evtBenchUser()
				u.UserID = fmt.Sprintf("user-%d-%d", g, i)
				v, err := fs.EvaluateV2(u)
				if !assert.NoError(t, err) {
					return
				}
				assert.NoError(t, svc.TrackExposureContext(t.Context(), u, v))
				mu.Lock()
				for _, e := range experiment.ExposureEvents(u, v, clock.Now()) {
					want[e.InsertID] = evtJSON(t, e.EventProperties)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.NoError(t, svc.Close(t.Context()))

	got := make(map[string]string)
	for _, e := range srv.DecodedEvents() {
		id := e["insert_id"].(string)
		if _, twice := got[id]; twice {
			t.Fatalf("exposure %s arrived twice", id)
		}
		got[id] = evtJSON(t, e["event_properties"])
	}
	assert.Equal(t, want, got)
	assert.Equal(t, analytics.Stats{Sent: len(want)}, svc.Stats())
}

// TestExposureServiceForgetsWhatItCouldNotQueue: an evaluation whose
// events were not queued (the caller's context ended while the queue was
// full) is not taken for a duplicate the next time.
func TestExposureServiceForgetsWhatItCouldNotQueue(t *testing.T) {
	evtLeakCheck(t)
	srv, cfg, _, arrived, release := evtHeldBlocking(t, 1)
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Config: cfg})
	require.NoError(t, err)

	other := evtProtocolUser()
	other.UserID = "u2"
	require.NoError(t, svc.TrackExposureContext(t.Context(), other, evtProtocolVariants())) // sent, held
	<-arrived
	require.NoError(t, svc.TrackExposureContext(t.Context(), other, map[string]experiment.Variant{"f": {Key: "on"}})) // queued
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.ErrorIs(t, svc.TrackExposureContext(ctx, evtProtocolUser(), evtProtocolVariants()), context.Canceled)

	close(release)
	require.NoError(t, svc.TrackExposureContext(t.Context(), evtProtocolUser(), evtProtocolVariants()))
	var lost *analytics.LostEventsError
	require.ErrorAs(t, svc.Close(t.Context()), &lost)
	assert.Equal(t, 1, lost.Failed, "the exposure not queued the first time")
	var users []string
	for _, e := range srv.DecodedEvents() {
		users = append(users, e["user_id"].(string))
	}
	assert.Equal(t, []string{"u2", "u2", "u1"}, users, "u1's exposure was sent the second time")
}

// TestExposureServiceRemembersWhatItPartlyQueued: when the caller's context
// ends after some of an evaluation's events were queued, the evaluation
// stays remembered, so the next one like it does not queue those again;
// the error says how many were not queued.
func TestExposureServiceRemembersWhatItPartlyQueued(t *testing.T) {
	evtLeakCheck(t)
	srv, cfg, _, arrived, release := evtHeldBlocking(t, 1)
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{Config: cfg})
	require.NoError(t, err)

	other := evtProtocolUser()
	other.UserID = "u2"
	require.NoError(t, svc.TrackExposureContext(t.Context(), other, map[string]experiment.Variant{"f": {Key: "on"}})) // sent, held
	<-arrived
	two := map[string]experiment.Variant{"f": {Key: "on"}, "h": {Key: "on"}}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err = svc.TrackExposureContext(ctx, evtProtocolUser(), two) // one queued, one waits
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "1 of 2 events not queued")

	close(release)
	require.NoError(t, svc.TrackExposureContext(t.Context(), evtProtocolUser(), two))
	var lost *analytics.LostEventsError
	require.ErrorAs(t, svc.Close(t.Context()), &lost)
	assert.Equal(t, 1, lost.Failed, "the exposure not queued")
	assert.Equal(t, analytics.Stats{Sent: 2, Failed: 1}, svc.Stats(), "3 events tracked")
	var users []string
	for _, e := range srv.DecodedEvents() {
		users = append(users, e["user_id"].(string))
	}
	assert.Equal(t, []string{"u2", "u1"}, users, "u1's queued exposure was not queued again")
}
