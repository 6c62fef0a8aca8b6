package cmd_test

// End-to-end tests of the command line: testscript runs the txtar scripts in
// testdata/script, each in its own $WORK holding a copy of the repository's
// testdata fixtures (flags.json, users.jsonl, user.json, cohorts/). `exec
// experiment …` re-enters cmd.Main in this test binary, so the scripts test
// exactly what users run, exit codes and streams included, with no network.
//
// Commands for the scripts, beyond testscript's own:
//
//	exits N PROG [ARGS...]         run PROG like exec; its exit code must be N
//	errfmt [-hint]                 stderr of the last command is one error line,
//	                               `experiment: ...` (docs/cli.md#errors), then an optional
//	                               (with -hint, required) `hint:` line; only
//	                               `experiment: warning:` lines may precede it
//	lines FILE N                   FILE has exactly N complete lines
//	json [-l] FILE [PATH [VALUE]]  FILE is JSON (with -l, JSON Lines read as an
//	                               array); PATH exists; the value at PATH equals
//	                               the JSON VALUE. PATH is dot-separated keys
//	                               and array indexes ("." is the document)
//	jsonkeys [-l] FILE PATH KEY... the object at PATH has exactly these keys
//	jsonlen [-l] FILE PATH N       the array or object at PATH has N elements
//	genusers [-plain] [-bad K] FILE N
//	                               write N users (user i has user_properties.n,
//	                               i zero-padded to 4 digits) as JSON Lines, with
//	                               blank and whitespace-only lines and CRLF endings
//	                               mixed in and no newline at the end, unless
//	                               -plain (line i is user i); with -bad K, user
//	                               K's line is a JSON array
//	seqcheck FILE N                FILE has N JSON lines; line i spells i in the
//	                               variant keys of flags d3 d2 d1 d0
//	waitfile FILE REGEXP           wait until FILE (written by a command in the
//	                               background) matches REGEXP
//	httpget [opts] BASE PATH       one HTTP request to a background serve (serve_test.go)
//
// Fake Amplitude services (flagserver, remoteserver, cohortserver,
// eventserver) are described in script_fakes_test.go. A command's exit code
// is also written to $EXIT_CODE_FILE when the script sets it, for commands
// run in the background.
//
// The condition [tty] holds where testscript's ttyin works (a pseudo-terminal).
// `experiment-tty` is experiment with its standard output on the controlling
// terminal that ttyin gives the next exec: scripts see what a terminal user
// sees with ttyout (line ends are \r\n there), while stderr stays a pipe.
// `experiment-ttyerr` puts standard error on the terminal instead.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/flagkit/experiment/cmd"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"experiment":        experimentMain,
		"experiment-tty":    func() { os.Stdout = openTTY(); experimentMain() },
		"experiment-ttyerr": func() { os.Stderr = openTTY(); experimentMain() },
	})
}

// openTTY opens the controlling terminal that ttyin gives the next exec.
func openTTY() *os.File {
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "no controlling terminal (run ttyin first):", err)
		os.Exit(125)
	}
	return tty
}

// experimentMain is main.go's main, which also records the exit code.
func experimentMain() {
	code := cmd.Run(os.Args[1:])
	writeExitCode(code)
	os.Exit(code)
}

