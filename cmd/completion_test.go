package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/pkg/experiment"
)

const completionFlagsFile = "../testdata/flags.json"

// TestCompletionScripts regenerates completions/ in memory, as
// internal/gencompletions does, and fails when the committed files differ.
func TestCompletionScripts(t *testing.T) {
	scripts := map[string]string{
		"bash":       "experiment.bash",
		"zsh":        "_experiment",
		"fish":       "experiment.fish",
		"powershell": "experiment.ps1",
	}
	for shell, file := range scripts {
		t.Run(shell, func(t *testing.T) {
			ios, out, errOut := testStreams("")
			if code := Main(context.Background(), []string{"completion", shell}, ios); code != 0 {
				t.Fatalf("experiment completion %s: exit %d: %s", shell, code, errOut)
			}
			if out.Len() == 0 {
				t.Fatalf("experiment completion %s printed nothing", shell)
			}
			path := filepath.Join("..", "completions", file)
			committed, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("completions/%s: %v: run go generate ./cmd", file, err)
			}
			if !bytes.Equal(committed, out.Bytes()) {
				t.Fatalf("completions/ is stale: run go generate ./cmd (completions/%s differs from `experiment completion %s`)", file, shell)
			}
		})
	}
}

// TestCompletionCommandVisible: `completion` is listed in help, so users
// find it.
func TestCompletionCommandVisible(t *testing.T) {
	ios, out, errOut := testStreams("")
	if code := Main(context.Background(), []string{"--help"}, ios); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out.String(), "completion") {
		t.Fatalf("help does not list the completion command:\n%s", out)
	}
}

// clearCompletionEnv keeps the developer's environment out of the tests.
func clearCompletionEnv(t *testing.T) {
	for _, e := range []string{"EXPERIMENT_DEPLOYMENT_KEY", "EXPERIMENT_KEY", "EXPERIMENT_CACHE_DIR",
		"EXPERIMENT_API_KEY", "AMPLITUDE_API_KEY", "EXPERIMENT_CONFIG", "EXPERIMENT_PROFILE"} {
		t.Setenv(e, "")
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // os.UserConfigDir on Linux: no config file
	t.Setenv("XDG_CACHE_HOME", t.TempDir())  // os.UserCacheDir on Linux
	t.Setenv("HOME", t.TempDir())
}

// completionRoot is the real command tree with completions registered.
func completionRoot(t *testing.T) *cobra.Command {
	t.Helper()
	ios, _, _ := testStreams("")
	root := NewRootCmd(&Factory{IO: ios, Now: time.Now})
	registerCompletions(root)
	return root
}

// subcommand finds a command of the tree with its flags parsed from args.
func subcommand(t *testing.T, root *cobra.Command, path string, args ...string) *cobra.Command {
	t.Helper()
	c, _, err := root.Find(strings.Fields(path))
	if err != nil || c.Name() != strings.Fields(path)[len(strings.Fields(path))-1] {
		t.Fatalf("no command %q: %v", path, err)
	}
	if err := c.ParseFlags(args); err != nil {
		t.Fatalf("%s %v: %v", path, args, err)
	}
	return c
}

func TestCompleteFlagKeysFromFile(t *testing.T) {
	clearCompletionEnv(t)
	root := completionRoot(t)
	c := subcommand(t, root, "evaluate", "--flags", completionFlagsFile)

	got, dir := completeFlagKeys(c, nil, "new-")
	if want := []string{"new-editor\trelease v14"}; !slices.Equal(got, want) {
		t.Errorf("completeFlagKeys(new-) = %q, want %q", got, want)
	}
	if dir != cobra.ShellCompDirectiveNoFileComp {
		t.Errorf("directive = %v, want NoFileComp", dir)
	}

	all, _ := completeFlagKeys(c, nil, "")
	if len(all) != 18 {
		t.Fatalf("got %d keys, want the 18 of %s: %q", len(all), completionFlagsFile, all)
	}
	if !slices.IsSortedFunc(all, strings.Compare) {
		t.Errorf("keys not sorted: %q", all)
	}
	if !slices.Contains(all, "pricing-page-test\texperiment v31") {
		t.Errorf("no pricing-page-test with its type and version in %q", all)
	}

	rest, _ := completeFlagKeys(c, []string{"new-editor", "dark-mode"}, "")
	for _, k := range rest {
		if strings.HasPrefix(k, "new-editor\t") || strings.HasPrefix(k, "dark-mode\t") {
			t.Errorf("key already given offered again: %q", k)
		}
	}
	if len(rest) != 16 {
		t.Errorf("got %d keys after two given, want 16", len(rest))
	}
}

func TestCompleteFlagKeysNothingToRead(t *testing.T) {
	clearCompletionEnv(t)
	for name, args := range map[string][]string{
		"no file, no key": nil,
		"stdin":           {"--flags", "-"},
		"missing file":    {"--flags", filepath.Join(t.TempDir(), "nope.json")},
		"not flag JSON":   {"--flags", "../go.mod"},
		"key, no cache":   {"--deployment-key", "server-abc", "--cache-dir", t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			c := subcommand(t, completionRoot(t), "evaluate", args...)
			got, dir := completeFlagKeys(c, nil, "")
			if len(got) != 0 || dir != cobra.ShellCompDirectiveNoFileComp {
				t.Errorf("got %q, %v; want nothing, NoFileComp", got, dir)
			}
		})
	}
}

