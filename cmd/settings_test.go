package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/experiment"
)

// notSettings are the options named like a setting that are not one, and
// why: each is flag-only by design.
var notSettings = map[string]string{
	"experiment cookie parse --api-key": "chooses among a header's cookies; a configured key must not refuse another site's",
	"experiment version --output":       "version runs whatever the settings are, and is for people first",
}

// settingsRun is one run of a command through the root's resolution of
// settings, with env as the whole environment and config as the config
// file; the command's run is replaced, so nothing else happens.
type settingsRun struct {
	env    map[string]string
	config string // YAML; "" for no file
}

// resolve runs path with args and returns the command, its settings
// resolved into its options.
func (r settingsRun) resolve(t *testing.T, path []string, args ...string) (*cobra.Command, error) {
	t.Helper()
	configPath := filepath.Join(t.TempDir(), "config.yaml")
	if r.config != "" {
		require.NoError(t, os.WriteFile(configPath, []byte(r.config), 0o600))
	}
	ios := &cli.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{},
		Getenv: func(k string) string {
			if k == "EXPERIMENT_CONFIG" {
				return configPath
			}
			return r.env[k]
		}}
	root := NewRootCmd(&Factory{IO: ios, Now: time.Now})
	target, _, err := root.Find(path)
	require.NoError(t, err)
	target.Args = cobra.ArbitraryArgs
	target.RunE = func(*cobra.Command, []string) error { return nil }
	root.SetArgs(append(slices.Clone(path), args...))
	return target, root.ExecuteContext(context.Background())
}

// commandsWithSettings lists every command of the tree that has an option
// bound to a setting, by its path under the root.
func commandsWithSettings(t *testing.T) [][]string {
	t.Helper()
	ios, _, _ := testStreams("")
	var paths [][]string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		has := false
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) { has = has || settingOf(fl) != nil })
		if has {
			paths = append(paths, strings.Fields(c.CommandPath())[1:])
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCmd(&Factory{IO: ios, Now: time.Now}))
	require.NotEmpty(t, paths)
	return paths
}

// settingOf is the setting an option is bound to, or nil.
func settingOf(fl *pflag.Flag) *settingDef {
	switch v := fl.Value.(type) {
	case *settingFlag:
		return v.def
	case *outputFlag:
		if !v.unconfigured {
			def, _ := lookupSetting("output")
			return def
		}
	}
	return nil
}

// TestSettingsHelpNamesTheirVariables: every option bound to a setting
// shows the table's variables in --help, and every option named like a
// setting is bound to it (but for notSettings).
func TestSettingsHelpNamesTheirVariables(t *testing.T) {
	ios, _, _ := testStreams("")
	var walk func(c *cobra.Command)
	checked := 0
	walk = func(c *cobra.Command) {
		help := c.UsageString()
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
			def := settingOf(fl)
			_, named := lookupSetting(fl.Name)
			name := c.CommandPath() + " --" + fl.Name
			switch {
			case def == nil && named && notSettings[name] == "":
				t.Errorf("%s: named like a setting, but not bound to it (bindSetting)", name)
			case def == nil:
				return
			}
			line := helpLine(help, fl)
			for _, env := range def.envs {
				assert.Contains(t, line, env, "%s: help line of the option", name)
			}
			checked++
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCmd(&Factory{IO: ios, Now: time.Now}))
	assert.Greater(t, checked, 40)
}

// helpLine is the line of help that shows the option fl.
func helpLine(help string, fl *pflag.Flag) string {
	for _, line := range strings.Split(help, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "-") && strings.Contains(line, "--"+fl.Name+" ") {
			return line
		}
	}
	return ""
}

// settingValues are, for each setting but output, a value that wins and
// one that loses, each valid, and what the winner is once resolved.
var settingValues = map[string]struct{ win, lose, resolved string }{
	"deployment-key":    {"server-winWinWin", "server-loseLose", "server-winWinWin"},
	"api-key":           {"api-win", "api-lose", "api-win"},
	"secret-key":        {"secret-win", "secret-lose", "secret-win"},
	"server-zone":       {"eu", "us", "EU"},
	"server-url":        {"http://win.example", "http://lose.example", "http://win.example"},
	"stream-server-url": {"http://win.example/stream", "http://lose.example", "http://win.example/stream"},
	"cohort-server-url": {"http://win.example/cohort", "http://lose.example", "http://win.example/cohort"},
	"events-server-url": {"http://win.example/events", "http://lose.example", "http://win.example/events"},
	"cache-dir":         {"/cache/win", "/cache/lose", "/cache/win"},
	"listen":            {"127.0.0.1:1111", "127.0.0.1:2222", "127.0.0.1:1111"},
	"ops-listen":        {"127.0.0.1:3333", "127.0.0.1:4444", "127.0.0.1:3333"},
	"redis":             {"redis://win.example:6379", "redis://lose.example", "redis://win.example:6379"},
}

