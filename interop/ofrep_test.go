package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"
)

// ofrepUsers is how many users per case go through OFREP: each costs one
// request per flag and type, and the engine itself is covered above.
const ofrepUsers = 15

// codeDefault is a value no flag serves, so a default is told from a value.
const codeDefault = "code-default"

// checkOFREPGo evaluates conformance users through OpenFeature's Go SDK and
// OFREP provider: objects for every flag, strings and booleans where the
// served value has that type. Serve's mapping (docs/serve.md, OFREP): the
// payload when there is one, else the configured value, else the variant
// key; Amplitude's default variant and a flag giving no variant are DEFAULT
// with no value, an undeployed flag DISABLED.
func checkOFREPGo(t *testing.T, p *serveProc, c *confCase) {
	t.Helper()
	if err := openfeature.SetNamedProviderAndWait(c.Name, ofrep.NewProvider(p.URL, ofrep.WithBearerToken("interop"))); err != nil {
		t.Fatal(err)
	}
	client := openfeature.NewClient(c.Name)
	var keys []string
	for k := range c.Variants {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i := range min(ofrepUsers, len(c.Users)) {
		var user map[string]any
		mustJSON(t, c.Users[i], &user)
		targetingKey, _ := user["user_id"].(string)
		evalCtx := openfeature.NewEvaluationContext(targetingKey, user)
		for _, key := range keys {
			checkOFREPFlag(t, client, c, i, key, evalCtx)
		}
	}
}

// ofrepWant is what serve should answer for one user and flag.
func ofrepWant(c *confCase, i int, key string) (value any, variant string, served bool) {
	res, ok := c.Expected[i][key].(map[string]any)
	if !ok {
		return nil, "", false
	}
	md, _ := res["metadata"].(map[string]any)
	if md["default"] == true || md["deployed"] == false {
		return nil, res["key"].(string), false
	}
	variant = res["key"].(string)
	if res["payload"] != nil {
		return res["payload"], variant, true
	}
	if v := c.Variants[key][variant]["value"]; v != nil {
		return v, variant, true
	}
	return variant, variant, true
}

func checkOFREPFlag(t *testing.T, client *openfeature.Client, c *confCase, i int, key string, evalCtx openfeature.EvaluationContext) {
	t.Helper()
	ctx := context.Background()
	want, variant, served := ofrepWant(c, i, key)
	got, err := client.ObjectValueDetails(ctx, key, codeDefault, evalCtx)
	where := c.Name + " users.jsonl:" + itoa(i+1) + " flag " + key
	if !served {
		// The provider (v0.1.7) passes a DEFAULT answer's missing value
		// through as nil for objects instead of the code default; either
		// means "not served". It must not be an error.
		if err != nil || (got.Value != nil && got.Value != codeDefault) {
			t.Errorf("ofrep object: %s: want the code default, got %#v (%s, err %v)", where, got.Value, got.Reason, err)
		}
		if variant != "" && got.Variant != variant && got.Reason != openfeature.DefaultReason {
			t.Errorf("ofrep object: %s: variant %q, want %q", where, got.Variant, variant)
		}
		return
	}
	if err != nil || !reflect.DeepEqual(got.Value, want) || got.Variant != variant {
		t.Errorf("ofrep object: %s: got %#v variant %q (%s, err %v), want %#v variant %q", where, got.Value, got.Variant, got.Reason, err, want, variant)
	}
	switch r := got.Reason; r {
	case openfeature.SplitReason, openfeature.StaticReason, openfeature.TargetingMatchReason:
	default:
		t.Errorf("ofrep object: %s: reason %s", where, r)
	}
	switch w := want.(type) {
	case string:
		s, err := client.StringValueDetails(ctx, key, codeDefault, evalCtx)
		if err != nil || s.Value != w {
			t.Errorf("ofrep string: %s: got %q (err %v), want %q", where, s.Value, err, w)
		}
	case bool:
		b, err := client.BooleanValueDetails(ctx, key, !w, evalCtx)
		if err != nil || b.Value != w {
			t.Errorf("ofrep boolean: %s: got %v (err %v), want %v", where, b.Value, err, w)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestOFREPBulkETag: the Go provider has no bulk mode, so the bulk
// endpoint's ETag is driven as a bulk-polling provider does: the same
// context with If-None-Match gets 304, a changed context never does.
func TestOFREPBulkETag(t *testing.T) {
	c := loadCase(t, casesDir(t)+"/02-mixed")
	p := startServe(t, c.Flags, "")
	a, b := distinctUsers(t, c)
	status, etagA, bodyA := bulk(t, p, a, "")
	if status != http.StatusOK || etagA == "" {
		t.Fatalf("bulk: %d, ETag %q", status, etagA)
	}
	if status, etag, body := bulk(t, p, a, etagA); status != http.StatusNotModified || len(body) != 0 {
		t.Errorf("same context with If-None-Match %s: %d (ETag %s), %d body bytes; want 304 and no body", etagA, status, etag, len(body))
	}
	status, etagB, bodyB := bulk(t, p, b, etagA)
	if status != http.StatusOK {
		t.Fatalf("changed context with the old ETag: %d, want 200 (a stale 304 would hide the change)", status)
	}
	if etagB == etagA || bytes.Equal(bodyA, bodyB) {
		t.Errorf("two contexts with different results share ETag %s or body", etagA)
	}
	if status, _, _ := bulk(t, p, a, etagB); status != http.StatusOK {
		t.Errorf("context A with context B's ETag: %d, want 200", status)
	}
	if status, _, _ := bulk(t, p, a, `"something-else"`); status != http.StatusOK {
		t.Errorf("unknown If-None-Match: %d, want 200", status)
	}
}

// distinctUsers finds two users of the case whose expected results differ.
func distinctUsers(t *testing.T, c *confCase) (map[string]any, map[string]any) {
	t.Helper()
	for i := 1; i < len(c.Users); i++ {
		if !reflect.DeepEqual(c.Expected[0], c.Expected[i]) {
			var a, b map[string]any
			mustJSON(t, c.Users[0], &a)
			mustJSON(t, c.Users[i], &b)
			return a, b
		}
	}
	t.Fatal("every user gets the same results")
	return nil, nil
}

func bulk(t *testing.T, p *serveProc, user map[string]any, ifNoneMatch string) (int, string, []byte) {
	t.Helper()
	ctx := map[string]any{}
	for k, v := range user {
		ctx[k] = v
	}
	if id, ok := user["user_id"].(string); ok {
		ctx["targetingKey"] = id
	}
	body, _ := json.Marshal(map[string]any{"context": ctx})
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/ofrep/v1/evaluate/flags", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer interop")
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		var m struct {
			Flags []map[string]any `json:"flags"`
		}
		if err := json.Unmarshal(data, &m); err != nil || len(m.Flags) == 0 {
			t.Errorf("bulk body: %v, %.200s", err, data)
		}
	}
	return resp.StatusCode, resp.Header.Get("ETag"), data
}
