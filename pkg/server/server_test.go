package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/server"
)

func TestFlagsEndpoint(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	var flags []map[string]any
	for _, path := range []string{"/sdk/v2/flags", "/sdk/v2/flags?v=0", "//sdk/v2/flags", "/sdk//v2/flags/"} {
		r := ts.do(t, "GET", path, "", "Authorization: Api-Key server-anything").want(t, 200)
		r.decode(t, &flags)
		if len(flags) != 18 {
			t.Fatalf("%s: %d flags, want 18", path, len(flags))
		}
		if r.header.Get("Content-Encoding") != "" {
			t.Fatalf("%s: compressed without being asked", path)
		}
	}
	r := ts.do(t, "GET", "/sdk/v2/flags", "")
	etag := r.header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	ts.do(t, "GET", "/sdk/v2/flags", "", "If-None-Match: "+etag).want(t, 304)
	ts.do(t, "GET", "/sdk/v2/flags", "", `If-None-Match: "other"`).want(t, 200)

	gz := ts.do(t, "GET", "/sdk/v2/flags", "", "Accept-Encoding: gzip").want(t, 200)
	if gz.header.Get("Content-Encoding") != "gzip" {
		t.Fatal("not gzipped when asked")
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, r.body) {
		t.Fatal("gzipped body differs from the plain one")
	}
	ts.do(t, "GET", "/sdk/v2/flags", "", "Accept-Encoding: gzip;q=0").want(t, 200)
	if h := ts.do(t, "HEAD", "/sdk/v2/flags", "").want(t, 200); h.header.Get("ETag") != etag || len(h.body) != 0 {
		t.Fatalf("HEAD: ETag %q, %d body bytes; want %q and none", h.header.Get("ETag"), len(h.body), etag)
	}
}

func TestNotReady(t *testing.T) {
	ts := newEmptyServer(t, server.Options{})
	for _, path := range []string{"/sdk/v2/flags", "/sdk/stream/v1/flags", "/sdk/v2/vardata", "/readyz"} {
		r := ts.do(t, "GET", path, "").want(t, 503)
		if path != "/readyz" && r.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", path)
		}
	}
	ts.do(t, "GET", "/healthz", "").want(t, 200)
	ts.store.Set(mustFlags(t, fixture(t, "flags.json"), nil))
	ts.do(t, "GET", "/readyz", "").want(t, 200)
}

// userJSON has characters whose base64 differs between the alphabets at
// some alignment: an emoji, Cyrillic, '?', '~', '>'.
const userJSON = `{"user_id":"user-1","device_id":"d-😀-жёлтый?~>","user_properties":{"plan":"pro","email":"a@acme.com"}}`

func TestVardataUserForms(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	want := ts.do(t, "POST", "/sdk/v2/vardata?v=0", userJSON, "Content-Type: application/json").want(t, 200).body
	for name, enc := range map[string]*base64.Encoding{
		"std padded": base64.StdEncoding, "std raw": base64.RawStdEncoding,
		"url padded": base64.URLEncoding, "url raw": base64.RawURLEncoding,
	} {
		h := "X-Amp-Exp-User: " + enc.EncodeToString([]byte(userJSON))
		for _, path := range []string{"/sdk/v2/vardata", "/sdk/v2/vardata?v=0", "//sdk/v2/vardata"} {
			got := ts.do(t, "GET", path, "", h).want(t, 200).body
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s: %s, want %s", name, path, clip(got), clip(want))
			}
		}
	}
	var v map[string]experiment.Variant
	json.Unmarshal(want, &v)
	if len(v) != 18 || v["new-editor"].Key != "on" {
		t.Fatalf("got %d variants, new-editor %+v", len(v), v["new-editor"])
	}
}

