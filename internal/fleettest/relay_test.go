package fleettest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// relayProc is one `experiment serve --redis` process slot: it can be
// killed and started again with the same arguments and cache directory (on
// a new port); its log spans every run.
type relayProc struct {
	t     *testing.T
	Index int
	args  []string
	env   []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
	exit   error
	log    strings.Builder
	runs   int
}

// relayEnv keeps a relay offline and away from the developer's settings:
// every Amplitude service it is not given points at a closed port.
func relayEnv(t *testing.T) []string {
	dir := t.TempDir()
	env := []string{asExperiment + "=1", "NO_COLOR=1",
		"EXPERIMENT_CONFIG=" + filepath.Join(dir, "no-config.yaml"),
		"EXPERIMENT_CACHE_DIR=" + filepath.Join(dir, "cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"EXPERIMENT_STREAM_SERVER_URL=http://127.0.0.1:9",
		"EXPERIMENT_COHORT_SERVER_URL=http://127.0.0.1:9",
		"EXPERIMENT_EVENTS_SERVER_URL=http://127.0.0.1:9",
		"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9",
		// Under -race the relays are race-instrumented too: a race ends the
		// test (see checkLog), without a second's sleep at each exit.
		"GORACE=atexit_sleep_ms=10",
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "PATH" || k == "HOME" || k == "TMPDIR" {
			env = append(env, kv)
		}
	}
	return env
}

// newRelay makes relay slot i with serve's arguments (after "serve"); it
// is killed when the test ends.
func newRelay(t *testing.T, i int, args ...string) *relayProc {
	r := &relayProc{t: t, Index: i, args: append([]string{"serve"}, args...), env: relayEnv(t)}
	t.Cleanup(func() {
		r.Kill()
		r.checkLog()
		if t.Failed() {
			t.Logf("relay %d log:\n%s", i, tail(r.Log(), 60))
		}
	})
	return r
}

// serveAddr is how serve announces its address.
var serveAddr = regexp.MustCompile(`^relaying \d+ deployments? on (http://[^ ;]+).*; Ctrl-C to stop$`)

// Start runs the relay and waits for it to announce its address (not for
// it to be ready: see waitReady).
func (r *relayProc) Start() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

// start is Start for a goroutine other than the test's.
func (r *relayProc) start() error {
	bin := os.Getenv("EXPERIMENT_FLEET_BINARY")
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		bin = self
	}
	c := exec.Command(bin, r.args...)
	c.Env = r.env
	stderr, err := c.StderrPipe()
	if err != nil {
		return err
	}
	r.mu.Lock()
	if r.cmd != nil {
		r.mu.Unlock()
		return fmt.Errorf("relay %d started twice", r.Index)
	}
	if err := c.Start(); err != nil {
		r.mu.Unlock()
		return fmt.Errorf("starting relay %d: %v", r.Index, err)
	}
	r.runs++
	fmt.Fprintf(&r.log, "--- run %d (pid %d)\n", r.runs, c.Process.Pid)
	exited, addr, readDone := make(chan struct{}), make(chan string, 1), make(chan struct{})
	r.cmd, r.url, r.exited, r.exit = c, "", exited, nil
	r.mu.Unlock()
	go r.read(stderr, addr, readDone)
	go func() {
		<-readDone // stderr read to its end before Wait, as exec asks
		err := c.Wait()
		r.mu.Lock()
		r.exit = err
		r.mu.Unlock()
		close(exited)
	}()
	select {
	case u := <-addr:
		r.mu.Lock()
		r.url = u
		r.mu.Unlock()
		return nil
	case <-exited:
		r.mu.Lock()
		r.cmd = nil
		r.mu.Unlock()
		return fmt.Errorf("relay %d exited before listening (%v):\n%s", r.Index, r.exitErr(), tail(r.Log(), 30))
	case <-time.After(20 * time.Second):
		r.Kill()
		return fmt.Errorf("relay %d did not announce its address within 20s:\n%s", r.Index, tail(r.Log(), 30))
	}
}

// read copies the relay's stderr into its log and sends its address.
func (r *relayProc) read(stderr io.Reader, addr chan<- string, done chan<- struct{}) {
	defer close(done)
	sent := false
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		r.mu.Lock()
		r.log.WriteString(line + "\n")
		r.mu.Unlock()
		if m := serveAddr.FindStringSubmatch(line); m != nil && !sent {
			addr <- m[1]
			sent = true
		}
	}
	io.Copy(io.Discard, stderr)
}

