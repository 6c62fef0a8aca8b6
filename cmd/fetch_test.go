package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

const fetchKey = "server-F3tchT3stKeyThatMustNotLeak"

var fetchVariants = map[string]any{
	"checkout-flow": experiment.Variant{Key: "treatment", Value: "treatment", Payload: map[string]any{"discount": 20.0},
		Metadata: map[string]any{"segmentName": "All Other Users", "flagType": "experiment"}},
	"new-nav": experiment.Variant{Key: "off", Metadata: map[string]any{"default": true}},
	"limits":  map[string]any{"key": "big", "value": map[string]any{"max": 10}},
}

// fetchCLI runs `experiment ARGS...` through Main with buffers for streams,
// env as the whole environment, and stdin.
type fetchCLI struct {
	t      *testing.T
	env    map[string]string
	stdin  string
	tty    bool
	ctx    context.Context
	stdout string
	stderr string
}

func newFetchCLI(t *testing.T, s *experimenttest.RemoteServer) *fetchCLI {
	t.Helper()
	env := map[string]string{"EXPERIMENT_DEPLOYMENT_KEY": fetchKey}
	if s != nil {
		env["EXPERIMENT_SERVER_URL"] = s.URL
	}
	return &fetchCLI{t: t, env: env, ctx: t.Context()}
}

func (c *fetchCLI) run(args ...string) int {
	c.t.Helper()
	var out, errOut bytes.Buffer
	ios := &cli.IOStreams{In: strings.NewReader(c.stdin), Out: &out, ErrOut: &errOut, OutTTY: c.tty,
		Getenv: func(k string) string { return c.env[k] }}
	code := Main(c.ctx, args, ios)
	c.stdout, c.stderr = out.String(), errOut.String()
	for _, s := range []string{c.stdout, c.stderr} {
		require.NotContains(c.t, s, fetchKey, "the key is never printed")
		require.NotContains(c.t, s, "F3tchT3st")
	}
	return code
}

// fetchTest starts a leak check and a fake server with fetchVariants.
func fetchTest(t *testing.T) (*experimenttest.RemoteServer, *fetchCLI) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	s := experimenttest.NewRemoteServer(fetchKey)
	t.Cleanup(s.Close)
	s.SetVariants(fetchVariants)
	return s, newFetchCLI(t, s)
}

func TestFetchJSON(t *testing.T) {
	s, cli := fetchTest(t)
	code := cli.run("fetch", "--user-id", "u1", "-p", "plan=pro", "-o", "json")
	require.Equal(t, 0, code, cli.stderr)
	assert.Empty(t, cli.stderr)
	assert.JSONEq(t, `{
	  "checkout-flow": {"key":"treatment","value":"treatment","payload":{"discount":20},"metadata":{"segmentName":"All Other Users","flagType":"experiment"}},
	  "limits": {"key":"big","value":"{\"max\":10}","payload":null,"metadata":null},
	  "new-nav": {"key":"off","value":"","payload":null,"metadata":{"default":true}}
	}`, cli.stdout)
	assert.True(t, strings.HasPrefix(cli.stdout, "{\n  \"checkout-flow\": {\n"), "indented, keys sorted:\n%s", cli.stdout)

	req := s.LastRequest()
	assert.Equal(t, "Api-Key "+fetchKey, req.Header.Get("Authorization"))
	assert.Equal(t, "u1", req.User.UserID)
	assert.Equal(t, map[string]any{"plan": "pro"}, req.User.UserProperties)
	assert.True(t, strings.HasPrefix(req.User.Library, "experiment-go-cli/"), req.User.Library)
	assert.False(t, req.HasTrack)
	assert.False(t, req.HasExposureTrack)
	assert.Empty(t, req.Header.Get("X-Amp-Exp-Flag-Keys"))

	// Not a terminal and no -o: JSON, the same bytes.
	first := cli.stdout
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u1", "-p", "plan=pro"))
	assert.Equal(t, first, cli.stdout)
}