// A POST with no body (or only white space) takes its user from the
// header, as docs/serve.md says: a client may POST with the user in
// X-Amp-Exp-User.
func TestVardataEmptyPostFallsBackToHeader(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	want := ts.do(t, "POST", "/sdk/v2/vardata?v=0", userJSON).want(t, 200).body
	h := "X-Amp-Exp-User: " + base64.StdEncoding.EncodeToString([]byte(userJSON))
	for _, body := range []string{"", " \n"} {
		got := ts.do(t, "POST", "/sdk/v2/vardata?v=0", body, h).want(t, 200).body
		if !bytes.Equal(got, want) {
			t.Errorf("body %q: %s, want %s", body, clip(got), clip(want))
		}
	}
	ts.do(t, "POST", "/sdk/v2/vardata?v=0", "").want(t, 400)
	ts.do(t, "POST", "/sdk/v2/vardata?v=0", "[]", h).want(t, 400) // a body, if any, is the user
}

func TestVardataFlagKeysAndV1(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	user := "X-Amp-Exp-User: " + base64.StdEncoding.EncodeToString([]byte(userJSON))
	keys := "X-Amp-Exp-Flag-Keys: " + base64.RawURLEncoding.EncodeToString([]byte(`["new-editor","dark-mode"]`))
	var v map[string]experiment.Variant
	ts.do(t, "GET", "/sdk/v2/vardata", "", user, keys).want(t, 200).decode(t, &v)
	if len(v) != 2 {
		t.Fatalf("header keys: %d variants", len(v))
	}
	ts.do(t, "GET", "/sdk/v2/vardata?flag_key=new-editor,dark-mode", "", user).want(t, 200).decode(t, &v)
	if len(v) != 2 {
		t.Fatalf("query keys: %d variants", len(v))
	}
	// v1 drops default variants: the user gets "off" for most flags.
	var all, v1 map[string]experiment.Variant
	ts.do(t, "POST", "/sdk/v2/vardata", userJSON).want(t, 200).decode(t, &all)
	ts.do(t, "POST", "/sdk/vardata", userJSON).want(t, 200).decode(t, &v1)
	for k, x := range all {
		if _, kept := v1[k]; kept == (x.IsDefault() || !x.IsDeployed()) {
			t.Errorf("v1 %s: kept %v, variant %+v", k, kept, x)
		}
	}
	var q map[string]experiment.Variant
	ts.do(t, "GET", "/v1/vardata?user_id=user-1&context="+urlQuery(`{"user_properties":{"email":"a@acme.com"}}`), "").want(t, 200).decode(t, &q)
	if q["new-editor"].Key != "on" {
		t.Fatalf("/v1/vardata query form: new-editor %+v", q["new-editor"])
	}
	ts.do(t, "POST", "/v1/vardata", userJSON).want(t, 200).decode(t, &q)
	if len(q) != len(v1) {
		t.Fatalf("POST /v1/vardata: %d variants, /sdk/vardata %d", len(q), len(v1))
	}
}

func urlQuery(s string) string {
	r := strings.NewReplacer("{", "%7B", "}", "%7D", `"`, "%22", ":", "%3A", "@", "%40", ",", "%2C")
	return r.Replace(s)
}

func TestCohortsApplied(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	// user-4 is in cohort k3v9qa; the same user without cohorts is not.
	a := ts.do(t, "POST", "/sdk/v2/vardata", `{"user_id":"user-4"}`).want(t, 200).body
	b := ts.do(t, "POST", "/sdk/v2/vardata", `{"user_id":"user-5"}`).want(t, 200).body
	var va, vb map[string]experiment.Variant
	json.Unmarshal(a, &va)
	json.Unmarshal(b, &vb)
	differs := false
	for k := range va {
		if va[k].Key != vb[k].Key {
			differs = true
		}
	}
	if !differs {
		t.Fatal("a cohort member and a non-member got the same variants")
	}
}

