package fleettest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// deploymentKey is a key of the shape serve accepts; only the fake knows it.
const deploymentKey = "server-fleetTestDeploymentKey01"

// fakeAmplitude is Amplitude's flag service on 127.0.0.1: GET
// [PREFIX]/sdk/v2/flags answers the current generation of flags to
// deploymentKey and counts requests by path. Each relay gets its own
// PREFIX (/r0, /r1, ...) in --server-url, so the counts say which relay
// asked.
type fakeAmplitude struct {
	srv *httptest.Server

	mu     sync.Mutex
	gen    int
	body   []byte
	counts map[string]int // requests by path
}

func newFakeAmplitude(t *testing.T) *fakeAmplitude {
	f := &fakeAmplitude{counts: map[string]int{}}
	f.SetGen(1)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *fakeAmplitude) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.counts[r.URL.Path]++
	body := f.body
	f.mu.Unlock()
	switch {
	case r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/sdk/v2/flags"):
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
	case r.Header.Get("Authorization") != "Api-Key "+deploymentKey:
		http.Error(w, `{"error":"invalid api key"}`, http.StatusUnauthorized)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// URL is relay i's --server-url.
func (f *fakeAmplitude) URL(i int) string { return f.srv.URL + "/r" + strconv.Itoa(i) }

// SetGen serves generation gen of the flags from now on and returns its
// body.
func (f *fakeAmplitude) SetGen(gen int) []byte {
	body := flagsBody(gen)
	f.mu.Lock()
	f.gen, f.body = gen, body
	f.mu.Unlock()
	return body
}

// Current is the generation served and its body.
func (f *fakeAmplitude) Current() (int, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen, f.body
}

// FlagRequests counts flag requests by relay index (the path prefix).
func (f *fakeAmplitude) FlagRequests() map[int]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int]int{}
	for path, n := range f.counts {
		var i int
		if _, err := fmt.Sscanf(path, "/r%d/sdk/v2/flags", &i); err == nil {
			out[i] += n
		}
	}
	return out
}

// flagsBody is generation gen of the deployment's flags: fleet-gen serves
// variant g<gen> to everyone, fleet-static never changes. The keys are in an
// order of their own, not the order Go's encoding of the configs would give,
// so a relay that re-encodes instead of serving the upstream bytes shows.
func flagsBody(gen int) []byte {
	return fmt.Appendf(nil, `[{"variants":{"off":{"key":"off","metadata":{"default":true}},"g%[1]d":{"value":"%[1]d","key":"g%[1]d"}},`+
		`"segments":[{"variant":"g%[1]d"}],"key":"fleet-gen","metadata":{"flagType":"release","deployed":true}},`+
		`{"variants":{"off":{"key":"off","metadata":{"default":true}},"on":{"value":"on","key":"on"}},`+
		`"segments":[{"variant":"on"}],"key":"fleet-static"}]`, gen)
}

// genOf is the generation of a flags body (or stream event), -1 for none.
func genOf(body []byte) int {
	m := genPattern.FindSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

var genPattern = regexp.MustCompile(`"key":"g(\d+)"`)
