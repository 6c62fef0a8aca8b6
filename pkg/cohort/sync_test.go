package cohort_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cohort"
)

func conformanceIDs(t testing.TB) []string {
	var ids []string
	for _, f := range conformanceFiles(t) {
		ids = append(ids, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	return ids
}

func TestSyncConformance(t *testing.T) {
	fake := newFake(t)
	client := newClient(t, cohort.Config{ServerURL: fake.URL})
	ids := append(conformanceIDs(t), "nosuch")
	store, errs := cohort.Sync(t.Context(), client, nil, ids)
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], cohort.ErrNotFound)
	assert.ErrorContains(t, errs[0], "cohort nosuch: ")
	assert.Equal(t, len(ids)-1, store.Len())
	assert.Nil(t, store.Get("nosuch"))
	assert.True(t, store.Get("9r64kh").Has("ÄÖÜ GmbH"))
}

func TestSyncKeepsLastGood(t *testing.T) {
	fake := newFake(t)
	client := newClient(t, cohort.Config{ServerURL: fake.URL})
	ids := []string{"0ennjp", "8nxx75", "9r64kh", "n2hgsp"}
	first, errs := cohort.Sync(t.Context(), client, nil, ids)
	require.Empty(t, errs)

	// 8nxx75 fails for good, n2hgsp changes, the rest are unchanged.
	fake.Script("8nxx75", 503, 503, 503)
	fake.PutCohort(mustNew(t, "n2hgsp", "org id", 1800000000000, []string{"new-org"}))
	var results []cohort.Result
	second, errs := cohort.Sync(t.Context(), client, first, ids, cohort.OnResult(func(r cohort.Result) {
		results = append(results, r)
	}))
	require.Len(t, errs, 1)
	var de *cohort.DownloadError
	require.ErrorAs(t, errs[0], &de)
	assert.Equal(t, "8nxx75", de.CohortID)
	assert.Equal(t, 503, de.StatusCode)

	assert.Same(t, first.Get("8nxx75"), second.Get("8nxx75"), "last good copy kept")
	assert.Same(t, first.Get("0ennjp"), second.Get("0ennjp"), "204: same copy")
	assert.Same(t, first.Get("9r64kh"), second.Get("9r64kh"))
	assert.True(t, second.Get("n2hgsp").Has("new-org"))
	assert.False(t, first.Get("n2hgsp").Has("new-org"), "the current store is not modified")
	assert.True(t, first.Get("n2hgsp").Has("org-7"))

	outcomes := map[string]cohort.Outcome{}
	for _, r := range results {
		outcomes[r.ID] = r.Outcome
	}
	assert.Equal(t, map[string]cohort.Outcome{"0ennjp": cohort.Unchanged, "8nxx75": cohort.Failed,
		"9r64kh": cohort.Unchanged, "n2hgsp": cohort.Updated}, outcomes)
	for _, r := range results {
		if r.ID == "8nxx75" {
			assert.Same(t, first.Get("8nxx75"), r.Cohort)
			assert.Equal(t, "failed", r.Outcome.String())
		}
	}

	// Nothing changed at all: the same store comes back.
	third, errs := cohort.Sync(t.Context(), client, second, ids)
	require.Empty(t, errs)
	assert.Same(t, second, third)
}

func TestSyncSkipsTooLarge(t *testing.T) {
	fake := newFake(t)
	client := newClient(t, cohort.Config{ServerURL: fake.URL, MaxCohortSize: 11})
	store, errs := cohort.Sync(t.Context(), client, nil, []string{"0ennjp", "8nxx75", "9r64kh"})
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], cohort.ErrTooLarge)
	assert.ErrorContains(t, errs[0], "cohort 8nxx75: ")
	assert.Equal(t, []string{"0ennjp", "9r64kh"}, store.IDs())
}

// fakeDownloader records concurrency.
type fakeDownloader struct {
	mu        sync.Mutex
	inFlight  int
	maxFlight int
	perID     map[string]int
	calls     map[string]int
	overlap   bool
	delay     time.Duration
}

func (f *fakeDownloader) Download(ctx context.Context, id string, stored *cohort.Cohort) (*cohort.Cohort, error) {
	f.mu.Lock()
	f.inFlight++
	f.maxFlight = max(f.maxFlight, f.inFlight)
	f.perID[id]++
	f.calls[id]++
	if f.perID[id] > 1 {
		f.overlap = true
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.perID[id]--
		f.mu.Unlock()
	}()
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if id == "bad" {
		return nil, errors.New("boom")
	}
	return cohort.New(id, "", 1, []string{"m-" + id})
}

func TestSyncBoundedConcurrency(t *testing.T) {
	d := &fakeDownloader{perID: map[string]int{}, calls: map[string]int{}, delay: 20 * time.Millisecond}
	var ids []string
	for i := range 40 {
		ids = append(ids, string(rune('a'+i%20))) // each id twice
	}
	ids = append(ids, "bad")
	var calls atomic.Int32
	var inCallback atomic.Int32
	store, errs := cohort.Sync(t.Context(), d, nil, ids, cohort.WithConcurrency(3), cohort.OnResult(func(cohort.Result) {
		if inCallback.Add(1) != 1 {
			t.Error("OnResult calls overlap")
		}
		calls.Add(1)
		time.Sleep(time.Millisecond)
		inCallback.Add(-1)
	}))
	require.Len(t, errs, 1)
	assert.EqualError(t, errs[0], "boom")
	assert.Equal(t, 20, store.Len())
	assert.Equal(t, int32(21), calls.Load(), "one result per distinct id")
	assert.LessOrEqual(t, d.maxFlight, 3)
	assert.Greater(t, d.maxFlight, 1, "downloads run concurrently")
	assert.False(t, d.overlap, "one request in flight per id")
	for id, n := range d.calls {
		assert.Equal(t, 1, n, id)
	}
}

func TestSyncCancelled(t *testing.T) {
	d := &fakeDownloader{perID: map[string]int{}, calls: map[string]int{}, delay: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	current := cohort.NewStore(mustNew(t, "a", "", 1, []string{"x"}))
	store, errs := cohort.Sync(ctx, d, current, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, cohort.WithConcurrency(2))
	require.Len(t, errs, 10)
	for _, err := range errs {
		require.ErrorIs(t, err, context.Canceled)
	}
	assert.Same(t, current, store)
	assert.Equal(t, 2, len(d.calls), "no download starts after the cancel")
}

func TestSyncEmpty(t *testing.T) {
	store, errs := cohort.Sync(t.Context(), &fakeDownloader{}, nil, nil)
	assert.Empty(t, errs)
	assert.NotNil(t, store)
	assert.Zero(t, store.Len())
}
