package fleettest

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// streamClient is an SDK's flag stream (GET /sdk/stream/v1/flags) on one
// relay: it notes when each generation of the flags first arrived.
type streamClient struct {
	Relay int

	mu    sync.Mutex
	first map[int]time.Time // generation -> first receipt
	err   error             // why the stream ended early, if it did
}

// openStream connects a stream client to relay r and waits for its first
// event (the flags in use); the stream is closed when the test ends.
func openStream(t *testing.T, r *relayProc) *streamClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL()+"/sdk/stream/v1/flags", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Api-Key "+deploymentKey)
	tr := &http.Transport{Proxy: nil}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("stream on relay %d: %v", r.Index, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		t.Fatalf("stream on relay %d: status %d", r.Index, resp.StatusCode)
	}
	s := &streamClient{Relay: r.Index, first: map[int]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		s.read(bufio.NewReader(resp.Body))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		tr.CloseIdleConnections()
	})
	waitFor(t, "the stream's first event", 10*time.Second, func() (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.first) > 0, "no event yet"
	})
	return s
}

// read parses server-sent events: data lines joined by "\n" up to a blank
// line; an event of white space only is a keep-alive.
func (s *streamClient) read(r *bufio.Reader) {
	var data [][]byte
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 {
			if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				data = append(data, bytes.TrimPrefix(d, []byte(" ")))
			}
			continue
		}
		ev := bytes.Join(data, []byte("\n"))
		data = nil
		if len(bytes.TrimSpace(ev)) == 0 {
			continue
		}
		now := time.Now()
		s.mu.Lock()
		if g := genOf(ev); g >= 0 {
			if _, seen := s.first[g]; !seen {
				s.first[g] = now
			}
		}
		s.mu.Unlock()
	}
}

// received is when generation gen first arrived.
func (s *streamClient) received(gen int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.first[gen]
	return at, ok
}
