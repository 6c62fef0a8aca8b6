package fleettest

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisServerPath finds redis-server, or skips the test (fails it when
// EXPERIMENT_REQUIRE_REDIS=1: CI installs Redis, so a missing one there is
// a broken machine, not a reason to pass).
func redisServerPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err == nil {
		return path
	}
	if os.Getenv("EXPERIMENT_REQUIRE_REDIS") == "1" {
		t.Fatalf("redis-server not on PATH and EXPERIMENT_REQUIRE_REDIS=1: install it (Debian: apt-get install redis-server)")
	}
	t.Skip("redis-server not on PATH: the fleet tests need a real Redis (Debian: apt-get install redis-server; EXPERIMENT_REQUIRE_REDIS=1 turns this skip into a failure)")
	return ""
}

// redisProc is one redis-server on a loopback port, without persistence:
// stopped and started again on the same port it comes back empty, as a
// restarted cache would.
type redisProc struct {
	t    *testing.T
	bin  string
	dir  string
	Port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    bytes.Buffer // redis-server's log, for failures
}

// startRedis runs redis-server on a free loopback port until the test ends.
func startRedis(t *testing.T) *redisProc {
	t.Helper()
	r := &redisProc{t: t, bin: redisServerPath(t), dir: t.TempDir(), Port: freePort(t)}
	t.Cleanup(func() {
		r.Kill()
		if t.Failed() {
			r.mu.Lock()
			t.Logf("redis-server log:\n%s", tail(r.out.String(), 40))
			r.mu.Unlock()
		}
	})
	r.Start()
	return r
}

// URL is the relays' --redis.
func (r *redisProc) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(r.Port) }

// Running reports whether the process is running.
func (r *redisProc) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}

// Start runs redis-server on r.Port and waits until it answers PING.
func (r *redisProc) Start() {
	r.t.Helper()
	r.mu.Lock()
	if r.cmd != nil {
		r.mu.Unlock()
		r.t.Fatal("redis-server started twice")
	}
	c := exec.Command(r.bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no")
	c.Stdout, c.Stderr = &lockedWriter{&r.mu, &r.out}, &lockedWriter{&r.mu, &r.out}
	if err := c.Start(); err != nil {
		r.mu.Unlock()
		r.t.Fatalf("starting redis-server: %v", err)
	}
	exited := make(chan struct{})
	r.cmd, r.exited = c, exited
	r.mu.Unlock()
	go func() {
		c.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !redisPing(r.Port) {
		select {
		case <-exited:
			r.mu.Lock()
			r.cmd = nil
			log := r.out.String()
			r.mu.Unlock()
			r.t.Fatalf("redis-server on port %d exited at start:\n%s", r.Port, tail(log, 20))
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %d does not answer PING after 10s", r.Port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop ends redis-server with SIGTERM (SIGKILL after 10s) and waits.
func (r *redisProc) Stop() { r.end(syscall.SIGTERM) }

// Kill ends redis-server with SIGKILL and waits; nothing when not running.
func (r *redisProc) Kill() { r.end(syscall.SIGKILL) }

func (r *redisProc) end(sig syscall.Signal) {
	r.mu.Lock()
	c, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if c == nil {
		return
	}
	c.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		c.Process.Kill()
		<-exited
	}
}

// redisPing reports whether a Redis answers PING on the port: the one
// exchange these tests need, written by hand rather than taking a client
// library for it.
func redisPing(port int) bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// freePort is a loopback TCP port nothing listens on now, below Linux's
// ephemeral range (32768 and up): Redis is stopped and started again on
// it, and meanwhile no outgoing connection may take it as its own port.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return 0
}

// lockedWriter appends to a buffer under a mutex shared with its readers.
type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		return fmt.Sprintf("[%d lines before]\n", len(lines)-n) + string(bytes.Join(lines[len(lines)-n:], []byte("\n")))
	}
	return s
}
