package cmd_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// serveURL finds the base URL a background `experiment serve` printed.
var serveURL = regexp.MustCompile(`http://[0-9.:\[\]a-f]+`)

// cmdHTTPGet sends one request, for the serve scripts:
//
//	httpget [-X METHOD] [-H 'Name: value']... [-d BODY] [-o FILE] [-status N] [-event] BASE PATH
//
// BASE is a URL, or @FILE for the first http:// URL in FILE (the address
// serve printed on stderr). The body goes to FILE (-o) or stdout.txt
// under $WORK; -status checks the status (default 200); -event reads only
// the first server-sent event of a stream, and headers are written to
// FILE.headers.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! httpget")
	}
	method, body, out, status, event := "GET", "", "httpget.out", 200, false
	header := http.Header{}
	for len(args) > 2 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-X":
			method = args[1]
		case "-H":
			k, v, _ := strings.Cut(args[1], ":")
			header.Add(k, strings.TrimSpace(v))
		case "-d":
			body = args[1]
		case "-o":
			out = args[1]
		case "-status":
			n, err := strconv.Atoi(args[1])
			ts.Check(err)
			status = n
		case "-event":
			event = true
			args = args[1:]
			continue
		default:
			ts.Fatalf("httpget: unknown option %q", args[0])
		}
		args = args[2:]
	}
	if len(args) != 2 {
		ts.Fatalf("usage: httpget [options] BASE PATH")
	}
	base := args[0]
	if name, ok := strings.CutPrefix(base, "@"); ok {
		base = serveURL.FindString(ts.ReadFile(name))
		if base == "" {
			ts.Fatalf("httpget: no http:// URL in %s", name)
		}
	}
	req, err := http.NewRequest(method, base+args[1], strings.NewReader(body))
	ts.Check(err)
	req.Header = header
	client := &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	var data []byte
	if event {
		data = readEvent(ts, resp.Body)
	} else {
		data, err = io.ReadAll(resp.Body)
		ts.Check(err)
	}
	var hd bytes.Buffer
	resp.Header.Write(&hd)
	ts.Check(os.WriteFile(ts.MkAbs(out), data, 0o666))
	ts.Check(os.WriteFile(ts.MkAbs(out+".headers"), hd.Bytes(), 0o666))
	if resp.StatusCode != status {
		ts.Fatalf("httpget %s %s: status %d, want %d: %.200s", method, args[1], resp.StatusCode, status, data)
	}
}

// readEvent reads the first event's data lines, joined as SSE does.
func readEvent(ts *testscript.TestScript, r io.Reader) []byte {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var lines []string
	for sc.Scan() {
		if sc.Text() == "" {
			break
		}
		lines = append(lines, strings.TrimPrefix(strings.TrimPrefix(sc.Text(), "data:"), " "))
	}
	if len(lines) == 0 {
		ts.Fatalf("httpget -event: no event: %v", sc.Err())
	}
	return []byte(fmt.Sprintln(strings.Join(lines, "\n")))
}
