package cmd_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestREADMEExamples runs the README's shell examples as a reader would:
// each `experiment …` line of a ```sh block and each `$ experiment …` line of
// a ```console block (with its `\` continuations), through sh, from the root
// of a temporary copy of the repository's testdata/, with `experiment` on
// PATH (TestMain puts this test binary there under that name). `go run .` is
// the same program, so it runs as `experiment`. A command must exit 0, or
// the code a following `$ echo $?` line shows.
//
// An example is skipped, by these rules alone, when it cannot run offline
// without an account: its block exports a setting (`export …`: keys of an
// account), it names a deployment key (`--deployment-key`, `server-…`), or
// it is `fetch`, `flags pull` or `cohorts sync` (Amplitude's services), or
// `watch` or `serve` (they run until interrupted). Everything else runs, so an example
// that refers to a file the repository does not bundle fails here.
func TestREADMEExamples(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the README's examples are POSIX shell")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples := readmeExamples(string(readme))
	ran := 0
	for _, ex := range examples {
		if reason := ex.skip(); reason != "" {
			t.Logf("README.md:%d: skipped (%s): %s", ex.line, reason, ex.command)
			continue
		}
		ran++
		t.Run(fmt.Sprintf("line%d", ex.line), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(filepath.Join(dir, "testdata"), os.DirFS(filepath.Join("..", "testdata"))); err != nil {
				t.Fatal(err)
			}
			home := filepath.Join(dir, ".home")
			cmd := exec.Command(sh, "-c", strings.Join(append(ex.setup, ex.command), "\n"))
			cmd.Dir = dir
			// A clean environment: no key or setting of whoever runs the
			// tests, and config and cache in the temporary directory.
			cmd.Env = []string{
				"PATH=" + os.Getenv("PATH"),
				"HOME=" + home,
				"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
				"XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
				"NO_COLOR=1",
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.WaitDelay = time.Second
			err := cmd.Start()
			if err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
			err = cmd.Wait()
			timer.Stop()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != ex.exit {
				t.Errorf("README.md:%d: %s\nexit %d, want %d\nstdout:\n%s\nstderr:\n%s", ex.line, ex.command, code, ex.exit, stdout.String(), stderr.String())
			}
		})
	}
	// The rules must leave the tour to run: a README whose examples all
	// came to be skipped (or unparsed) would otherwise pass here.
	if ran < 12 {
		t.Errorf("ran %d of the README's %d examples, want at least 12", ran, len(examples))
	}
}

type readmeExample struct {
	line    int      // README line of the command
	command string   // as written, continuations joined
	setup   []string // the block's variable assignments before it (`COOKIE=$(…)`)
	block   string   // every line of its block, for the skip rules
	exit    int      // expected exit code
}

var (
	readmeFence  = regexp.MustCompile("^```(\\w*)\\s*$")
	readmeAssign = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	readmeExport = regexp.MustCompile(`(?m)^(\$ )?export `)
	readmeNoNet  = regexp.MustCompile(`--deployment-key|\bserver-\.\.\.|^experiment (fetch|flags pull|cohorts sync)\b`)
)

func (ex readmeExample) skip() string {
	switch {
	case readmeExport.MatchString(ex.block):
		return "needs an account: its block exports keys"
	case strings.HasPrefix(ex.command, "experiment watch "), strings.HasPrefix(ex.command, "experiment serve "):
		return "runs until interrupted"
	case readmeNoNet.MatchString(ex.command):
		return "needs Amplitude's services or a deployment key"
	}
	return ""
}