func TestFetchTable(t *testing.T) {
	_, cli := fetchTest(t)
	cli.tty = true
	cli.env["NO_COLOR"] = "1"
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u1"), cli.stderr)
	lines := strings.Split(strings.TrimSpace(cli.stdout), "\n")
	require.Len(t, lines, 4, cli.stdout)
	assert.Regexp(t, `^FLAG\s+VARIANT\s+VALUE\s+SEGMENT\s+PAYLOAD$`, lines[0])
	assert.Regexp(t, `^checkout-flow\s+treatment\s+treatment\s+All Other Users\s+\{"discount":20\}$`, lines[1])
	assert.Regexp(t, `^limits\s+big\s+\{"max":10\}`, lines[2])
	assert.Regexp(t, `^new-nav\s+off \(default\)\s*$`, lines[3]) // no colour to dim it: marked

	cli.tty = false // a pipe: TSV without header, a last column true for default variants
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u1", "-o", "table"))
	assert.Equal(t, "checkout-flow\ttreatment\ttreatment\tAll Other Users\t{\"discount\":20}\tfalse\n"+
		"limits\tbig\t{\"max\":10}\t\t\tfalse\nnew-nav\toff\t\t\t\ttrue\n", cli.stdout)

	require.Equal(t, 0, cli.run("fetch", "--user-id", "u1", "-o", "yaml"))
	assert.Contains(t, cli.stdout, "checkout-flow:\n  key: treatment\n")

	// Colour on a terminal: default variants dim, others green.
	cli.tty = true
	delete(cli.env, "NO_COLOR")
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u1"))
	assert.Contains(t, cli.stdout, "\x1b[2mnew-nav\x1b[0m")
	assert.Contains(t, cli.stdout, "\x1b[32mtreatment\x1b[0m")
}

func TestFetchFlagKeysAndTracking(t *testing.T) {
	s, cli := fetchTest(t)
	require.Equal(t, 0, cli.run("fetch", "--device-id", "d1", "checkout-flow", "missing-flag", "--track-assignment=false", "--track-exposure", "-o", "json"), cli.stderr)
	req := s.LastRequest()
	assert.Equal(t, []string{"checkout-flow", "missing-flag"}, req.FlagKeys)
	assert.Equal(t, "no-track", req.Track)
	assert.Equal(t, "track", req.ExposureTrack)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(cli.stdout), &got))
	assert.Len(t, got, 1)
	assert.Contains(t, got, "checkout-flow")
	assert.Equal(t, "experiment: warning: no variant for flag \"missing-flag\": not in this deployment, or no such flag\n", cli.stderr)

	require.Equal(t, 0, cli.run("fetch", "--device-id", "d1", "--track-assignment", "--track-exposure=false"))
	req = s.LastRequest()
	assert.Equal(t, "track", req.Track)
	assert.Equal(t, "no-track", req.ExposureTrack)
	assert.Nil(t, req.FlagKeys)
}

func TestFetchSettingsPrecedence(t *testing.T) {
	s, cli := fetchTest(t)
	other := experimenttest.NewRemoteServer("server-other-key-000000")
	defer other.Close()

	// EXPERIMENT_KEY is accepted too.
	cli.env = map[string]string{"EXPERIMENT_KEY": fetchKey, "EXPERIMENT_SERVER_URL": s.URL}
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u"), cli.stderr)

	// Flags win over the environment.
	cli.env = map[string]string{"EXPERIMENT_DEPLOYMENT_KEY": "server-wrong-wrong-wrong", "EXPERIMENT_SERVER_URL": "http://127.0.0.1:9"}
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u", "--deployment-key", fetchKey, "--server-url", s.URL), cli.stderr)

	// An explicit URL wins over the zone, from flag or environment.
	cli.env = map[string]string{"EXPERIMENT_DEPLOYMENT_KEY": fetchKey, "EXPERIMENT_SERVER_ZONE": "eu", "EXPERIMENT_SERVER_URL": s.URL + "/"}
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u"), cli.stderr)
	assert.Equal(t, "/sdk/v2/vardata", s.LastRequest().Path)
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u", "--server-zone", "EU"), cli.stderr)

	// EXPERIMENT_OUTPUT picks the format; -o wins.
	cli.env["EXPERIMENT_OUTPUT"] = "jsonl"
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u"))
	assert.Equal(t, 1, strings.Count(cli.stdout, "\n"))
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u", "-o", "json"))
	assert.Greater(t, strings.Count(cli.stdout, "\n"), 1)
	assert.Equal(t, 0, other.RequestCount())
}

