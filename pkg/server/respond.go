package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// gzipMin is the smallest body worth compressing.
const gzipMin = 1024

// writeError answers status with a short JSON body: SDKs decode whatever
// they get (the Go SDK even a flag body with an error status), so an error
// is never HTML or plain text.
func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg}) // a string always encodes
	writeBody(w, nil, status, b)
}

// writeBody sends a JSON body, gzipped when r asks for it and it is large
// enough; r nil never compresses.
func writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	if r != nil && len(body) >= gzipMin {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			writeGzipped(w, status, gzipBytes(body))
			return
		}
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r == nil || r.Method != http.MethodHead {
		w.Write(body)
	}
}

func writeGzipped(w http.ResponseWriter, status int, gz []byte) {
	hd := w.Header()
	hd.Set("Content-Encoding", "gzip")
	hd.Set("Content-Length", strconv.Itoa(len(gz)))
	w.WriteHeader(status)
	w.Write(gz)
}

// acceptsGzip reports whether the request says Accept-Encoding: gzip
// (with a q-value other than 0). The Node and Python SDKs cannot decode
// gzip and do not ask; nothing is compressed for them.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// notModified reports whether the request's If-None-Match names etag.
// Without If-None-Match it is false: no official SDK sends one, and a 304
// to them would be an empty body where they expect flags.
func notModified(r *http.Request, etag string) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// writeNotModified answers 304 with the headers a cache revalidates with.
func writeNotModified(w http.ResponseWriter, etag string) {
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusNotModified)
}

// errTooLarge is a request body over maxBodyBytes.
var errTooLarge = errors.New("request body larger than 1 MiB")

// readBody appends a request body of at most maxBodyBytes to buf, which
// the caller keeps (a pooled buffer: the common small body allocates
// nothing). The result is buf, grown, whatever the error.
func readBody(r *http.Request, buf []byte) ([]byte, error) {
	lr := io.LimitReader(r.Body, maxBodyBytes+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, fmt.Errorf("reading the request body: %w", err)
		}
	}
	if len(buf) > maxBodyBytes {
		return buf, errTooLarge
	}
	return buf, nil
}

// getBuf is scratch bytes for a request body, then the response body:
// neither is kept once the handler returns (writeBody writes before it
// returns, and a decoded user copies what it keeps).
func (h *Handler) getBuf() *[]byte {
	if p, ok := h.bufs.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, 8<<10)
	return &b
}

func (h *Handler) putBuf(p *[]byte) {
	if cap(*p) <= 256<<10 { // a huge body's buffer is not kept
		*p = (*p)[:0]
		h.bufs.Put(p)
	}
}
