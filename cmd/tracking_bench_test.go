package cmd

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
)

// BenchmarkBatchTracked is `evaluate --users --track-exposure` over 10,000
// users and testdata/flags.json (about 74,000 exposures) against the fake
// analytics server on 127.0.0.1, answering at once or after 50 ms, beside
// the same batch untracked. events/s counts the events the server
// ingested; an op that loses one fails.
func BenchmarkBatchTracked(b *testing.B) {
	users := benchUsers(b, 10000)
	flags := filepath.Join("..", "testdata", "flags.json")
	for _, tc := range []struct {
		name    string
		track   bool
		latency time.Duration
	}{
		{"tracking=off", false, 0},
		{"tracking=on/latency=0", true, 0},
		{"tracking=on/latency=50ms", true, 50 * time.Millisecond},
	} {
		b.Run(tc.name, func(b *testing.B) {
			events := 0
			for b.Loop() {
				args := []string{"evaluate", "--flags", flags, "--users", users, "-o", "jsonl"}
				var srv *analyticstest.Server
				if tc.track {
					srv = analyticstest.NewServer()
					srv.SetLatency(tc.latency)
					args = append(args, "--track-exposure", "--api-key", "benchApiKey0123456789", "--events-server-url", srv.EventsURL())
				}
				var errOut bytes.Buffer
				ios := &cli.IOStreams{In: bytes.NewReader(nil), Out: io.Discard, ErrOut: &errOut, Getenv: func(string) string { return "" }}
				code := Main(context.Background(), args, ios)
				if srv != nil {
					n := srv.EventCount()
					srv.Close()
					if n < 70000 {
						b.Fatalf("%d events delivered", n)
					}
					events += n
				}
				if code != 0 {
					b.Fatalf("exit %d: %s", code, errOut.String())
				}
			}
			b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "users/s")
			if events > 0 {
				b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			}
		})
	}
}
