package interop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amplitude/experiment-go-server/pkg/experiment/local"

	"github.com/flagkit/experiment/internal/conformance"
)

// TestPythonSDKRequests replays the requests of Amplitude's Python SDK,
// which cannot run here: it keeps only the host of its server URL and posts
// to `/sdk/v2/vardata?v=0` with http.client, which neither asks for nor
// decodes gzip; its base64 (user, flag keys) is URL-safe without padding.
func TestPythonSDKRequests(t *testing.T) {
	c := loadCase(t, casesDir(t)+"/07-groups-cohorts")
	p := startServe(t, c.Flags, c.Cohorts)
	// Go's transport asks for gzip on its own; the Python SDK does not.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}
	for i, line := range c.Users {
		got := pythonFetch(t, client, http.MethodPost, p.URL+"/sdk/v2/vardata?v=0", bytes.TrimSpace(line), nil)
		checkResult(t, "python body", c, i, c.Expected[i], got)
		// The same user as a URL-safe unpadded header, on a GET (the
		// header form the SDKs send without a body).
		header := http.Header{"X-Amp-Exp-User": {urlsafe(line)}}
		got = pythonFetch(t, client, http.MethodGet, p.URL+"/sdk/v2/vardata?v=0", nil, header)
		checkResult(t, "url-safe user header", c, i, c.Expected[i], got)
	}
	// Flag keys, URL-safe and unpadded: the named flags come back as
	// expected (serve adds their dependencies, as local evaluation does).
	var keys []string
	for k := range c.Expected[0] {
		keys = append(keys, k)
		if len(keys) == 2 {
			break
		}
	}
	fk, _ := json.Marshal(keys)
	got := pythonFetch(t, client, http.MethodPost, p.URL+"/sdk/v2/vardata?v=0", c.Users[0], http.Header{"X-Amp-Exp-Flag-Keys": {urlsafe(fk)}})
	for _, k := range keys {
		if _, ok := got[k]; !ok {
			t.Errorf("flag keys %s: %s missing from %s", fk, k, conformance.Compact(got))
		}
	}
	for k, v := range got {
		if d := conformance.DiffResults(map[string]any{k: c.Expected[0][k]}, map[string]any{k: v}); len(d) > 0 {
			t.Errorf("flag keys %s: %v", fk, d)
		}
	}
}

func urlsafe(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(bytes.TrimSpace(b))
}

func pythonFetch(t *testing.T, client *http.Client, method, url string, body []byte, header http.Header) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Api-Key interop-python")
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s %s: %d, Content-Encoding %q, Content-Type %q: %.300s", method, url, resp.StatusCode,
			resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"), data)
	}
	var m map[string]any
	mustJSON(t, data, &m)
	return m
}

// TestGoSDKStreamPush: an edit of the flags file reaches a streaming Go
// client within seconds, though its polling is an hour apart.
func TestGoSDKStreamPush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	writeFlags(t, path, "on")
	p := startServe(t, path, "")
	client := local.Initialize("interop-push", &local.Config{
		ServerUrl: p.URL, StreamUpdates: true, StreamServerUrl: p.URL, FlagConfigPollerInterval: time.Hour,
	})
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	requireStreamClients(t, p, 1)
	if got := pushVariant(t, client); got != "on" {
		t.Fatalf("before the edit: %q, want on", got)
	}
	writeFlags(t, path, "off")
	deadline := time.Now().Add(10 * time.Second)
	for pushVariant(t, client) != "off" {
		if time.Now().After(deadline) {
			t.Fatalf("the edit did not reach the streaming client in 10 s:\n%s", p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pushVariant(t *testing.T, client *local.Client) string {
	t.Helper()
	got, err := client.EvaluateV2(decodeUser(t, []byte(`{"user_id":"u"}`)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return got["interop-push"].Key
}

// writeFlags writes a one-flag config giving variant to everyone, by
// rename so serve never reads half a file.
func writeFlags(t *testing.T, path, variant string) {
	t.Helper()
	flags := fmt.Sprintf(`[{"key":"interop-push","metadata":{"deployed":true,"evaluationMode":"local","flagType":"release","flagVersion":1},
"segments":[{"metadata":{"segmentName":"All Other Users"},"variant":%q}],
"variants":{"on":{"key":"on","value":"on"},"off":{"key":"off","value":"off"}}}]`, variant)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(flags), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