func TestFetchUsageErrors(t *testing.T) {
	s, cli := fetchTest(t)
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"no key":            {map[string]string{"EXPERIMENT_SERVER_URL": s.URL}, []string{"--user-id", "u"}, "no deployment key"},
		"no user":           {nil, nil, "no user"},
		"bad zone":          {nil, []string{"--user-id", "u", "--server-zone", "apac"}, `--server-zone "apac": want us or eu`},
		"bad zone env":      {map[string]string{"EXPERIMENT_DEPLOYMENT_KEY": fetchKey, "EXPERIMENT_SERVER_ZONE": "mars"}, []string{"--user-id", "u"}, `"mars"`},
		"bad url":           {nil, []string{"--user-id", "u", "--server-url", "ftp://x"}, "want an absolute http or https URL"},
		"bad output":        {nil, []string{"--user-id", "u", "-o", "xml"}, `--output "xml"`},
		"bad timeout":       {nil, []string{"--user-id", "u", "--timeout", "0s"}, "--timeout"},
		"bad retries":       {nil, []string{"--user-id", "u", "--retries", "-1"}, "--retries"},
		"bad concurrency":   {nil, []string{"--users", "x", "--concurrency", "0"}, "--concurrency"},
		"users and user":    {nil, []string{"--users", "x", "--user-id", "u"}, "--users cannot be combined"},
		"users as table":    {nil, []string{"--users", "x", "-o", "table"}, "--users writes jsonl or json"},
		"skip without list": {nil, []string{"--user-id", "u", "--skip-invalid"}, "--skip-invalid needs --users"},
		"both stdin":        {nil, []string{"--users", "-", "--user", "-"}, "--users cannot be combined"},
		"unknown flag":      {nil, []string{"--user-id", "u", "--nope"}, "unknown option --nope"},
		"bad prop":          {nil, []string{"-p", "novalue"}, "--prop"},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.env != nil {
				cli.env = tc.env
			} else {
				cli.env = map[string]string{"EXPERIMENT_DEPLOYMENT_KEY": fetchKey, "EXPERIMENT_SERVER_URL": s.URL}
			}
			code := cli.run(append([]string{"fetch"}, tc.args...)...)
			assert.Equal(t, ExitUsage, code, cli.stderr)
			assert.Contains(t, cli.stderr, tc.want)
			assert.True(t, strings.HasPrefix(cli.stderr, "experiment: "), cli.stderr)
			assert.Empty(t, cli.stdout)
		})
	}
	cli.env = map[string]string{}
	require.Equal(t, ExitUsage, cli.run("fetch", "--user-id", "u"))
	assert.Contains(t, cli.stderr, "hint: use a server deployment key: in Amplitude, Experiment > Deployments")
	assert.Equal(t, 0, s.RequestCount(), "nothing is sent on a usage error")
}

func TestFetchUnauthorized(t *testing.T) {
	s, cli := fetchTest(t)
	wrong := "server-AnotherKeyThatIsWrong1"
	code := cli.run("fetch", "--user-id", "u", "--deployment-key", wrong, "--retries", "3")
	assert.Equal(t, ExitAuth, code, cli.stderr)
	assert.Equal(t, 1, s.RequestCount(), "401 is not retried")
	fp := experiment.Secret(wrong).Fingerprint()
	assert.Contains(t, cli.stderr, "401 Unauthorized")
	assert.Contains(t, cli.stderr, "\nhint: the server rejected deployment key server…(fp "+fp+"), a server key by its shape: ")
	assert.NotContains(t, cli.stderr, "client key", "the key given is no client key")
	assert.NotContains(t, cli.stderr, wrong)
	assert.Empty(t, cli.stdout)

	s.Script(experimenttest.Response{Status: http.StatusForbidden})
	assert.Equal(t, ExitAuth, cli.run("fetch", "--user-id", "u"))
}

func TestFetchRetriesThenSucceeds(t *testing.T) {
	s, cli := fetchTest(t)
	s.Script(experimenttest.Response{Status: http.StatusServiceUnavailable})
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u", "--retries", "1", "-o", "json"), cli.stderr)
	assert.Equal(t, 2, s.RequestCount())
	assert.Contains(t, cli.stdout, "checkout-flow")

	s.Script(experimenttest.Response{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}})
	start := time.Now()
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u", "--retries", "1"), cli.stderr)
	assert.GreaterOrEqual(t, time.Since(start), 950*time.Millisecond, "Retry-After is honoured")
}

