package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
)

const trackKey = "cmdTrackingApiKey0123"

// printedExposures runs evaluate --print-events over users and returns the
// insert IDs of the events that would be sent.
func printedExposures(t *testing.T, flags, users string) map[string]bool {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	code, _, errOut := runTracked(t, context.Background(), nil, "evaluate", "--flags", flags, "--cohorts", filepath.Join("..", "testdata", "cohorts"), "--users", users,
		"-o", "jsonl", "--print-events="+path)
	require.Equal(t, 0, code, errOut)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	ids := make(map[string]bool)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var p struct {
			Event struct {
				InsertID string `json:"insert_id"`
			} `json:"event"`
			Deduplicated bool `json:"deduplicated"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &p))
		if !p.Deduplicated {
			ids[p.Event.InsertID] = true
		}
	}
	require.NoError(t, sc.Err())
	return ids
}

// runTracked runs the CLI with ctx, stdout discarded, in a clean
// environment plus env.
func runTracked(t *testing.T, ctx context.Context, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ios, _, errOut := testStreams("")
	ios.Out = io.Discard
	ios.Getenv = func(k string) string { return env[k] }
	return Main(ctx, args, ios), "", errOut.String()
}

// TestTrackedBatchWithLatencyLosesNothing: a batch of 7,000 users against
// an analytics server 50 ms away delivers every exposure exactly once and
// exits 0 (issue 14: with 50 ms latency only a fraction ever arrived).
func TestTrackedBatchWithLatencyLosesNothing(t *testing.T) {
	flags := filepath.Join("..", "testdata", "flags.json")
	users := benchUsers(t, 7000)
	want := printedExposures(t, flags, users)
	// More than the queue and the requests in flight hold: evaluation
	// has to wait for the server.
	require.Greater(t, len(want), trackQueueEvents+trackSenders*trackBatchEvents)

	srv := analyticstest.NewServer()
	defer srv.Close()
	srv.RequireAPIKey(trackKey)
	srv.SetLatency(50 * time.Millisecond)
	code, _, errOut := runTracked(t, t.Context(), map[string]string{"EXPERIMENT_API_KEY": trackKey},
		"evaluate", "--flags", flags, "--cohorts", filepath.Join("..", "testdata", "cohorts"), "--users", users, "-o", "jsonl", "--track-exposure", "--events-server-url", srv.EventsURL())
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, errOut)

	got := make(map[string]bool, len(want))
	for _, raw := range srv.Events() {
		var e struct {
			InsertID string `json:"insert_id"`
		}
		require.NoError(t, json.Unmarshal(raw, &e))
		if got[e.InsertID] {
			t.Fatalf("event %s arrived twice", e.InsertID)
		}
		got[e.InsertID] = true
	}
	assert.Equal(t, len(want), len(got))
	assert.Equal(t, want, got)
	assert.Greater(t, srv.PeakConcurrency(), 1, "requests in parallel")
	for _, r := range srv.Requests() {
		assert.LessOrEqual(t, len(r.Events), 2000)
		assert.Less(t, len(r.Body), 1_000_000)
	}
}

// TestTrackedBatchInterruptedWhileWaiting: with a server that never
// answers, evaluation waits for room in the queue; Ctrl-C still ends the
// run: exit 130 once close's 10 s flush gives up, the loss a warning.
func TestTrackedBatchInterruptedWhileWaiting(t *testing.T) {
	srv := analyticstest.NewServer()
	defer srv.Close()
	srv.SetLatency(time.Hour)
	users := benchUsers(t, 20000)
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		code   int
		errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, _, errOut := runTracked(t, ctx, map[string]string{"EXPERIMENT_API_KEY": trackKey},
			"evaluate", "--flags", filepath.Join("..", "testdata", "flags.json"), "--users", users, "-o", "jsonl",
			"--track-exposure", "--events-server-url", srv.EventsURL())
		done <- result{code, errOut}
	}()
	// Requests are stuck: the queue fills up and evaluation waits.
	require.Eventually(t, func() bool { return len(srv.Requests()) == 0 && srv.PeakConcurrency() == trackSenders },
		10*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	cancel()
	start := time.Now()
	select {
	case r := <-done:
		assert.Less(t, time.Since(start), 12*time.Second)
		assert.Equal(t, ExitInterrupted, r.code, r.errOut)
		assert.Contains(t, r.errOut, "experiment: warning: exposure events: ")
		assert.True(t, strings.Contains(r.errOut, "events lost"), r.errOut)
	case <-time.After(30 * time.Second):
		t.Fatal("the interrupted batch did not end")
	}
}
