package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

const (
	cohortAPIKey    = "c0hortApiKeyThatMustNotLeak1"
	cohortSecretKey = "c0hortSecretThatMustNotLeak2"
)

// cohortCLI runs `experiment ARGS...` through Main with buffers for
// streams and env as the whole environment, and checks that no key ever
// reaches stdout or stderr.
type cohortCLI struct {
	t              *testing.T
	env            map[string]string
	ctx            context.Context
	outTTY, errTTY bool
	stdout, stderr string
}

func (c *cohortCLI) run(args ...string) int {
	c.t.Helper()
	var out, errOut bytes.Buffer
	ios := &cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, OutTTY: c.outTTY, ErrTTY: c.errTTY,
		Getenv: func(k string) string { return c.env[k] }}
	code := Main(c.ctx, args, ios)
	c.stdout, c.stderr = out.String(), errOut.String()
	token := base64.StdEncoding.EncodeToString([]byte(cohortAPIKey + ":" + cohortSecretKey))
	for _, s := range []string{c.stdout, c.stderr} {
		for _, secret := range []string{cohortAPIKey, cohortSecretKey, token, "MustNotLeak", "wrong-secret-key"} {
			require.NotContains(c.t, s, secret, "a key is never printed")
		}
	}
	return code
}

// cohortTest starts a leak check and a fake cohort server serving every
// conformance cohort; the environment has the keys and its URL.
func cohortTest(t *testing.T) (*cohorttest.Server, *cohortCLI) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	s := cohorttest.NewServer(cohortAPIKey, cohortSecretKey)
	t.Cleanup(s.Close)
	dirs, err := filepath.Glob(filepath.Join("..", "testdata", "conformance", "cases", "*", "cohorts"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, d := range dirs {
		require.NoError(t, s.AddDir(d))
	}
	env := map[string]string{
		"EXPERIMENT_API_KEY": cohortAPIKey, "EXPERIMENT_SECRET_KEY": cohortSecretKey,
		"EXPERIMENT_COHORT_SERVER_URL": s.URL, "EXPERIMENT_CACHE_DIR": t.TempDir(),
		"EXPERIMENT_CONFIG": filepath.Join(t.TempDir(), "no-config.yaml"),
	}
	return s, &cohortCLI{t: t, env: env, ctx: t.Context()}
}

func caseDir(name string) string {
	return filepath.Join("..", "testdata", "conformance", "cases", name)
}

func syncRows(t *testing.T, stdout string) map[string]cohortRow {
	t.Helper()
	var rows []cohortRow
	require.NoError(t, json.Unmarshal([]byte(stdout), &rows), stdout)
	m := map[string]cohortRow{}
	for _, r := range rows {
		m[r.ID] = r
	}
	return m
}

func TestNewCohortsSyncCmd(t *testing.T) {
	base := map[string]string{"EXPERIMENT_API_KEY": "ak", "EXPERIMENT_SECRET_KEY": "sk"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    string
		wantErr string
		check   func(*testing.T, *cohortsSyncOptions)
	}{
		{name: "defaults", env: base, args: "--flags f.json", check: func(t *testing.T, o *cohortsSyncOptions) {
			assert.Equal(t, "ak", o.APIKey)
			assert.Equal(t, "sk", o.SecretKey)
			assert.Equal(t, "https://cohort-v2.lab.amplitude.com", o.CohortServerURL)
			assert.Equal(t, cohort.DefaultMaxCohortSize, o.MaxCohortSize)
			assert.Equal(t, 10*time.Second, o.Source.server.timeout)
			assert.Equal(t, "json", o.Output)
			assert.Equal(t, "f.json", o.Source.flagsFile)
		}},
		{name: "eu", env: with(map[string]string{"EXPERIMENT_SERVER_ZONE": "eu"}), args: "", check: func(t *testing.T, o *cohortsSyncOptions) {
			assert.Equal(t, "https://cohort-v2.lab.eu.amplitude.com", o.CohortServerURL)
		}},
		{name: "url beats zone", env: with(map[string]string{"EXPERIMENT_COHORT_SERVER_URL": "http://env"}), args: "--server-zone eu", check: func(t *testing.T, o *cohortsSyncOptions) {
			assert.Equal(t, "http://env", o.CohortServerURL)
		}},
		{name: "flag beats env", env: with(map[string]string{"EXPERIMENT_COHORT_SERVER_URL": "http://env"}),
			args: "--cohort-server-url http://flag --api-key ak2 --secret-key sk2 --max-cohort-size 7 --timeout 3s -o table --out d",
			check: func(t *testing.T, o *cohortsSyncOptions) {
				assert.Equal(t, "http://flag", o.CohortServerURL)
				assert.Equal(t, "ak2", o.APIKey)
				assert.Equal(t, "sk2", o.SecretKey)
				assert.Equal(t, 7, o.MaxCohortSize)
				assert.Equal(t, 3*time.Second, o.Source.server.timeout)
				assert.Equal(t, "table", o.Output)
				assert.Equal(t, "d", o.Out)
			}},
		{name: "amplitude env names", env: map[string]string{"AMPLITUDE_API_KEY": "a", "AMPLITUDE_SECRET_KEY": "s"}, check: func(t *testing.T, o *cohortsSyncOptions) {
			assert.Equal(t, "a", o.APIKey)
			assert.Equal(t, "s", o.SecretKey)
		}},
		{name: "no keys", env: map[string]string{}, wantErr: "an API key (--api-key or EXPERIMENT_API_KEY) is missing"},
		{name: "no secret", env: map[string]string{"EXPERIMENT_API_KEY": "a"}, wantErr: "a secret key (--secret-key or EXPERIMENT_SECRET_KEY) is missing"},
		{name: "bad zone", env: base, args: "--server-zone mars", wantErr: "--server-zone"},
		{name: "bad size", env: base, args: "--max-cohort-size 0", wantErr: "--max-cohort-size 0: want a positive number"},
		{name: "bad timeout", env: base, args: "--timeout 0s", wantErr: "--timeout 0s: want a positive duration"},
		{name: "bad output", env: base, args: "-o xml", wantErr: `--output "xml": want table, json, jsonl or yaml`},
		{name: "offline", env: base, args: "--offline", wantErr: "--offline: cohorts sync needs the cohort server"},
		{name: "args", env: base, args: "extra", wantErr: "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errOut bytes.Buffer
			config := filepath.Join(t.TempDir(), "no-config.yaml")
			ios := &cli.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &errOut,
				Getenv: func(k string) string {
					if k == "EXPERIMENT_CONFIG" {
						return config
					}
					return tc.env[k]
				}}
			var got *cohortsSyncOptions
			root := NewRootCmd(&Factory{IO: ios, Now: time.Now})
			for _, c := range root.Commands() {
				if c.Name() == "cohorts" {
					root.RemoveCommand(c)
				}
			}
			root.AddCommand(newCohortsCmd(&Factory{IO: ios}, &cohortsRunners{sync: func(_ context.Context, o *cohortsSyncOptions) error {
				got = o
				return nil
			}}))
			root.SetArgs(append([]string{"cohorts", "sync"}, strings.Fields(tc.args)...))
			root.SetOut(ios.Out)
			root.SetErr(ios.ErrOut)
			err := root.ExecuteContext(t.Context())
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Equal(t, ExitUsage, exitCode(t.Context(), err))
				return
			}
			require.NoError(t, err)
			tc.check(t, got)
		})
	}
}

