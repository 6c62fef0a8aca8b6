package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/server"
)

// FuzzDecodeUserHeader: the decoder never panics, and a user that decodes
// decodes the same from all four base64 forms.
func FuzzDecodeUserHeader(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u"}`, userJSON, `{"user_properties":{"a":[1,{"b":null}]}}`, `[]`, `{`, "",
		`{"device_id":"ÿþ~~~???>>>"}`,
	} {
		f.Add(base64.StdEncoding.EncodeToString([]byte(s)))
		f.Add(base64.RawURLEncoding.EncodeToString([]byte(s)))
	}
	f.Add("%%%")
	f.Add("e30=\n")
	f.Fuzz(func(t *testing.T, header string) {
		u, err := server.DecodeUserHeader(header)
		if err != nil {
			return
		}
		data, _ := json.Marshal(u)
		var first *experiment.User
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			got, err := server.DecodeUserHeader(enc.EncodeToString(data))
			if err != nil {
				t.Fatalf("re-encoded user does not decode: %v", err)
			}
			if first == nil {
				first = got
			} else if !reflect.DeepEqual(first, got) {
				t.Fatalf("forms decode differently: %+v and %+v", first, got)
			}
		}
	})
}

// FuzzOFREPBody: any request body gets an answer, never a 500: 200 with
// the flag's evaluation, or 400 with an OFREP error code for a body or a
// context that cannot be read; both are JSON objects.
func FuzzOFREPBody(f *testing.F) {
	for _, s := range []string{
		`{"context":{"targetingKey":"user-1","email":"x@acme.com"}}`, `{"context":{"user_properties":{"a":1},"groups":{"org":["x"]}}}`,
		`{"context":5}`, `{"context":null}`, `{"Context":{"user_id":"u"}}`, `{"context":{"user_id":7}}`, `[]`, `{`, ``,
	} {
		f.Add(s)
	}
	store := server.NewStore()
	store.Set(mustFlags(f, fixture(f, "flags.json"), fixtureCohorts(f)))
	h := server.New(store, server.Options{})
	f.Cleanup(h.Close)
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/ofrep/v1/evaluate/flags/new-editor", strings.NewReader(body)))
		var a struct {
			Key, Reason, ErrorCode string
		}
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatalf("%d, not a JSON object: %v: %s", w.Code, err, w.Body)
		}
		switch {
		case w.Code == 200 && a.Reason != "" && a.ErrorCode == "":
		case w.Code == 400 && (a.ErrorCode == "PARSE_ERROR" || a.ErrorCode == "INVALID_CONTEXT"):
		default:
			t.Fatalf("%d %s for %q", w.Code, w.Body, body)
		}
	})
}

// FuzzParseOverride: what parses has a flag and a variant, and reads the
// same from its String form (the form --override shows it in).
func FuzzParseOverride(f *testing.F) {
	for _, s := range []string{"new-editor=on", "a=b@x@acme.com", "=on", "a=", "a=b@", "a", "a==b", "a=b=c@@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := server.ParseOverride(s)
		if err != nil {
			return
		}
		if o.Flag == "" || o.Variant == "" {
			t.Fatalf("%q: parsed to %+v", s, o)
		}
		again, err := server.ParseOverride(o.String())
		if err != nil || again != o {
			t.Fatalf("%q: %+v, from its String %q: %+v, %v", s, o, o.String(), again, err)
		}
	})
}