// readmeExamples extracts the commands of the README's sh and console blocks.
func readmeExamples(readme string) []readmeExample {
	var out []readmeExample
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		m := readmeFence.FindStringSubmatch(lines[i])
		if m == nil || (m[1] != "sh" && m[1] != "console") {
			if m != nil { // another language's block: skip to its end
				for i++; i < len(lines) && !readmeFence.MatchString(lines[i]); i++ {
				}
			}
			continue
		}
		console := m[1] == "console"
		start := len(out)
		var block []string
		var setup []string
		for i++; i < len(lines) && !readmeFence.MatchString(lines[i]); i++ {
			line := lines[i]
			block = append(block, line)
			if console {
				if !strings.HasPrefix(line, "$ ") {
					continue // output
				}
				line = strings.TrimPrefix(line, "$ ")
			}
			first := i + 1
			for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
				i++
				block = append(block, lines[i])
				line += "\n" + lines[i] // sh joins them
			}
			line = strings.TrimSpace(line)
			if rest, ok := strings.CutPrefix(line, "go run . "); ok {
				line = "experiment " + rest
			}
			switch {
			case line == "echo $?" && console && len(out) > start:
				// The output line after it is the previous command's code.
				if i+1 < len(lines) {
					if code, err := strconv.Atoi(strings.TrimSpace(lines[i+1])); err == nil {
						out[len(out)-1].exit = code
					}
				}
			case readmeAssign.MatchString(line):
				setup = append(setup, line)
			case strings.HasPrefix(line, "experiment "):
				out = append(out, readmeExample{line: first, command: line, setup: append([]string(nil), setup...)})
			}
		}
		for j := start; j < len(out); j++ {
			out[j].block = strings.Join(block, "\n")
		}
	}
	return out
}

