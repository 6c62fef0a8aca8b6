package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Fuzzers for what this package reads from users, disks and servers, beyond
// the remote evaluation body (FuzzDecodeVariants): the user JSON form, the
// flag cache file, Retry-After headers and server text that reaches logs.

func checkOneLine(t *testing.T, what string, err error) {
	t.Helper()
	msg := err.Error()
	if strings.TrimSpace(msg) == "" {
		t.Fatalf("%s: empty error", what)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("%s: error spans lines: %q", what, msg)
	}
}

func FuzzDecodeUser(f *testing.F) {
	for _, file := range []string{"../../testdata/user.json", "../../testdata/users.jsonl"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			f.Add(line)
		}
		f.Add(data)
	}
	for _, s := range []string{
		``, ` `, `null`, `[]`, `"x"`, `{}`, ` {"user_id":"u"} `, `{"user_id":1}`, `{"groups":{"t":"n"}}`,
		`{"groups":{"t":[1]}}`, `{"groups":{},"user_properties":{}}`, `{"group_properties":{"t":{"n":1}}}`,
		`{"cohort_ids":["a",null],"group_cohort_ids":{"t":{"n":["c"]}}}`, `{"user_properties":{"n":1e400}}`,
		`{"user_properties":{"n":1000000,"x":[1,{"y":null}]}}`, "{\"user_id\":\"\xff\"}", `{"user_id":"u"}{`,
		`{"USER_ID":"u","User_Id":"v"}`, `{"a\nb":1}`, `{"user_id":"u"` + "\n" + `,}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := DecodeUser(data)
		if err != nil {
			checkOneLine(t, "DecodeUser", err)
			if u != nil {
				t.Fatalf("user with an error: %+v", u)
			}
			if !errors.Is(err, ErrNotObject) && bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) == false {
				t.Fatalf("non-object %q: error %v does not wrap ErrNotObject", data, err)
			}
			return
		}
		// The JSON form round-trips: what a user encodes to decodes to the
		// same user (compared by encoding, so an empty map equals none).
		first, err := json.Marshal(u)
		if err != nil {
			t.Fatalf("decoded user does not encode: %v", err)
		}
		again, err := DecodeUser(first)
		if err != nil {
			t.Fatalf("encoded user %s does not decode: %v", first, err)
		}
		second, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("round trip changed the user:\n%s\n%s", first, second)
		}
	})
}

func FuzzReadFlagCache(f *testing.F) {
	flags, err := os.ReadFile("../../testdata/flags.json")
	if err != nil {
		f.Fatal(err)
	}
	good, err := json.Marshal(cacheEnvelope{Version: 1, FetchedAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), ServerURL: "https://api.lab.amplitude.com", Flags: flags})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"version":1}`, `{"version":1,"flags":[]}`, `{"version":1,"flags":null}`,
		`{"version":2,"flags":[]}`, `{"version":1,"fetched_at":"yesterday","flags":[]}`,
		`{"version":1,"fetched_at":"2024-05-01T12:00:00Z","server_url":"x","flags":[{"key":"a","variants":{}}]}`,
		`{"version":1,"flags":{"key":"a"}}`, `{"version":1,"flags":[{"key":1}]}`, `{"version":1,"flags":"[]"}`,
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "flags.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fc, err := readFlagCache(path)
		if err != nil {
			checkOneLine(t, "readFlagCache", err)
			if fc != nil {
				t.Fatal("snapshot with an error")
			}
			return
		}
		// What was read writes back and reads again the same. (The bytes
		// may change once: json.Marshal compacts the flags and escapes
		// '&', '<' and '>'; after that they are stable.)
		if err := writeFlagCache(path, fc, "https://example.com"); err != nil {
			t.Fatalf("cached snapshot does not write back: %v", err)
		}
		again, err := readFlagCache(path)
		if err != nil {
			t.Fatalf("rewritten snapshot does not read: %v", err)
		}
		if again.snap.Len() != fc.snap.Len() || !again.fetchedAt.Equal(fc.fetchedAt) {
			t.Fatalf("rewritten snapshot differs: %d flags at %v, was %d at %v", again.snap.Len(), again.fetchedAt, fc.snap.Len(), fc.fetchedAt)
		}
		if err := writeFlagCache(path, again, "https://example.com"); err != nil {
			t.Fatal(err)
		}
		third, err := readFlagCache(path)
		if err != nil || third.digest != again.digest {
			t.Fatalf("snapshot bytes not stable on a second rewrite: %v", err)
		}
	})
}