func TestScripts(t *testing.T) {
	testdata, err := filepath.Abs(filepath.Join("..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(testdata, "flags.json")); err != nil {
		t.Fatalf("repository testdata: %v", err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("TESTDATA", testdata)
			// Keep every run offline and away from the developer's own
			// settings: nothing may be read from or sent to a real server.
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
			// Under -race every command would sleep 1s at exit by default;
			// a race still fails its command (exit 66).
			if gorace := os.Getenv("GORACE"); !strings.Contains(gorace, "atexit_sleep_ms") {
				env.Setenv("GORACE", strings.TrimSpace(gorace+" atexit_sleep_ms=10"))
			}
			return copyFixtures(testdata, work)
		},
		Condition: func(cond string) (bool, error) {
			if cond == "tty" {
				return ttySupported(), nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":    cmdExits,
			"errfmt":   cmdErrfmt,
			"lines":    cmdLines,
			"json":     cmdJSON,
			"jsonkeys": cmdJSONKeys,
			"jsonlen":  cmdJSONLen,
			"genusers": cmdGenUsers,
			"seqcheck": cmdSeqCheck,
			"waitfile": cmdWaitFile,
			"httpget":  cmdHTTPGet,

			"flagserver":   cmdFlagServer,
			"remoteserver": cmdRemoteServer,
			"cohortserver": cmdCohortServer,
			"eventserver":  cmdEventServer,
			"echoserver":   cmdEchoServer,
			"nosecret":     cmdNoSecret,
		},
	})
}

// copyFixtures copies the repository's fixtures into a script's work
// directory, leaving alone any file the script's archive already wrote.
func copyFixtures(testdata, work string) error {
	for _, name := range []string{"flags.json", "users.jsonl", "user.json", "cohorts"} {
		src := filepath.Join(testdata, name)
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(testdata, path)
			if err != nil {
				return err
			}
			dst := filepath.Join(work, rel)
			if d.IsDir() {
				return os.MkdirAll(dst, 0o777)
			}
			if _, err := os.Stat(dst); err == nil {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, data, 0o666)
		})
		if err != nil {
			return fmt.Errorf("copying fixtures: %w", err)
		}
	}
	return nil
}

// ttySupported reports whether testscript can give a command a terminal.
func ttySupported() bool {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		return false
	}
	f, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// cmdExits runs a program like exec and checks its exit code.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exits")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad exit code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

var (
	errLine  = regexp.MustCompile(`^experiment: \S`)
	warnLine = regexp.MustCompile(`^experiment: warning: `)
)

// cmdErrfmt checks that stderr is one error in the form of docs/cli.md#errors.
func cmdErrfmt(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! errfmt")
	}
	needHint := len(args) == 1 && args[0] == "-hint"
	if len(args) > 1 || (len(args) == 1 && !needHint) {
		ts.Fatalf("usage: errfmt [-hint]")
	}
	stderr := ts.ReadFile("stderr")
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic:") {
		ts.Fatalf("stderr has a panic or a goroutine trace:\n%s", stderr)
	}
	if !strings.HasSuffix(stderr, "\n") {
		ts.Fatalf("stderr does not end with a newline: %q", stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	for len(lines) > 0 && warnLine.MatchString(lines[0]) {
		lines = lines[1:]
	}
	switch {
	case len(lines) == 0:
		ts.Fatalf("stderr has no error line")
	case !errLine.MatchString(lines[0]) || warnLine.MatchString(lines[0]):
		ts.Fatalf("error line %q does not start with `experiment: `", lines[0])
	case strings.ContainsAny(lines[0], "\t\r") || strings.HasSuffix(lines[0], " "):
		ts.Fatalf("error line %q has a tab, a carriage return or trailing space", lines[0])
	case len(lines) == 1 && needHint:
		ts.Fatalf("no hint: line after %q", lines[0])
	case len(lines) == 2 && !strings.HasPrefix(lines[1], "hint: "):
		ts.Fatalf("second line %q is not a hint: line", lines[1])
	case len(lines) > 2:
		ts.Fatalf("stderr has %d lines after the warnings, want an error line and at most a hint:\n%s", len(lines), stderr)
	}
}

// cmdLines checks that a file has exactly N complete lines.
func cmdLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! lines")
	}
	if len(args) != 2 {
		ts.Fatalf("usage: lines FILE N")
	}
	want, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("lines: bad count %q", args[1])
	}
	data := ts.ReadFile(args[0])
	if data != "" && !strings.HasSuffix(data, "\n") {
		ts.Fatalf("%s: the last line has no newline", args[0])
	}
	if got := strings.Count(data, "\n"); got != want {
		ts.Fatalf("%s has %d lines, want %d", args[0], got, want)
	}
}

