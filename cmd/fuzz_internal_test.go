package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/experiment"
)

// Fuzzers for what the command line parses: the user flags, assertion
// arguments, one line of --users input (through the whole batch pipeline),
// the config file and the `experiment test` case file. Each checks docs/cli.md's
// promise for bad input: a one-line error with the right exit code, no
// panic, no hang, no key in the message.

// fuzzSecrets are the keys the config seeds hold; no run of seven of their
// characters may reach an error or the output (docs/cli.md#keys: at most six), but
// for "server-", which is no secret.
var fuzzSecrets = []string{"server-Zq8xK2mN4pL7wR9tV3yB6cD1fG5hJ0k", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "f0e1d2c3b4a5968778695a4b3c2d1e0f"}

// A setting's name is shown in full, even when someone pasted a key
// there, and so is a server zone or URL: names and values of settings that
// are no secret are allowed to show what they share with a key.
func checkNoSecret(t *testing.T, what, text string, names []string) {
	t.Helper()
	for _, s := range fuzzSecrets {
		for i := 0; i+7 <= len(s); i++ {
			w := s[i : i+7]
			if w == "server-" || slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, w) }) {
				continue
			}
			if strings.Contains(text, w) {
				t.Fatalf("%s shows %q of a key: %q", what, w, text)
			}
		}
	}
}

// yamlAnchor is an anchor or alias: a name, like a key.
var yamlAnchor = regexp.MustCompile(`[*&][^\s,\[\]{}]+`)

// yamlKeys lists every mapping key, anchor and alias name in a YAML
// document, and the values of settings that are no secret.
func yamlKeys(data []byte) []string {
	keys := yamlAnchor.FindAllString(string(data), -1)
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return keys
	}
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				keys = append(keys, n.Content[i].Value)
				if def, ok := lookupSetting(n.Content[i].Value); ok && !def.secret {
					keys = append(keys, n.Content[i+1].Value) // shown, as it should be
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	return keys
}

func checkCmdError(t *testing.T, what string, err error, codes ...int) {
	t.Helper()
	msg := err.Error()
	if strings.TrimSpace(msg) == "" {
		t.Fatalf("%s: empty error", what)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("%s: error spans lines: %q", what, msg)
	}
	code := exitCode(context.Background(), err)
	for _, c := range codes {
		if code == c {
			return
		}
	}
	t.Fatalf("%s: exit code %d, want one of %v: %v", what, code, codes, err)
}

// checkStderr wants every line Main wrote on stderr to be an error,
// warning or hint line.
func checkStderr(t *testing.T, stderr string) {
	t.Helper()
	for line := range strings.Lines(stderr) {
		if !strings.HasPrefix(line, "experiment: ") && !strings.HasPrefix(line, "hint: ") {
			t.Fatalf("stray stderr line %q in:\n%s", line, stderr)
		}
	}
}

func fuzzStreams(t *testing.T, in []byte) (*cli.IOStreams, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	dir := t.TempDir()
	env := map[string]string{
		"EXPERIMENT_CONFIG":    filepath.Join(dir, "no-config.yaml"),
		"EXPERIMENT_CACHE_DIR": filepath.Join(dir, "cache"),
	}
	return &cli.IOStreams{In: bytes.NewReader(in), Out: &out, ErrOut: &errOut,
		Getenv: func(k string) string { return env[k] }}, &out, &errOut
}

func userJSON(t *testing.T, u *experiment.User) []byte {
	t.Helper()
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatalf("user does not encode: %v", err)
	}
	return b
}

