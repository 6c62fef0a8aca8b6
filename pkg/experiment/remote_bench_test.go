package experiment_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

var benchUser = &experiment.User{
	UserID: "user@example.com", DeviceID: "d-1", Country: "US", Platform: "iOS",
	UserProperties: map[string]any{"plan": "pro", "age": 30.0, "tags": []any{"a", "b"}},
}

// benchResponse is a realistic answer: a few variants with payloads and
// metadata.
const benchResponse = `{"checkout-flow":{"key":"treatment","value":"treatment","payload":{"discount":20},` +
	`"metadata":{"experimentKey":"exp-1","flagType":"experiment","flagVersion":7,"segmentName":"All Other Users","evaluationId":"e-1"}},` +
	`"new-nav":{"key":"off","metadata":{"default":true,"flagType":"release","flagVersion":3}},` +
	`"banner":{"key":"on","value":"on","metadata":{"flagType":"release","flagVersion":12,"segmentName":"Pro users"}},` +
	`"pricing":{"key":"b","value":"b","payload":[1,2,3],"metadata":{"flagType":"experiment","flagVersion":2}}}`

// cannedTransport answers every request with benchResponse without a
// network, isolating the client's own cost.
type cannedTransport struct{ body []byte }

func (t cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(t.body)), ContentLength: int64(len(t.body)), Request: r}, nil
}

// BenchmarkFetchV2 measures one fetch: over loopback HTTP against the fake
// server (server allocations included, since it runs in this process), and
// against an in-memory transport (the client's overhead alone: encoding the
// user, building the request, reading and decoding the response).
func BenchmarkFetchV2(b *testing.B) {
	quiet := slog.New(slog.DiscardHandler)
	b.Run("server=httptest", func(b *testing.B) {
		s := experimenttest.NewRemoteServer(remoteKey)
		defer s.Close()
		s.SetRecording(false)
		s.SetDefaultResponse(&experimenttest.Response{Status: 200, Body: benchResponse})
		c, err := experiment.NewRemoteClient(remoteKey, &experiment.RemoteConfig{ServerURL: s.URL, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.FetchV2(b.Context(), benchUser, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("transport=inmemory", func(b *testing.B) {
		c, err := experiment.NewRemoteClient(remoteKey, &experiment.RemoteConfig{
			HTTPClient: &http.Client{Transport: cannedTransport{[]byte(benchResponse)}}, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.FetchV2(b.Context(), benchUser, &experiment.FetchOptions{FlagKeys: []string{"checkout-flow", "banner"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("server=httptest/parallel", func(b *testing.B) {
		s := experimenttest.NewRemoteServer(remoteKey)
		defer s.Close()
		s.SetRecording(false)
		s.SetDefaultResponse(&experimenttest.Response{Status: 200, Body: benchResponse})
		c, err := experiment.NewRemoteClient(remoteKey, &experiment.RemoteConfig{ServerURL: s.URL, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.FetchV2(b.Context(), benchUser, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkDecodeVariants(b *testing.B) {
	data := []byte(benchResponse)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := experiment.DecodeVariants(data); err != nil {
			b.Fatal(err)
		}
	}
}
