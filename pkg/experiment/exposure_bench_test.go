package experiment_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
	"github.com/flagkit/experiment/pkg/experiment"
)

// evtBenchUsers are distinct users: cycling through more of them than the
// de-duplication cache holds makes every evaluation new to it.
func evtBenchUsers(n int) []*experiment.User {
	base := evtBenchUser()
	users := make([]*experiment.User, n)
	for i := range users {
		u := *base
		u.UserID = fmt.Sprintf("user-%07d", i)
		users[i] = &u
	}
	return users
}

const evtBenchCache = 1 << 10 // smaller than the user cycle below

// evtBenchService is an exposure service whose sender is stuck in its first
// request until Close, so the benchmark measures the caller's side only:
// de-duplication, capturing the evaluation and enqueueing (with the queue
// full, dropping the oldest event for each new one).
func evtBenchService(b *testing.B) *experiment.ExposureService {
	b.Helper()
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{
		CacheCapacity: evtBenchCache,
		Config: analytics.Config{
			APIKey: evtAPIKey, ServerURL: "http://127.0.0.1:1/2/httpapi",
			Logger: slog.New(slog.DiscardHandler),
			HTTPClient: &http.Client{Transport: evtRoundTripper(func(r *http.Request) (*http.Response, error) {
				<-r.Context().Done()
				return nil, r.Context().Err()
			})},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = svc.Close(ctx) // reports the events it could not send
	})
	return svc
}

// BenchmarkTrackExposure is TrackExposure's cost for one evaluation of the
// 100 bench flags (testdata/bench/flags-100.json, bench user), reported per
// evaluated flag too: "seen" when the evaluation is a duplicate (the steady
// state), "new" when it is not (its exposed flags are captured and queued).
func BenchmarkTrackExposure(b *testing.B) {
	fs := evtBenchFlagSet(b, 100)
	users := evtBenchUsers(4 * evtBenchCache)
	// A few evaluations' results, reused with every user: results are hot
	// in the cache right after an evaluation, and the user ID alone makes
	// each evaluation new to the de-duplication cache.
	variants := make([]map[string]experiment.Variant, 64)
	for i := range variants {
		v, err := fs.EvaluateV2(users[i])
		if err != nil {
			b.Fatal(err)
		}
		variants[i] = v
	}
	flags := len(variants[0])
	exposed := len(experiment.ExposureEvents(users[0], variants[0], time.Now()))
	b.Logf("%d flags evaluated, %d exposed for the bench user", flags, exposed)

	b.Run("seen", func(b *testing.B) {
		svc := evtBenchService(b)
		svc.TrackExposure(users[0], variants[0])
		b.ReportAllocs()
		for b.Loop() {
			svc.TrackExposure(users[0], variants[0])
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(flags), "ns/flag")
	})
	b.Run("new", func(b *testing.B) {
		svc := evtBenchService(b)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			svc.TrackExposure(users[i], variants[i%len(variants)])
			if i++; i == len(users) {
				i = 0
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(flags), "ns/flag")
	})
}

var evtSinkVariants map[string]experiment.Variant

// BenchmarkEvaluateWithTracking is FlagSet.EvaluateV2 of the 100 bench
// flags with exposure tracking off and on: the same user every time
// (tracking de-duplicates), or a new user each time (every evaluation is
// captured and queued).
func BenchmarkEvaluateWithTracking(b *testing.B) {
	fs := evtBenchFlagSet(b, 100)
	same := evtBenchUser()
	users := evtBenchUsers(4 * evtBenchCache)
	for _, tc := range []struct {
		name  string
		users []*experiment.User
		track bool
	}{
		{"user=same/tracking=off", []*experiment.User{same}, false},
		{"user=same/tracking=on", []*experiment.User{same}, true},
		{"user=new/tracking=off", users, false},
		{"user=new/tracking=on", users, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var svc *experiment.ExposureService
			if tc.track {
				svc = evtBenchService(b)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				u := tc.users[i]
				if i++; i == len(tc.users) {
					i = 0
				}
				v, err := fs.EvaluateV2(u)
				if err != nil {
					b.Fatal(err)
				}
				if svc != nil {
					svc.TrackExposure(u, v)
				}
				evtSinkVariants = v
			}
		})
	}
}

