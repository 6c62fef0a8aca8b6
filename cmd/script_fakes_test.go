package cmd_test

// Fake Amplitude services for the txtar scripts. Each runs in this test
// process on 127.0.0.1 (the experimenttest and cohorttest fakes the Go tests
// use), lives as long as its script, and puts its base URL in the script's
// environment, so `exec experiment …` talks to it like to Amplitude:
//
//	flagserver start [-key K] [-stream] FILE
//	                               flag config service serving FILE ($FLAG_SERVER)
//	flagserver set FILE            serve FILE from now on (pushed to open streams)
//	flagserver reply STATUS [FILE] the next flag request gets STATUS (and, for
//	                               200, FILE's content as the body)
//	flagserver down STATUS         every other flag request gets STATUS; 0: up
//	flagserver stall DURATION      hold every request that long
//	flagserver wait N              wait until N flag requests or stream
//	                               connections have arrived
//	flagserver requests N          exactly N flag requests have arrived
//
//	remoteserver start [-key K] FILE
//	                               evaluation API ($REMOTE_SERVER) answering with
//	                               this engine's variants for the flags in FILE
//	remoteserver fail STATUS [N]   the next N requests (default: all) get STATUS
//	remoteserver hang              hold every request until the client gives up
//	remoteserver wait N            wait until N requests have arrived
//	remoteserver requests N        exactly N requests have arrived
//
//	cohortserver start [-api-key K] [-secret-key S] DIR
//	                               cohort download API ($COHORT_SERVER) serving
//	                               DIR/<id>.json
//	cohortserver fail ID STATUS... the next requests for ID get these statuses
//	                               (stall: hold the request)
//	cohortserver wait N            wait until N requests have arrived
//	cohortserver mark              start counting requests
//	cohortserver requests N        exactly N requests have arrived since the mark
//
//	eventserver start [-key K]     analytics HTTP API ($EVENTS_SERVER, the full
//	                               events endpoint URL; $EVENTS_SERVER_BASE, its
//	                               scheme, host and port)
//	eventserver events N [TYPE]    exactly N events (of event_type TYPE) ingested
//
// Waiting gives up after fakeWait: a script never hangs on a fake.