// TestCohortsSyncConformance syncs each cohort conformance case's cohorts
// from the fake server, then evaluates its users against the synced
// directory: the results are Amplitude's.
func TestCohortsSyncConformance(t *testing.T) {
	srv, cli := cohortTest(t)
	cases, _ := filepath.Glob(caseDir("*-cohorts"))
	require.NotEmpty(t, cases)
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out := t.TempDir()
			cli.t = t
			code := cli.run("cohorts", "sync", "--flags", filepath.Join(dir, "flags.json"), "--out", out)
			require.Equal(t, 0, code, cli.stderr)
			rows := syncRows(t, cli.stdout)
			for id, r := range rows {
				if strings.HasPrefix(id, "missing") {
					assert.Equal(t, statusNotFound, r.Status)
					assert.Contains(t, cli.stderr, "experiment: warning: cohort "+id+": not found on the cohort server (404); nobody is a member\n")
					continue
				}
				assert.Equal(t, statusUpdated, r.Status, id)
				assert.FileExists(t, filepath.Join(out, id+".json"))
			}

			cli.run("evaluate", "--flags", filepath.Join(dir, "flags.json"), "--users", filepath.Join(dir, "users.jsonl"),
				"--cohorts", out, "-o", "jsonl")
			want := jsonLines(t, filepath.Join(dir, "expected.jsonl"))
			got := strings.Split(strings.TrimSuffix(cli.stdout, "\n"), "\n")
			require.Len(t, got, len(want), cli.stderr)
			for i := range want {
				var g any
				require.NoError(t, json.Unmarshal([]byte(got[i]), &g))
				if !reflect.DeepEqual(g, want[i]) {
					t.Errorf("user line %d differs:\n got %s", i+1, got[i])
				}
			}
		})
	}
	assert.NotEmpty(t, srv.Requests())
}