// BenchmarkTrackerSend is the sender's cost per event, on its own
// goroutine: building the queued exposure events, encoding them and
// posting batches of 200 to a transport that answers at once.
func BenchmarkTrackerSend(b *testing.B) {
	fs := evtBenchFlagSet(b, 100)
	users := evtBenchUsers(4 * evtBenchCache)
	variants := make([]map[string]experiment.Variant, 256)
	for i := range variants {
		variants[i], _ = fs.EvaluateV2(users[i])
	}
	svc, err := experiment.NewExposureService(experiment.ExposureConfig{
		CacheCapacity: evtBenchCache,
		Config: analytics.Config{
			APIKey: evtAPIKey, ServerURL: "http://127.0.0.1:1/2/httpapi", QueueCapacity: 1 << 20,
			FlushQueueSize: 200, FlushInterval: time.Hour, Logger: slog.New(slog.DiscardHandler),
			HTTPClient: &http.Client{Transport: evtRoundTripper(func(r *http.Request) (*http.Response, error) {
				_, _ = io.Copy(io.Discard, r.Body)
				return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r,
					Body: io.NopCloser(strings.NewReader(`{"code":200}`))}, nil
			})},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	// Each iteration queues one new evaluation without timing it; every
	// 64 iterations the flush of what is queued is timed.
	b.ReportAllocs()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		svc.TrackExposure(users[i%len(users)], variants[i%len(variants)])
		if i%64 == 63 || i == b.N-1 {
			b.StartTimer()
			_ = svc.Flush(context.Background())
			b.StopTimer()
		}
	}
	st := svc.Stats()
	if err := svc.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(st.Sent, 1)), "ns/event")
	b.ReportMetric(float64(st.Sent)/float64(b.N), "events/op")
}

// BenchmarkTrackerThroughput is end-to-end delivery to the fake analytics
// server on 127.0.0.1, as the CLI's tracked batch sends (blocking queue,
// 2000-event requests, 8 senders): 100,000 exposure events of the bench
// flags per op, with the server answering at once and after 50 ms. events/s
// counts the events the server ingested; the op fails if one is missing.
func BenchmarkTrackerThroughput(b *testing.B) {
	fs := evtBenchFlagSet(b, 100)
	const users = 1400 // about 74 exposures each: 100,000 events
	us := evtBenchUsers(users)
	variants := make([]map[string]experiment.Variant, users)
	want := 0
	for i, u := range us {
		variants[i], _ = fs.EvaluateV2(u)
		want += len(experiment.ExposureEvents(u, variants[i], time.Now()))
	}
	for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%v", latency), func(b *testing.B) {
			delivered := 0
			for b.Loop() {
				srv := analyticstest.NewServer()
				srv.SetLatency(latency)
				svc, err := experiment.NewExposureService(experiment.ExposureConfig{Config: analytics.Config{
					APIKey: evtAPIKey, ServerURL: srv.EventsURL(), Logger: slog.New(slog.DiscardHandler),
					Overflow: analytics.OverflowBlock, FlushQueueSize: 2000, MaxConcurrentRequests: 8, QueueCapacity: 32000,
				}})
				if err != nil {
					b.Fatal(err)
				}
				for i, u := range us {
					if err := svc.TrackExposureContext(b.Context(), u, variants[i]); err != nil {
						b.Fatal(err)
					}
				}
				err = svc.Close(b.Context())
				got := srv.EventCount()
				srv.Close()
				if err != nil || got != want {
					b.Fatalf("%d of %d events delivered: %v", got, want, err)
				}
				delivered += got
			}
			b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