// readJSON decodes a file, or with -l (first in args) a JSON Lines file as
// an array of its lines, and returns the remaining args.
func readJSON(ts *testscript.TestScript, args []string) (any, []string, error) {
	lines := len(args) > 0 && args[0] == "-l"
	if lines {
		args = args[1:]
	}
	if len(args) == 0 {
		ts.Fatalf("missing FILE")
	}
	data := ts.ReadFile(args[0])
	if !lines {
		v, err := decodeJSON(data)
		if err != nil {
			return nil, args[1:], fmt.Errorf("%s: %w", args[0], err)
		}
		return v, args[1:], nil
	}
	if data != "" && !strings.HasSuffix(data, "\n") {
		return nil, args[1:], fmt.Errorf("%s: the last line has no newline", args[0])
	}
	all := []any{}
	for i, line := range strings.SplitAfter(data, "\n") {
		if line == "" {
			continue
		}
		v, err := decodeJSON(line)
		if err != nil {
			return nil, args[1:], fmt.Errorf("%s:%d: %w", args[0], i+1, err)
		}
		all = append(all, v)
	}
	return all, args[1:], nil
}

// decodeJSON decodes exactly one JSON value, keeping numbers exact.
func decodeJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func jsonAt(v any, path string) (any, error) {
	path = strings.TrimPrefix(path, ".")
	if path == "" {
		return v, nil
	}
	for _, seg := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[seg]
			if !ok {
				return nil, fmt.Errorf("no key %q", seg)
			}
			v = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, fmt.Errorf("no index %q in an array of %d", seg, len(x))
			}
			v = x[i]
		default:
			return nil, fmt.Errorf("%q: not an object or array", seg)
		}
	}
	return v, nil
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// cmdJSON checks validity, a path, or the value at a path.
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	doc, rest, err := readJSON(ts, args)
	if len(rest) > 2 {
		ts.Fatalf("usage: json [-l] FILE [PATH [VALUE]]")
	}
	if len(rest) == 0 {
		switch {
		case err != nil && !neg:
			ts.Fatalf("invalid JSON: %v", err)
		case err == nil && neg:
			ts.Fatalf("valid JSON, want invalid")
		}
		return
	}
	if err != nil {
		ts.Fatalf("invalid JSON: %v", err)
	}
	got, err := jsonAt(doc, rest[0])
	if len(rest) == 1 {
		switch {
		case err != nil && !neg:
			ts.Fatalf("%s: %v", rest[0], err)
		case err == nil && neg:
			ts.Fatalf("%s exists: %s", rest[0], compactJSON(got))
		}
		return
	}
	want, werr := decodeJSON(rest[1])
	if werr != nil {
		ts.Fatalf("json: VALUE %q is not JSON: %v", rest[1], werr)
	}
	equal := err == nil && reflect.DeepEqual(normalize(got), normalize(want))
	switch {
	case !equal && !neg:
		if err != nil {
			ts.Fatalf("%s: %v", rest[0], err)
		}
		ts.Fatalf("%s is %s, want %s", rest[0], compactJSON(got), compactJSON(want))
	case equal && neg:
		ts.Fatalf("%s is %s", rest[0], compactJSON(got))
	}
}

// normalize makes numbers comparable by value: 1, 1.0 and 1e0 are equal.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = normalize(e)
		}
		return s
	}
	return v
}

// cmdJSONKeys checks the exact key set of an object.
func cmdJSONKeys(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! jsonkeys")
	}
	doc, rest, err := readJSON(ts, args)
	if err != nil {
		ts.Fatalf("invalid JSON: %v", err)
	}
	if len(rest) < 1 {
		ts.Fatalf("usage: jsonkeys [-l] FILE PATH KEY...")
	}
	v, err := jsonAt(doc, rest[0])
	if err != nil {
		ts.Fatalf("%s: %v", rest[0], err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		ts.Fatalf("%s is %s, not an object", rest[0], compactJSON(v))
	}
	got := make([]string, 0, len(obj))
	for k := range obj {
		got = append(got, k)
	}
	want := append([]string{}, rest[1:]...)
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		ts.Fatalf("%s has keys %q, want %q", rest[0], got, want)
	}
}

