package experiment_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

// statusEvents records what OnStatusChange receives. The callback calls
// back into the client (Status, EvaluateV2): were it called while the
// client holds a lock, the test would hang.
type statusEvents struct {
	mu     sync.Mutex
	events []experiment.StatusEvent
	client func() *experiment.LocalClient
	active int // callbacks running at once
	maxAct int
}

func (r *statusEvents) record(ev experiment.StatusEvent) {
	r.mu.Lock()
	r.active++
	r.maxAct = max(r.maxAct, r.active)
	r.mu.Unlock()
	if c := r.client(); c != nil {
		_ = c.Status()
		_, _ = c.EvaluateV2(&experiment.User{UserID: "u"})
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.active--
	r.mu.Unlock()
}

func (r *statusEvents) all() []experiment.StatusEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *statusEvents) kinds() []experiment.StatusEventKind {
	var out []experiment.StatusEventKind
	for _, ev := range r.all() {
		out = append(out, ev.Kind)
	}
	return out
}

// waitFor waits for an event of kind after the first n, and returns it
// with the number of events seen up to and including it.
func (r *statusEvents) waitFor(t *testing.T, n int, kind experiment.StatusEventKind) (experiment.StatusEvent, int) {
	t.Helper()
	var found experiment.StatusEvent
	at := 0
	eventually(t, "a "+kind.String()+" event", func() bool {
		evs := r.all()
		for i := n; i < len(evs); i++ {
			if evs[i].Kind == kind {
				found, at = evs[i], i+1
				return true
			}
		}
		return false
	})
	return found, at
}

func twoFlags(fValue, gValue string) []byte {
	return []byte(`[{"key":"f","segments":[{"variant":"on"}],"variants":{"on":{"key":"on","value":"` + fValue + `"}}},` +
		`{"key":"g","segments":[{"variant":"on"}],"variants":{"on":{"key":"on","value":"` + gValue + `"}}}]`)
}

// TestLocalOnStatusChange: the first flags, a failing server, its
// recovery with changed flags, and a removed flag each reach the callback,
// in order, with the changed flag keys, one call at a time.
func TestLocalOnStatusChange(t *testing.T) {
	noLeaks(t)
	srv := experimenttest.NewFlagServer(localKey, twoFlags("a", "b"))
	defer srv.Close()
	var c *experiment.LocalClient
	var cmu sync.Mutex
	rec := &statusEvents{client: func() *experiment.LocalClient { cmu.Lock(); defer cmu.Unlock(); return c }}
	cl := newLocal(t, srv, experiment.LocalConfig{FlagConfigPollingInterval: 20 * time.Millisecond, OnStatusChange: rec.record})
	cmu.Lock()
	c = cl
	cmu.Unlock()
	require.NoError(t, cl.Start(t.Context()))

	first, n := rec.waitFor(t, 0, experiment.StatusEventFlagsChanged)
	assert.Equal(t, []string{"f", "g"}, first.ChangedFlags, "the first flags are all new")
	assert.Equal(t, 2, first.Status.Flags)
	_, n2 := rec.waitFor(t, 0, experiment.StatusEventReady)
	assert.Greater(t, n2, n-1, "ready follows the first flags")

	srv.SetDown(http.StatusServiceUnavailable)
	failed, n := rec.waitFor(t, n2, experiment.StatusEventError)
	require.Error(t, failed.Err)
	assert.ErrorContains(t, failed.Err, "503")
	assert.Equal(t, experiment.StateInterrupted, failed.Status.State, "flags in use are stale")
	assert.Equal(t, 2, failed.Status.Flags)

	srv.SetFlags(twoFlags("a2", "b")) // only f changes
	srv.SetDown(0)
	changed, n := rec.waitFor(t, n, experiment.StatusEventFlagsChanged)
	assert.Equal(t, []string{"f"}, changed.ChangedFlags)
	_, n = rec.waitFor(t, n-1, experiment.StatusEventReady)

	srv.SetFlags(flagsV("1")) // g removed, f changed again
	removed, _ := rec.waitFor(t, n, experiment.StatusEventFlagsChanged)
	assert.Equal(t, []string{"f", "g"}, removed.ChangedFlags)

	require.NoError(t, cl.Close())
	after := len(rec.all())
	time.Sleep(60 * time.Millisecond)
	assert.Len(t, rec.all(), after, "no call after Close returned")
	rec.mu.Lock()
	assert.Equal(t, 1, rec.maxAct, "calls never overlap")
	rec.mu.Unlock()
}

// TestLocalOnStatusChangeStaleCache: flags from the cache, with the
// server down at Start, are reported stale with the server's failure.
func TestLocalOnStatusChangeStaleCache(t *testing.T) {
	noLeaks(t)
	srv, dir := cachedServer(t)
	srv.SetDown(http.StatusServiceUnavailable)
	rec := &statusEvents{client: func() *experiment.LocalClient { return nil }}
	c := newLocal(t, srv, experiment.LocalConfig{CacheDir: dir, OnStatusChange: rec.record})
	require.NoError(t, c.Start(t.Context()))
	stale, _ := rec.waitFor(t, 0, experiment.StatusEventStale)
	assert.ErrorContains(t, stale.Err, "503")
	assert.Equal(t, experiment.SourceCache, stale.Status.Source)
	assert.Contains(t, rec.kinds(), experiment.StatusEventFlagsChanged)
	assert.NotContains(t, rec.kinds(), experiment.StatusEventReady)
}

// TestLocalOnStatusChangeCohorts: a cohort download that fails, and a
// cohort copy that cannot be cached, are reported to the callback and in
// Status.Cohorts (the cache write's failure was dropped before).
func TestLocalOnStatusChangeCohorts(t *testing.T) {
	noLeaks(t)
	f := newCohortFixture(t)
	// The cohort cache directory cannot be made: a file is in its way.
	require.NoError(t, os.MkdirAll(filepath.Dir(f.cohortDir()), 0o755))
	require.NoError(t, os.WriteFile(f.cohortDir(), []byte("not a directory"), 0o600))
	f.cohorts.Script(userCohort, 503, 503, 503)
	rec := &statusEvents{client: func() *experiment.LocalClient { return nil }}
	c := newLocal(t, f.flags, experiment.LocalConfig{CacheDir: f.cache, OnStatusChange: rec.record,
		CohortSyncConfig: &experiment.CohortSyncConfig{APIKey: cohortAPIKey, SecretKey: cohortSecretKey, CohortServerURL: f.cohorts.URL}})
	require.NoError(t, c.Start(t.Context()))

	ev, _ := rec.waitFor(t, 0, experiment.StatusEventCohortsChanged)
	require.ErrorIs(t, ev.Err, cohort.ErrStatus, "the failed download")
	assert.ErrorContains(t, ev.Err, "cohort k3v9qa")
	assert.ErrorContains(t, ev.Err, "cohort x7m2pd: caching: ", "the copy that could not be cached")

	u := cohortStatus(t, c, userCohort)
	assert.ErrorIs(t, u.LastError, cohort.ErrStatus)
	o := cohortStatus(t, c, orgCohort)
	assert.NoError(t, o.LastError)
	assert.True(t, o.Loaded())
	require.Error(t, o.CacheError, "the cache write's failure is in Status")
	assert.ErrorContains(t, o.CacheError, "cohort x7m2pd: caching: ")
}
