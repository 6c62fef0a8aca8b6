package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/flagkit/experiment/internal/httpx"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// DecodeUserHeader decodes an X-Amp-Exp-User header: base64 in any
// alphabet, padded or not, of the JSON user object. Amplitude's proxy takes
// only the standard alphabet, padded, and so rejects some users whose JSON
// has an emoji or a '?' (the SDKs that send URL-safe base64).
func DecodeUserHeader(v string) (*experiment.User, error) {
	data, err := httpx.DecodeBase64(v)
	if err != nil {
		return nil, fmt.Errorf("X-Amp-Exp-User: not base64: %w", err)
	}
	u, err := experiment.DecodeUser(data)
	if err != nil {
		return nil, fmt.Errorf("X-Amp-Exp-User: %s", clip(err.Error()))
	}
	return u, nil
}

// clip bounds a message that may quote what the client sent.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// requestUser is the user of a remote evaluation request: the JSON body
// of a POST, else (no body, or only white space) the X-Amp-Exp-User
// header, else the query of the v1 GET form (user_id, device_id, context:
// a JSON user object). buf is scratch for the body.
func requestUser(r *http.Request, buf *[]byte) (*experiment.User, int, error) {
	if r.Method == http.MethodPost {
		body, err := readBody(r, (*buf)[:0])
		*buf = body
		if err != nil {
			if errors.Is(err, errTooLarge) {
				return nil, http.StatusRequestEntityTooLarge, err
			}
			return nil, http.StatusBadRequest, err
		}
		if len(bytes.TrimSpace(body)) > 0 {
			u, err := experiment.DecodeUser(body)
			if err != nil {
				return nil, http.StatusBadRequest, fmt.Errorf("request body: %s", clip(err.Error()))
			}
			return u, 0, nil
		}
	}
	if v := r.Header.Get("X-Amp-Exp-User"); v != "" {
		u, err := DecodeUserHeader(v)
		if err != nil {
			return nil, http.StatusBadRequest, err
		}
		return u, 0, nil
	}
	q := r.URL.Query()
	if !q.Has("user_id") && !q.Has("device_id") && !q.Has("context") {
		return nil, http.StatusBadRequest, errors.New("no user: send X-Amp-Exp-User, a JSON body, or user_id/device_id")
	}
	u := &experiment.User{}
	if c := q.Get("context"); c != "" {
		var err error
		if u, err = experiment.DecodeUser([]byte(c)); err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("context: %s", clip(err.Error()))
		}
	}
	if v := q.Get("user_id"); v != "" {
		u.UserID = v
	}
	if v := q.Get("device_id"); v != "" {
		u.DeviceID = v
	}
	return u, 0, nil
}

// requestFlagKeys are the flags asked for: X-Amp-Exp-Flag-Keys (base64 of
// a JSON array), or ?flag_key=a,b (also flag_keys); none means every flag.
func requestFlagKeys(r *http.Request) ([]string, error) {
	if v := r.Header.Get("X-Amp-Exp-Flag-Keys"); v != "" {
		data, err := httpx.DecodeBase64(v)
		if err != nil {
			return nil, fmt.Errorf("X-Amp-Exp-Flag-Keys: not base64: %w", err)
		}
		var keys []string
		if err := json.Unmarshal(data, &keys); err != nil {
			return nil, errors.New("X-Amp-Exp-Flag-Keys: want a JSON array of flag keys")
		}
		return keys, nil
	}
	var keys []string
	if !strings.Contains(r.URL.RawQuery, "flag_key") {
		return nil, nil // "?v=0", what the SDKs send, is not parsed
	}
	q := r.URL.Query()
	for _, name := range []string{"flag_key", "flag_keys"} {
		for _, v := range q[name] {
			for _, k := range strings.Split(v, ",") {
				if k = strings.TrimSpace(k); k != "" {
					keys = append(keys, k)
				}
			}
		}
	}
	return keys, nil
}

func (h *Handler) serveVardataV2(w http.ResponseWriter, r *http.Request, d *deployment, _ []string) {
	h.serveVardata(w, r, d, false)
}

func (h *Handler) serveVardataV1(w http.ResponseWriter, r *http.Request, d *deployment, _ []string) {
	h.serveVardata(w, r, d, true)
}

