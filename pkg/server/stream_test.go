package server_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/server"
)

// sseClient reads events (data joined) from a stream, as the SDKs do.
type sseClient struct {
	events chan string
	cancel context.CancelFunc
	done   chan struct{}
}

func openStream(t *testing.T, url string) (*sseClient, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/sdk/stream/v1/flags", nil)
	req.Header.Set("Authorization", "Api-Key server-x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &sseClient{events: make(chan string, 16), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		var data []string
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				c.events <- strings.Join(data, "\n")
				data = nil
				continue
			}
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
		close(c.events)
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c, resp
}

func (c *sseClient) next(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
	}
	return ""
}

func TestStream(t *testing.T) {
	ts := newTestServer(t, server.Options{KeepAlive: 50 * time.Millisecond})
	c, resp := openStream(t, ts.URL)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	first := c.next(t, time.Second) // the SDKs give up after 1.5 s
	if !strings.HasPrefix(first, `[{"key":"new-editor"`) {
		t.Fatalf("first event %.80s", first)
	}
	if ka := c.next(t, time.Second); ka != " " {
		t.Fatalf("keep-alive %q, want one space", ka)
	}
	ts.store.SetProblem("broken edit") // not a change of flags: nothing pushed
	ts.store.Set(mustFlags(t, []byte(`[{"key":"only","variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]}]`), nil))
	for {
		ev := c.next(t, time.Second)
		if ev == " " {
			continue
		}
		if !strings.HasPrefix(ev, `[{"key":"only"`) {
			t.Fatalf("pushed %.80s", ev)
		}
		break
	}
	if st := ts.handler.Status(); st.Deployments[0].StreamClients != 1 {
		t.Fatalf("stream clients %d", st.Deployments[0].StreamClients)
	}
	ts.handler.Close() // ends the stream
	for range c.events {
	}
	ts.do(t, "GET", "/sdk/stream/v1/flags", "").want(t, 503)
}

func TestStreamManyClientsOnChange(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	const n = 50
	clients := make([]*sseClient, n)
	for i := range clients {
		clients[i], _ = openStream(t, ts.URL)
		clients[i].next(t, time.Second)
	}
	ts.store.Set(mustFlags(t, []byte(`[]`), nil))
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ev := c.next(t, 2*time.Second); ev != "[]" {
				t.Errorf("pushed %q", ev)
			}
		}()
	}
	wg.Wait()
}