func TestBadRequests(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	for _, c := range []struct {
		method, path, body string
		headers            []string
		status             int
	}{
		{"GET", "/sdk/v2/vardata", "", []string{"X-Amp-Exp-User: %%%"}, 400},
		{"GET", "/sdk/v2/vardata", "", []string{"X-Amp-Exp-User: " + base64.StdEncoding.EncodeToString([]byte("[1]"))}, 400},
		{"GET", "/sdk/v2/vardata", "", nil, 400},
		{"POST", "/sdk/v2/vardata", "not json", nil, 400},
		{"POST", "/sdk/v2/vardata", "", nil, 400},
		{"POST", "/sdk/v2/vardata", `{"user_id":1}`, nil, 400},
		{"POST", "/sdk/v2/vardata", `{"user_id":"a"}`, []string{"X-Amp-Exp-Flag-Keys: e30"}, 400},
		{"POST", "/sdk/v2/vardata", `{"user_id":"` + strings.Repeat("a", 2<<20) + `"}`, nil, 413},
		{"DELETE", "/sdk/v2/flags", "", nil, 405},
		{"POST", "/sdk/v2/flags", "", nil, 405},
		{"GET", "/nowhere", "", nil, 404},
		{"GET", "/", "", nil, 404},
		{"GET", "/sdk/v1/cohort/", "", nil, 404},
		{"GET", "/sdk/v1/cohort/k3v9qa?maxCohortSize=x", "", nil, 400},
		{"GET", "/sdk/v1/cohort/k3v9qa?lastModified=x", "", nil, 400},
		{"GET", "/sdk/vardata?context=%7B", "", nil, 400},
		{"GET", "/sdk/vardata?context=%5B%5D&user_id=a", "", nil, 400},
		{"POST", "/ofrep/v1/evaluate/flags/new-editor", "{", nil, 400},
		{"POST", "/ofrep/v1/evaluate/flags/new-editor", `{"context":[]}`, nil, 400},
	} {
		r := ts.do(t, c.method, c.path, c.body, c.headers...)
		if r.status != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, r.status, c.status, clip(r.body))
			continue
		}
		r.want(t, c.status)
		if len(r.body) == 0 || len(r.body) > 400 {
			t.Errorf("%s %s: error body of %d bytes, want a short JSON one", c.method, c.path, len(r.body))
		}
	}
}

func TestRequireKey(t *testing.T) {
	const key = "server-requiredKey123456"
	ts := newTestServer(t, server.Options{RequireKey: key})
	ts.do(t, "GET", "/sdk/v2/flags", "").want(t, 401)
	r := ts.do(t, "GET", "/sdk/v2/flags", "", "Authorization: Api-Key server-wrong").want(t, 401)
	if bytes.Contains(r.body, []byte("wrong")) {
		t.Fatal("the 401 quotes the key")
	}
	ts.do(t, "GET", "/sdk/v2/flags", "", "Authorization: Api-Key "+key).want(t, 200)
	ts.do(t, "POST", "/ofrep/v1/evaluate/flags", "{}", "Authorization: Bearer "+key).want(t, 200)
	ts.do(t, "POST", "/ofrep/v1/evaluate/flags", "{}", "X-API-Key: "+key).want(t, 200)
	ts.do(t, "GET", "/healthz", "").want(t, 200)
	st := ts.do(t, "GET", "/status", "").want(t, 200)
	if bytes.Contains(st.body, []byte("requiredKey")) {
		t.Fatalf("/status shows the key: %s", st.body)
	}
	m := ts.do(t, "GET", "/metrics", "")
	if m.status != 200 || bytes.Contains(m.body, []byte("requiredKey")) {
		t.Fatalf("/metrics: %d or shows the key", m.status)
	}
}