func TestCohortsSyncIncremental(t *testing.T) {
	srv, cli := cohortTest(t)
	out := t.TempDir()
	flags := filepath.Join(caseDir("07-groups-cohorts"), "flags.json")
	require.Equal(t, 0, cli.run("cohorts", "sync", "--flags", flags, "--out", out), cli.stderr)
	n := len(srv.Requests())

	// Unchanged cohorts cost a 204 each; a changed one is downloaded.
	srv.PutCohort(mustCohort(t, "5s85b3", "org id", 1800000000000, []string{"1001", "new-org"}))
	require.Equal(t, 0, cli.run("cohorts", "sync", "--flags", flags, "--out", out), cli.stderr)
	rows := syncRows(t, cli.stdout)
	assert.Equal(t, statusUpdated, rows["5s85b3"].Status)
	assert.Equal(t, 2, rows["5s85b3"].Size)
	assert.Equal(t, int64(1800000000000), rows["5s85b3"].LastModified)
	for id, r := range rows {
		if id != "5s85b3" {
			assert.Equal(t, statusUnchanged, r.Status, id)
		}
	}
	for _, r := range srv.Requests()[n:] {
		assert.True(t, r.Query.Has("lastModified"), r.CohortID)
	}
	assert.Contains(t, cli.stderr, "synced 6 cohorts into "+out+": 1 updated, 5 unchanged\n")
	store, errs := cohort.LoadDir(out, []string{"5s85b3"})
	require.Empty(t, errs)
	assert.True(t, store.Get("5s85b3").Has("new-org"))
}

func TestCohortsSyncUnauthorized(t *testing.T) {
	_, cli := cohortTest(t)
	cli.env["EXPERIMENT_SECRET_KEY"] = "wrong-secret-key"
	code := cli.run("cohorts", "sync", "--flags", filepath.Join(caseDir("05-cohorts"), "flags.json"), "--out", t.TempDir(), "--debug")
	assert.Equal(t, ExitAuth, code, cli.stderr)
	assert.Contains(t, cli.stderr, `level=DEBUG msg="cohort: response" cohort_id=834r5r status=401`)
	assert.Contains(t, cli.stderr, `api_key="c0hort…(fp `+experiment.Secret(cohortAPIKey).Fingerprint()+`)"`)
	lines := strings.Split(strings.TrimSpace(cli.stderr), "\n")
	require.GreaterOrEqual(t, len(lines), 2)
	errLine, hint := lines[len(lines)-2], lines[len(lines)-1]
	assert.True(t, strings.HasPrefix(errLine, "experiment: cohort download rejected API key c0hort…(fp "+experiment.Secret(cohortAPIKey).Fingerprint()+
		") with secret key (fp "+experiment.Secret("wrong-secret-key").Fingerprint()+"): cohort "), errLine)
	assert.Contains(t, errLine, "401 Unauthorized")
	assert.True(t, strings.HasPrefix(hint, "hint: use the analytics project's API key and secret key"), hint)
	rows := syncRows(t, cli.stdout)
	for _, r := range rows {
		assert.Contains(t, []string{statusFailed, statusNotFound}, r.Status)
	}
}