func TestFetchServerFailures(t *testing.T) {
	s, cli := fetchTest(t)
	t.Run("5xx after retries", func(t *testing.T) {
		s.SetDefaultResponse(&experimenttest.Response{Status: http.StatusInternalServerError, Body: "boom"})
		defer s.SetDefaultResponse(nil)
		n := s.RequestCount()
		assert.Equal(t, ExitNetwork, cli.run("fetch", "--user-id", "u", "--retries", "1"))
		assert.Equal(t, 2, s.RequestCount()-n)
		assert.Equal(t, "experiment: POST "+s.URL+"/sdk/v2/vardata?v=0: 500 Internal Server Error: boom (2 attempts)\n"+
			"hint: the server is throttling or failing: try again later, or add --retries\n", cli.stderr)
		assert.Empty(t, cli.stdout)
	})
	t.Run("timeout", func(t *testing.T) {
		s.SetDefaultResponse(&experimenttest.Response{Hang: true})
		defer s.SetDefaultResponse(nil)
		start := time.Now()
		assert.Equal(t, ExitNetwork, cli.run("fetch", "--user-id", "u", "--timeout", "200ms"))
		assert.Less(t, time.Since(start), 5*time.Second, "--timeout not honoured: the default is 10 s")
		assert.Contains(t, cli.stderr, "no response within 200ms (1 attempt)")
		assert.Contains(t, cli.stderr, "hint: the server did not answer in time")
	})
	t.Run("malformed", func(t *testing.T) {
		for _, body := range []string{"[]", "{not json", `{"f":"on"}`} {
			s.Script(experimenttest.Response{Status: 200, Body: body})
			assert.Equal(t, ExitNetwork, cli.run("fetch", "--user-id", "u"), body)
			assert.Contains(t, cli.stderr, "malformed response")
			assert.Empty(t, cli.stdout)
		}
	})
	t.Run("404", func(t *testing.T) {
		cli.env["EXPERIMENT_SERVER_URL"] = s.URL + "/wrong/prefix"
		defer func() { cli.env["EXPERIMENT_SERVER_URL"] = s.URL }()
		assert.Equal(t, ExitNetwork, cli.run("fetch", "--user-id", "u", "--retries", "2"))
		assert.Contains(t, cli.stderr, "/wrong/prefix/sdk/v2/vardata?v=0: 404 Not Found")
		assert.Contains(t, cli.stderr, "hint: check --server-url")
	})
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		assert.Equal(t, ExitNetwork, cli.run("fetch", "--user-id", "u", "--server-url", "http://"+addr))
		assert.Contains(t, cli.stderr, "connection refused")
	})
}

func TestFetchInterrupted(t *testing.T) {
	s, cli := fetchTest(t)
	s.SetDefaultResponse(&experimenttest.Response{Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"30"}}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cli.ctx = ctx
	go func() {
		for s.RequestCount() == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // into the 30s backoff: Ctrl-C
		cancel()
	}()
	start := time.Now()
	assert.Equal(t, ExitInterrupted, cli.run("fetch", "--user-id", "u", "--retries", "5"))
	assert.Less(t, time.Since(start), 5*time.Second, "waited out the 30 s Retry-After")
	assert.Equal(t, "experiment: interrupted\n", cli.stderr)
	assert.Empty(t, cli.stdout)
	assert.Equal(t, 1, s.RequestCount())
}

func TestFetchDebugLogRedactsTheKey(t *testing.T) {
	s, cli := fetchTest(t)
	s.Script(experimenttest.Response{Status: 502})
	require.Equal(t, 0, cli.run("fetch", "--user-id", "u", "--debug", "--retries", "1"), cli.stderr)
	assert.Contains(t, cli.stderr, `msg="experiment: fetch"`)
	assert.Contains(t, cli.stderr, `msg="experiment: fetch retry"`)
	assert.Contains(t, cli.stderr, `deployment_key="server…(fp `+experiment.Secret(fetchKey).Fingerprint()+`)"`)
	assert.NotContains(t, cli.stderr, "Authorization")
}

