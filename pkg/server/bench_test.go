package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flagkit/experiment/pkg/server"
)

// discard is a ResponseWriter that keeps nothing: the benchmarks measure
// the handler, not a recorder's buffer.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// benchHandler serves testdata/flags.json (18 flags, a 13.6 kB body).
func benchHandler(b *testing.B) *server.Handler {
	store := server.NewStore()
	store.Set(mustFlags(b, fixture(b, "flags.json"), fixtureCohorts(b)))
	h := server.New(store, server.Options{})
	b.Cleanup(h.Close)
	return h
}

// benchServe sends the same request b.N times; body, when set, is sent
// fresh each time, as a client does.
func benchServe(b *testing.B, h http.Handler, method, target, body string) {
	req := httptest.NewRequest(method, target, nil)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if body != "" {
			req.Body = io.NopCloser(strings.NewReader(body))
		}
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

func BenchmarkFlags(b *testing.B) {
	benchServe(b, benchHandler(b), "GET", "/sdk/v2/flags", "")
}

func BenchmarkVardataPost(b *testing.B) {
	benchServe(b, benchHandler(b), "POST", "/sdk/v2/vardata?v=0", userJSON)
}

func BenchmarkOFREPBulk(b *testing.B) {
	benchServe(b, benchHandler(b), "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"user-1","plan":"pro"}}`)
}

func BenchmarkHealthz(b *testing.B) {
	benchServe(b, benchHandler(b), "GET", "/healthz", "")
}

func BenchmarkOFREPSingle(b *testing.B) {
	benchServe(b, benchHandler(b), "POST", "/ofrep/v1/evaluate/flags/new-editor", `{"context":{"targetingKey":"user-1","email":"x@acme.com"}}`)
}