func TestCohortsSyncServerFailureKeepsLastGood(t *testing.T) {
	srv, cli := cohortTest(t)
	out := t.TempDir()
	flags := filepath.Join(caseDir("07-groups-cohorts"), "flags.json")
	require.Equal(t, 0, cli.run("cohorts", "sync", "--flags", flags, "--out", out), cli.stderr)
	before, err := os.ReadFile(filepath.Join(out, "5s85b3.json"))
	require.NoError(t, err)

	srv.PutCohort(mustCohort(t, "5s85b3", "org id", 1800000000000, []string{"changed"}))
	srv.PutCohort(mustCohort(t, "6z0ujv", "User", 1800000000000, []string{"changed"}))
	srv.Script("5s85b3", 503, 502, 500)
	start := time.Now()
	code := cli.run("cohorts", "sync", "--flags", flags, "--out", out)
	assert.Equal(t, ExitNetwork, code, cli.stderr)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "retried, 100 ms apart")
	assert.Equal(t, 3, srv.Count("5s85b3")-1)
	rows := syncRows(t, cli.stdout)
	assert.Equal(t, statusFailed, rows["5s85b3"].Status)
	assert.Contains(t, rows["5s85b3"].Error, "500 Internal Server Error")
	assert.Equal(t, 5, rows["5s85b3"].Size, "the kept copy")
	assert.Equal(t, statusUpdated, rows["6z0ujv"].Status)
	after, err := os.ReadFile(filepath.Join(out, "5s85b3.json"))
	require.NoError(t, err)
	assert.Equal(t, before, after, "the last good copy stays on disk")
	assert.Regexp(t, `(?m)^experiment: 1 of 6 cohorts failed to download: cohort 5s85b3: GET http://127\.0\.0\.1:\d+/sdk/v1/cohort/5s85b3\?maxCohortSize=2147483647&lastModified=1700000532582: 500 Internal Server Error .*\(3 attempts\)\nhint: the last good copies in .* are kept`, cli.stderr)
}

func TestCohortsSyncTooLargeAndTimeout(t *testing.T) {
	srv, cli := cohortTest(t)
	flags := filepath.Join(caseDir("01-mixed-cohorts"), "flags.json")
	code := cli.run("cohorts", "sync", "--flags", flags, "--out", t.TempDir(), "--max-cohort-size", "11")
	assert.Equal(t, 0, code, cli.stderr)
	rows := syncRows(t, cli.stdout)
	assert.Equal(t, statusTooLarge, rows["8nxx75"].Status)
	assert.Contains(t, cli.stderr, "experiment: warning: cohort 8nxx75: skipped: more than 11 members (--max-cohort-size)\n")

	srv.Script("0ennjp", cohorttest.Stall, cohorttest.Stall, cohorttest.Stall)
	start := time.Now()
	code = cli.run("cohorts", "sync", "--flags", flags, "--out", t.TempDir(), "--timeout", "100ms")
	assert.Equal(t, ExitNetwork, code, cli.stderr)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Contains(t, cli.stderr, "timed out")
}

func TestCohortsSyncInterrupted(t *testing.T) {
	srv, cli := cohortTest(t)
	srv.Script("0ennjp", cohorttest.Stall)
	ctx, cancel := context.WithCancel(t.Context())
	cli.ctx = ctx
	time.AfterFunc(100*time.Millisecond, cancel)
	out := t.TempDir()
	code := cli.run("cohorts", "sync", "--flags", filepath.Join(caseDir("01-mixed-cohorts"), "flags.json"), "--out", out)
	assert.Equal(t, ExitInterrupted, code, cli.stderr)
	assert.True(t, strings.HasSuffix(cli.stderr, "\nexperiment: interrupted\n"), cli.stderr)
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), "."), "no temporary file left: %s", e.Name())
	}
}

