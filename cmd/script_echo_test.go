package cmd_test

// Script commands for a server that echoes each request's credentials back
// in its error body, the way some proxies and misconfigured gateways do
// (testdata/script/redact_echo.txtar):
//
//	echoserver start STATUS        answer every request with STATUS and a body
//	                               quoting its Authorization header ($ECHO_SERVER)
//	echoserver pad N               put N spaces before the quote
//	nosecret FILE SECRET...        no 12-character piece of a SECRET, of its
//	                               base64, or of the Basic token of any two of
//	                               them is in FILE

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rogpeppe/go-internal/testscript"
)

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
