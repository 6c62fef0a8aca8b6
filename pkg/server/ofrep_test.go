package server_test

import (
	"testing"

	"github.com/flagkit/experiment/pkg/server"
)

type ofrepAnswer struct {
	Key       string         `json:"key"`
	Value     any            `json:"value"`
	Reason    string         `json:"reason"`
	Variant   string         `json:"variant"`
	Metadata  map[string]any `json:"metadata"`
	ErrorCode string         `json:"errorCode"`
}

func TestOFREPSingle(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	var a ofrepAnswer
	ts.do(t, "POST", "/ofrep/v1/evaluate/flags/new-editor", `{"context":{"targetingKey":"user-1","email":"x@acme.com"}}`).want(t, 200).decode(t, &a)
	if a.Variant != "on" || a.Reason != "TARGETING_MATCH" || a.Value == nil || a.Metadata["flagVersion"] != float64(14) {
		t.Fatalf("acme user: %+v", a)
	}
	if payload, ok := a.Value.(map[string]any); !ok || payload["toolbar"] != "floating" {
		t.Fatalf("value %v, want the payload", a.Value)
	}
	a = ofrepAnswer{}
	r := ts.do(t, "POST", "/ofrep/v1/evaluate/flags/new-editor", `{"context":{"targetingKey":"user-2"}}`).want(t, 200)
	r.decode(t, &a)
	if a.Variant != "off" || a.Reason != "DEFAULT" || a.Value != nil {
		t.Fatalf("default: %+v (%s)", a, r.body)
	}
	ts.do(t, "POST", "/ofrep/v1/evaluate/flags/nope", `{"context":{}}`).want(t, 404).decode(t, &a)
	if a.ErrorCode != "FLAG_NOT_FOUND" || a.Key != "nope" {
		t.Fatalf("unknown flag: %+v", a)
	}
	ts.do(t, "POST", "/ofrep/v1/evaluate/flags/new-editor", `{"context":{"targetingKey":5}}`).want(t, 400).decode(t, &a)
	if a.ErrorCode != "INVALID_CONTEXT" {
		t.Fatalf("bad targetingKey: %+v", a)
	}
}

func TestOFREPBulkETag(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	var bulk struct{ Flags []ofrepAnswer }
	r := ts.do(t, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"user-1"}}`).want(t, 200)
	r.decode(t, &bulk)
	if len(bulk.Flags) != 18 {
		t.Fatalf("%d flags", len(bulk.Flags))
	}
	etag := r.header.Get("ETag")
	ts.do(t, "POST", "/ofrep/v1/evaluate/flags/", `{"context":{"targetingKey":"user-1"}}`, "If-None-Match: "+etag).want(t, 304)
	// Another context must not get a stale 304: the ETag hashes the body.
	other := ts.do(t, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"user-1","email":"a@acme.com"}}`, "If-None-Match: "+etag).want(t, 200)
	if other.header.Get("ETag") == etag {
		t.Fatal("a different answer has the same ETag")
	}
	ts.do(t, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"user-1"}}`).want(t, 200)
}

// TestOFREPBadRequest checks each kind of bad body gets its OFREP error
// code: a body that is not a JSON object is PARSE_ERROR, a context that is
// not an object INVALID_CONTEXT; an absent or null context is no context.
func TestOFREPBadRequest(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"context":{"targetingKey":"user-1"`, 400, "PARSE_ERROR"},
		{`[1]`, 400, "PARSE_ERROR"},
		{`"context"`, 400, "PARSE_ERROR"},
		{`{"context":5}`, 400, "INVALID_CONTEXT"},
		{`{"context":["a"]}`, 400, "INVALID_CONTEXT"},
		{`{"context":{"user_id":5}}`, 400, "INVALID_CONTEXT"},
		{`{"context":null}`, 200, ""},
		{`{}`, 200, ""},
		{``, 200, ""},
	} {
		var a ofrepAnswer
		ts.do(t, "POST", "/ofrep/v1/evaluate/flags/new-editor", c.body).want(t, c.status).decode(t, &a)
		if a.ErrorCode != c.code {
			t.Errorf("%s: error code %q, want %q", c.body, a.ErrorCode, c.code)
		}
	}
}