// TestREADMEExamplesParse checks the extraction on a README of known shape,
// so that TestREADMEExamples cannot pass by finding nothing to run.
func TestREADMEExamplesParse(t *testing.T) {
	readme := "```sh\n" +
		"go run . evaluate --flags f.json   # comment\n" +
		"go test ./...\n" +
		"C=$(experiment cookie generate --device-id d)\n" +
		"experiment cookie parse \"$C\" | experiment evaluate --user -\n" +
		"```\n" +
		"```yaml\n- run: experiment test x.yaml\n```\n" +
		"```console\n" +
		"$ experiment assert a=on \\\n" +
		"    --flags f.json\n" +
		"✗ a: want …\n" +
		"$ echo $?\n" +
		"1\n" +
		"$ experiment fetch --user-id u\n" +
		"```\n" +
		"```sh\nexport EXPERIMENT_DEPLOYMENT_KEY=server-...\nexperiment flags list\n```\n"
	got := readmeExamples(readme)
	var b strings.Builder
	for _, ex := range got {
		fmt.Fprintf(&b, "%d %q exit=%d setup=%q skip=%q\n", ex.line, ex.command, ex.exit, ex.setup, ex.skip())
	}
	want := `2 "experiment evaluate --flags f.json   # comment" exit=0 setup=[] skip=""
5 "experiment cookie parse \"$C\" | experiment evaluate --user -" exit=0 setup=["C=$(experiment cookie generate --device-id d)"] skip=""
11 "experiment assert a=on \\\n    --flags f.json" exit=1 setup=[] skip=""
16 "experiment fetch --user-id u" exit=0 setup=[] skip="needs Amplitude's services or a deployment key"
20 "experiment flags list" exit=0 setup=[] skip="needs an account: its block exports keys"
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestTestHelpExample runs the test file that `experiment test --help` shows,
// placed where its relative flags and cohorts are the bundled ones: the help
// spells the format out (an installed binary has no testdata/ to point at),
// so the sample must be a file that passes.
func TestTestHelpExample(t *testing.T) {
	help, err := exec.Command("experiment", "test", "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	_, sample, ok := strings.Cut(string(help), "override them):\n\n")
	sample, _, ok2 := strings.Cut(sample, "\n\nUsage:")
	if !ok || !ok2 {
		t.Fatalf("no sample test file in test --help:\n%s", help)
	}
	var yaml strings.Builder
	for _, line := range strings.Split(sample, "\n") {
		yaml.WriteString(strings.TrimPrefix(line, "  ") + "\n")
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "testdata"))); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "help-sample.yaml")
	if err := os.WriteFile(file, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("experiment", "test", file).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok: 2 passed, 0 failed") {
		t.Errorf("experiment test on the help's sample: %v\n%s\nsample:\n%s", err, out, yaml.String())
	}
}

// TestREADMEGoTestCommands: the README's first test command works with Go
// alone, and every `go test -race` it shows says that the race detector
// needs cgo (a C compiler), on its line or within the next three.
func TestREADMEGoTestCommands(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(readme), "\n")
	first := true
	for i, line := range lines {
		if !strings.Contains(line, "go test") {
			continue
		}
		if first && strings.Contains(line, "-race") {
			t.Errorf("README.md:%d: the first test command uses -race, which needs a C compiler: %s", i+1, line)
		}
		first = false
		if !strings.Contains(line, "go test -race") {
			continue
		}
		near := strings.Join(lines[i:min(i+4, len(lines))], "\n")
		if !strings.Contains(near, "cgo") {
			t.Errorf("README.md:%d: go test -race without saying it needs cgo (a C compiler): %s", i+1, line)
		}
	}
	if first {
		t.Error("README.md shows no go test command")
	}
}

// TestREADMEOutputForms: the README's table of `-o` forms per command is
// what each command accepts. An unknown form is refused listing the forms
// the command takes, which is compared with the table's row; commands the
// README says take no -o must refuse the option.
func TestREADMEOutputForms(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Positional arguments, so that the option is what is checked.
	args := map[string][]string{
		"explain":      {"dark-mode", "--flags", "../testdata/flags.json"},
		"flags show":   {"dark-mode", "--flags", "../testdata/flags.json"},
		"cookie parse": {"x"},
		"assert":       {"dark-mode=on", "--flags", "../testdata/flags.json"},
		"test":         {"../testdata/flagtests.yaml"},
		"diff":         {"../testdata/flags.json", "../testdata/flags-next.json"},
	}
	row := regexp.MustCompile("(?m)^\\| (`[^|]+) \\| (`[^|]+) \\|")
	cmdName := regexp.MustCompile("`([a-z ]+)`")
	checked := 0
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		if !strings.Contains(m[2], "`table`") {
			continue // another table
		}
		var forms []string
		for _, f := range cmdName.FindAllStringSubmatch(m[2], -1) {
			forms = append(forms, f[1])
		}
		want := strings.Join(forms[:len(forms)-1], ", ") + " or " + forms[len(forms)-1]
		for _, c := range cmdName.FindAllStringSubmatch(m[1], -1) {
			name := c[1]
			argv := append(append(strings.Fields(name), args[name]...), "-o", "bogus")
			out, _ := exec.Command("experiment", argv...).CombinedOutput()
			if !strings.Contains(string(out), `--output "bogus": want `+want+"\n") {
				t.Errorf("experiment %s -o bogus: want the README's forms (%s), got:\n%s", name, want, out)
			}
			checked++
		}
	}
	if checked < 11 {
		t.Errorf("checked %d commands of the README's -o table, want 11", checked)
	}
	_, none, ok := strings.Cut(string(readme), "`assert` and `test` print a report")
	if !ok {
		t.Fatal("README no longer says which commands take no -o")
	}
	none, _, _ = strings.Cut(none, "\n\n")
	for _, name := range []string{"assert", "test", "cookie name", "cookie generate", "flags pull"} {
		if name != "assert" && name != "test" && !strings.Contains(none, "`"+name+"`") {
			t.Errorf("README's list of commands without -o misses %s", name)
		}
		argv := append(append(strings.Fields(name), args[name]...), "-o", "json")
		out, err := exec.Command("experiment", argv...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "unknown option -o") {
			t.Errorf("experiment %s -o json: want an unknown option, got %v:\n%s", name, err, out)
		}
	}
}