import (
	"flag"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

const (
	fakeWait      = 20 * time.Second
	fakeFlagKey   = "server-scriptFakeDeploymentKey"
	fakeAPIKey    = "scriptFakeApiKey0123"
	fakeSecretKey = "scriptFakeSecretKey4567"
)

// scriptFakes are one script's running fakes.
type scriptFakes struct {
	flags      *experimenttest.FlagServer
	remote     *experimenttest.RemoteServer
	cohorts    *cohorttest.Server
	cohortMark int // cohort requests before "cohortserver mark"
	events     *analyticstest.Server
}

var fakesByScript sync.Map // *testscript.TestScript -> *scriptFakes

func fakesOf(ts *testscript.TestScript) *scriptFakes {
	if f, ok := fakesByScript.Load(ts); ok {
		return f.(*scriptFakes)
	}
	f := &scriptFakes{}
	fakesByScript.Store(ts, f)
	ts.Defer(func() {
		fakesByScript.Delete(ts)
		f.close()
	})
	return f
}

// close stops the fakes. Connections are cut first: a command a failed
// script left running may still hold a stream open.
func (f *scriptFakes) close() {
	if f.flags != nil {
		f.flags.CloseClientConnections()
		f.flags.Close()
	}
	if f.remote != nil {
		f.remote.Close()
	}
	if f.cohorts != nil {
		f.cohorts.CloseClientConnections()
		f.cohorts.Close()
	}
	if f.events != nil {
		f.events.Close()
	}
}

// fakeArgs parses a fake's start options; it fails the script on bad ones.
func fakeArgs(ts *testscript.TestScript, usage string, args []string, define func(*flag.FlagSet)) []string {
	fs := flag.NewFlagSet(usage, flag.ContinueOnError)
	fs.SetOutput(new(discard))
	define(fs)
	if err := fs.Parse(args); err != nil {
		ts.Fatalf("usage: %s: %v", usage, err)
	}
	return fs.Args()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func atoi(ts *testscript.TestScript, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		ts.Fatalf("not a number: %q", s)
	}
	return n
}

// waitFor polls cond until it holds, failing the script after fakeWait.
func waitFor(ts *testscript.TestScript, what string, cond func() bool) {
	deadline := time.Now().Add(fakeWait)
	for !cond() {
		if time.Now().After(deadline) {
			ts.Fatalf("gave up after %v waiting for %s", fakeWait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cmdFlagServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: flagserver start|set|reply|down|stall|wait|requests ...")
	}
	f := fakesOf(ts)
	if args[0] != "start" && f.flags == nil {
		ts.Fatalf("flagserver %s: no flagserver started", args[0])
	}
	switch verb, rest := args[0], args[1:]; {
	case verb == "start" && f.flags == nil:
		key, stream := fakeFlagKey, false
		files := fakeArgs(ts, "flagserver start [-key K] [-stream] FILE", rest, func(fs *flag.FlagSet) {
			fs.StringVar(&key, "key", key, "deployment key")
			fs.BoolVar(&stream, "stream", false, "serve the stream too")
		})
		if len(files) != 1 {
			ts.Fatalf("usage: flagserver start [-key K] [-stream] FILE")
		}
		f.flags = experimenttest.NewFlagServer(key, []byte(ts.ReadFile(files[0])))
		f.flags.EnableStream(stream)
		ts.Setenv("FLAG_SERVER", f.flags.URL)
	case verb == "set" && len(rest) == 1:
		f.flags.SetFlags([]byte(ts.ReadFile(rest[0])))
	case verb == "reply" && (len(rest) == 1 || len(rest) == 2):
		reply := experimenttest.Reply{Status: atoi(ts, rest[0])}
		if len(rest) == 2 {
			reply.Body = ts.ReadFile(rest[1])
		}
		f.flags.Script(reply)
	case verb == "down" && len(rest) == 1:
		f.flags.SetDown(atoi(ts, rest[0]))
	case verb == "stall" && len(rest) == 1:
		d, err := time.ParseDuration(rest[0])
		if err != nil {
			ts.Fatalf("flagserver stall: %v", err)
		}
		f.flags.Stall(d)
	case verb == "wait" && len(rest) == 1:
		n := atoi(ts, rest[0])
		waitFor(ts, rest[0]+" flag requests", func() bool {
			return f.flags.Requests()+f.flags.StreamConnections() >= n
		})
	case verb == "requests" && len(rest) == 1:
		if got, want := f.flags.Requests(), atoi(ts, rest[0]); got != want {
			ts.Fatalf("flagserver got %d flag requests, want %d", got, want)
		}
	default:
		ts.Fatalf("flagserver: bad arguments %q", args)
	}
}

func cmdRemoteServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: remoteserver start|fail|hang|wait|requests ...")
	}
	f := fakesOf(ts)
	if args[0] != "start" && f.remote == nil {
		ts.Fatalf("remoteserver %s: no remoteserver started", args[0])
	}
	switch verb, rest := args[0], args[1:]; {
	case verb == "start" && f.remote == nil:
		key := fakeFlagKey
		files := fakeArgs(ts, "remoteserver start [-key K] FILE", rest, func(fs *flag.FlagSet) {
			fs.StringVar(&key, "key", key, "deployment key")
		})
		if len(files) != 1 {
			ts.Fatalf("usage: remoteserver start [-key K] FILE")
		}
		flags, err := eval.DecodeFlags([]byte(ts.ReadFile(files[0])))
		ts.Check(err)
		set, err := experiment.NewFlagSet(flags, nil)
		ts.Check(err)
		f.remote = experimenttest.NewRemoteServer(key)
		f.remote.SetEvaluator(func(u *experiment.User) map[string]any {
			variants, err := set.EvaluateV2(u)
			if err != nil {
				return nil
			}
			answer := make(map[string]any, len(variants))
			for k, v := range variants {
				answer[k] = v
			}
			return answer
		})
		ts.Setenv("REMOTE_SERVER", f.remote.URL)
	case verb == "fail" && (len(rest) == 1 || len(rest) == 2):
		status := atoi(ts, rest[0])
		if len(rest) == 1 {
			f.remote.SetDefaultResponse(&experimenttest.Response{Status: status})
			return
		}
		replies := make([]experimenttest.Response, atoi(ts, rest[1]))
		for i := range replies {
			replies[i].Status = status
		}
		f.remote.Script(replies...)
	case verb == "hang" && len(rest) == 0:
		f.remote.SetDefaultResponse(&experimenttest.Response{Hang: true})
	case verb == "wait" && len(rest) == 1:
		n := atoi(ts, rest[0])
		waitFor(ts, rest[0]+" evaluation requests", func() bool { return f.remote.RequestCount() >= n })
	case verb == "requests" && len(rest) == 1:
		if got, want := f.remote.RequestCount(), atoi(ts, rest[0]); got != want {
			ts.Fatalf("remoteserver got %d requests, want %d", got, want)
		}
	default:
		ts.Fatalf("remoteserver: bad arguments %q", args)
	}
}

func cmdCohortServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: cohortserver start|fail|wait|mark|requests ...")
	}
	f := fakesOf(ts)
	if args[0] != "start" && f.cohorts == nil {
		ts.Fatalf("cohortserver %s: no cohortserver started", args[0])
	}
	switch verb, rest := args[0], args[1:]; {
	case verb == "start" && f.cohorts == nil:
		apiKey, secretKey := fakeAPIKey, fakeSecretKey
		dirs := fakeArgs(ts, "cohortserver start [-api-key K] [-secret-key S] DIR", rest, func(fs *flag.FlagSet) {
			fs.StringVar(&apiKey, "api-key", apiKey, "API key")
			fs.StringVar(&secretKey, "secret-key", secretKey, "secret key")
		})
		if len(dirs) != 1 {
			ts.Fatalf("usage: cohortserver start [-api-key K] [-secret-key S] DIR")
		}
		f.cohorts = cohorttest.NewServer(apiKey, secretKey)
		ts.Check(f.cohorts.AddDir(ts.MkAbs(dirs[0])))
		ts.Setenv("COHORT_SERVER", f.cohorts.URL)
	case verb == "fail" && len(rest) >= 2:
		statuses := make([]int, 0, len(rest)-1)
		for _, s := range rest[1:] {
			if s == "stall" {
				statuses = append(statuses, cohorttest.Stall)
				continue
			}
			statuses = append(statuses, atoi(ts, s))
		}
		f.cohorts.Script(rest[0], statuses...)
	case verb == "wait" && len(rest) == 1:
		n := atoi(ts, rest[0])
		waitFor(ts, rest[0]+" cohort requests", func() bool { return len(f.cohorts.Requests()) >= n })
	case verb == "mark" && len(rest) == 0:
		f.cohortMark = len(f.cohorts.Requests())
	case verb == "requests" && len(rest) == 1:
		if got := len(f.cohorts.Requests()) - f.cohortMark; got != atoi(ts, rest[0]) {
			ts.Fatalf("cohortserver: %d requests since the mark, want %s", got, rest[0])
		}
	default:
		ts.Fatalf("cohortserver: bad arguments %q", args)
	}
}

func cmdEventServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: eventserver start|events ...")
	}
	f := fakesOf(ts)
	if args[0] != "start" && f.events == nil {
		ts.Fatalf("eventserver %s: no eventserver started", args[0])
	}
	switch verb, rest := args[0], args[1:]; {
	case verb == "start" && f.events == nil:
		key := fakeAPIKey
		if extra := fakeArgs(ts, "eventserver start [-key K]", rest, func(fs *flag.FlagSet) {
			fs.StringVar(&key, "key", key, "API key")
		}); len(extra) != 0 {
			ts.Fatalf("usage: eventserver start [-key K]")
		}
		f.events = analyticstest.NewServer()
		f.events.RequireAPIKey(key)
		ts.Setenv("EVENTS_SERVER", f.events.EventsURL())
		ts.Setenv("EVENTS_SERVER_BASE", f.events.URL)
	case verb == "events" && (len(rest) == 1 || len(rest) == 2):
		want, got := atoi(ts, rest[0]), 0
		for _, e := range f.events.DecodedEvents() {
			if len(rest) == 1 || e["event_type"] == rest[1] {
				got++
			}
		}
		if got != want {
			ts.Fatalf("eventserver ingested %d events, want %d", got, want)
		}
	default:
		ts.Fatalf("eventserver: bad arguments %q", args)
	}
}

// writeExitCode records a command's exit code where the script asked
// ($EXIT_CODE_FILE): testscript's `wait` on a background command only says
// whether it failed, and the interrupt scripts need exactly 130.
func writeExitCode(code int) {
	if path := os.Getenv("EXIT_CODE_FILE"); path != "" {
		os.WriteFile(path, []byte(strconv.Itoa(code)+"\n"), 0o666)
	}
}
