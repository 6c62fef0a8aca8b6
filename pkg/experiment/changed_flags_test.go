package experiment

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/eval"
)

// changedFlags reports the flags whose configs changed: not those whose
// document only changed its spacing or field order, and those changed
// under an unchanged version. Sets loaded from documents (the client's)
// and sets of decoded flags compare alike.
func TestChangedFlags(t *testing.T) {
	const prevDoc = `[{"key":"a","metadata":{"flagVersion":3},"variants":{"on":{"key":"on","value":"x"}},"segments":[{"variant":"on"}]},
		{"key":"b","variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]},
		{"key":"gone"}]`
	loaded := func(doc string) *FlagSet {
		t.Helper()
		fc, err := loadFlagConfigs([]byte(doc), time.Time{})
		require.NoError(t, err)
		return newFlagSet(fc.snap, nil, nil, fc.refs)
	}
	prev := loaded(prevDoc)
	flags, err := eval.DecodeFlags([]byte(prevDoc))
	require.NoError(t, err)
	decoded, err := NewFlagSet(flags, nil)
	require.NoError(t, err)

	assert.Equal(t, []string{"a", "b", "gone"}, changedFlags(nil, prev), "the first flags are all new")
	assert.Empty(t, changedFlags(prev, loaded(prevDoc)))
	assert.Empty(t, changedFlags(decoded, prev))
	respaced := `[ {"segments": [{"variant": "on"}], "variants": {"on": {"value": "x", "key": "on"}}, "metadata": {"flagVersion": 3}, "key": "a"},
		{"key": "gone"}, {"key": "b", "variants": {"on": {"key": "on"}}, "segments": [{"variant": "on"}]} ]`
	assert.Empty(t, changedFlags(prev, loaded(respaced)), "the same configs, written otherwise")

	next := loaded(`[{"key":"a","metadata":{"flagVersion":3},"variants":{"on":{"key":"on","value":"y"}},"segments":[{"variant":"on"}]},
		{"key":"b","variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]},
		{"key":"new"}]`)
	want := []string{"a", "gone", "new"}
	assert.Equal(t, want, changedFlags(prev, next), "a changed under the same version, gone removed, new added")
	assert.Equal(t, want, changedFlags(decoded, next))
	assert.Nil(t, prev.flags, "a loaded set keeps no decoded flags")
	assert.Nil(t, next.flags)
}

// A fetch of the flags in use does not load them again: apply has nothing
// to do with them. If other flags were applied meanwhile, apply loads them.
func TestUnchangedFlagsNotLoaded(t *testing.T) {
	one := []byte(`[{"key":"a","variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]}]`)
	two := []byte(`[{"key":"b","variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]}]`)
	var served atomic.Pointer[[]byte]
	served.Store(&one)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(*served.Load()) }))
	defer srv.Close()
	c, err := NewLocalClient("server-key", &LocalConfig{ServerURL: srv.URL, FlagConfigPollingInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Start(t.Context()))
	inUse := c.FlagSet()

	same, f := c.attemptFlagConfigs(t.Context())
	require.Nil(t, f)
	assert.Nil(t, same.snap, "the flags in use were loaded again")
	require.NoError(t, c.apply(t.Context(), same, SourceServer))
	assert.Same(t, inUse, c.FlagSet())

	served.Store(&two)
	other, f := c.attemptFlagConfigs(t.Context())
	require.Nil(t, f)
	require.NotNil(t, other.snap, "new flags are loaded as they are fetched")
	require.NoError(t, c.apply(t.Context(), other, SourceServer))
	assert.Equal(t, []string{"b"}, c.FlagSet().Snapshot().Keys())

	require.NoError(t, c.apply(t.Context(), same, SourceServer))
	assert.Equal(t, []string{"a"}, c.FlagSet().Snapshot().Keys(), "flags fetched as those in use, applied after others")
}