func TestCohortEndpoint(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	var c struct {
		CohortID     string   `json:"cohortId"`
		LastModified int64    `json:"lastModified"`
		Size         int      `json:"size"`
		MemberIDs    []string `json:"memberIds"`
	}
	ts.do(t, "GET", "/sdk/v1/cohort/k3v9qa?maxCohortSize=100", "", "Authorization: Basic eDp5").want(t, 200).decode(t, &c)
	if c.CohortID != "k3v9qa" || c.Size != 8 || len(c.MemberIDs) != 8 {
		t.Fatalf("cohort %+v", c)
	}
	ts.do(t, "GET", "/sdk/v1/cohort/k3v9qa?maxCohortSize=100&lastModified=1732500000000", "").want(t, 204)
	ts.do(t, "GET", "/sdk/v1/cohort/k3v9qa?maxCohortSize=100&lastModified=1", "").want(t, 200)
	ts.do(t, "GET", "/sdk/v1/cohort/k3v9qa?maxCohortSize=7", "").want(t, 413)
	ts.do(t, "GET", "/sdk/v1/cohort/nope?maxCohortSize=7", "").want(t, 404)
	var ids []string
	ts.do(t, "GET", "/sdk/v2/memberships/User/user-4", "").want(t, 200).decode(t, &ids)
	if len(ids) == 0 || ids[0] != "k3v9qa" {
		t.Fatalf("memberships of user-4: %q", ids)
	}
	ts.do(t, "GET", "/sdk/v2/memberships/User/nobody", "").want(t, 200).decode(t, &ids)
	if len(ids) != 0 {
		t.Fatalf("memberships of nobody: %q", ids)
	}
}

func TestStatusAndMetrics(t *testing.T) {
	ts := newTestServer(t, server.Options{Mode: "snapshot"})
	ts.do(t, "GET", "/sdk/v2/flags", "")
	var st server.Status
	ts.do(t, "GET", "/status", "").want(t, 200).decode(t, &st)
	d := st.Deployments[0]
	if !st.Healthy || st.Mode != "snapshot" || d.Flags != 18 || d.ETag == "" || len(d.Cohorts) != 2 || d.Key != "any" {
		t.Fatalf("status %+v", st)
	}
	ts.store.SetProblem("flags.json:1:2: broken")
	ts.do(t, "GET", "/status", "").want(t, 200).decode(t, &st)
	if st.Healthy || st.Status != "degraded" || st.Deployments[0].Problem == "" {
		t.Fatalf("status after a problem %+v", st)
	}
	// A request is recorded once its handler returns, which can be after
	// the client has read the answer: wait for it (5 s at most).
	const flagsCount = `experiment_serve_request_duration_seconds_count{code="200",method="GET",route="flags"} 1`
	m := ts.do(t, "GET", "/metrics", "")
	for deadline := time.Now().Add(5 * time.Second); !bytes.Contains(m.body, []byte(flagsCount)) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		m = ts.do(t, "GET", "/metrics", "")
	}
	for _, name := range []string{
		flagsCount, "experiment_serve_stream_connections 0", "experiment_serve_flags_age_seconds", "experiment_serve_flags 18",
	} {
		if !bytes.Contains(m.body, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestOpsSplit(t *testing.T) {
	store := server.NewStore()
	h := server.New(store, server.Options{})
	defer h.Close()
	api, ops := &testServer{}, &testServer{}
	api.Server, ops.Server = newHTTPServer(t, h.API()), newHTTPServer(t, h.Ops())
	api.do(t, "GET", "/metrics", "").want(t, 404)
	if r := ops.do(t, "GET", "/metrics", ""); r.status != 200 {
		t.Fatalf("ops /metrics: %d", r.status)
	}
	ops.do(t, "GET", "/sdk/v2/flags", "").want(t, 404)
	api.do(t, "GET", "/sdk/v2/flags", "").want(t, 503)
}

// TestRequestRecorded checks each request is logged at debug level and
// counted once in /metrics, the second one too (its histogram child is
// the cached one).
func TestRequestRecorded(t *testing.T) {
	var logs bytes.Buffer
	h := server.New(server.NewStore(), server.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	defer h.Close()
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
	}
	if n := strings.Count(logs.String(), "route=healthz method=GET status=200"); n != 2 {
		t.Fatalf("%d debug records of /healthz, want 2:\n%s", n, logs.String())
	}
	m := httptest.NewRecorder()
	h.ServeHTTP(m, httptest.NewRequest("GET", "/metrics", nil))
	const want = `experiment_serve_request_duration_seconds_count{code="200",method="GET",route="healthz"} 2`
	if !strings.Contains(m.Body.String(), want) {
		t.Fatalf("/metrics lacks %s:\n%s", want, m.Body.String())
	}
}
