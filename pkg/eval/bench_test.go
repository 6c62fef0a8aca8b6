package eval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// benchContext is the benchmark user of testdata/bench/README.md.
func benchContext() *Context {
	return &Context{
		UserID: "user-12", DeviceID: "0f8fad5b-d9cb-469f-a165-70867728950e",
		Country: "United States", Platform: "iOS", Version: "2.0.0", OS: "iOS 17.1",
		UserProperties: map[string]any{
			"plan": "pro", "age": 30.0, "tags": []any{"alpha", "beta"}, "app_version": "1.2.3",
			"email": "alice@example.com", "beta_tester": true,
		},
		Groups:          map[string][]string{"org id": {"42"}},
		GroupProperties: map[string]map[string]any{"org id": {"42": map[string]any{"plan": "enterprise", "seats": 50.0}}},
	}
}

func loadBenchSnapshot(tb testing.TB, n int) *Snapshot {
	tb.Helper()
	flags, err := DecodeFlags(benchDoc(tb, n))
	if err != nil {
		tb.Fatal(err)
	}
	snap, err := Compile(flags)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

var sinkResults []Result

// BenchmarkEvaluate evaluates every flag of testdata/bench/flags-N.json
// (10,000: see benchDoc) for the benchmark user. bench/official measures
// the official SDK beside it, in the same run: compare only there.
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("flags=%d", n), func(b *testing.B) {
			snap := loadBenchSnapshot(b, n)
			ctx := benchContext()
			dst := make([]Result, 0, n)
			snap.Evaluate(ctx, nil, dst) // the first evaluation merges the metadata each result serves
			runtime.GC()
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if sinkResults, err = snap.Evaluate(ctx, nil, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEvaluateFreshResults is the same with a nil dst, as a caller that
// keeps each evaluation's results would call it.
func BenchmarkEvaluateFreshResults(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("flags=%d", n), func(b *testing.B) {
			snap := loadBenchSnapshot(b, n)
			ctx := benchContext()
			b.ReportAllocs()
			for b.Loop() {
				sinkResults, _ = snap.Evaluate(ctx, nil, nil)
			}
		})
	}
}

var sinkHash uint32

func BenchmarkBucketNoAlloc(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkHash = hashBucket("x1y2z3w4", "0f8fad5b-d9cb-469f-a165-70867728950e")
	}
}

// benchDoc returns shared/bench/flags-N.json, or for N = 10000 ten copies
// of flags-1000.json, each with its keys renamed (and so the dependencies
// and result selectors that name them).
func benchDoc(tb testing.TB, n int) []byte {
	tb.Helper()
	if n == 10000 {
		return tenfold(tb, benchDoc(tb, 1000))
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bench", fmt.Sprintf("flags-%d.json", n)))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func tenfold(tb testing.TB, doc []byte) []byte {
	var all []any
	for i := range 10 {
		var flags []map[string]any
		if err := json.Unmarshal(doc, &flags); err != nil {
			tb.Fatal(err)
		}
		rename := func(key any) string { return fmt.Sprintf("%s~%d", key, i) }
		for _, f := range flags {
			f["key"] = rename(f["key"])
			deps, _ := f["dependencies"].([]any)
			for d := range deps {
				deps[d] = rename(deps[d])
			}
			segments, _ := f["segments"].([]any)
			for _, seg := range segments {
				groups, _ := seg.(map[string]any)["conditions"].([]any)
				for _, group := range groups {
					conds, _ := group.([]any)
					for _, c := range conds {
						if sel, _ := c.(map[string]any)["selector"].([]any); len(sel) > 1 && sel[0] == "result" {
							sel[1] = rename(sel[1])
						}
					}
				}
			}
			all = append(all, f)
		}
	}
	out, err := json.Marshal(all)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

var sinkFlags []*Flag

// BenchmarkDecodeFlags decodes flags-1000.json.
func BenchmarkDecodeFlags(b *testing.B) {
	data := benchDoc(b, 1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if sinkFlags, err = DecodeFlags(data); err != nil {
			b.Fatal(err)
		}
	}
}

var sinkSnapshot *Snapshot

// BenchmarkLoad loads flags-1000.json: decoded and compiled in one call.
func BenchmarkLoad(b *testing.B) {
	data := benchDoc(b, 1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if sinkSnapshot, err = Load(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile compiles the decoded flags-1000.json.
func BenchmarkCompile(b *testing.B) {
	flags, err := DecodeFlags(benchDoc(b, 1000))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if sinkSnapshot, err = Compile(flags); err != nil {
			b.Fatal(err)
		}
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkSnapshotBytes reports the heap one compiled flags-N.json holds,
// per flag: loaded (Load keeps the document), decoded and compiled (the
// Snapshot keeps the decoded flags, for Flag and Explain), and compiled
// alone (what Compile adds to the flags); then loaded and warm, after an
// evaluation built the metadata it serves.
func BenchmarkSnapshotBytes(b *testing.B) {
	for _, n := range []int{1000} {
		data := benchDoc(b, n)
		heldPerFlag(b, fmt.Sprintf("flags=%d/loaded", n), n, func() any {
			snap, _ := Load(data)
			return snap
		})
		heldPerFlag(b, fmt.Sprintf("flags=%d/loaded-warm", n), n, func() any {
			snap, _ := Load(data)
			snap.Evaluate(benchContext(), nil, nil)
			return snap
		})
		heldPerFlag(b, fmt.Sprintf("flags=%d/decoded+compiled", n), n, func() any {
			flags, _ := DecodeFlags(data)
			snap, _ := Compile(flags)
			return snap
		})
		flags, _ := DecodeFlags(data)
		heldPerFlag(b, fmt.Sprintf("flags=%d/compiled", n), n, func() any {
			snap, _ := Compile(flags)
			return snap
		})
	}
}

// heldPerFlag runs a sub-benchmark reporting the live heap that what build
// returns holds, per flag of n.
func heldPerFlag(b *testing.B, name string, n int, build func() any) {
	b.Run(name, func(b *testing.B) {
		var held uint64
		for b.Loop() {
			before := heapInUse()
			v := build()
			held = heapInUse() - before
			runtime.KeepAlive(v)
		}
		b.ReportMetric(float64(held)/float64(n), "B/flag")
	})
}
