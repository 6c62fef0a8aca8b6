package server_test

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
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
