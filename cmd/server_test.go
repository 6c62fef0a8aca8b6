package cmd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

const cmdKey = "server-cmd-test-key-123"

func testdataFlags(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "flags.json"))
	require.NoError(t, err)
	return data
}

// run executes the CLI with a clean environment plus env.
func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ios, out, errOut := testStreams("")
	ios.Getenv = func(k string) string { return env[k] }
	code := Main(t.Context(), args, ios)
	return code, out.String(), errOut.String()
}

func TestEvaluateFromServerAndCache(t *testing.T) {
	srv := experimenttest.NewFlagServer(cmdKey, testdataFlags(t))
	defer srv.Close()
	env := map[string]string{"EXPERIMENT_DEPLOYMENT_KEY": cmdKey, "EXPERIMENT_CACHE_DIR": t.TempDir(), "EXPERIMENT_SERVER_URL": srv.URL}

	code, out, errOut := run(t, env, "evaluate", "--user-id", "user-1", "-p", "email=alice@acme.com", "new-editor")
	require.Equal(t, 0, code, errOut)
	var got map[string]map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, "on", got["new-editor"]["key"])

	srv.Close() // the server goes away: the cache answers, with a warning
	code, out, errOut = run(t, env, "evaluate", "--user-id", "user-1", "-p", "email=alice@acme.com", "new-editor", "--timeout", "300ms")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "using cached flags")
	assert.Contains(t, out, `"new-editor"`)
	assert.NotContains(t, errOut+out, cmdKey)

	code, _, errOut = run(t, env, "evaluate", "--offline", "--user-id", "u")
	assert.Equal(t, 0, code, errOut)
}

func TestEvaluateServerErrors(t *testing.T) {
	srv := experimenttest.NewFlagServer("another-key-entirely", testdataFlags(t))
	defer srv.Close()
	env := map[string]string{"EXPERIMENT_CACHE_DIR": t.TempDir(), "EXPERIMENT_SERVER_URL": srv.URL}

	code, _, errOut := run(t, env, "evaluate", "--user-id", "u")
	assert.Equal(t, ExitUsage, code, "no key and no --flags")
	assert.Contains(t, errOut, "deployment key")

	code, _, errOut = run(t, env, "evaluate", "--deployment-key", cmdKey, "--user-id", "u")
	assert.Equal(t, ExitAuth, code, errOut)
	assert.Contains(t, errOut, "rejected")
	assert.NotContains(t, errOut, cmdKey)
	assert.Contains(t, errOut, "hint:")

	srv.Stall(time.Hour)
	start := time.Now()
	code, _, errOut = run(t, env, "evaluate", "--deployment-key", cmdKey, "--user-id", "u", "--timeout", "200ms")
	assert.Equal(t, ExitNetwork, code, errOut)
	assert.Less(t, time.Since(start), 5*time.Second)

	code, _, errOut = run(t, env, "evaluate", "--deployment-key", cmdKey, "--offline", "--user-id", "u")
	assert.Equal(t, ExitIO, code, errOut)
	assert.Contains(t, errOut, "flags pull")
}

func TestFlagsPullListShow(t *testing.T) {
	srv := experimenttest.NewFlagServer(cmdKey, testdataFlags(t))
	defer srv.Close()
	dir := t.TempDir()
	env := map[string]string{"EXPERIMENT_DEPLOYMENT_KEY": cmdKey, "EXPERIMENT_CACHE_DIR": dir, "EXPERIMENT_SERVER_URL": srv.URL}
	out := filepath.Join(dir, "pulled.json")
	code, _, errOut := run(t, env, "flags", "pull", "--out", out)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "pulled 18 flags")
	pulled, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, testdataFlags(t), pulled, "pull must keep the served bytes")

	code, list, errOut := run(t, env, "flags", "list", "--offline", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var flags []flagSummary
	require.NoError(t, json.Unmarshal([]byte(list), &flags))
	assert.Len(t, flags, 18)
	assert.Equal(t, "admin-audit-log", flags[0].Key)

	code, show, errOut := run(t, env, "flags", "show", "pricing-page-test", "--flags", out, "-o", "table")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, show, "exp-2417")
	code, _, errOut = run(t, env, "flags", "show", "pricing-page-tst", "--flags", out)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, `did you mean "pricing-page-test"`)
}

