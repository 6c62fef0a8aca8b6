package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flagkit/experiment/internal/cli"
)

// benchUsers writes n varied users in the shape of the benchmark user.
func benchUsers(tb testing.TB, n int) string {
	tb.Helper()
	var buf bytes.Buffer
	plans := []string{"pro", "free", "enterprise"}
	countries := []string{"United States", "Germany", "France", "India", "Brazil"}
	for i := range n {
		fmt.Fprintf(&buf, `{"user_id":"user-%d","device_id":"%08x-d9cb-469f-a165-%012d","country":%q,"platform":"iOS","version":"%d.%d.%d","os":"iOS 17.1","user_properties":{"plan":%q,"age":%d,"tags":["alpha","beta"],"app_version":"1.2.3","email":"u%d@example.com","beta_tester":true},"groups":{"org id":["%d"]},"group_properties":{"org id":{"%d":{"plan":"enterprise","seats":%d}}}}`+"\n",
			i, uint32(i*2654435761), i, countries[i%5], i%4, i%10, i%7, plans[i%3], 18+i%60, i, i%100, i%100, i%500)
	}
	path := filepath.Join(tb.TempDir(), "users.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkBatchEvaluate is `evaluate --users` over 10,000 users and
// flags-100.json; users/s = 10000 / (ns/op / 1e9).
func BenchmarkBatchEvaluate(b *testing.B) {
	users := benchUsers(b, 10000)
	flags := filepath.Join("..", "testdata", "bench", "flags-100.json")
	b.ReportAllocs()
	for b.Loop() {
		ios := &cli.IOStreams{In: bytes.NewReader(nil), Out: io.Discard, ErrOut: io.Discard, Getenv: func(string) string { return "" }}
		if code := Main(context.Background(), []string{"evaluate", "--flags", flags, "--users", users, "-o", "jsonl"}, ios); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "users/s")
}