// writeFlagCacheFile writes a cache envelope as the local client does.
func writeFlagCacheFile(t *testing.T, cacheDir, key string) {
	t.Helper()
	flags, err := os.ReadFile(completionFlagsFile)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(map[string]any{"version": 1, "fetched_at": time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		"server_url": "https://api.lab.amplitude.com", "flags": json.RawMessage(flags)})
	if err != nil {
		t.Fatal(err)
	}
	path := experiment.FlagCachePath(cacheDir, key)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCompleteFlagKeysFromCache(t *testing.T) {
	const key = "server-TestCompleteFlagKeysFromCache"
	want := []string{"offline-mode\trelease v3", "onboarding-checklist\texperiment v12", "onboarding-exclusion-group\tmutual-exclusion-group v4"}

	t.Run("flags", func(t *testing.T) {
		clearCompletionEnv(t)
		dir := t.TempDir()
		writeFlagCacheFile(t, dir, key)
		c := subcommand(t, completionRoot(t), "evaluate", "--deployment-key", key, "--cache-dir", dir)
		if got, _ := completeFlagKeys(c, nil, "o"); !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("environment", func(t *testing.T) {
		clearCompletionEnv(t)
		dir := t.TempDir()
		writeFlagCacheFile(t, dir, key)
		t.Setenv("EXPERIMENT_KEY", key)
		t.Setenv("EXPERIMENT_CACHE_DIR", dir)
		c := subcommand(t, completionRoot(t), "evaluate")
		if got, _ := completeFlagKeys(c, nil, "o"); !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("user cache dir", func(t *testing.T) {
		clearCompletionEnv(t)
		base, err := os.UserCacheDir()
		if err != nil {
			t.Skip(err)
		}
		writeFlagCacheFile(t, filepath.Join(base, "experiment"), key)
		t.Setenv("EXPERIMENT_DEPLOYMENT_KEY", key)
		c := subcommand(t, completionRoot(t), "evaluate")
		if got, _ := completeFlagKeys(c, nil, "o"); !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	// Keys and cache directories set with config set, as commands read them.
	t.Run("config file", func(t *testing.T) {
		clearCompletionEnv(t)
		dir := t.TempDir()
		writeFlagCacheFile(t, dir, key)
		config := filepath.Join(t.TempDir(), "config.yaml")
		writeConfig := func(t *testing.T, text string) {
			if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		writeConfig(t, "deployment-key: "+key+"\ncache-dir: "+dir+"\n")
		c := subcommand(t, completionRoot(t), "evaluate", "--config", config)
		if got, _ := completeFlagKeys(c, nil, "o"); !slices.Equal(got, want) {
			t.Errorf("top level: got %q, want %q", got, want)
		}
		writeConfig(t, "deployment-key: "+key+"-other\nprofiles:\n  ci:\n    deployment-key: "+key+"\n    cache-dir: "+dir+"\n")
		t.Setenv("EXPERIMENT_CONFIG", config)
		c = subcommand(t, completionRoot(t), "evaluate", "--profile", "ci")
		if got, _ := completeFlagKeys(c, nil, "o"); !slices.Equal(got, want) {
			t.Errorf("profile: got %q, want %q", got, want)
		}
		c = subcommand(t, completionRoot(t), "evaluate", "--deployment-key", key+"-other", "--profile", "ci")
		if got, _ := completeFlagKeys(c, nil, ""); len(got) != 0 {
			t.Errorf("the option lost to the config file: %q", got)
		}
	})
	t.Run("other key", func(t *testing.T) {
		clearCompletionEnv(t)
		dir := t.TempDir()
		writeFlagCacheFile(t, dir, key)
		c := subcommand(t, completionRoot(t), "evaluate", "--deployment-key", key+"-other", "--cache-dir", dir)
		if got, _ := completeFlagKeys(c, nil, ""); len(got) != 0 {
			t.Errorf("another key's cache was read: %q", got)
		}
	})
}

func TestCompleteAssertions(t *testing.T) {
	clearCompletionEnv(t)
	c := subcommand(t, completionRoot(t), "evaluate", "--flags", completionFlagsFile)

	got, dir := completeAssertions(c, nil, "new-")
	if want := []string{"new-editor=\trelease v14"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if dir&cobra.ShellCompDirectiveNoSpace == 0 {
		t.Errorf("directive %v: want NoSpace after FLAG=", dir)
	}
	got, _ = completeAssertions(c, nil, "new-editor=")
	want := []string{"new-editor=off", "new-editor=on", "new-editor=absent\tthe flag yields no variant", "new-editor=value:\tcompare the variant's value"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, dir = completeAssertions(c, nil, "new-editor=val"); dir&cobra.ShellCompDirectiveNoSpace == 0 {
		t.Errorf("directive %v: want NoSpace after value:", dir)
	}
}

func TestUsageValues(t *testing.T) {
	for usage, want := range map[string][]string{
		"output format: table|json (default: table on a terminal, json otherwise)": {"table", "json"},
		"output format: table|json|jsonl|yaml (default: jsonl with --users)":       {"table", "json", "jsonl", "yaml"},
		"output format": nil,
	} {
		if got := usageValues(usage); !slices.Equal(got, want) {
			t.Errorf("usageValues(%q) = %q, want %q", usage, got, want)
		}
	}
}

// runComplete runs `experiment __complete ARGS…` on root and returns stdout.
func runComplete(t *testing.T, root *cobra.Command, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	root.SetArgs(append([]string{cobra.ShellCompRequestCmd}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("__complete %q: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// offers reports whether __complete output has value as a candidate,
// with or without a description.
func offers(out, value string) bool {
	for _, l := range strings.Split(out, "\n") {
		if l == value || strings.HasPrefix(l, value+"\t") {
			return true
		}
	}
	return false
}

// TestRegisterCompletions drives cobra's __complete, as the shell scripts
// do, over the real command tree with registerCompletions applied.
func TestRegisterCompletions(t *testing.T) {
	clearCompletionEnv(t)
	// Twice: a second call (or one after a command registered its own) is harmless.
	root := completionRoot(t)
	registerCompletions(root)

	for _, tc := range []struct {
		args      []string
		want      []string // values the output must offer (with or without a description)
		directive cobra.ShellCompDirective
	}{
		{[]string{"evaluate", "--server-zone", ""}, []string{"us", "eu"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"evaluate", "-o", ""}, []string{"table", "json", "jsonl", "yaml"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"version", "-o", ""}, []string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"evaluate", "--flags", ""}, []string{"json"}, cobra.ShellCompDirectiveFilterFileExt},
		{[]string{"evaluate", "--cohorts", ""}, nil, cobra.ShellCompDirectiveFilterDirs},
		{[]string{"evaluate", "--cache-dir", ""}, nil, cobra.ShellCompDirectiveFilterDirs},
		{[]string{"evaluate", "--deployment-key", ""}, nil, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"flags", "pull", "--out", ""}, nil, cobra.ShellCompDirectiveDefault},
	} {
		out := runComplete(t, root, tc.args...)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		for _, w := range tc.want {
			if !offers(out, w) {
				t.Errorf("__complete %q: no %q in\n%s", tc.args, w, out)
			}
		}
		if d := ":" + strconv.Itoa(int(tc.directive)); !slices.Contains(lines, d) {
			t.Errorf("__complete %q: want directive %s in\n%s", tc.args, d, out)
		}
	}

	// Every -o of every command completes the values its help names.
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if fl := c.Flags().Lookup("output"); fl != nil && c.Runnable() {
			values := usageValues(fl.Usage)
			if len(values) == 0 {
				t.Errorf("%s: --output usage %q names no values (want e.g. table|json)", c.CommandPath(), fl.Usage)
			}
			path := strings.Fields(c.CommandPath())[1:]
			out := runComplete(t, completionRoot(t), append(path, "--output", "")...)
			for _, v := range values {
				if !offers(out, v) {
					t.Errorf("%s -o: no %q in\n%s", c.CommandPath(), v, out)
				}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// TestCompleteFlagKeysViaCobra wires completeFlagKeys as evaluate's argument
// completion (if the tree does not already) and completes through cobra.
func TestCompleteFlagKeysViaCobra(t *testing.T) {
	clearCompletionEnv(t)
	root := completionRoot(t)
	c := subcommand(t, root, "evaluate")
	if c.ValidArgsFunction == nil {
		c.ValidArgsFunction = completeFlagKeys
	}
	out := runComplete(t, root, "evaluate", "--flags", completionFlagsFile, "new-")
	if !strings.Contains(out, "new-editor\trelease v14\n") || strings.Contains(out, "dark-mode") {
		t.Errorf("__complete evaluate --flags … new-:\n%s", out)
	}
	if !strings.HasSuffix(out, ":4\n") {
		t.Errorf("want directive :4 (NoFileComp):\n%s", out)
	}
}

func hasFlagCompletion(c *cobra.Command, name string) bool {
	_, ok := c.GetFlagCompletionFunc(name)
	return ok
}

// TestCompleteThroughMain is the end-to-end check through Main, once
// NewRootCmd wires the completions.
func TestCompleteThroughMain(t *testing.T) {
	clearCompletionEnv(t)
	ios, _, _ := testStreams("")
	root := NewRootCmd(&Factory{IO: ios, Now: time.Now})
	if c, _, _ := root.Find([]string{"evaluate"}); c == nil || c.ValidArgsFunction == nil {
		t.Skip("evaluate has no ValidArgsFunction yet: wire completeFlagKeys in newEvaluateCmd")
	}
	if v, _, _ := root.Find([]string{"version"}); v == nil || !hasFlagCompletion(v, "output") {
		t.Skip("registerCompletions is not called by NewRootCmd yet")
	}
	path, err := filepath.Abs(completionFlagsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "evaluate", "--flags", path, "new-"}, "new-editor\trelease v14"},
		{[]string{"__complete", "explain", "--flags", path, "dark"}, "dark-mode\trelease v7"},
		{[]string{"__complete", "evaluate", "--server-zone", ""}, "eu"},
		{[]string{"__complete", "evaluate", "-o", ""}, "jsonl"},
		{[]string{"__complete", "version", "-o", ""}, "json"},
	} {
		ios, out, errOut := testStreams("")
		if code := Main(context.Background(), tc.args, ios); code != 0 {
			t.Fatalf("%q: exit %d: %s", tc.args, code, errOut)
		}
		if !offers(out.String(), tc.want) {
			t.Errorf("%q: no %q in\n%s", tc.args, tc.want, out)
		}
	}
}

// TestCompleteUserArg: --user completes @FILE (JSON files and directories,
// with the @ the bare name would lack) and - for stdin, in every command
// that takes a user.
func TestCompleteUserArg(t *testing.T) {
	clearCompletionEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	for _, name := range []string{"user.json", "users.jsonl", "notes.txt", "sub/alice.json"} {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args      []string
		want, not []string
		directive cobra.ShellCompDirective
	}{
		{[]string{"evaluate", "--user", ""}, []string{"-", "@user.json", "@sub/"}, []string{"@users.jsonl", "@notes.txt", "user.json"},
			cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace},
		{[]string{"explain", "--user", "@u"}, []string{"@user.json"}, []string{"-", "@sub/"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"fetch", "--user", "@sub/"}, []string{"@sub/alice.json"}, nil, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"evaluate", "--user", `{"user_id"`}, nil, []string{"@user.json"}, cobra.ShellCompDirectiveNoFileComp},
	} {
		out := runComplete(t, completionRoot(t), tc.args...)
		for _, w := range tc.want {
			if !offers(out, w) {
				t.Errorf("__complete %q: no %q in\n%s", tc.args, w, out)
			}
		}
		for _, n := range tc.not {
			if offers(out, n) {
				t.Errorf("__complete %q: %q offered in\n%s", tc.args, n, out)
			}
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if d := ":" + strconv.Itoa(int(tc.directive)); lines[len(lines)-1] != d {
			t.Errorf("__complete %q: want directive %s in\n%s", tc.args, d, out)
		}
	}
}

// TestCompleteFindUserVariant: find-user's second argument is one of the
// flag's variants, not another flag key, and nothing follows it.
func TestCompleteFindUserVariant(t *testing.T) {
	clearCompletionEnv(t)
	path, err := filepath.Abs(completionFlagsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args      []string
		want, not string
	}{
		{[]string{"live-"}, "live-cursors\texperiment v6", ""},
		{[]string{"live-cursors", ""}, "treatment", "dark-mode"},
		{[]string{"live-cursors", "c"}, "control", "treatment"},
		{[]string{"live-cursors", "control", ""}, "", "dark-mode"},
	} {
		args := append([]string{"__complete", "find-user", "--flags", path}, tc.args...)
		ios, out, errOut := testStreams("")
		if code := Main(context.Background(), args, ios); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		if tc.want != "" && !offers(out.String(), tc.want) {
			t.Errorf("%q: no %q in\n%s", args, tc.want, out)
		}
		if tc.not != "" && strings.Contains(out.String(), tc.not) {
			t.Errorf("%q: offers %q:\n%s", args, tc.not, out)
		}
	}
}