// serveVardata answers remote evaluation: a JSON object flag key ->
// variant, default variants included unless v1, which drops variants
// that are default or not deployed (the legacy fetch filter).
func (h *Handler) serveVardata(w http.ResponseWriter, r *http.Request, d *deployment, v1 bool) {
	st := h.current(w, d)
	if st == nil {
		return
	}
	bp := h.getBuf()
	defer h.putBuf(bp)
	user, status, err := requestUser(r, bp)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	keys, err := requestFlagKeys(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := st.Flags
	buf := h.getResults()
	defer h.putResults(buf)
	results, err := f.Set.EvaluateResults(user, keys, (*buf)[:0])
	*buf = results
	if err != nil {
		writeError(w, http.StatusInternalServerError, "flag configs: "+err.Error())
		return
	}
	h.track(r, user, results)
	body := append((*bp)[:0], '{') // the request body is decoded: reuse its bytes
	defer func() { *bp = body }()
	for _, res := range results {
		if v1 && dropV1(res) {
			continue
		}
		if len(body) > 1 {
			body = append(body, ',')
		}
		body = append(body, f.render.fragment(res)...)
	}
	body = append(body, '}')
	writeBody(w, r, http.StatusOK, body)
}

// track hands an evaluation to Options.Track when the request asks for
// its events: X-Amp-Exp-Track "track" or absent for the assignment
// ("no-track" and "read-only" for none), X-Amp-Exp-Exposure-Track "track"
// for the exposure (absent: none). Default variants are included, as
// Amplitude's remote evaluation tracks them.
func (h *Handler) track(r *http.Request, user *experiment.User, results []eval.Result) {
	if h.opts.Track == nil || len(results) == 0 {
		return
	}
	t := Tracked{User: user}
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amp-Exp-Track"))) {
	case "", "track":
		t.Assignment = true
	}
	t.Exposure = strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Amp-Exp-Exposure-Track")), "track")
	if !t.Assignment && !t.Exposure {
		return
	}
	t.Variants = make(map[string]experiment.Variant, len(results))
	for _, res := range results {
		t.Variants[res.FlagKey] = experiment.VariantOf(res)
	}
	h.opts.Track(t)
}

// dropV1 is the legacy fetch filter: default variants and undeployed flags.
func dropV1(r eval.Result) bool {
	v := experiment.VariantOf(r)
	return v.IsDefault() || !v.IsDeployed()
}

func (h *Handler) getResults() *[]eval.Result {
	if p, ok := h.results.Get().(*[]eval.Result); ok {
		return p
	}
	s := make([]eval.Result, 0, 64)
	return &s
}

func (h *Handler) putResults(p *[]eval.Result) {
	if cap(*p) <= 4096 { // a huge flag set's buffer is not kept
		clear(*p)
		h.results.Put(p)
	}
}

// renderCache holds, per outcome of a Snapshot (flag, segment, variant),
// its rendered `"flag":{variant}` member: every user who lands on the same
// outcome gets the same bytes, so each is encoded once.
type renderCache struct {
	v2    []atomic.Pointer[[]byte]
	ofrep []atomic.Pointer[[]byte]
}

func newRenderCache(outcomes int) *renderCache {
	return &renderCache{
		v2:    make([]atomic.Pointer[[]byte], outcomes),
		ofrep: make([]atomic.Pointer[[]byte], outcomes),
	}
}

func (c *renderCache) fragment(r eval.Result) []byte {
	return cached(c.v2, r, func() []byte { return renderFragment(r) })
}

// cached is r's outcome rendered, from slots when another request
// rendered it already; an outcome outside the snapshot's is rendered
// afresh each time.
func cached(slots []atomic.Pointer[[]byte], r eval.Result, render func() []byte) []byte {
	if r.Outcome < 0 || r.Outcome >= len(slots) {
		return render()
	}
	if p := slots[r.Outcome].Load(); p != nil {
		return *p
	}
	b := render()
	slots[r.Outcome].Store(&b)
	return b
}

func renderFragment(r eval.Result) []byte {
	key, _ := json.Marshal(r.FlagKey) // a string always encodes
	v, err := json.Marshal(experiment.VariantOf(r))
	if err != nil { // a payload that is no JSON value cannot come from a decoded config
		v = []byte(`{"key":` + string(mustString(r.Key)) + `,"value":"","payload":null,"metadata":null}`)
	}
	return append(append(key, ':'), v...)
}

func mustString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}