func FuzzUserFlags(f *testing.F) {
	user, err := os.ReadFile("../testdata/user.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(user), "plan=pro", "org id=acme-corp", "org id:acme-corp:tier=enterprise")
	f.Add("", "age=30", "org=a", "org:a:seats=250")
	f.Add(`{"user_id":"u1"}`, `tags=["a","b"]`, "t=", "t:n:k=")
	f.Add(`{"group_properties":{"t":{"n":"flat"}}}`, "x={\"y\":null}", "=n", "t:n:k={bad")
	f.Add(`{"user_id":1}`, "noequals", "t=n=m", "t:n=v")
	f.Add(`[]`, "big=1e999", "a\nb=c", "t::k=v")
	f.Add("{\"user_id\":\"\xff\"}", "k=\xff", "t=\xff", "t:n:\xff=\xff")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, userArg, prop, group, groupProp string) {
		var args []string
		if userArg != "" {
			// The --user JSON as an argument, a file and stdin: one answer.
			path := filepath.Join(dir, "user.json")
			if err := os.WriteFile(path, []byte(userArg), 0o600); err != nil {
				t.Fatal(err)
			}
			fromFile, errFile := readUserArg("@"+path, nil)
			fromStdin, errStdin := readUserArg("-", strings.NewReader(userArg))
			if (errFile == nil) != (errStdin == nil) {
				t.Fatalf("--user @FILE gives %v, --user - gives %v", errFile, errStdin)
			}
			if errFile != nil {
				checkCmdError(t, "--user @FILE", errFile, ExitInput)
				checkCmdError(t, "--user -", errStdin, ExitInput)
			} else if !bytes.Equal(userJSON(t, fromFile), userJSON(t, fromStdin)) {
				t.Fatal("--user @FILE and --user - differ")
			}
			if userArg == "-" || strings.HasPrefix(userArg, "@") {
				args = append(args, "--user", "@"+path)
			} else {
				args = append(args, "--user", userArg)
			}
		}
		args = append(args, "-p", prop, "--group", group, "--group-prop", groupProp)
		var uf userFlags
		fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
		uf.register(fs)
		if err := fs.Parse(args); err != nil {
			return // pflag's business, reported by cobra as a usage error
		}
		u, err := uf.build(fs, strings.NewReader(""))
		if err != nil {
			checkCmdError(t, "user flags", err, ExitInput, ExitUsage)
			return
		}
		// -p KEY=VALUE sets the property KEY to the string VALUE, as
		// typed; -p KEY:=JSON to the JSON value (build failed if not JSON).
		k, v, _ := strings.Cut(prop, "=")
		var want any = v
		if key, isJSON := strings.CutSuffix(k, ":"); isJSON {
			k = key
			var x any
			if json.Unmarshal([]byte(v), &x) != nil {
				t.Fatalf("-p %q: not JSON, yet accepted", prop)
			}
			want = x
		}
		gotJSON, _ := json.Marshal(u.UserProperties[k])
		wantJSON, _ := json.Marshal(want)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Fatalf("-p %q: property %s, want %s", prop, gotJSON, wantJSON)
		}
		// The user is one that --user accepts back. (Invalid UTF-8 in a
		// flag is U+FFFD once in JSON: compare from the first read back.)
		first := userJSON(t, u)
		u, err = readUserArg(string(first), nil)
		if err != nil {
			t.Fatalf("built user %s does not read back: %v", first, err)
		}
		first = userJSON(t, u)
		again, err := readUserArg(string(first), nil)
		if err != nil {
			t.Fatalf("built user %s does not read back: %v", first, err)
		}
		if second := userJSON(t, again); !bytes.Equal(first, second) {
			t.Fatalf("round trip changed the user:\n%s\n%s", first, second)
		}
	})
}

func FuzzParseExpectation(f *testing.F) {
	for _, s := range []string{
		"new-editor=on", "dark-mode=off", "attachment-size-limit-mb=value:250", "offline-mode=absent",
		"x=", "=on", "", "noequals", "a=b=c", "a=value:", "a=value:x=y", "a=absent ", "a\n=b\n", "\xff=\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		x, err := parseExpectation(arg)
		if err != nil {
			checkCmdError(t, "parseExpectation", err, ExitUsage)
			return
		}
		if x.Flag == "" {
			t.Fatalf("%q: accepted with no flag", arg)
		}
		want := x.Variant
		switch {
		case x.Absent:
			want = "absent"
		case x.Value != nil:
			want = "value:" + *x.Value
		}
		if x.Flag+"="+want != arg {
			t.Fatalf("%q read as %+v", arg, x)
		}
		if s := x.String(); strings.ContainsAny(s, "\r\n") {
			t.Fatalf("%q: expectation prints as %q", arg, s)
		}
	})
}

