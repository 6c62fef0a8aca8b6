package experiment_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

// localBenchUser is the benchmark user of testdata/bench/README.md.
var localBenchUser = &experiment.User{
	UserID: "user-12", DeviceID: "0f8fad5b-d9cb-469f-a165-70867728950e",
	Country: "United States", Platform: "iOS", Version: "2.0.0", OS: "iOS 17.1",
	UserProperties: map[string]any{
		"plan": "pro", "age": 30.0, "tags": []any{"alpha", "beta"}, "app_version": "1.2.3",
		"email": "alice@example.com", "beta_tester": true,
	},
	Groups:          map[string][]string{"org id": {"42"}},
	GroupProperties: map[string]map[string]any{"org id": {"42": map[string]any{"plan": "enterprise", "seats": 50.0}}},
}

func benchFlags(tb testing.TB, n int) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bench", fmt.Sprintf("flags-%d.json", n)))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func startedClient(tb testing.TB, body []byte) (*experiment.LocalClient, func()) {
	srv := experimenttest.NewFlagServer("server-bench", body)
	c := startClient(tb, srv)
	return c, func() { c.Close(); srv.Close() }
}

// startClient starts a LocalClient on srv's flags, polling too seldom to
// poll during a benchmark; the caller closes it.
func startClient(tb testing.TB, srv *experimenttest.FlagServer) *experiment.LocalClient {
	c, err := experiment.NewLocalClient(srv.Key, &experiment.LocalConfig{ServerURL: srv.URL, Logger: quiet, FlagConfigPollingInterval: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Start(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkLocalEvaluateV2 is evaluation through the local client, beside
// the bare engine (BenchmarkEvaluate in pkg/eval) on the same files and
// user: /results is the client's allocation-light path, /map the
// map-returning EvaluateV2 (a fresh map per call, variant metadata shared).
func BenchmarkLocalEvaluateV2(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		c, stop := startedClient(b, benchFlags(b, n))
		b.Run(fmt.Sprintf("flags=%d/results", n), func(b *testing.B) {
			dst := make([]eval.Result, 0, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.EvaluateResults(localBenchUser, nil, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("flags=%d/map", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.EvaluateV2(localBenchUser); err != nil {
					b.Fatal(err)
				}
			}
		})
		stop()
	}
}

// BenchmarkRefreshDuringEvaluation is one refresh of 1,000 flags (fetch,
// decode, compile, swap) per iteration while 2 goroutines evaluate without
// pause; it reports the worst evaluation latency seen. Run it with
// -benchtime 100x for the figure over 100 refreshes.
func BenchmarkRefreshDuringEvaluation(b *testing.B) {
	body := benchFlags(b, 1000)
	srv := experimenttest.NewFlagServer("server-bench", body)
	defer srv.Close()
	var updates atomic.Int64
	c, err := experiment.NewLocalClient(srv.Key, &experiment.LocalConfig{ServerURL: srv.URL, Logger: quiet,
		FlagConfigPollingInterval: time.Millisecond, OnUpdate: func(_, _ *experiment.FlagSet) { updates.Add(1) }})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	var worst, evals atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]eval.Result, 0, 1000)
			for {
				select {
				case <-done:
					return
				default:
				}
				start := time.Now()
				if _, err := c.EvaluateResults(localBenchUser, nil, dst[:0]); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(start).Nanoseconds()
				for old := worst.Load(); d > old && !worst.CompareAndSwap(old, d); old = worst.Load() {
				}
				evals.Add(1)
			}
		}()
	}
	i := 0
	for b.Loop() {
		i++
		want := updates.Load() + 1
		srv.SetFlags(bytes.Replace(body, []byte(`"flagVersion":`), []byte(fmt.Sprintf(`"refresh":%d,"flagVersion":`, i)), 1))
		for updates.Load() < want {
			time.Sleep(100 * time.Microsecond)
		}
	}
	close(done)
	wg.Wait()
	b.ReportMetric(float64(worst.Load()), "worst-eval-ns")
	b.ReportMetric(float64(evals.Load())/float64(i), "evals/refresh")
}

// TestSnapshotMemory reports the heap held by a compiled 1,000-flag set.
func TestSnapshotMemory(t *testing.T) {
	body := benchFlags(t, 1000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	flags, err := eval.DecodeFlags(body)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := experiment.NewFlagSet(flags, nil)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("1,000-flag snapshot: %.1f MiB of heap (config document %.1f MiB)", float64(held)/(1<<20), float64(len(body))/(1<<20))
	runtime.KeepAlive(fs)
}