// TestSettingsResolveIntoOptions sets each setting of each command by its
// option, each of its variables, the config file and the profile in turn,
// over the lower sources, and checks what the option holds when the
// command runs: the field of the options struct it is bound to.
func TestSettingsResolveIntoOptions(t *testing.T) {
	for _, path := range commandsWithSettings(t) {
		ios, _, _ := testStreams("")
		root := NewRootCmd(&Factory{IO: ios, Now: time.Now})
		c, _, err := root.Find(path)
		require.NoError(t, err)
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
			def := settingOf(fl)
			if def == nil {
				return
			}
			t.Run(strings.Join(path, " ")+" --"+fl.Name, func(t *testing.T) {
				if def.name == "output" {
					testOutputSources(t, path, fl.Value.(*outputFlag).forms)
					return
				}
				testSettingSources(t, path, def)
			})
		})
	}
}

func testSettingSources(t *testing.T, path []string, def *settingDef) {
	v, ok := settingValues[def.name]
	require.True(t, ok, "no test values for %s", def.name)
	lose := def.name + ": " + v.lose + "\n"
	profile := "profiles:\n  p:\n    " + def.name + ": " + v.win + "\n"
	cases := map[string]struct {
		run  settingsRun
		args []string
	}{
		"flag":           {settingsRun{env: map[string]string{def.envs[0]: v.lose}, config: lose}, []string{"--" + def.name, v.win}},
		"config":         {settingsRun{config: def.name + ": " + v.win + "\n"}, nil},
		"profile":        {settingsRun{env: map[string]string{"EXPERIMENT_PROFILE": "p"}, config: lose + profile}, nil},
		"profile option": {settingsRun{config: lose + profile}, []string{"--profile", "p"}},
	}
	for i, env := range def.envs {
		// Each variable over the config file, and over the variables after it.
		vars := map[string]string{env: v.win}
		for _, later := range def.envs[i+1:] {
			vars[later] = v.lose
		}
		cases["env "+env] = struct {
			run  settingsRun
			args []string
		}{settingsRun{env: vars, config: lose}, nil}
	}
	for name, tc := range cases {
		c, err := tc.run.resolve(t, path, tc.args...)
		require.NoError(t, err, name)
		assert.Equal(t, v.resolved, c.Flags().Lookup(def.name).Value.String(), name)
	}
	c, err := settingsRun{}.resolve(t, path)
	require.NoError(t, err)
	want := ""
	switch def.name {
	case "server-zone":
		want = string(experiment.ServerZoneUS)
	case "cache-dir":
		want, _ = userCacheDir()
	case "listen":
		want = "127.0.0.1:3546"
	}
	assert.Equal(t, want, c.Flags().Lookup(def.name).Value.String(), "default")
}

// testOutputSources: -o, EXPERIMENT_OUTPUT and the config file each pick
// a form the command has, in that order.
func testOutputSources(t *testing.T, path []string, forms []string) {
	win, lose := "yaml", "json"
	if !slices.Contains(forms, win) {
		win, lose = "table", "jsonl" // watch
	}
	for name, tc := range map[string]struct {
		run  settingsRun
		args []string
	}{
		"flag":    {settingsRun{env: map[string]string{"EXPERIMENT_OUTPUT": lose}, config: "output: " + lose + "\n"}, []string{"-o", win}},
		"env":     {settingsRun{env: map[string]string{"EXPERIMENT_OUTPUT": win}, config: "output: " + lose + "\n"}, nil},
		"config":  {settingsRun{config: "output: " + win + "\n"}, nil},
		"profile": {settingsRun{config: "output: " + lose + "\nprofiles:\n  p:\n    output: " + win + "\n"}, []string{"--profile", "p"}},
	} {
		c, err := tc.run.resolve(t, path, tc.args...)
		require.NoError(t, err, name)
		assert.Equal(t, win, c.Flags().Lookup("output").Value.String(), name)
	}
}

