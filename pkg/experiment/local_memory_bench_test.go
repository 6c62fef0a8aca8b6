package experiment_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

// memoryBenchFlags is flags-1000.json for n = 1000; for n = 10000 ten
// copies of it, the keys of copy i suffixed "~i" (dependencies still name
// copy 0's flags, which exist): what is measured is what a set holds, not
// what it evaluates.
func memoryBenchFlags(tb testing.TB, n int) []byte {
	tb.Helper()
	doc := benchFlags(tb, 1000)
	if n == 1000 {
		return doc
	}
	var all []map[string]any
	for i := range n / 1000 {
		var flags []map[string]any
		if err := json.Unmarshal(doc, &flags); err != nil {
			tb.Fatal(err)
		}
		for _, f := range flags {
			if i > 0 {
				f["key"] = fmt.Sprintf("%s~%d", f["key"], i)
			}
		}
		all = append(all, flags...)
	}
	out, err := json.Marshal(all)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// liveHeap is the live heap after full collections.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkLocalClientBytes reports the heap a started LocalClient holds
// per flag (B/flag), and after one evaluation of every flag (warm-B/flag:
// the metadata each result serves is merged on first use), then once
// FlagSet.Flags has been called (listed-B/flag: a set that keeps the
// document decodes its flags for the caller and keeps none, so this stays
// near warm-B/flag). The test server
// and its copy of the body exist before the first measurement, so they are
// not counted. Each iteration starts and measures one client.
func BenchmarkLocalClientBytes(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		body := memoryBenchFlags(b, n)
		b.Run(fmt.Sprintf("flags=%d", n), func(b *testing.B) {
			srv := experimenttest.NewFlagServer("server-bench", body)
			defer srv.Close()
			var cold, warm, listed uint64
			for b.Loop() {
				before := liveHeap()
				c := startClient(b, srv)
				cold = liveHeap() - before
				if _, err := c.EvaluateV2(localBenchUser); err != nil {
					b.Fatal(err)
				}
				warm = liveHeap() - before
				if got := len(c.FlagSet().Flags()); got != n {
					b.Fatalf("%d flags listed, want %d", got, n)
				}
				listed = liveHeap() - before
				c.Close()
			}
			b.ReportMetric(float64(cold)/float64(n), "B/flag")
			b.ReportMetric(float64(warm)/float64(n), "warm-B/flag")
			b.ReportMetric(float64(listed)/float64(n), "listed-B/flag")
		})
	}
}

// BenchmarkLocalClientStart is NewLocalClient and Start against a local
// server: the fetch, decoding and compiling of n flags.
func BenchmarkLocalClientStart(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		body := memoryBenchFlags(b, n)
		b.Run(fmt.Sprintf("flags=%d", n), func(b *testing.B) {
			srv := experimenttest.NewFlagServer("server-bench", body)
			defer srv.Close()
			b.ReportAllocs()
			for b.Loop() {
				c := startClient(b, srv)
				c.Close()
			}
		})
	}
}
