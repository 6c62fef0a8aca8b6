// Package interop runs clients nobody here wrote (Amplitude's official Go
// SDK, OpenFeature's OFREP provider, and through ./node the Node SDK) against
// a real `experiment serve` process. It is a module of its own so that the
// product module never depends on those SDKs.
package interop

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the experiment command built once for every test.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "interop")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "experiment")
	// Built from the product module's own directory: `..` is outside this
	// module, so `go build ..` from here would refuse it.
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building experiment:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serveProc is one running `experiment serve`.
type serveProc struct {
	URL    string // http://host:port, no trailing slash
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr strings.Builder
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// serveAddr is how serve announces where it listens (docs/serve.md).
var serveAddr = regexp.MustCompile(` on (http://[^ ;]+)`)

// startServe runs serve with the given flags file and cohorts directory
// ("" for none) on a free port; at the end of the test it sends SIGTERM and
// requires exit status 0, as the drain promises.
func startServe(t *testing.T, flags, cohorts string, extra ...string) *serveProc {
	t.Helper()
	args := []string{"serve", "--flags", flags, "--listen", "127.0.0.1:0"}
	if cohorts != "" {
		args = append(args, "--cohorts", cohorts)
	}
	p := &serveProc{cmd: exec.Command(binary, append(args, extra...)...)}
	p.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	done := make(chan struct{})
	go p.readStderr(errPipe, addr, done)
	t.Cleanup(func() { p.stop(t, done) })
	select {
	case p.URL = <-addr:
	case <-done:
		t.Fatalf("serve exited before listening:\n%s", p.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not announce its address:\n%s", p.log())
	}
	return p
}

func (p *serveProc) readStderr(r io.Reader, addr chan<- string, done chan<- struct{}) {
	defer close(done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.stderr.WriteString(line + "\n")
		p.mu.Unlock()
		if m := serveAddr.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "serving ") {
			select {
			case addr <- m[1]:
			default:
			}
		}
	}
}

func (p *serveProc) stop(t *testing.T, stderrDone <-chan struct{}) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	exited := make(chan error, 1)
	go func() {
		<-stderrDone
		exited <- p.cmd.Wait()
	}()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Errorf("serve exited %d after SIGTERM, want 0:\n%s", ee.ExitCode(), p.log())
		} else if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("serve did not exit within 15 s of SIGTERM:\n%s", p.log())
	}
}
