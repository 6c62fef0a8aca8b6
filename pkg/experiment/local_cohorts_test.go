package experiment_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

// The repository's example: power-user-perks targets the user cohort
// k3v9qa (user-4 is a member), priority-support-chat the org cohort x7m2pd.
const (
	cohortAPIKey    = "api-key-123"
	cohortSecretKey = "secret-key-456"
	userCohort      = "k3v9qa"
	orgCohort       = "x7m2pd"
)

// cohortFixture is a flag server and a cohort server with the example's
// flags and cohorts, and a cache directory.
type cohortFixture struct {
	flags   *experimenttest.FlagServer
	cohorts *cohorttest.Server
	cache   string
}

func newCohortFixture(t *testing.T) *cohortFixture {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "flags.json"))
	require.NoError(t, err)
	f := &cohortFixture{flags: experimenttest.NewFlagServer(localKey, body),
		cohorts: cohorttest.NewServer(cohortAPIKey, cohortSecretKey), cache: t.TempDir()}
	t.Cleanup(f.flags.Close)
	t.Cleanup(f.cohorts.Close)
	require.NoError(t, f.cohorts.AddDir(filepath.Join("..", "..", "testdata", "cohorts")))
	return f
}

// client is a client of the fixture; sync adjusts its cohort settings.
func (f *cohortFixture) client(t *testing.T, offline bool, sync func(*experiment.CohortSyncConfig)) *experiment.LocalClient {
	cfg := &experiment.CohortSyncConfig{APIKey: cohortAPIKey, SecretKey: cohortSecretKey, CohortServerURL: f.cohorts.URL}
	if sync != nil {
		sync(cfg)
	}
	return newLocal(t, f.flags, experiment.LocalConfig{CacheDir: f.cache, Offline: offline, CohortSyncConfig: cfg})
}

func (f *cohortFixture) cohortDir() string { return experiment.CohortCacheDir(f.cache, cohortAPIKey) }

func variantOf(t *testing.T, c *experiment.LocalClient, user *experiment.User, flag string) string {
	t.Helper()
	v, err := c.EvaluateV2(user, flag)
	require.NoError(t, err)
	return v[flag].Key
}

var (
	member    = &experiment.User{UserID: "user-4"}
	memberOrg = &experiment.User{UserID: "x", Groups: map[string][]string{"org id": {"umbrella"}}}
)

func cohortStatus(t *testing.T, c *experiment.LocalClient, id string) experiment.CohortStatus {
	t.Helper()
	for _, s := range c.Status().Cohorts {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no status for cohort %s in %+v", id, c.Status().Cohorts)
	return experiment.CohortStatus{}
}

func TestLocalCohortStatus(t *testing.T) {
	noLeaks(t)
	f := newCohortFixture(t)
	c := f.client(t, false, nil)
	before := time.Now()
	require.NoError(t, c.Start(t.Context()))
	st := c.Status().Cohorts
	require.Len(t, st, 2)
	assert.Equal(t, userCohort, st[0].ID)
	assert.Equal(t, "User", st[0].GroupType)
	assert.Equal(t, orgCohort, st[1].ID)
	assert.Equal(t, "org id", st[1].GroupType)
	for _, s := range st {
		assert.Equal(t, experiment.SourceServer, s.Source, s.ID)
		assert.True(t, s.Loaded())
		assert.NoError(t, s.LastError)
		assert.Positive(t, s.Members)
		assert.False(t, s.LastModified.IsZero())
		assert.False(t, s.FetchedAt.Before(before))
		assert.Less(t, s.Age(time.Now()), time.Minute)
	}
	assert.Equal(t, "on", variantOf(t, c, member, "power-user-perks"))
	assert.Equal(t, "on", variantOf(t, c, memberOrg, "priority-support-chat"))

	// Without cohort sync there is nothing to report.
	plain := newLocal(t, f.flags, experiment.LocalConfig{})
	require.NoError(t, plain.Start(t.Context()))
	assert.Nil(t, plain.Status().Cohorts)
}

// TestLocalCohortOutageKeepsCachedCopy: a start refreshes cached cohorts,
// so an outage is seen; the cached copy stays in use, with its age.
func TestLocalCohortOutageKeepsCachedCopy(t *testing.T) {
	noLeaks(t)
	f := newCohortFixture(t)
	first := f.client(t, false, nil)
	require.NoError(t, first.Start(t.Context()))
	require.NoError(t, first.Close())
	fetched := time.Now().Add(-2 * time.Hour)
	require.NoError(t, cohort.Touch(f.cohortDir(), userCohort, fetched))

	f.cohorts.Script(userCohort, 503, 503, 503)
	c := f.client(t, false, nil)
	require.NoError(t, c.Start(t.Context()))
	s := cohortStatus(t, c, userCohort)
	require.ErrorIs(t, s.LastError, cohort.ErrStatus)
	assert.ErrorContains(t, s.LastError, "cohort k3v9qa: GET ")
	assert.ErrorContains(t, s.LastError, "503 Service Unavailable")
	assert.False(t, s.LastErrorAt.IsZero())
	assert.Equal(t, experiment.SourceCache, s.Source)
	assert.WithinDuration(t, fetched, s.FetchedAt, time.Second)
	assert.InDelta(t, 2*time.Hour, s.Age(time.Now()), float64(time.Minute))
	assert.Equal(t, "on", variantOf(t, c, member, "power-user-perks"), "the cached copy is used")

	// The other cohort was confirmed current (204): its file says so.
	o := cohortStatus(t, c, orgCohort)
	assert.NoError(t, o.LastError)
	assert.Equal(t, experiment.SourceServer, o.Source)
	at, err := cohort.FileTime(f.cohortDir(), orgCohort)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), at, time.Minute)
	var answered []int
	for _, r := range f.cohorts.Requests() {
		if r.CohortID == orgCohort {
			answered = append(answered, r.Status)
		}
	}
	assert.Equal(t, []int{200, 204}, answered)
}

