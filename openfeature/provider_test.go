package openfeature_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"go.uber.org/goleak"

	provider "github.com/flagkit/experiment/openfeature"
)

// TestMain checks that nothing the tests started outlives them: the
// provider's goroutine, the client's updaters, the SDK's event executors
// (each test's API is shut down).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const key = "server-key-1"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testFlags(t *testing.T) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "flags.json"))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// newProvider makes a provider polling srv every 20 ms.
func newProvider(t *testing.T, srv *experimenttest.FlagServer, cfg experiment.LocalConfig, opts *provider.Options) *provider.Provider {
	t.Helper()
	cfg.ServerURL = srv.URL
	cfg.Logger = quiet
	if cfg.FlagConfigPollingInterval == 0 {
		cfg.FlagConfigPollingInterval = 20 * time.Millisecond
	}
	p, err := provider.New(srv.Key, &cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newAPI is an OpenFeature API of the test's own (no global state shared
// between tests), shut down when the test ends, which shuts the provider.
func newAPI(t *testing.T) *openfeature.EvaluationAPI {
	api := isolated.NewAPI()
	t.Cleanup(func() {
		if err := api.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return api
}

// ready serves testdata/flags.json and returns an OpenFeature client whose
// provider is initialized.
func ready(t *testing.T) (*openfeature.Client, *provider.Provider, *experimenttest.FlagServer, *openfeature.EvaluationAPI) {
	t.Helper()
	srv := experimenttest.NewFlagServer(key, testFlags(t))
	t.Cleanup(srv.Close)
	p := newProvider(t, srv, experiment.LocalConfig{}, nil)
	api := newAPI(t)
	if err := api.SetProviderAndWait(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return api.NewClient(), p, srv, api
}

func evalCtx(targetingKey string, attrs map[string]any) openfeature.EvaluationContext {
	return openfeature.NewEvaluationContext(targetingKey, attrs)
}

type want struct {
	value   any
	reason  openfeature.Reason
	variant string
	code    openfeature.ErrorCode
}

func check[T any](t *testing.T, name string, d openfeature.GenericEvaluationDetails[T], err error, w want) {
	t.Helper()
	if w.code != "" && err == nil {
		t.Errorf("%s: no error, want %s", name, w.code)
	}
	if w.code == "" && err != nil {
		t.Errorf("%s: %v", name, err)
	}
	if !equal(d.Value, w.value) || d.Reason != w.reason || d.Variant != w.variant || d.ErrorCode != w.code {
		t.Errorf("%s: got value %#v reason %s variant %q code %q (%s); want %#v %s %q %q",
			name, d.Value, d.Reason, d.Variant, d.ErrorCode, d.ErrorMessage, w.value, w.reason, w.variant, w.code)
	}
}

func jsonOf(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func equal(a, b any) bool {
	ja, ea := jsonOf(a)
	jb, eb := jsonOf(b)
	return ea == nil && eb == nil && ja == jb
}

func TestTypedValuesAndReasons(t *testing.T) {
	client, _, _, _ := ready(t)
	ctx := t.Context()
	pro := evalCtx("user-1", map[string]any{"plan": "pro"})
	free := evalCtx("user-1", map[string]any{"plan": "free"})

	b, err := client.BooleanValueDetails(ctx, "static-on", false, free)
	check(t, "static-on bool", b, err, want{true, openfeature.StaticReason, "on", ""})
	b, err = client.BooleanValueDetails(ctx, "rollout-100", false, evalCtx("", map[string]any{"device_id": "d-1"}))
	check(t, "100% rollout over two allocations is not a split", b, err, want{true, openfeature.StaticReason, "on", ""})
	b, err = client.BooleanValueDetails(ctx, "no-value", false, free)
	check(t, "a variant without a value is its key", b, err, want{true, openfeature.StaticReason, "on", ""})
	b, err = client.BooleanValueDetails(ctx, "targeted", true, pro)
	check(t, "42 is not a boolean", b, err, want{true, openfeature.ErrorReason, "", openfeature.TypeMismatchCode})

	i, err := client.IntValueDetails(ctx, "targeted", -1, pro)
	check(t, "targeting match", i, err, want{int64(42), openfeature.TargetingMatchReason, "treatment", ""})
	i, err = client.IntValueDetails(ctx, "targeted", -1, free)
	check(t, "fallthrough", i, err, want{int64(7), openfeature.DefaultReason, "control", ""})
	i, err = client.IntValueDetails(ctx, "big", -1, free)
	check(t, "1e+06 is an integer", i, err, want{int64(1000000), openfeature.StaticReason, "v", ""})
	i, err = client.IntValueDetails(ctx, "split", -1, pro)
	check(t, "1.5 is not an integer", i, err, want{int64(-1), openfeature.ErrorReason, "", openfeature.TypeMismatchCode})

	f, err := client.FloatValueDetails(ctx, "split", -1, evalCtx("user-1", nil))
	if err != nil || f.Reason != openfeature.SplitReason || (f.Value != 1.5 || f.Variant != "a") && (f.Value != 2.5 || f.Variant != "b") {
		t.Errorf("split: %+v, %v", f, err)
	}
	f, err = client.FloatValueDetails(ctx, "static-on", -1, free)
	check(t, "on is not a number", f, err, want{float64(-1), openfeature.ErrorReason, "", openfeature.TypeMismatchCode})

	s, err := client.StringValueDetails(ctx, "disabled", "dflt", free)
	check(t, "disabled", s, err, want{"dflt", openfeature.DisabledReason, "on", ""})
	s, err = client.StringValueDetails(ctx, "default-only", "dflt", free)
	check(t, "default variant", s, err, want{"dflt", openfeature.DefaultReason, "off", ""})
	s, err = client.StringValueDetails(ctx, "split", "dflt", evalCtx("", nil))
	check(t, "no user id to bucket: the segment's default variant", s, err, want{"dflt", openfeature.DefaultReason, "off", ""})
	s, err = client.StringValueDetails(ctx, "no-variant", "dflt", free)
	check(t, "no variant", s, err, want{"dflt", openfeature.DefaultReason, "", ""})
	s, err = client.StringValueDetails(ctx, "nope", "dflt", free)
	check(t, "not found", s, err, want{"dflt", openfeature.ErrorReason, "", openfeature.FlagNotFoundCode})
	s, err = client.StringValueDetails(ctx, "cycle-a", "dflt", free)
	check(t, "cycle", s, err, want{"dflt", openfeature.ErrorReason, "", openfeature.GeneralCode})
	s, err = client.StringValueDetails(ctx, "dependent", "dflt", pro)
	check(t, "dependency", s, err, want{"on", openfeature.TargetingMatchReason, "on", ""})
	s, err = client.StringValueDetails(ctx, "dependent", "dflt", free)
	check(t, "dependency not met", s, err, want{"off", openfeature.DefaultReason, "off", ""})
	s, err = client.StringValueDetails(ctx, "json-value", "dflt", free)
	check(t, "object value as string", s, err, want{`{"limit":10}`, openfeature.StaticReason, "v", ""})

	o, err := client.ObjectValueDetails(ctx, "payload", nil, free)
	check(t, "payload", o, err, want{map[string]any{"color": "blue", "sizes": []any{1.0, 2.0}}, openfeature.StaticReason, "v", ""})
	o, err = client.ObjectValueDetails(ctx, "json-value", nil, free)
	check(t, "object value", o, err, want{map[string]any{"limit": 10.0}, openfeature.StaticReason, "v", ""})
	o, err = client.ObjectValueDetails(ctx, "json-text", nil, free)
	check(t, "JSON text value", o, err, want{[]any{1.0, 2.0, 3.0}, openfeature.StaticReason, "v", ""})
	o, err = client.ObjectValueDetails(ctx, "bad-json", "dflt", free)
	check(t, "malformed JSON", o, err, want{"dflt", openfeature.ErrorReason, "", openfeature.ParseErrorCode})
	o, err = client.ObjectValueDetails(ctx, "static-on", "dflt", free)
	check(t, "a string is not an object", o, err, want{"dflt", openfeature.ErrorReason, "", openfeature.TypeMismatchCode})

	b, err = client.BooleanValueDetails(ctx, "static-on", false, evalCtx("u", map[string]any{"groups": 5}))
	check(t, "malformed groups", b, err, want{false, openfeature.ErrorReason, "", openfeature.InvalidContextCode})
}

// TestSplitCoversEveryOutcome: in a 50% rollout both the users rolled out
// and the others (the segment's own variant) were placed by the hash.
func TestSplitCoversEveryOutcome(t *testing.T) {
	client, _, _, _ := ready(t)
	seen := map[string]bool{}
	for _, id := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11", "u12"} {
		d, err := client.StringValueDetails(t.Context(), "rollout-50", "dflt", evalCtx(id, nil))
		if err != nil || d.Reason != openfeature.SplitReason {
			t.Fatalf("%s: %+v %v", id, d, err)
		}
		seen[d.Variant] = true
	}
	if !seen["on"] || !seen["control"] {
		t.Errorf("12 users all got %v: the test needs both outcomes", seen)
	}
}

func TestFlagMetadata(t *testing.T) {
	client, _, _, _ := ready(t)
	d, err := client.StringValueDetails(t.Context(), "targeted", "", evalCtx("user-1", map[string]any{"plan": "pro"}))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"flagType": "experiment", "flagVersion": int64(7), "experimentKey": "exp-7", "segmentName": "Pro users", "deployed": true} {
		if d.FlagMetadata[k] != v {
			t.Errorf("metadata %s = %#v, want %#v (all: %v)", k, d.FlagMetadata[k], v, d.FlagMetadata)
		}
	}
	if v, err := d.FlagMetadata.GetInt("flagVersion"); v != 7 || err != nil {
		t.Errorf("GetInt(flagVersion) = %d, %v", v, err)
	}
}

// TestObjectIsACopy: a caller modifying the object it got does not change
// what the next evaluation returns.
func TestObjectIsACopy(t *testing.T) {
	client, _, _, _ := ready(t)
	v, err := client.ObjectValue(t.Context(), "payload", nil, evalCtx("u", nil))
	if err != nil {
		t.Fatal(err)
	}
	v.(map[string]any)["color"] = "red"
	v.(map[string]any)["sizes"].([]any)[0] = 99.0
	again, _ := client.ObjectValue(t.Context(), "payload", nil, evalCtx("u", nil))
	if !equal(again, map[string]any{"color": "blue", "sizes": []any{1.0, 2.0}}) {
		t.Errorf("the payload was changed through a result: %v", again)
	}
}

func TestContextMapping(t *testing.T) {
	client, _, _, _ := ready(t)
	ctx := t.Context()
	cases := []struct {
		name  string
		ec    openfeature.EvaluationContext
		flag  string
		value string
	}{
		{"groups and group_properties", evalCtx("u", map[string]any{
			"groups":           map[string]any{"org": "acme"},
			"group_properties": map[string]any{"org": map[string]any{"acme": map[string]any{"tier": "gold"}}},
		}), "grouped", "on"},
		{"groups as Go types", evalCtx("u", map[string]any{
			"groups":           map[string][]string{"org": {"acme", "other"}},
			"group_properties": map[string]map[string]any{"org": {"acme": map[string]string{"tier": "gold"}}},
		}), "grouped", "on"},
		{"well-known fields", evalCtx("u", map[string]any{"country": "NZ", "version": "2.1.0"}), "grouped", "kiwi"},
		{"a numeric version is text", evalCtx("u", map[string]any{"country": "NZ", "version": 2.5}), "grouped", "kiwi"},
		{"other attributes are user properties", evalCtx("u", map[string]any{"plan": "pro"}), "targeted", "42"},
		{"user_properties object", evalCtx("u", map[string]any{"user_properties": map[string]any{"plan": "pro"}}), "targeted", "42"},
		{"user_properties wins over a top-level attribute", evalCtx("u", map[string]any{"plan": "pro", "user_properties": map[string]any{"plan": "free"}}), "targeted", "7"},
		{"nil values are absent", evalCtx("u", map[string]any{"country": nil, "groups": nil, "plan": "pro"}), "targeted", "42"},
	}
	for _, c := range cases {
		got, err := client.StringValue(ctx, c.flag, "dflt", c.ec)
		if err != nil || got != c.value {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.value)
		}
	}
	// The targeting key is the user id: it decides the bucket.
	for _, id := range []string{"user-1", "user-2", "user-3"} {
		viaKey, _ := client.StringValueDetails(ctx, "split", "", evalCtx(id, nil))
		viaAttr, _ := client.StringValueDetails(ctx, "split", "", evalCtx("", map[string]any{"user_id": id}))
		overridden, _ := client.StringValueDetails(ctx, "split", "", evalCtx(id, map[string]any{"user_id": "someone-else"}))
		if viaKey.Variant != viaAttr.Variant || viaKey.Variant != overridden.Variant || viaKey.Variant == "" {
			t.Errorf("%s: targetingKey %q, user_id %q, both %q", id, viaKey.Variant, viaAttr.Variant, overridden.Variant)
		}
	}
	type odd struct{ A int }
	for name, attrs := range map[string]map[string]any{
		"country is a list":       {"country": []string{"NZ"}},
		"groups is a string":      {"groups": "acme"},
		"group names are objects": {"groups": map[string]any{"org": map[string]any{}}},
		"user_properties is text": {"user_properties": "plan=pro"},
		"group_properties flat":   {"group_properties": map[string]any{"org": "gold"}},
		"group properties text":   {"group_properties": map[string]any{"org": map[string]any{"acme": "gold"}}},
		"device_id is a struct":   {"device_id": odd{1}},
	} {
		d, err := client.StringValueDetails(ctx, "static-on", "dflt", evalCtx("u", attrs))
		if err == nil || d.ErrorCode != openfeature.InvalidContextCode || d.Value != "dflt" {
			t.Errorf("%s: %+v, %v", name, d, err)
		}
	}
	// Values of any Go type as user properties: no panic, an answer.
	for _, v := range []any{odd{1}, &odd{2}, (*odd)(nil), time.Unix(0, 0), []int{1}, map[int]string{1: "x"}, make(chan int), func() {}} {
		if _, err := client.StringValue(ctx, "targeted", "dflt", evalCtx("u", map[string]any{"plan": v})); err != nil {
			t.Errorf("%T: %v", v, err)
		}
	}
}

// TestTargetingKeyNotAString: a flattened context whose targeting key is
// not a string is INVALID_CONTEXT, not a panic.
func TestTargetingKeyNotAString(t *testing.T) {
	_, p, _, _ := ready(t)
	d := p.StringEvaluation(t.Context(), "static-on", "dflt", openfeature.FlattenedContext{openfeature.TargetingKey: 5})
	if d.Value != "dflt" || d.ResolutionDetail().ErrorCode != openfeature.InvalidContextCode {
		t.Errorf("%+v", d)
	}
}

// TestNotReady: before Init the provider says PROVIDER_NOT_READY itself
// (for callers that use it without the SDK), and through the SDK too.
func TestNotReady(t *testing.T) {
	srv := experimenttest.NewFlagServer(key, testFlags(t))
	defer srv.Close()
	p := newProvider(t, srv, experiment.LocalConfig{}, nil)
	defer p.Shutdown()
	d := p.StringEvaluation(t.Context(), "static-on", "dflt", openfeature.FlattenedContext{})
	if d.Value != "dflt" || d.Reason != openfeature.ErrorReason || d.ResolutionDetail().ErrorCode != openfeature.ProviderNotReadyCode {
		t.Errorf("before Init: %+v", d)
	}
}

func TestInitFailsThenRecovers(t *testing.T) {
	srv := experimenttest.NewFlagServer(key, testFlags(t))
	defer srv.Close()
	srv.SetDown(http.StatusServiceUnavailable)
	p := newProvider(t, srv, experiment.LocalConfig{}, &provider.Options{InitTimeout: 150 * time.Millisecond})
	api := newAPI(t)
	readyCh := make(chan openfeature.EventDetails, 4)
	onReady := func(d openfeature.EventDetails) { readyCh <- d }
	api.AddHandler(openfeature.ProviderReady, &onReady)
	start := time.Now()
	err := api.SetProviderAndWait(t.Context(), p)
	if err == nil {
		t.Fatal("Init succeeded with the server down and no cache")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Init took %v with a 150 ms bound", took)
	}
	client := api.NewClient()
	if client.State() != openfeature.ErrorState {
		t.Errorf("state %s, want ERROR", client.State())
	}
	if _, err := client.BooleanValue(t.Context(), "static-on", false, evalCtx("u", nil)); err == nil {
		t.Error("an evaluation without flags succeeded")
	}
	srv.SetDown(0)
	select {
	case d := <-readyCh:
		if d.ProviderName != provider.Name {
			t.Errorf("READY from %q", d.ProviderName)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no READY once the server answered")
	}
	waitState(t, client, openfeature.ReadyState)
	if v, err := client.BooleanValue(t.Context(), "static-on", false, evalCtx("u", nil)); err != nil || !v {
		t.Errorf("after recovery: %v, %v", v, err)
	}
}

func TestRejectedKeyIsFatal(t *testing.T) {
	srv := experimenttest.NewFlagServer("another-key", testFlags(t))
	defer srv.Close()
	cfg := experiment.LocalConfig{ServerURL: srv.URL, Logger: quiet}
	p, err := provider.New("wrong-key", &cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	api := newAPI(t)
	if err := api.SetProviderAndWait(t.Context(), p); err == nil {
		t.Fatal("Init succeeded with a rejected key")
	}
	client := api.NewClient()
	if client.State() != openfeature.FatalState {
		t.Errorf("state %s, want FATAL", client.State())
	}
	d, _ := client.BooleanValueDetails(t.Context(), "static-on", false, evalCtx("u", nil))
	if d.ErrorCode != openfeature.ProviderFatalCode {
		t.Errorf("evaluation: %+v", d)
	}
}

func waitState(t *testing.T, client *openfeature.Client, s openfeature.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for client.State() != s {
		if time.Now().After(deadline) {
			t.Fatalf("state %s, want %s", client.State(), s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder collects the provider events an API delivers.
type recorder struct {
	mu     sync.Mutex
	events []openfeature.EventDetails
	types  []openfeature.EventType
}

func record(api *openfeature.EvaluationAPI) *recorder {
	r := &recorder{}
	for _, typ := range []openfeature.EventType{openfeature.ProviderReady, openfeature.ProviderConfigChange, openfeature.ProviderStale, openfeature.ProviderError} {
		cb := func(d openfeature.EventDetails) {
			r.mu.Lock()
			r.events = append(r.events, d)
			r.types = append(r.types, typ)
			r.mu.Unlock()
		}
		api.AddHandler(typ, &cb)
	}
	return r
}

// waitFor returns the first event of type typ recorded after index from,
// and its index.
func (r *recorder) waitFor(t *testing.T, typ openfeature.EventType, from int, match func(openfeature.EventDetails) bool) (openfeature.EventDetails, int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for i := from; i < len(r.types); i++ {
			if r.types[i] == typ && (match == nil || match(r.events[i])) {
				d := r.events[i]
				r.mu.Unlock()
				return d, i
			}
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("no %s event after #%d; got %v", typ, from, r.types)
	return openfeature.EventDetails{}, 0
}

func (r *recorder) count(typ openfeature.EventType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.types {
		if x == typ {
			n++
		}
	}
	return n
}

func TestEvents(t *testing.T) {
	client, _, srv, api := ready(t)
	rec := record(api)
	if client.State() != openfeature.ReadyState {
		t.Fatalf("state %s", client.State())
	}

	// A changed flag, removed ones, an added one, and a dependent.
	changed := []byte(`[
 {"key":"static-on","metadata":{"deployed":true,"flagType":"release","flagVersion":3},
  "segments":[{"metadata":{"segmentName":"All Other Users"},"variant":"on"}],
  "variants":{"on":{"key":"on","value":"on"},"off":{"key":"off","metadata":{"default":true}}}},
 {"key":"targeted","metadata":{"deployed":true,"flagVersion":8},
  "segments":[{"variant":"control"}],
  "variants":{"control":{"key":"control","value":"8"}}},
 {"key":"dependent","metadata":{"deployed":true},"dependencies":["targeted"],
  "segments":[
   {"conditions":[[{"selector":["result","targeted","key"],"op":"is","values":["treatment"]}]],"variant":"on"},
   {"variant":"off"}],
  "variants":{"on":{"key":"on","value":"on"},"off":{"key":"off","value":"off"}}},
 {"key":"new-flag","segments":[{"variant":"on"}],"variants":{"on":{"key":"on","value":"on"}}}
]`)
	srv.SetFlags(changed)
	d, i := rec.waitFor(t, openfeature.ProviderConfigChange, 0, nil)
	keys := slices.Clone(d.FlagChanges)
	slices.Sort(keys)
	wantKeys := []string{"bad-json", "big", "cycle-a", "cycle-b", "default-only", "dependent", "disabled", "grouped", "json-text", "json-value",
		"new-flag", "no-value", "no-variant", "payload", "rollout-100", "rollout-50", "split", "targeted"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("FlagChanges %v, want %v (static-on is unchanged; dependent only depends on a change)", keys, wantKeys)
	}
	if v, _ := client.IntValue(t.Context(), "targeted", 0, evalCtx("u", nil)); v != 8 {
		t.Errorf("after the change: %d", v)
	}

	// Updates fail: STALE, the last good flags still served.
	srv.SetDown(http.StatusServiceUnavailable)
	_, i = rec.waitFor(t, openfeature.ProviderStale, i+1, nil)
	waitState(t, client, openfeature.StaleState)
	if v, _ := client.IntValue(t.Context(), "targeted", 0, evalCtx("u", nil)); v != 8 {
		t.Errorf("while stale: %d", v)
	}
	stale := rec.count(openfeature.ProviderStale)
	time.Sleep(100 * time.Millisecond) // several failed polls
	if n := rec.count(openfeature.ProviderStale); n != stale {
		t.Errorf("%d STALE events for one outage: only transitions are events", n)
	}

	// And succeed again: READY.
	srv.SetDown(0)
	rec.waitFor(t, openfeature.ProviderReady, i+1, nil)
	waitState(t, client, openfeature.ReadyState)
}

// TestStaleFromCache: Init with the server down and a cache directory
// succeeds on the cached flags, and the provider says they are stale.
func TestStaleFromCache(t *testing.T) {
	srv := experimenttest.NewFlagServer(key, testFlags(t))
	defer srv.Close()
	dir := t.TempDir()
	first := newProvider(t, srv, experiment.LocalConfig{CacheDir: dir}, nil)
	if err := first.Init(openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	if err := first.ShutdownWithContext(t.Context()); err != nil {
		t.Fatal(err)
	}

	srv.SetDown(http.StatusServiceUnavailable)
	p := newProvider(t, srv, experiment.LocalConfig{CacheDir: dir}, nil)
	api := newAPI(t)
	rec := record(api)
	if err := api.SetProviderAndWait(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, openfeature.ProviderStale, 0, nil)
	client := api.NewClient()
	waitState(t, client, openfeature.StaleState)
	if v, err := client.BooleanValue(t.Context(), "static-on", false, evalCtx("u", nil)); err != nil || !v {
		t.Errorf("cached flags: %v, %v", v, err)
	}
}

func TestShutdown(t *testing.T) {
	srv := experimenttest.NewFlagServer(key, testFlags(t))
	defer srv.Close()
	p := newProvider(t, srv, experiment.LocalConfig{}, nil)
	if err := p.InitWithContext(t.Context(), openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	events := p.EventChannel()
	if err := p.ShutdownWithContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-events:
		if ok {
			t.Error("an event after Shutdown")
		}
	case <-time.After(time.Second):
		t.Error("the event channel is still open after Shutdown")
	}
	n := srv.Requests()
	time.Sleep(100 * time.Millisecond) // five poll intervals
	if m := srv.Requests(); m != n {
		t.Errorf("%d flag requests after Shutdown", m-n)
	}
	if err := p.Init(openfeature.EvaluationContext{}); !errors.Is(err, provider.ErrShutdown) {
		t.Errorf("Init after Shutdown: %v", err)
	}
	if err := p.ShutdownWithContext(t.Context()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// TestConfigCallbacksStillCalled: the provider chains the callbacks of
// the config it was given.
func TestConfigCallbacksStillCalled(t *testing.T) {
	srv := experimenttest.NewFlagServer(key, testFlags(t))
	defer srv.Close()
	var mu sync.Mutex
	updates, statuses := 0, 0
	cfg := experiment.LocalConfig{
		OnUpdate:       func(prev, next *experiment.FlagSet) { mu.Lock(); updates++; mu.Unlock() },
		OnStatusChange: func(experiment.StatusEvent) { mu.Lock(); statuses++; mu.Unlock() },
	}
	p := newProvider(t, srv, cfg, nil)
	if err := p.Init(openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	// Callbacks run on the client's own goroutine, after Init may have
	// returned; a status event still queued at Shutdown is dropped by
	// design, so wait for both before shutting down.
	called := func() (int, int) { mu.Lock(); defer mu.Unlock(); return updates, statuses }
	deadline := time.Now().Add(5 * time.Second)
	for u, s := called(); u == 0 || s == 0; u, s = called() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: OnUpdate called %d times, OnStatusChange %d", u, s)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConcurrentUse evaluates from many goroutines while flags change and
// the provider shuts down: -race and goleak check the rest.
func TestConcurrentUse(t *testing.T) {
	client, p, srv, _ := ready(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ec := evalCtx("user-"+string(rune('a'+g)), map[string]any{"plan": "pro", "n": i})
				client.StringValue(t.Context(), "targeted", "", ec)
				client.BooleanValue(t.Context(), "static-on", false, ec)
				client.ObjectValue(t.Context(), "payload", nil, ec)
			}
		})
	}
	body := testFlags(t)
	for range 5 {
		srv.SetFlags([]byte(`[{"key":"targeted","segments":[{"variant":"v"}],"variants":{"v":{"key":"v","value":"x"}}}]`))
		time.Sleep(30 * time.Millisecond)
		srv.SetFlags(body)
		time.Sleep(30 * time.Millisecond)
	}
	if err := p.ShutdownWithContext(t.Context()); err != nil {
		t.Error(err)
	}
	close(stop)
	wg.Wait()
}

// TestKeyRejectedLater: the server rejecting the key after Init stops
// updates for good: ERROR, and the flags in use are still served.
func TestKeyRejectedLater(t *testing.T) {
	client, _, srv, api := ready(t)
	rec := record(api)
	srv.Script(experimenttest.Reply{Status: http.StatusUnauthorized})
	d, _ := rec.waitFor(t, openfeature.ProviderError, 0, nil)
	if d.ProviderName != provider.Name || d.Message == "" {
		t.Errorf("ERROR event %+v", d)
	}
	waitState(t, client, openfeature.ErrorState)
	if v, err := client.BooleanValue(t.Context(), "static-on", false, evalCtx("u", nil)); err != nil || !v {
		t.Errorf("the flags in use after the key was rejected: %v, %v", v, err)
	}
}