// syncBuffer lets the test read output while the command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWatchUntilChange(t *testing.T) {
	srv := experimenttest.NewFlagServer(cmdKey, testdataFlags(t))
	defer srv.Close()
	env := map[string]string{"EXPERIMENT_DEPLOYMENT_KEY": cmdKey, "EXPERIMENT_CACHE_DIR": t.TempDir(), "EXPERIMENT_SERVER_URL": srv.URL}
	var out, errOut syncBuffer
	ios := &cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(k string) string { return env[k] }}
	done := make(chan int)
	go func() {
		done <- Main(context.Background(), []string{"watch", "--poll-interval", "20ms", "--until-change", "-o", "jsonl",
			"--user-id", "user-1", "-p", "email=alice@acme.com"}, ios)
	}()
	require.Eventually(t, func() bool { return strings.Contains(errOut.String(), "watching 18 flags") }, 10*time.Second, 10*time.Millisecond)
	var flags []map[string]any
	require.NoError(t, json.Unmarshal(testdataFlags(t), &flags))
	flags[0]["segments"] = []any{map[string]any{"variant": "off"}} // new-editor now off for everyone
	flags[0]["metadata"].(map[string]any)["flagVersion"] = 15
	changed, _ := json.Marshal(flags)
	srv.SetFlags(changed)
	select {
	case code := <-done:
		require.Equal(t, 0, code, errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not exit after the change")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2, out.String())
	assert.Contains(t, lines[0], `"kind":"changed","flag":"new-editor","from":"v14","to":"v15"`)
	assert.Contains(t, lines[1], `"kind":"variant","flag":"new-editor","from":"on","to":"off"`)
}

func TestEvaluateFromServerWithCohortSync(t *testing.T) {
	srv := experimenttest.NewFlagServer(cmdKey, testdataFlags(t))
	defer srv.Close()
	cohorts := cohorttest.NewServer("api-key-for-cohorts", "secret-key-for-cohorts")
	defer cohorts.Close()
	require.NoError(t, cohorts.AddDir(filepath.Join("..", "testdata", "cohorts")))
	env := map[string]string{"EXPERIMENT_DEPLOYMENT_KEY": cmdKey, "EXPERIMENT_CACHE_DIR": t.TempDir(), "EXPERIMENT_SERVER_URL": srv.URL,
		"EXPERIMENT_API_KEY": "api-key-for-cohorts", "EXPERIMENT_SECRET_KEY": "secret-key-for-cohorts", "EXPERIMENT_COHORT_SERVER_URL": cohorts.URL}
	code, out, errOut := run(t, env, "evaluate", "--user-id", "user-1", "power-user-perks", "-o", "jsonl")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"power-user-perks":{"key":"on"`)
	assert.NotContains(t, out+errOut, "secret-key-for-cohorts")

	cohorts.Close() // offline afterwards: the cached cohorts still count
	code, out, errOut = run(t, env, "evaluate", "--offline", "--user-id", "user-1", "power-user-perks", "-o", "jsonl")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"power-user-perks":{"key":"on"`)
}

func TestEvaluateTrackExposure(t *testing.T) {
	events := analyticstest.NewServer()
	defer events.Close()
	env := map[string]string{"EXPERIMENT_API_KEY": "analytics-key-1234", "EXPERIMENT_EVENTS_SERVER_URL": events.EventsURL()}
	users := filepath.Join("..", "testdata", "users.jsonl")
	code, out, errOut := run(t, env, "evaluate", "--flags", filepath.Join("..", "testdata", "flags.json"), "--users", users, "--track-exposure", "dark-mode", "-o", "jsonl")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, 37, strings.Count(out, "\n"))
	on := strings.Count(out, `"dark-mode":{"key":"on"`)
	require.Positive(t, on)
	assert.Len(t, events.Events(), on, "one exposure per user who got dark-mode on, flushed before exit")
	assert.NotContains(t, errOut, "analytics-key-1234")

	code, _, errOut = run(t, map[string]string{}, "evaluate", "--flags", filepath.Join("..", "testdata", "flags.json"), "--user-id", "u", "--track-exposure")
	assert.Equal(t, ExitUsage, code, errOut)
}