// TestLocalCohortRejectedKeys: the flags are used, and Status says why no
// cohort has members.
func TestLocalCohortRejectedKeys(t *testing.T) {
	noLeaks(t)
	f := newCohortFixture(t)
	c := f.client(t, false, func(cfg *experiment.CohortSyncConfig) { cfg.SecretKey = "wrong-secret" })
	require.NoError(t, c.Start(t.Context()))
	for _, s := range c.Status().Cohorts {
		assert.ErrorIs(t, s.LastError, cohort.ErrUnauthorized, s.ID)
		assert.False(t, s.Loaded(), s.ID)
		assert.Empty(t, s.Source)
	}
	assert.Equal(t, "off", variantOf(t, c, member, "power-user-perks"))
}

// TestLocalCohortHangDoesNotFailStart: the flags arrived; a cohort server
// that never answers delays them no longer than Start's context, or
// LoadTimeout, and Start succeeds with the cohorts it has.
func TestLocalCohortHangDoesNotFailStart(t *testing.T) {
	noLeaks(t)
	f := newCohortFixture(t)
	f.cohorts.Script(userCohort, cohorttest.Stall, cohorttest.Stall, cohorttest.Stall)
	c := f.client(t, false, nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, c.Start(ctx))
	assert.Less(t, time.Since(start), 3*time.Second)
	require.NotNil(t, c.FlagSet())
	s := cohortStatus(t, c, userCohort)
	require.ErrorIs(t, s.LastError, cohort.ErrTimeout)
	assert.ErrorContains(t, s.LastError, "cohort k3v9qa: ")
	assert.ErrorContains(t, s.LastError, "still loading at the start deadline")
	assert.False(t, s.Loaded())
	assert.Equal(t, "off", variantOf(t, c, member, "power-user-perks"))
	assert.Equal(t, "on", variantOf(t, c, memberOrg, "priority-support-chat"), "the cohort that answered is used")
	all, err := c.EvaluateV2(&experiment.User{UserID: "u"})
	require.NoError(t, err)
	assert.Len(t, all, 18, "every flag evaluates")
	require.NoError(t, c.Close())

	// Without a deadline on Start, LoadTimeout ends the wait.
	f.cohorts.Script(userCohort, cohorttest.Stall, cohorttest.Stall, cohorttest.Stall)
	c = f.client(t, false, func(cfg *experiment.CohortSyncConfig) { cfg.LoadTimeout = 300 * time.Millisecond })
	start = time.Now()
	require.NoError(t, c.Start(t.Context()))
	assert.Less(t, time.Since(start), 3*time.Second)
	s = cohortStatus(t, c, userCohort)
	require.ErrorIs(t, s.LastError, cohort.ErrTimeout)
	assert.ErrorContains(t, s.LastError, "not loaded within 300ms")
	assert.False(t, s.Loaded(), "never downloaded, so never cached")
}