// cmdJSONLen checks the length of an array or object.
func cmdJSONLen(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! jsonlen")
	}
	doc, rest, err := readJSON(ts, args)
	if err != nil {
		ts.Fatalf("invalid JSON: %v", err)
	}
	if len(rest) != 2 {
		ts.Fatalf("usage: jsonlen [-l] FILE PATH N")
	}
	want, err := strconv.Atoi(rest[1])
	if err != nil {
		ts.Fatalf("jsonlen: bad length %q", rest[1])
	}
	v, err := jsonAt(doc, rest[0])
	if err != nil {
		ts.Fatalf("%s: %v", rest[0], err)
	}
	got := -1
	switch x := v.(type) {
	case map[string]any:
		got = len(x)
	case []any:
		got = len(x)
	default:
		ts.Fatalf("%s is %s, not an array or object", rest[0], compactJSON(v))
	}
	if got != want {
		ts.Fatalf("%s has %d elements, want %d", rest[0], got, want)
	}
}

// cmdGenUsers writes N numbered users as JSON Lines, with noise between them
// unless -plain; with -bad K, user K's line is a JSON array instead.
func cmdGenUsers(ts *testscript.TestScript, neg bool, args []string) {
	plain, bad := false, 0
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch {
		case args[0] == "-plain":
			plain, args = true, args[1:]
		case args[0] == "-bad" && len(args) > 1:
			k, err := strconv.Atoi(args[1])
			if err != nil {
				ts.Fatalf("genusers: bad -bad %q", args[1])
			}
			bad, args = k, args[2:]
		default:
			ts.Fatalf("genusers: unknown option %q", args[0])
		}
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: genusers [-plain] [-bad K] FILE N")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 || n > 9999 {
		ts.Fatalf("genusers: N must be 1..9999")
	}
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		if i == bad {
			fmt.Fprintf(&b, `[%d]`, i)
		} else {
			fmt.Fprintf(&b, `{"user_id":"u%d","user_properties":{"n":"%04d"}}`, i, i)
		}
		switch {
		case plain:
			b.WriteString("\n")
			continue
		case i == n:
			// no newline at the end of the input
		case i%13 == 0:
			b.WriteString("\r\n")
		default:
			b.WriteString("\n")
		}
		if i < n && i%10 == 0 {
			b.WriteString("\n")
		}
		if i < n && i%97 == 0 {
			b.WriteString(" \t \n")
		}
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b.Bytes(), 0o666))
}

// cmdSeqCheck checks that line i of a batch output spells i in the variant
// keys of flags d3 d2 d1 d0.
func cmdSeqCheck(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: seqcheck FILE N")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("seqcheck: bad count %q", args[1])
	}
	doc, _, err := readJSON(ts, []string{"-l", args[0]})
	if err != nil {
		ts.Fatalf("invalid JSON lines: %v", err)
	}
	lines := doc.([]any)
	if len(lines) != n {
		ts.Fatalf("%s has %d lines, want %d", args[0], len(lines), n)
	}
	for i, line := range lines {
		var got strings.Builder
		for _, flag := range []string{"d3", "d2", "d1", "d0"} {
			key, err := jsonAt(line, flag+".key")
			if err != nil {
				ts.Fatalf("%s:%d: %s: %v", args[0], i+1, flag, err)
			}
			s, _ := key.(string)
			got.WriteString(s)
		}
		if want := fmt.Sprintf("%04d", i+1); got.String() != want {
			ts.Fatalf("%s:%d is the result of user %s, want %s: order not kept", args[0], i+1, got.String(), want)
		}
	}
}

func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfile FILE REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	path := ts.MkAbs(args[0])
	waitFor(ts, fmt.Sprintf("%s to match %q", args[0], args[1]), func() bool {
		data, err := os.ReadFile(path)
		return err == nil && re.Match(data)
	})
}
