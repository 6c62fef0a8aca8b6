package fleet

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stalledRedis accepts connections and never answers, as a Redis stopped
// with SIGSTOP (or behind a dropped route) does.
func stalledRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestStalledRedis: with a Redis that never answers, a relay serves
// alone within a few call deadlines, and stops promptly.
func TestStalledRedis(t *testing.T) {
	opts, err := ParseURL("redis://"+stalledRedis(t), false)
	require.NoError(t, err)
	f, err := New(Config{Redis: opts, LeaseTTL: time.Second, CallTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer f.Close()
	body := flagsBody(t)
	r, err := NewRelay(RelayConfig{Fleet: f, Key: testKey, Fetch: newUpstream(body).fetch(f), PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, f, []*Relay{r}) }()
	require.Eventually(t, func() bool { return r.Current().Flags != nil }, 3*time.Second, 10*time.Millisecond)
	assert.Equal(t, RoleAlone, r.Role())
	up, lastErr := f.Up()
	assert.False(t, up)
	assert.NotEmpty(t, lastErr)

	began := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its end")
	}
	t.Logf("Run returned %v after cancel", time.Since(began))
}