// TestSettingsReachTheRun: the fields the settings are bound to are those
// that commands read, seen in the options their run functions get.
func TestSettingsReachTheRun(t *testing.T) {
	ios, _, errOut := testStreams("")
	config := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(config, []byte("server-url: http://config.example\napi-key: api-config\n"), 0o600))
	env := map[string]string{"EXPERIMENT_CONFIG": config, "EXPERIMENT_KEY": "server-fromTheEnv", "EXPERIMENT_SERVER_ZONE": "eu",
		"AMPLITUDE_SECRET_KEY": "secret-env", "EXPERIMENT_OUTPUT": "yaml", "EXPERIMENT_CACHE_DIR": "/cache/env"}
	ios.Getenv = func(k string) string { return env[k] }
	f := &Factory{IO: ios, Now: time.Now}
	root := NewRootCmd(f)
	replace := func(c *cobra.Command) {
		old, _, err := root.Find([]string{c.Name()})
		require.NoError(t, err)
		root.RemoveCommand(old)
		root.AddCommand(c)
	}
	var fetched *fetchOptions
	var evaluated *evaluateOptions
	replace(newFetchCmd(f, func(_ context.Context, o *fetchOptions) error { fetched = o; return nil }))
	replace(newEvaluateCmd(f, func(_ context.Context, o *evaluateOptions) error { evaluated = o; return nil }))

	root.SetArgs([]string{"fetch", "--user-id", "u", "--server-zone", "us"})
	require.NoError(t, root.ExecuteContext(t.Context()), errOut.String())
	assert.Equal(t, "server-fromTheEnv", fetched.DeploymentKey)
	assert.Equal(t, experiment.ServerZoneUS, fetched.ServerZone)
	assert.Equal(t, "http://config.example", fetched.ServerURL)
	assert.Equal(t, "yaml", fetched.Output)

	root.SetArgs([]string{"evaluate", "--flags", "f.json", "--events-server-url", "http://flag.example"})
	require.NoError(t, root.ExecuteContext(t.Context()), errOut.String())
	server := evaluated.Source.server
	assert.Equal(t, "server-fromTheEnv", server.deploymentKey)
	assert.Equal(t, experiment.ServerZoneEU, server.serverZone)
	assert.Equal(t, "http://config.example", server.serverURL)
	assert.Equal(t, "api-config", server.apiKey)
	assert.Equal(t, "secret-env", server.secretKey)
	assert.Equal(t, "/cache/env", server.cacheDir)
	assert.Equal(t, "http://flag.example", evaluated.Tracking.eventsServerURL)
	assert.Equal(t, "yaml", evaluated.Output)
}

// TestOutputDefaults: the form a command writes when nothing asks for one.
func TestOutputDefaults(t *testing.T) {
	for _, tc := range []struct {
		forms            []string
		kind             outputKind
		many, stats, tty bool
		configured, want string
	}{
		{forms: outputForms, want: "json"},
		{forms: outputForms, tty: true, want: "table"},
		{forms: []string{"table", "jsonl"}, want: "jsonl"},
		{forms: []string{"table", "json", "yaml"}, kind: reportOutput, want: "table"},
		{forms: []string{"table", "json", "yaml"}, configured: "jsonl", want: "json"}, // a form the command lacks is ignored
		{forms: outputForms, configured: "yaml", want: "yaml"},
		{forms: outputForms, many: true, want: "jsonl"},
		{forms: outputForms, many: true, tty: true, want: "jsonl"},
		{forms: outputForms, many: true, stats: true, tty: true, want: "table"},
		{forms: outputForms, many: true, stats: true, tty: true, configured: "json", want: "json"},
		{forms: outputForms, many: true, configured: "yaml", want: "jsonl"},
	} {
		var form string
		o := &outputFlag{form: &form, forms: tc.forms, kind: tc.kind}
		if tc.many {
			o.batch = func() (bool, bool) { return true, tc.stats }
		}
		o.resolve(tc.configured, tc.tty)
		assert.Equal(t, tc.want, form, "%+v", tc)
	}
}
