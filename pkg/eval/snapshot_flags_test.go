package eval

import (
	"reflect"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoadOwned: LoadOwned gives Load's Snapshot, and keeps the document
// it was handed rather than a copy of it.
func TestLoadOwned(t *testing.T) {
	data := benchDoc(t, 1000)
	want, err := Load(data)
	require.NoError(t, err)
	got, err := LoadOwned(data)
	require.NoError(t, err)
	require.NotNil(t, got.raw)
	assert.Same(t, &data[0], &got.raw.data[0], "the document is kept, not copied")
	assert.NotSame(t, &data[0], &want.raw.data[0], "Load copies")
	sameSnapshots(t, want, got, fuzzContexts())

	for _, doc := range []string{``, `[null]`, `[{"key":"a","segments":[null]}]`} {
		_, want := Load([]byte(doc))
		_, err := LoadOwned([]byte(doc))
		assert.Equal(t, want, err, doc)
	}
}

// TestSameFlag: flags are alike when their configs are, whatever the
// spacing and field order of their documents, and a version left unchanged
// does not hide a change; nothing decoded to compare is kept.
func TestSameFlag(t *testing.T) {
	load := func(doc string) *Snapshot {
		t.Helper()
		s, err := Load([]byte(doc))
		require.NoError(t, err)
		require.NotNil(t, s.raw)
		return s
	}
	prev := load(`[{"key":"a","metadata":{"flagVersion":1},"variants":{"on":{"key":"on","value":"on"}},"segments":[{"variant":"on"}]},
		{"key":"b","metadata":{"flagVersion":1},"variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]},
		{"key":"gone"}]`)
	next := load(`[{"key":"a","metadata":{"flagVersion":1},"variants":{"on":{"key":"on","value":"on"}},"segments":[{"variant":"on"}]},
		{"segments": [{"variant": "on"}], "variants": {"on": {"key": "on"}}, "metadata": {"flagVersion": 1}, "key": "b"},
		{"key":"c"}]`)
	assert.True(t, prev.SameFlag(next, "a"), "the same bytes")
	assert.True(t, prev.SameFlag(next, "b"), "the same config, written otherwise")
	assert.False(t, prev.SameFlag(next, "gone"), "only in the first")
	assert.False(t, prev.SameFlag(next, "c"), "only in the second")
	for _, s := range []*Snapshot{prev, next} {
		for i := range s.sources {
			assert.Nil(t, s.sources[i].Load(), "flag %d was kept decoded", i)
		}
	}

	changed := load(`[{"key":"a","metadata":{"flagVersion":1},"variants":{"on":{"key":"on","value":"off"}},"segments":[{"variant":"on"}]}]`)
	assert.False(t, prev.SameFlag(changed, "a"), "another value under the same version")

	// A compiled snapshot has no document: its flags are compared decoded.
	flags, err := DecodeFlags([]byte(`[{"key": "b", "variants": {"on": {"key": "on"}}, "segments": [{"variant": "on"}], "metadata": {"flagVersion": 1}}]`))
	require.NoError(t, err)
	compiled, err := Compile(flags)
	require.NoError(t, err)
	assert.True(t, compiled.SameFlag(next, "b"))
	assert.True(t, next.SameFlag(compiled, "b"))
	assert.False(t, compiled.SameFlag(changed, "a"))
}

// TestSnapshotFlags: Flags lists the flags as configured, in key order,
// the last definition of a key defined twice; a loaded Snapshot decodes
// them for the call without keeping them, a compiled one hands out its own.
func TestSnapshotFlags(t *testing.T) {
	doc := []byte(`[{"key":"a","metadata":{"v":1}},{"key":"b"},{"key":"a","metadata":{"v":2}}]`)
	flags, err := DecodeFlags(doc)
	require.NoError(t, err)
	compiled, err := Compile(flags)
	require.NoError(t, err)
	got := compiled.Flags()
	require.Len(t, got, 2)
	assert.Same(t, flags[2], got[0], "the later a")
	assert.Same(t, flags[1], got[1])

	loaded, err := Load(doc)
	require.NoError(t, err)
	first := loaded.Flag("b") // decoded and kept
	listed := loaded.Flags()
	assert.Equal(t, got, listed)
	assert.Same(t, first, listed[1], "a flag decoded already is not decoded again")
	assert.Nil(t, loaded.sources[0].Load(), "a decoded for the call only")

	big, err := Load(benchDoc(t, 1000))
	require.NoError(t, err)
	all := big.Flags()
	for i, k := range big.Keys() {
		require.Equal(t, k, all[i].Key)
		if !reflect.DeepEqual(big.Flag(k), all[i]) {
			t.Fatalf("flag %q differs from Flag's", k)
		}
	}
}

// A flag decoded alone (Flag, Explain) is kept allocated exactly: no more
// than a tenth above its share of the flags decoded together, where slabs
// spread over many flags (they held eight of each value for one, 8.1 KB a
// flag against 5.0).
func TestFlagDecodedAloneIsCompact(t *testing.T) {
	if raceEnabled {
		t.Skip("the heap is measured without the race detector")
	}
	data := benchDoc(t, 1000)
	alone, err := Load(data)
	require.NoError(t, err)
	together, err := Load(data)
	require.NoError(t, err)
	before := heapInUse()
	for _, k := range alone.Keys() {
		alone.Flag(k)
	}
	each := heapInUse() - before
	before = heapInUse()
	all := together.Flags()
	shared := heapInUse() - before
	runtime.KeepAlive(all)
	runtime.KeepAlive(alone)
	runtime.KeepAlive(together)
	t.Logf("decoded alone %d B/flag, together %d B/flag", each/1000, shared/1000)
	assert.Less(t, each, shared*11/10)
}
