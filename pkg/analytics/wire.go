package analytics

import (
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"

	"github.com/flagkit/experiment/internal/httpx"
)

// The wire format of Amplitude's HTTP V2 API: the request body, encoded
// once per event, and the parts of the reply the Client reads.

// eventsPayload is the HTTP V2 API's request body.
type eventsPayload struct {
	APIKey  string         `json:"api_key"`
	Events  []Event        `json:"events"`
	Options *eventsOptions `json:"options,omitempty"`
}

type eventsOptions struct {
	MinIDLength int `json:"min_id_length"`
}

// payloadFrame is the JSON of eventsPayload before and after its events
// array, exactly as encoding/json writes it: a request body is the frame
// around the events, encoded once each, so that splitting a batch (413,
// the size limit) costs no re-encoding.
func payloadFrame(key apiKey, minIDLength *int) (head, tail []byte) {
	p := eventsPayload{APIKey: string(key), Events: []Event{}}
	if minIDLength != nil {
		p.Options = &eventsOptions{MinIDLength: *minIDLength}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p) // strings and an int: cannot fail
	whole := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	i := bytes.Index(whole, []byte(`"events":[]`)) + len(`"events":[`)
	return slices.Clip(whole[:i]), whole[i:]
}

// body is the request body carrying events.
func (c *Client) body(events []pendingEvent) []byte {
	size := len(c.s.bodyHead) + len(c.s.bodyTail) + len(events)
	for _, e := range events {
		size += len(e.json)
	}
	b := make([]byte, 0, size)
	b = append(b, c.s.bodyHead...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.json...)
	}
	return append(b, c.s.bodyTail...)
}

// batchBuffer holds the encoded events of one batch, and the encoder of
// the events built by their Source.
type batchBuffer struct {
	buf     []byte
	scratch bytes.Buffer
	enc     *json.Encoder
}

// batchBuffers recycles the buffers of sent batches: a batch's buffer
// grows to a megabyte, and growing a fresh one for each batch was a tenth
// of the sender's time.
var batchBuffers = sync.Pool{New: func() any {
	b := &batchBuffer{}
	b.enc = json.NewEncoder(&b.scratch)
	b.enc.SetEscapeHTML(false) // as Amplitude's clients send events
	return b
}}

// encode appends ev's JSON as the Encoder writes it.
func (b *batchBuffer) encode(ev Event) error {
	b.scratch.Reset()
	if err := b.enc.Encode(ev); err != nil {
		return err
	}
	b.buf = append(b.buf, bytes.TrimSuffix(b.scratch.Bytes(), []byte("\n"))...)
	return nil
}

// eventsReply is the part of the HTTP V2 API's reply the Client reads.
type eventsReply struct {
	Code                       int              `json:"code"`
	Error                      string           `json:"error"`
	MissingField               string           `json:"missing_field"`
	EventsWithInvalidFields    map[string][]int `json:"events_with_invalid_fields"`
	EventsWithMissingFields    map[string][]int `json:"events_with_missing_fields"`
	EventsWithInvalidIDLengths map[string][]int `json:"events_with_invalid_id_lengths"`
	SilencedEvents             []int            `json:"silenced_events"`
	ExceededDailyQuotaUsers    map[string]int   `json:"exceeded_daily_quota_users"`
	ExceededDailyQuotaDevices  map[string]int   `json:"exceeded_daily_quota_devices"`
}

// invalidEvents lists, sorted, the indices of a 400's invalid events below
// n, and the fields the server complained about.
func (r *eventsReply) invalidEvents(n int) (idx []int, fields []string) {
	seen := make(map[int]bool)
	add := func(is []int) {
		for _, i := range is {
			if i >= 0 && i < n && !seen[i] {
				seen[i] = true
				idx = append(idx, i)
			}
		}
	}
	for _, m := range []map[string][]int{r.EventsWithInvalidFields, r.EventsWithMissingFields, r.EventsWithInvalidIDLengths} {
		for field, is := range m {
			fields = append(fields, field)
			add(is)
		}
	}
	if len(r.SilencedEvents) > 0 {
		fields = append(fields, "silenced")
		add(r.SilencedEvents)
	}
	slices.Sort(idx)
	slices.Sort(fields)
	return idx, slices.Compact(fields)
}

// overQuota lists the events of users or devices a 429 says have used up
// their daily quota: retrying them today is pointless.
func (r *eventsReply) overQuota(events []Event) []int {
	var idx []int
	for i, e := range events {
		_, u := r.ExceededDailyQuotaUsers[e.UserID]
		_, d := r.ExceededDailyQuotaDevices[e.DeviceID]
		if (u && e.UserID != "") || (d && e.DeviceID != "") {
			idx = append(idx, i)
		}
	}
	return idx
}

// removeIndices returns events without the sorted indices idx, in a new
// slice (the old one may still be read by a caller).
func removeIndices[E any](events []E, idx []int) []E {
	out := make([]E, 0, len(events)-len(idx))
	j := 0
	for i, e := range events {
		if j < len(idx) && idx[j] == i {
			j++
			continue
		}
		out = append(out, e)
	}
	return out
}

// serverText makes server-supplied text safe to log: the API key redacted
// in any form (Amplitude quotes it in "Invalid API key" errors) before the
// length is bounded, one line of printable characters.
func (c *Client) serverText(s string) string {
	return httpx.Snippet([]byte(s), maxServerTextLen, string(c.s.key))
}

// randomInsertID is a random UUID (version 4), what Amplitude's analytics
// clients put in an event that has no insert ID.
func randomInsertID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