func TestCohortsSyncInputErrors(t *testing.T) {
	_, cli := cohortTest(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`[{"key":"a","segments":{}}]`), 0o600))
	assert.Equal(t, ExitInput, cli.run("cohorts", "sync", "--flags", bad))
	assert.True(t, strings.HasPrefix(cli.stderr, "experiment: "+bad+":"), cli.stderr)
	assert.Empty(t, cli.stdout)
	// A flags file that is not there cannot be read: exit 6, not bad input.
	assert.Equal(t, ExitIO, cli.run("cohorts", "sync", "--flags", filepath.Join(t.TempDir(), "none.json")))

	// No flag source at all.
	assert.Equal(t, ExitUsage, cli.run("cohorts", "sync"))
	assert.Contains(t, cli.stderr, "pass --flags FILE, or a deployment key")
}

func TestCohortsSyncNoCohorts(t *testing.T) {
	srv, cli := cohortTest(t)
	code := cli.run("cohorts", "sync", "--flags", filepath.Join(caseDir("02-mixed"), "flags.json"))
	require.Equal(t, 0, code, cli.stderr)
	assert.Equal(t, "[]\n", cli.stdout)
	assert.Contains(t, cli.stderr, "no cohorts to sync")
	assert.Empty(t, srv.Requests())
}

// TestCohortsSyncAndListCache: without --out, cohorts go to the API key's
// cache directory, where `cohorts list` finds them.
func TestCohortsSyncAndListCache(t *testing.T) {
	_, cli := cohortTest(t)
	cli.outTTY, cli.errTTY = true, true
	cli.env["NO_COLOR"] = "1"
	require.Equal(t, 0, cli.run("cohorts", "sync", "--flags", filepath.Join(caseDir("07-groups-cohorts"), "flags.json")), cli.stderr)
	dir := filepath.Join(cli.env["EXPERIMENT_CACHE_DIR"], "cohorts", experiment.Secret(cohortAPIKey).Fingerprint())
	assert.FileExists(t, filepath.Join(dir, "5s85b3.json"))
	lines := strings.Split(cli.stdout, "\n")
	assert.Regexp(t, `^ID\s+GROUP TYPE\s+MEMBERS\s+LAST MODIFIED\s+STATUS$`, lines[0])
	assert.Contains(t, cli.stdout, "5s85b3  org id")
	assert.Contains(t, cli.stdout, "2023-11-14T22:22:12Z  updated")
	assert.Contains(t, cli.stderr, "\r\x1b[Ksyncing cohorts ████████████████████ 6/6\r\x1b[K", "progress on a terminal")

	cli.outTTY, cli.errTTY = false, false
	require.Equal(t, 0, cli.run("cohorts", "list"), cli.stderr)
	var rows []cohortRow
	require.NoError(t, json.Unmarshal([]byte(cli.stdout), &rows))
	require.Len(t, rows, 6)
	assert.Equal(t, cohortRow{ID: "5s85b3", GroupType: "org id", Size: 5, LastModified: 1700000532582}, rows[0])

	require.Equal(t, 0, cli.run("cohorts", "list", "-o", "table"), cli.stderr)
	assert.Contains(t, cli.stdout, "5s85b3\torg id\t5\t2023-11-14T22:22:12Z\n", "TSV off a terminal")
	assert.NotContains(t, cli.stderr, "syncing", "no progress off a terminal")

	// Another key has nothing cached.
	cli.env["EXPERIMENT_API_KEY"] = "another-api-key"
	require.Equal(t, 0, cli.run("cohorts", "list"), cli.stderr)
	assert.Equal(t, "[]\n", cli.stdout)
	assert.Contains(t, cli.stderr, "no cohorts cached in")
}

