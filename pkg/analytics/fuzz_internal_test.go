package analytics

// Fuzz tests of what the Client reads from the server: the text it quotes
// in logs and errors, and the reply that names events.

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func FuzzServerText(f *testing.F) {
	const key = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
	for _, s := range []string{
		"", "ok", "Invalid API key: " + key, "line one\nline two\r\n\ttab", strings.Repeat("é", 300),
		"key a1b2c3d4e5f6a7b8c9d0\x00e1f2a3b4c5d6 split", "\x1b[31mred\x1b[0m", "\xff\xfe invalid utf-8",
	} {
		f.Add(s, key)
	}
	f.Add("Invalid API key: server-Zq8xK2mN4pL7wR9t", "server-Zq8xK2mN4pL7wR9t")
	f.Fuzz(func(t *testing.T, s, key string) {
		c := &Client{s: &settings{key: apiKey(key)}}
		got := c.serverText(s)
		if len(key) >= 8 && strings.Contains(got, key) {
			t.Fatalf("serverText(%q) = %q shows the key", s, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) {
				t.Fatalf("serverText(%q) = %q has control character %U", s, got, r)
			}
		}
		if n := utf8.RuneCountInString(got); n > maxServerTextLen+1 {
			t.Fatalf("serverText: %d runes, want at most %d", n, maxServerTextLen+1)
		}
	})
}

func FuzzEventsReply(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `{"code":400,"error":"Request missing required field","missing_field":"api_key"}`,
		`{"code":400,"events_with_invalid_fields":{"time":[0,2,2,-1,99]},"events_with_missing_fields":{"event_type":[1]},"silenced_events":[3]}`,
		`{"code":429,"exceeded_daily_quota_users":{"u1":1},"exceeded_daily_quota_devices":{"d1":2}}`,
		`{"code":400,"events_with_invalid_id_lengths":{"user_id":[0]}}`, `{"events_with_invalid_fields":{"time":["x"]}}`,
	} {
		f.Add([]byte(s), uint8(4))
	}
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		var r eventsReply
		_ = json.Unmarshal(data, &r) // best effort, as post does
		events := make([]Event, n)
		for i := range events {
			events[i] = Event{UserID: []string{"", "u1", "u2"}[i%3], DeviceID: []string{"d1", "", "d2"}[i%3]}
		}
		idx, fields := r.invalidEvents(int(n))
		for i, x := range idx {
			if x < 0 || x >= int(n) || (i > 0 && idx[i-1] >= x) {
				t.Fatalf("invalidEvents(%d) = %v: out of range or not sorted and unique", n, idx)
			}
		}
		if len(idx) > 0 && len(fields) == 0 {
			t.Fatalf("invalid events %v without a field", idx)
		}
		over := r.overQuota(events)
		for _, x := range over {
			if x < 0 || x >= len(events) {
				t.Fatalf("overQuota = %v: out of range", over)
			}
		}
		if left := removeIndices(events, idx); len(left) != len(events)-len(idx) {
			t.Fatalf("removeIndices left %d of %d, removed %v", len(left), len(events), idx)
		}
	})
}