// FuzzBatchUsers feeds --users input through the real batch pipeline: one
// output line per valid user, in order, and for the first invalid line an
// error naming it (or, with --skip-invalid, a warning per invalid line).
func FuzzBatchUsers(f *testing.F) {
	users, err := os.ReadFile("../testdata/users.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(users, false)
	f.Add(users, true)
	for _, s := range []string{
		"", "\n", "{}", "{}\n\n{}\r\n", " \t\n{\"user_id\":\"u\"}", "null\n{}", "[1]\n{}\n", "{\"user_id\":1}\n{}",
		"{\"user_id\":\"a\"}\n{\"user_id\":\"b\"\n{\"user_id\":\"c\"}", "\xff\n{}", "{}{}\n", "\r\r\n{}\r",
		"{\"user_properties\":{\"n\":1e999}}", "\u00a0\n{}", "{\"groups\":{\"org id\":[\"acme-corp\"]}}",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	flags := filepath.Join("..", "testdata", "flags.json")
	f.Fuzz(func(t *testing.T, data []byte, skip bool) {
		args := []string{"evaluate", "--flags", flags, "--users", "-", "-o", "jsonl", "new-editor", "dark-mode"}
		if skip {
			args = append(args, "--skip-invalid")
		}
		ios, out, errOut := fuzzStreams(t, data)
		code := Main(context.Background(), args, ios)
		checkStderr(t, errOut.String())

		// What the contract says should come out.
		var good, bad int
		firstBad := 0
		lines := bytes.Split(data, []byte("\n"))
		if len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		for i, line := range lines {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if _, err := experiment.DecodeUserStrict(line); err != nil {
				bad++
				if firstBad == 0 {
					firstBad = i + 1
				}
				if !skip {
					break
				}
				continue
			}
			good++
		}
		wantCode := ExitOK
		if bad > 0 && !skip {
			wantCode = ExitInput
		}
		if code != wantCode {
			t.Fatalf("exit %d, want %d; stderr:\n%s", code, wantCode, errOut)
		}
		gotLines := strings.Count(out.String(), "\n")
		if gotLines != good || (good > 0 && !strings.HasSuffix(out.String(), "\n")) {
			t.Fatalf("%d output lines, want %d", gotLines, good)
		}
		for line := range strings.Lines(out.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("output line %q: %v", line, err)
			}
		}
		switch {
		case skip && strings.Count(errOut.String(), "experiment: skipped stdin:") != bad:
			t.Fatalf("%d invalid lines, stderr:\n%s", bad, errOut)
		case !skip && bad > 0 && !strings.HasPrefix(errOut.String(), "experiment: stdin:"+itoa(firstBad)+":"): // then the column, when known
			t.Fatalf("first invalid line %d, stderr:\n%s", firstBad, errOut)
		}
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// FuzzConfigFile reads a config file, then does what `config set` and
// `config list` do with it: rewrite it with one more setting, and show the
// settings. Keys never show, and a file that was read is still read the same
// after the rewrite.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"",
		"server-zone: eu\ndeployment-key: server-Zq8xK2mN4pL7wR9tV3yB6cD1fG5hJ0k\nprofiles:\n  staging:\n    deployment-key: server-Zq8xK2mN4pL7wR9tV3yB6cD1fG5hJ0k\n",
		"api-key: a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6\nsecret-key: f0e1d2c3b4a5968778695a4b3c2d1e0f\ncohort-server-url: https://cohort.lab.amplitude.com\n",
		"profiles:\n  prod: server-Zq8xK2mN4pL7wR9tV3yB6cD1fG5hJ0k\n",
		"deployment-key: [server-Zq8xK2mN4pL7wR9tV3yB6cD1fG5hJ0k]\n",
		"api-key: {a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6: 1}\n",
		"deployment-key:\n  - a\n  - b\nprofiles: [1, 2]\nserver-zone: {x: 1}\n",
		"profiles:\n  p:\n    api-key: !!binary YTFiMmMzZDRlNWY2YTdiOGM5ZDBlMWYyYTNiNGM1ZDY=\n",
		"profiles: ~\n", "profiles:\n  staging: ~\n", "output: json\ncache-dir: /tmp/x\n", "deployment-key: \"a\\nb\"\nprofiles: \"x\\ny\"\n",
		"server-Zq8xK2mN4pL7wR9tV3yB6cD1fG5hJ0k\n", "deployment-key server-Zq8xK2mN4pL7wR9tV3yB6cD1fG5hJ0k\n",
		"a: &a [*a]\n", "- 1\n- 2\n", "server-zone: eu\nserver-zone: us\n", "{\"server-zone\": \"eu\"}",
		"\t- bad indent\n", ":", "%YAML 1.1\n---\nserver-zone: eu\n", "server-url: !!int 12\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		names := yamlKeys(data)
		cfg, err := readConfig(path)
		if err != nil {
			checkCmdError(t, "readConfig", err, ExitInput)
			checkNoSecret(t, "readConfig error", err.Error(), names)
			return
		}
		ios, out, errOut := fuzzStreams(t, nil)
		if code := Main(context.Background(), []string{"config", "list", "-o", "json", "--config", path}, ios); code != ExitOK {
			checkStderr(t, errOut.String())
			if code != ExitInput && code != ExitUsage {
				t.Fatalf("config list: exit %d: %s", code, errOut)
			}
		}
		checkNoSecret(t, "config list", out.String()+errOut.String(), names)

		ios, out, errOut = fuzzStreams(t, nil)
		if code := Main(context.Background(), []string{"config", "set", "server-zone", "eu", "--config", path, "--profile", "fuzz"}, ios); code != ExitOK {
			t.Fatalf("config set on a readable file: exit %d: %s", code, errOut)
		}
		checkNoSecret(t, "config set", out.String()+errOut.String(), names)
		again, err := readConfig(path)
		if err != nil {
			written, _ := os.ReadFile(path)
			t.Fatalf("config set wrote a file it cannot read: %v\n%s", err, written)
		}
		if again.Profiles["fuzz"]["server-zone"] != "eu" {
			t.Fatalf("config set lost the setting: %+v", again)
		}
		delete(again.Profiles, "fuzz")
		if len(again.Settings) != len(cfg.Settings) {
			t.Fatalf("config set changed the settings: %v, was %v", again.Settings, cfg.Settings)
		}
		for k, v := range cfg.Settings {
			if again.Settings[k] != v {
				t.Fatalf("config set changed %s: %q, was %q", k, again.Settings[k], v)
			}
		}
		for p, settings := range cfg.Profiles {
			if p == "fuzz" {
				continue
			}
			for k, v := range settings {
				if again.Profiles[p][k] != v {
					t.Fatalf("config set changed %s.%s: %q, was %q", p, k, again.Profiles[p][k], v)
				}
			}
		}
	})
}

// FuzzTestFile runs `experiment test` on a fuzzed case file against the
// sample flags: a verdict (exit 0 or 1) or one error line (exit 3).
func FuzzTestFile(f *testing.F) {
	cases, err := os.ReadFile("../testdata/flagtests.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cases)
	for _, s := range []string{
		"", "cases: []", "cases:\n  - flag: new-editor\n    variant: \"on\"\n", "cases:\n  - {flag: new-editor}\n",
		"cases:\n  - user: {user_id: 1}\n    flag: new-editor\n    absent: true\n", "cases:\n  - user: [1]\n    expect: {dark-mode: absent}\n",
		"cases:\n  - user: null\n    flag: nope\n    value: x\n", "unknown: 1\ncases:\n  - flag: a\n", "cases:\n  - user: {1: 2}\n    flag: dark-mode\n    variant: on\n",
		"cases:\n  - user: {user_properties: {n: .nan}}\n    flag: dark-mode\n    variant: on\n", "cases:\n  - name: !!int x\n",
		`{"cases":[{"name":"json","user":{"user_id":"u"},"flag":"dark-mode","variant":"off"}]}`, "cases:\n  - expect: {dark-mode: 1}\n",
		"cases:\n  - user: {user_id: \"a\\nb\", platform: 2024-05-01}\n    flag: dark-mode\n    variant: \"off\"\n",
		"a: &a [*a, *a]\nb: &b [*a, *a]\ncases: [*b]\n",
	} {
		f.Add([]byte(s))
	}
	flags, _ := filepath.Abs(filepath.Join("..", "testdata", "flags.json"))
	cohorts, _ := filepath.Abs(filepath.Join("..", "testdata", "cohorts"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "cases.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		tf, err := loadTestFile(path)
		if err != nil {
			checkCmdError(t, "loadTestFile", err, ExitInput)
		} else {
			for i, c := range tf.Cases {
				if _, err := c.expectations(); err != nil {
					checkCmdError(t, "cases["+itoa(i)+"]", err, ExitCheckFailed) // wrapped by runTest
				}
			}
		}
		ios, _, errOut := fuzzStreams(t, nil)
		code := Main(context.Background(), []string{"test", path, "--flags", flags, "--cohorts", cohorts}, ios)
		checkStderr(t, errOut.String())
		switch code {
		case ExitOK, ExitCheckFailed:
			if err != nil {
				t.Fatalf("exit %d for a file that does not load: %v", code, err)
			}
		case ExitInput:
			if lines := strings.Count(errOut.String(), "\n"); lines != 1 {
				t.Fatalf("exit 3 with %d stderr lines:\n%s", lines, errOut)
			}
		default:
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if errors.Is(err, os.ErrNotExist) {
			t.Fatal("the case file went missing")
		}
	})
}