// writeUsers writes a JSON Lines file of n users (user-0 ... user-n-1) with
// a blank line after every tenth.
func writeUsers(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"user_id":"user-%d","user_properties":{"i":%d}}`+"\n", i, i)
		if i%10 == 9 {
			b.WriteString("  \n")
		}
	}
	path := filepath.Join(t.TempDir(), "users.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

// echoSlowly answers with the user's id after a random delay, so answers
// complete out of order.
func echoSlowly(u *experiment.User) map[string]any {
	time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	return map[string]any{"echo": map[string]any{"key": "on", "value": u.UserID}}
}

func TestFetchUsersKeepsInputOrder(t *testing.T) {
	s, cli := fetchTest(t)
	s.SetEvaluator(echoSlowly)
	const n = 300
	path := writeUsers(t, n)
	require.Equal(t, 0, cli.run("fetch", "--users", path, "--concurrency", "16"), cli.stderr)
	assert.Empty(t, cli.stderr)
	lines := strings.Split(strings.TrimSuffix(cli.stdout, "\n"), "\n")
	require.Len(t, lines, n, "one line per user, blank lines skipped")
	for i, line := range lines {
		require.Equal(t, fmt.Sprintf(`{"echo":{"key":"on","value":"user-%d","payload":null,"metadata":null}}`, i), line)
	}
	assert.Equal(t, n, s.RequestCount())

	// -o json: one array, same order; stdin works too.
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	cli.stdin = string(data)
	require.Equal(t, 0, cli.run("fetch", "--users", "-", "-o", "json", "echo"), cli.stderr)
	var arr []map[string]experiment.Variant
	require.NoError(t, json.Unmarshal([]byte(cli.stdout), &arr))
	require.Len(t, arr, n)
	for i, v := range arr {
		require.Equal(t, fmt.Sprintf("user-%d", i), v["echo"].Value)
	}
	assert.Equal(t, []string{"echo"}, s.LastRequest().FlagKeys)

	cli.stdin = "\n\n"
	require.Equal(t, 0, cli.run("fetch", "--users", "-", "-o", "json"))
	assert.Equal(t, "[]\n", cli.stdout)
}

func TestFetchUsersInvalidLine(t *testing.T) {
	s, cli := fetchTest(t)
	s.SetEvaluator(echoSlowly)
	cli.stdin = `{"user_id":"a"}` + "\n" + `{"user_id":"b"}` + "\n" + `["not","a","user"]` + "\n" + `{"user_id":"d"}` + "\n" + `{"user_id":` + "\n"
	assert.Equal(t, ExitInput, cli.run("fetch", "--users", "-"))
	assert.Equal(t, "experiment: stdin:3: not a JSON object\n", cli.stderr)
	assert.Equal(t, `{"echo":{"key":"on","value":"a","payload":null,"metadata":null}}`+"\n"+
		`{"echo":{"key":"on","value":"b","payload":null,"metadata":null}}`+"\n", cli.stdout, "the lines before the bad one, whole")

	require.Equal(t, 0, cli.run("fetch", "--users", "-", "--skip-invalid"), cli.stderr)
	assert.Equal(t, 3, strings.Count(cli.stdout, "\n"))
	assert.Contains(t, cli.stderr, "experiment: skipped stdin:3: not a JSON object\n")
	assert.Contains(t, cli.stderr, "experiment: skipped stdin:5: user: ")

	assert.Equal(t, ExitIO, cli.run("fetch", "--users", filepath.Join(t.TempDir(), "missing.jsonl")), "a missing input is a local I/O failure")
}

func TestFetchUsersFailures(t *testing.T) {
	_, cli := fetchTest(t)
	path := writeUsers(t, 50)

	assert.Equal(t, ExitAuth, cli.run("fetch", "--users", path, "--deployment-key", "server-not-the-right-key"))
	assert.Contains(t, cli.stderr, "hint: the server rejected deployment key server…(fp ")
	assert.Regexp(t, `^experiment: .*users\.jsonl:1: POST `, cli.stderr, "the first line's failure, reported once")
	assert.Equal(t, 2, strings.Count(cli.stderr, "\n"))
	assert.Empty(t, cli.stdout)

	// A server failure midway: the lines before it are written. (A fresh
	// server: requests the run above abandoned may still be arriving.)
	s := experimenttest.NewRemoteServer(fetchKey)
	defer s.Close()
	cli.env["EXPERIMENT_SERVER_URL"] = s.URL
	s.SetEvaluator(func(u *experiment.User) map[string]any {
		return map[string]any{"echo": map[string]any{"key": u.UserID}}
	})
	s.Script(make([]experimenttest.Response, 20)...) // 20 normal answers, then failures
	s.SetDefaultResponse(&experimenttest.Response{Status: 503})
	assert.Equal(t, ExitNetwork, cli.run("fetch", "--users", path, "--concurrency", "1"))
	assert.Equal(t, 20, strings.Count(cli.stdout, "\n"))
	assert.Contains(t, cli.stderr, "users.jsonl:23: POST ") // user-20; lines 11 and 22 are blank
	assert.Contains(t, cli.stderr, "503 Service Unavailable (1 attempt)")
}

func TestFetchUsersInterrupted(t *testing.T) {
	s, cli := fetchTest(t)
	s.SetDefaultResponse(&experimenttest.Response{Hang: true})
	path := writeUsers(t, 1000)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cli.ctx = ctx
	go func() {
		for s.RequestCount() < defaultFetchConcurrency {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	assert.Equal(t, ExitInterrupted, cli.run("fetch", "--users", path))
	assert.Less(t, time.Since(start), 5*time.Second, "waited for the hung requests' 10 s timeout")
	assert.Equal(t, "experiment: interrupted\n", cli.stderr)
	assert.LessOrEqual(t, s.RequestCount(), defaultFetchConcurrency, "bounded concurrency")
}
