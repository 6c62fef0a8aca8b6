package experiment_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

// defaultAndMatch: "on" serves a variant to everyone; "off" serves its default
// (no segment matches a user without a plan).
var defaultAndMatch = []byte(`[
 {"key":"on","metadata":{"flagVersion":3,"deployed":true},"segments":[{"variant":"v"}],"variants":{"v":{"key":"v","value":"x"}}},
 {"key":"off","metadata":{"flagVersion":1},"segments":[
   {"conditions":[[{"selector":["context","user","user_properties","plan"],"op":"is","values":["pro"]}]],"variant":"v"},
   {"metadata":{"segmentName":"All Other Users"},"variant":"d"}],
  "variants":{"v":{"key":"v","value":"y"},"d":{"key":"d","metadata":{"default":true}}}}
]`)

// Evaluate, the Python SDK's form, drops what EvaluateV2 reports as a
// default variant: the flag that served one is absent.
func TestLocalEvaluateDropsDefaults(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, defaultAndMatch)
	defer srv.Close()
	c := newLocal(t, srv, experiment.LocalConfig{})
	require.NoError(t, c.Start(t.Context()))
	user := &experiment.User{UserID: "u"}

	all, err := c.EvaluateV2(user)
	require.NoError(t, err)
	require.Contains(t, all, "off", "EvaluateV2 keeps the default variant")

	// Evaluate is deprecated: that form is what is tested here.
	got, err := c.Evaluate(user)
	require.NoError(t, err)
	assert.Equal(t, "x", got["on"].Value)
	assert.NotContains(t, got, "off", "Evaluate drops default variants")

	// Evaluate is deprecated: that form is what is tested here.
	got, err = c.Evaluate(&experiment.User{UserID: "u", UserProperties: map[string]any{"plan": "pro"}}, "off")
	require.NoError(t, err)
	assert.Equal(t, "y", got["off"].Value, "a matched segment is not a default")
}

// FlagMetadata is a copy: changing it changes nothing the client serves.
func TestLocalFlagMetadata(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, defaultAndMatch)
	defer srv.Close()
	c := newLocal(t, srv, experiment.LocalConfig{})
	assert.Nil(t, c.FlagMetadata("on"), "no flags before Start")
	require.NoError(t, c.Start(t.Context()))

	md := c.FlagMetadata("on")
	require.NotNil(t, md)
	assert.EqualValues(t, 3, md["flagVersion"])
	assert.Equal(t, true, md["deployed"])
	md["flagVersion"] = 99
	assert.EqualValues(t, 3, c.FlagMetadata("on")["flagVersion"], "the caller's copy is its own")
	assert.Nil(t, c.FlagMetadata("missing"))
}

// FlagMetadata's copy is deep: nested objects and arrays changed by the
// caller are not the client's.
func TestLocalFlagMetadataNested(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, []byte(`[
 {"key":"n","metadata":{"owner":{"team":"growth"},"tags":["a",{"b":1}]},"segments":[{"variant":"v"}],"variants":{"v":{"key":"v"}}},
 {"key":"bare","segments":[{"variant":"v"}],"variants":{"v":{"key":"v"}}}]`))
	defer srv.Close()
	c := newLocal(t, srv, experiment.LocalConfig{})
	require.NoError(t, c.Start(t.Context()))

	md := c.FlagMetadata("n")
	md["owner"].(map[string]any)["team"] = "changed"
	md["tags"].([]any)[0] = "changed"
	md["tags"].([]any)[1].(map[string]any)["b"] = 2
	again := c.FlagMetadata("n")
	assert.Equal(t, map[string]any{"team": "growth"}, again["owner"])
	assert.Equal(t, []any{"a", map[string]any{"b": float64(1)}}, again["tags"])

	bare := c.FlagMetadata("bare")
	assert.NotNil(t, bare, "a loaded flag without metadata has an empty map, not nil")
	assert.Empty(t, bare)
}

// EvaluateV2 shares each variant's Metadata and Payload with the flag set
// instead of copying them: evaluating twice gives equal maps, the same
// metadata map, and what a caller does with its own map (reading the
// variants, encoding them, changing the map) changes nothing the set
// serves next.
func TestEvaluateV2SharesVariantData(t *testing.T) {
	flags, err := eval.DecodeFlags([]byte(`[{"key":"p","metadata":{"flagVersion":2},
	  "segments":[{"variant":"v","metadata":{"segmentName":"All"}}],
	  "variants":{"v":{"key":"v","value":"x","payload":{"n":[1,2]},"metadata":{"k":"m"}}}}]`))
	require.NoError(t, err)
	fs, err := experiment.NewFlagSet(flags, nil)
	require.NoError(t, err)
	user := &experiment.User{UserID: "u1"}
	first, err := fs.EvaluateV2(user)
	require.NoError(t, err)
	snapshot, err := json.Marshal(first)
	require.NoError(t, err)

	for _, v := range first { // what callers do: read, and own the map
		_ = v.IsDefault() || v.IsDeployed()
	}
	first["added"] = experiment.Variant{Key: "mine"}
	delete(first, "p")

	second, err := fs.EvaluateV2(user)
	require.NoError(t, err)
	again, err := json.Marshal(second)
	require.NoError(t, err)
	assert.JSONEq(t, string(snapshot), string(again), "the set serves what it served")
	third, err := fs.EvaluateV2(user)
	require.NoError(t, err)
	assert.Equal(t, second, third)
	assert.Equal(t, reflect.ValueOf(second["p"].Metadata).UnsafePointer(), reflect.ValueOf(third["p"].Metadata).UnsafePointer(),
		"metadata is shared, not copied")
	assert.Equal(t, map[string]any{"n": []any{1.0, 2.0}}, third["p"].Payload)
	assert.Equal(t, "m", third["p"].Metadata["k"])
}
