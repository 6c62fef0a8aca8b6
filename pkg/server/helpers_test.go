package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture reads a file of the repository's testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func fixtureCohorts(t testing.TB) *cohort.Store {
	t.Helper()
	store, errs := cohort.LoadDir(filepath.Join("..", "..", "testdata", "cohorts"), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return store
}

func mustFlags(t testing.TB, body []byte, cohorts *cohort.Store) *server.Flags {
	t.Helper()
	f, err := server.NewFlags(body, cohorts, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// testServer serves the repository's testdata flags and cohorts.
type testServer struct {
	*httptest.Server
	store   *server.Store
	handler *server.Handler
}

func newTestServer(t testing.TB, opts server.Options) *testServer {
	t.Helper()
	ts := newEmptyServer(t, opts)
	ts.store.Set(mustFlags(t, fixture(t, "flags.json"), fixtureCohorts(t)))
	return ts
}

func newEmptyServer(t testing.TB, opts server.Options) *testServer {
	t.Helper()
	store := server.NewStore()
	h := server.New(store, opts)
	srv := httptest.NewServer(h) // on 127.0.0.1
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return &testServer{Server: srv, store: store, handler: h}
}

// response is what a test looks at.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the given headers ("Name: value") and reads the
// whole answer. The client follows no redirect and decompresses nothing,
// so the test sees exactly what an SDK would.
func (ts *testServer) do(t testing.TB, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	client := &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, data}
}

// want checks the status, and that any body is JSON with a JSON type.
func (r response) want(t testing.TB, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, clip(r.body))
	}
	if len(r.body) > 0 && r.header.Get("Content-Encoding") == "" {
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("Content-Type %q, want application/json", ct)
		}
		if !json.Valid(r.body) {
			t.Fatalf("body is not JSON: %s", clip(r.body))
		}
	}
	return r
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%v: %s", err, clip(r.body))
	}
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(bytes.TrimSpace(b))
}

func newHTTPServer(t testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
