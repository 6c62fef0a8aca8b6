package cmd_test

// TestEchoScripts runs the scripts in testdata/script_echo against a server
// that echoes each request's credentials back in its error body, the way
// some proxies and misconfigured gateways do. They are a runner of their
// own, with the shared scripts' commands (exits, errfmt, ...) and two more:
//
//	echoserver start STATUS        answer every request with STATUS and a body
//	                               quoting its Authorization header ($ECHO_SERVER)
//	echoserver pad N               put N spaces before the quote
//	nosecret FILE SECRET...        no 12-character piece of a SECRET, of its
//	                               base64, or of the Basic token of any two of
//	                               them is in FILE
//
// The environment is kept offline and away from the developer's settings
// as TestScripts keeps it.

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestEchoScripts(t *testing.T) {
	testdata, err := filepath.Abs(filepath.Join("..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script_echo"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			work := env.WorkDir
			for k, v := range map[string]string{
				"EXPERIMENT_CONFIG":            filepath.Join(work, ".no-config.yaml"),
				"EXPERIMENT_CACHE_DIR":         filepath.Join(work, ".cache"),
				"XDG_CONFIG_HOME":              filepath.Join(work, ".config"),
				"XDG_CACHE_HOME":               filepath.Join(work, ".cache"),
				"EXPERIMENT_SERVER_URL":        "http://127.0.0.1:9",
				"EXPERIMENT_STREAM_SERVER_URL": "http://127.0.0.1:9",
				"EXPERIMENT_COHORT_SERVER_URL": "http://127.0.0.1:9",
				"EXPERIMENT_EVENTS_SERVER_URL": "http://127.0.0.1:9",
				"HTTP_PROXY":                   "http://127.0.0.1:9",
				"HTTPS_PROXY":                  "http://127.0.0.1:9",
				"NO_PROXY":                     "",
			} {
				env.Setenv(k, v)
			}
			if gorace := os.Getenv("GORACE"); !strings.Contains(gorace, "atexit_sleep_ms") {
				env.Setenv("GORACE", strings.TrimSpace(gorace+" atexit_sleep_ms=10"))
			}
			return copyFixtures(testdata, work)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":      cmdExits,
			"errfmt":     cmdErrfmt,
			"echoserver": cmdEchoServer,
			"nosecret":   cmdNoSecret,
		},
	})
}

// echoServer answers every request with its status and a body that quotes
// the request's Authorization header after pad spaces.
type echoServer struct {
	*httptest.Server
	pad atomic.Int64
}

var echoServers sync.Map // *testscript.TestScript -> *echoServer

func cmdEchoServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: echoserver start STATUS | echoserver pad N")
	}
	switch args[0] {
	case "start":
		if _, ok := echoServers.Load(ts); ok {
			ts.Fatalf("echoserver: already started")
		}
		status := atoi(ts, args[1])
		s := &echoServer{}
		s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			fmt.Fprintf(w, "%sAuthorization: %s\n", strings.Repeat(" ", int(s.pad.Load())), r.Header.Get("Authorization"))
		}))
		echoServers.Store(ts, s)
		ts.Defer(func() {
			s.Close()
			echoServers.Delete(ts)
		})
		ts.Setenv("ECHO_SERVER", s.URL)
	case "pad":
		s, ok := echoServers.Load(ts)
		if !ok {
			ts.Fatalf("echoserver pad: no echoserver started")
		}
		s.(*echoServer).pad.Store(int64(atoi(ts, args[1])))
	default:
		ts.Fatalf("echoserver: unknown verb %q", args[0])
	}
}

func cmdNoSecret(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: nosecret FILE SECRET...")
	}
	text := ts.ReadFile(args[0])
	secrets := args[1:]
	var forms []string
	for _, a := range secrets {
		forms = append(forms, a, base64.StdEncoding.EncodeToString([]byte(a)))
		for _, b := range secrets {
			forms = append(forms, base64.StdEncoding.EncodeToString([]byte(a+":"+b)))
		}
	}
	const piece = 12
	for _, form := range forms {
		for i := 0; i+piece <= len(form); i++ {
			if strings.Contains(text, form[i:i+piece]) {
				ts.Fatalf("%s shows %q, a piece of %q", args[0], form[i:i+piece], form)
			}
		}
	}
}