// TestLocalCohortCacheProblemsOffline: offline, a cached copy that cannot
// be read and one that is missing are both in Status, naming the cohort.
func TestLocalCohortCacheProblemsOffline(t *testing.T) {
	noLeaks(t)
	f := newCohortFixture(t)
	first := f.client(t, false, nil)
	require.NoError(t, first.Start(t.Context()))
	require.NoError(t, first.Close())
	require.NoError(t, os.WriteFile(filepath.Join(f.cohortDir(), userCohort+".json"), []byte(`{"cohortId":"k3v9qa","memberIds":"user-4"}`), 0o600))
	require.NoError(t, os.Remove(filepath.Join(f.cohortDir(), orgCohort+".json")))

	requests := len(f.cohorts.Requests())
	c := f.client(t, true, nil)
	require.NoError(t, c.Start(t.Context()))
	s := cohortStatus(t, c, userCohort)
	require.ErrorIs(t, s.LastError, cohort.ErrMalformed)
	assert.ErrorContains(t, s.LastError, "cohort k3v9qa: unreadable cached copy: ")
	assert.False(t, s.Loaded())
	o := cohortStatus(t, c, orgCohort)
	require.ErrorIs(t, o.LastError, experiment.ErrCohortNotCached)
	assert.EqualError(t, o.LastError, "cohort x7m2pd: no copy in the cohort cache")
	assert.Equal(t, "off", variantOf(t, c, member, "power-user-perks"))
	assert.Len(t, f.cohorts.Requests(), requests, "offline: no request")
}

func TestLocalCohortLoadTimeoutValidated(t *testing.T) {
	_, err := experiment.NewLocalClient(localKey, &experiment.LocalConfig{CohortSyncConfig: &experiment.CohortSyncConfig{
		APIKey: "a", SecretKey: "s", LoadTimeout: -time.Second}})
	require.Error(t, err)
	assert.ErrorContains(t, err, "LoadTimeout is negative")
}

// TestLocalCohortUnchangedButNotCached: a cohort the server confirms
// unchanged (204) whose cached file cannot be marked current is a
// CacheError in Status, as a copy that cannot be written is; the copy in
// use is the confirmed one.
func TestLocalCohortUnchangedButNotCached(t *testing.T) {
	noLeaks(t)
	f := newCohortFixture(t)
	first := f.client(t, false, nil)
	require.NoError(t, first.Start(t.Context()))
	require.NoError(t, first.Close())

	c := f.client(t, false, nil) // loads the cached copies
	require.NoError(t, os.Remove(filepath.Join(f.cohortDir(), userCohort+".json")))
	require.NoError(t, c.Start(t.Context()))
	s := cohortStatus(t, c, userCohort)
	require.Error(t, s.CacheError, "the file's time could not be set: the write's failure is not dropped")
	assert.ErrorContains(t, s.CacheError, "cohort k3v9qa: caching: ")
	assert.NoError(t, s.LastError)
	assert.Equal(t, experiment.SourceServer, s.Source)
	assert.Equal(t, "on", variantOf(t, c, member, "power-user-perks"))
	assert.NoError(t, cohortStatus(t, c, orgCohort).CacheError)
}

// TestLocalCohortFromCacheLoadedWhenServerReturns: flags started from the
// cache lack a cohort the cache lacks too; when the flag server answers
// with those same flags, the cohort is downloaded then, not a cohort
// polling interval later.
func TestLocalCohortFromCacheLoadedWhenServerReturns(t *testing.T) {
	noLeaks(t)
	f := newCohortFixture(t)
	first := f.client(t, false, nil)
	require.NoError(t, first.Start(t.Context()))
	require.NoError(t, first.Close())
	require.NoError(t, os.Remove(filepath.Join(f.cohortDir(), userCohort+".json")))

	f.flags.SetDown(503)
	c := f.client(t, false, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	require.NoError(t, c.Start(ctx))
	require.Equal(t, experiment.SourceCache, c.Status().Source)
	assert.Equal(t, experiment.SourceNone, cohortStatus(t, c, userCohort).Source)

	f.flags.SetDown(0)
	require.Eventually(t, func() bool { return c.Status().Source == experiment.SourceServer }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, experiment.SourceServer, cohortStatus(t, c, userCohort).Source)
	assert.Equal(t, "on", variantOf(t, c, member, "power-user-perks"))
}