func TestCohortsList(t *testing.T) {
	_, cli := cohortTest(t)
	dir := t.TempDir()
	require.NoError(t, cohort.SaveDir(dir, mustCohort(t, "b", "company", 1700000000000, []string{"acme", "globex"})))
	require.NoError(t, cohort.SaveDir(dir, mustCohort(t, "a", "", 0, nil)))

	require.Equal(t, 0, cli.run("cohorts", "list", "--dir", dir, "-o", "table"), cli.stderr)
	assert.Equal(t, "a\tUser\t0\t-\nb\tcompany\t2\t2023-11-14T22:13:20Z\n", cli.stdout)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "c.json"), []byte(`{"cohortId":"c","memberIds":[1]}`), 0o600))
	assert.Equal(t, ExitInput, cli.run("cohorts", "list", "--dir", dir))
	assert.Len(t, syncRows(t, cli.stdout), 2, "the good ones are still listed")
	assert.Contains(t, cli.stderr, "experiment: "+filepath.Join(dir, "c.json")+": malformed cohort: offset 29: memberIds[0]: want a string\nhint: ")

	assert.Equal(t, ExitIO, cli.run("cohorts", "list", "--dir", filepath.Join(dir, "nope")), "a missing input is a local I/O failure")
	assert.Equal(t, "experiment: --dir "+filepath.Join(dir, "nope")+": no such directory\n", cli.stderr)
	assert.Equal(t, ExitUsage, cli.run("cohorts", "lsit"))
	assert.True(t, strings.HasPrefix(cli.stderr, "experiment: unknown command \"lsit\" for \"experiment cohorts\"\n"), cli.stderr)
	assert.Equal(t, ExitUsage, cli.run("cohorts", "list", "--dir", dir, "--api-key", "x"))
	delete(cli.env, "EXPERIMENT_API_KEY")
	assert.Equal(t, ExitUsage, cli.run("cohorts", "list"))
	assert.Contains(t, cli.stderr, "pass --dir DIR, or the API key")
}

// TestCohortsSyncFromDeploymentKey: the flags come from the flag server.
func TestCohortsSyncFromDeploymentKey(t *testing.T) {
	_, cli := cohortTest(t)
	flags, err := os.ReadFile(filepath.Join(caseDir("05-cohorts"), "flags.json"))
	require.NoError(t, err)
	fsrv := experimenttest.NewFlagServer("server-deploy-key", flags)
	defer fsrv.Close()
	cli.env["EXPERIMENT_DEPLOYMENT_KEY"] = "server-deploy-key"
	cli.env["EXPERIMENT_SERVER_URL"] = fsrv.URL
	require.Equal(t, 0, cli.run("cohorts", "sync"), cli.stderr)
	rows := syncRows(t, cli.stdout)
	assert.Len(t, rows, 10)
	assert.Equal(t, statusNotFound, rows["missingczd"].Status)
}

func mustCohort(t *testing.T, id, groupType string, lastModified int64, members []string) *cohort.Cohort {
	t.Helper()
	c, err := cohort.New(id, groupType, lastModified, members)
	require.NoError(t, err)
	return c
}

// TestCohortsSyncConfigFile: keys and the server URL can come from the
// config file, under the environment.
func TestCohortsSyncConfigFile(t *testing.T) {
	srv, cli := cohortTest(t)
	config := cli.env["EXPERIMENT_CONFIG"]
	require.NoError(t, os.WriteFile(config, []byte("api-key: "+cohortAPIKey+"\nsecret-key: "+cohortSecretKey+
		"\ncohort-server-url: "+srv.URL+"\n"), 0o600))
	for _, k := range []string{"EXPERIMENT_API_KEY", "EXPERIMENT_SECRET_KEY", "EXPERIMENT_COHORT_SERVER_URL"} {
		delete(cli.env, k)
	}
	out := t.TempDir()
	require.Equal(t, 0, cli.run("cohorts", "sync", "--flags", filepath.Join(caseDir("07-groups-cohorts"), "flags.json"), "--out", out), cli.stderr)
	assert.Len(t, syncRows(t, cli.stdout), 6)
	require.Equal(t, 0, cli.run("cohorts", "list"), cli.stderr)
	assert.Equal(t, "[]\n", cli.stdout, "--out was not the cache")
}
