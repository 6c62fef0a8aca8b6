package eval

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sameSnapshots checks that two snapshots of one document answer alike:
// keys, problems, outcomes, flags as configured, and every evaluation and
// trace for the users given.
func sameSnapshots(t testing.TB, want, got *Snapshot, users []*Context) {
	t.Helper()
	require.Equal(t, want.Keys(), got.Keys())
	require.Equal(t, want.Problems(), got.Problems())
	require.Equal(t, want.Outcomes(), got.Outcomes())
	for i := range want.Outcomes() {
		k1, s1, v1 := want.Outcome(i)
		k2, s2, v2 := got.Outcome(i)
		require.Equal(t, [3]any{k1, s1, v1}, [3]any{k2, s2, v2}, "outcome %d", i)
	}
	for _, k := range want.Keys() {
		if !reflect.DeepEqual(want.Flag(k), got.Flag(k)) {
			t.Fatalf("flag %q differs:\n%s\n%s", k, dump([]*Flag{want.Flag(k)}), dump([]*Flag{got.Flag(k)}))
		}
	}
	for _, ctx := range users {
		r1, err1 := want.Evaluate(ctx, nil, nil)
		r2, err2 := got.Evaluate(ctx, nil, nil)
		require.Equal(t, err1, err2)
		require.Equal(t, r1, r2)
		t1, err1 := want.Explain(ctx, nil)
		t2, err2 := got.Explain(ctx, nil)
		require.Equal(t, err1, err2)
		require.Equal(t, t1, t2)
	}
}

// TestLoadAgrees: Load gives the Snapshot that DecodeFlags and Compile give,
// on every conformance case with its users and on the benchmark sets.
func TestLoadAgrees(t *testing.T) {
	for _, dir := range conformanceCases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want, lines := loadCaseSnapshot(t, dir)
			data, err := os.ReadFile(filepath.Join(dir, "flags.json"))
			require.NoError(t, err)
			got, err := Load(data)
			require.NoError(t, err)
			require.NotNil(t, got.raw, "the document was read by the fast decoder")
			var users []*Context
			for _, line := range lines {
				users = append(users, contextFromJSON(t, line))
			}
			sameSnapshots(t, want, got, users)
		})
	}
	for _, n := range []int{1, 10, 100, 1000} {
		t.Run(fmt.Sprintf("flags-%d", n), func(t *testing.T) {
			data := benchDoc(t, n)
			want := loadBenchSnapshot(t, n)
			got, err := Load(data)
			require.NoError(t, err)
			clear(data) // Load keeps its own copy
			sameSnapshots(t, want, got, fuzzContexts())
		})
	}
}

// TestLoadErrors: Load fails as DecodeFlags does, and takes what only
// encoding/json reads too.
func TestLoadErrors(t *testing.T) {
	for _, doc := range []string{``, `{}`, `[null]`, `[{"key":1}]`, `[{"key":"a","segments":[null]}]`, `[] x`} {
		_, want := DecodeFlags([]byte(doc))
		require.Error(t, want)
		_, err := Load([]byte(doc))
		assert.Equal(t, want, err, doc)
	}
	doc := `[{"key":"a","KEY":"b","variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]},{"key":"a"}]`
	snap, err := Load([]byte(doc))
	require.NoError(t, err)
	assert.Nil(t, snap.raw, "the fast decoder gives up on case-folded keys")
	flags, err := DecodeFlags([]byte(doc))
	require.NoError(t, err)
	sameSnapshots(t, compileFlags(t, flags...), snap, fuzzContexts())
}

// FuzzLoad holds Load to DecodeFlags and Compile on any document.
func FuzzLoad(f *testing.F) {
	for _, doc := range conformanceFlagDocs(f) {
		f.Add(doc)
	}
	for _, s := range fastDecodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Load(data)
		flags, want := DecodeFlags(data)
		if want != nil || err != nil {
			if fmt.Sprint(err) != fmt.Sprint(want) {
				t.Fatalf("Load: %v, DecodeFlags: %v", err, want)
			}
			return
		}
		snap, err := Compile(flags)
		require.NoError(t, err)
		sameSnapshots(t, snap, got, fuzzContexts())
	})
}

// TestConcurrentFirstUse: what a snapshot builds on first use (merged
// metadata, flags decoded again from the document) is built safely when
// many evaluations need it at once. The case holds no regex the direct
// matchers leave: TestRegexConcurrentFirstUse covers those.
func TestConcurrentFirstUse(t *testing.T) {
	dir := filepath.Join(conformanceRoot, "02-mixed")
	want, lines := loadCaseSnapshot(t, dir)
	data, err := os.ReadFile(filepath.Join(dir, "flags.json"))
	require.NoError(t, err)
	cold, err := Load(data)
	require.NoError(t, err)
	var ctxs []*Context
	for _, line := range lines {
		ctxs = append(ctxs, contextFromJSON(t, line))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ctxs {
				ctx := ctxs[(j+g*7)%len(ctxs)]
				got, err := cold.Evaluate(ctx, nil, nil)
				ref, _ := want.Evaluate(ctx, nil, nil)
				if err != nil || !reflect.DeepEqual(got, ref) {
					errs <- fmt.Errorf("goroutine %d: results differ (%v)", g, err)
					return
				}
				if _, err := cold.Explain(ctx, nil); err != nil {
					errs <- err
					return
				}
				if k := cold.Keys()[j%cold.Len()]; !reflect.DeepEqual(cold.Flag(k), want.Flag(k)) {
					errs <- fmt.Errorf("goroutine %d: flag %q differs", g, k)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