// URL is the running relay's base URL ("" when it is not running).
func (r *relayProc) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return ""
	}
	return r.url
}

// Running reports whether the relay process was started and not yet seen
// to end.
func (r *relayProc) Running() bool { return r.URL() != "" }

func (r *relayProc) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

func (r *relayProc) exitErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exit
}

// Kill sends SIGKILL (kill -9) and waits for the process to end; nothing
// when it is not running.
func (r *relayProc) Kill() { r.end(syscall.SIGKILL, 10*time.Second) }

// Term sends SIGTERM and waits (up to 15s, then SIGKILL) for the drain to
// end; the exit error is nil for exit status 0.
func (r *relayProc) Term() error { return r.end(syscall.SIGTERM, 15*time.Second) }

func (r *relayProc) end(sig syscall.Signal, wait time.Duration) error {
	r.mu.Lock()
	c, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if c == nil {
		return nil
	}
	c.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		c.Process.Kill()
		<-exited
		return fmt.Errorf("relay %d did not exit within %v of %v", r.Index, wait, sig)
	}
	return r.exitErr()
}

// checkLog fails the test on a race the race detector reported in the
// relay, and on a panic.
func (r *relayProc) checkLog() {
	log := r.Log()
	for _, bad := range []string{"WARNING: DATA RACE", "panic: ", "fatal error: "} {
		if strings.Contains(log, bad) {
			r.t.Errorf("relay %d logged %q:\n%s", r.Index, bad, tail(log, 80))
			return
		}
	}
}

// fleetStatus is the part of /status the fleet tests read.
type fleetStatus struct {
	Status string `json:"status"`
	Fleet  *struct {
		Redis     string `json:"redis"`
		Instance  string `json:"instance"`
		Prefix    string `json:"prefix"`
		LastError string `json:"last_error"`
	} `json:"fleet"`
	Deployments []struct {
		Role  string `json:"role"`
		ETag  string `json:"etag"`
		Flags int    `json:"flags"`
		Ready bool   `json:"ready"`
	} `json:"deployments"`
}

// role is the deployment's fleet role, "" when /status has none.
func (s *fleetStatus) role() string {
	if len(s.Deployments) != 1 {
		return ""
	}
	return s.Deployments[0].Role
}

func (s *fleetStatus) redis() string {
	if s.Fleet == nil {
		return ""
	}
	return s.Fleet.Redis
}

func (s *fleetStatus) etag() string {
	if len(s.Deployments) != 1 {
		return ""
	}
	return s.Deployments[0].ETag
}

// httpClient is a test's client of the relays: short timeouts, its idle
// connections closed when the test ends.
func httpClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// get makes one GET with the deployment key and returns status and body.
func get(ctx context.Context, c *http.Client, url string) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Api-Key "+deploymentKey)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header, err
}

// status reads the relay's /status.
func (r *relayProc) status(c *http.Client) (*fleetStatus, error) {
	u := r.URL()
	if u == "" {
		return nil, errors.New("not running")
	}
	code, body, _, err := get(context.Background(), c, u+"/status")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/status: %d %s", code, body)
	}
	var s fleetStatus
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("/status: %v: %s", err, body)
	}
	return &s, nil
}

// waitFor polls cond every 10ms until it holds and returns how long that
// took; it fails the test after timeout with cond's last explanation.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric sums the relay's /metrics series of family name whose labels
// include the given name=value pairs (Prometheus' own text parser).
func (r *relayProc) metric(c *http.Client, name string, labels ...string) (float64, error) {
	code, body, _, err := get(context.Background(), c, r.URL()+"/metrics")
	if err != nil || code != http.StatusOK {
		return 0, fmt.Errorf("relay %d /metrics: %d %v", r.Index, code, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("relay %d /metrics: %v", r.Index, err)
	}
	fam, ok := families[name]
	if !ok {
		return 0, fmt.Errorf("relay %d /metrics has no %s", r.Index, name)
	}
	sum := 0.0
series:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
			}) {
				continue series
			}
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum, nil
}
