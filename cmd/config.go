package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/flagkit/experiment/internal/atomicfile"
	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/experiment"
)

// configFile is the YAML config: settings at the top level and in named
// profiles.
type configFile struct {
	Settings map[string]string            `yaml:",inline"`
	Profiles map[string]map[string]string `yaml:"profiles,omitempty"`
}

// configPath is --config, EXPERIMENT_CONFIG, or the user config dir.
func (f *Factory) configPath() string { return configPathFor(f.ConfigPath, f.IO.Env) }

// configPathFor is configPath from its parts, for shell completion, which
// runs before any command and has a --config flag but no Factory.
func configPathFor(flag string, getenv func(string) string) string {
	if flag != "" {
		return flag
	}
	if p := getenv("EXPERIMENT_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "experiment", "config.yaml")
}

func (f *Factory) profile() string {
	if f.Profile != "" {
		return f.Profile
	}
	return f.IO.Env("EXPERIMENT_PROFILE")
}

// profileSource names the profile in use and where it was given, for an
// error.
func (f *Factory) profileSource() string {
	if f.Profile != "" {
		return fmt.Sprintf("--profile %q", shownValue(f.Profile))
	}
	return fmt.Sprintf("EXPERIMENT_PROFILE=%q", shownValue(f.profile()))
}

// config reads the config file once; a missing file is an empty config.
func (f *Factory) config() (*configFile, error) {
	if f.loadedConfig != nil || f.configErr != nil {
		return f.loadedConfig, f.configErr
	}
	f.loadedConfig, f.configErr = readConfig(f.configPath())
	if f.configErr == nil {
		if unknown := f.loadedConfig.unknownKeys(); len(unknown) > 0 {
			fmt.Fprintf(f.IO.ErrOut, "experiment: warning: config %s: ignoring unknown settings %s\n", f.configPath(), strings.Join(unknown, ", "))
		}
	}
	if f.configErr == nil && f.profile() != "" {
		if _, ok := f.loadedConfig.Profiles[f.profile()]; !ok {
			f.configErr = usageError("%s: no such profile in %s", f.profileSource(), f.configPath())
		}
	}
	return f.loadedConfig, f.configErr
}

func readConfig(path string) (*configFile, error) {
	cfg := &configFile{Settings: map[string]string{}, Profiles: map[string]map[string]string{}}
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, ioError(fmt.Errorf("config %s: %w", path, err))
	}
	if err := yaml.Unmarshal(data, cfg); err != nil {
		return nil, inputError(fmt.Errorf("config %s: %w", path, yamlError(err)))
	}
	if cfg.Settings == nil {
		cfg.Settings = map[string]string{}
	}
	if cfg.Profiles == nil { // "profiles: ~"; config set --profile adds to it
		cfg.Profiles = map[string]map[string]string{}
	}
	return cfg, nil
}

// unknownKeys lists the keys of cfg that are no setting of this version, as
// "key" or "profile.key": a newer version's file is read, not refused. A
// key that does not look like a setting's name (a key pasted on the wrong
// side of the colon, say) is counted, never shown.
func (cfg *configFile) unknownKeys() []string {
	var unknown []string
	hidden := 0
	add := func(prefix, key string) {
		switch _, known := lookupSetting(key); {
		case known:
		case settingNameShape.MatchString(key):
			unknown = append(unknown, prefix+key)
		default:
			hidden++
		}
	}
	for key := range cfg.Settings {
		add("", key)
	}
	for p, settings := range cfg.Profiles {
		for key := range settings {
			add("profiles."+redactedProfile(p)+".", key)
		}
	}
	slices.Sort(unknown)
	if hidden > 0 {
		unknown = append(unknown, fmt.Sprintf("%d key(s) not shown", hidden))
	}
	return unknown
}

// settingNameShape is how the names of settings look: lower-case words
// joined by hyphens. Keys and secrets have digits or capitals.
var settingNameShape = regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)

func redactedProfile(p string) string {
	if settingNameShape.MatchString(p) || len(p) <= 16 && !strings.ContainsAny(p, "0123456789") {
		return p
	}
	return "…"
}

func newConfigCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Show effective settings, or write one to the config file",
		Long: "Settings come from flags, then environment variables, then the config file (a --profile\n" +
			"section over the top level), then defaults. The file is YAML:\n\n" +
			"  server-zone: eu\n  deployment-key: server-...\n  profiles:\n    staging:\n      deployment-key: server-...",
	}
	c.AddCommand(newConfigListCmd(f), newConfigGetCmd(f), newConfigSetCmd(f), newConfigUnsetCmd(f), newConfigPathCmd(f))
	return c
}

type settingRow struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func newConfigListCmd(f *Factory) *cobra.Command {
	var output string
	var profiles bool
	c := &cobra.Command{
		Use:   "list",
		Short: "Each effective setting and where it came from (keys redacted), or the profiles",
		Long: "Each effective setting, where it came from, and keys redacted.\n" +
			"With --profiles: the profiles of the config file, each with the settings it sets.",
		Args: argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if profiles {
				return listProfiles(f, output)
			}
			rows, err := settingRows(f, false)
			if err != nil {
				return err
			}
			if output != "table" {
				return writeOutput(writeData(f.IO.Out, output, map[string]any{"config": f.configPath(), "profile": f.profile(), "settings": rows}))
			}
			t := f.IO.OutTable("KEY", "VALUE", "SOURCE")
			for _, r := range rows {
				t.AddRow(r.Key, r.Value, r.Source)
			}
			return writeOutput(t.Render(f.IO.Out))
		},
	}
	registerOutput(c.Flags(), &output, dataOutput, "table", "json", "yaml")
	c.Flags().BoolVar(&profiles, "profiles", false, "list the config file's profiles instead of the settings")
	return c
}

// settingRows are the settings as config list and get show them: each
// setting's effective value (a default spelled out, a key redacted unless
// reveal) and where it came from.
func settingRows(f *Factory, reveal bool) ([]settingRow, error) {
	all, err := f.resolveAll()
	if err != nil {
		return nil, err
	}
	var zone experiment.ServerZone
	for _, r := range all {
		if r.def.name == "server-zone" {
			zone, _ = experiment.ParseServerZone(r.value) // checked
		}
	}
	rows := make([]settingRow, 0, len(all))
	for _, r := range all {
		rows = append(rows, settingRow{r.def.name, r.shown(zone, f.IO.OutTTY, reveal), r.source})
	}
	return rows, nil
}

type profileRow struct {
	Name     string   `json:"name"`
	Active   bool     `json:"active"`
	Settings []string `json:"settings"`
}

// listProfiles is config list --profiles: each profile, whether it is the
// one in use, and the names (never the values) of what it sets.
func listProfiles(f *Factory, output string) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	rows := []profileRow{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Profiles)) {
		set := slices.Sorted(maps.Keys(cfg.Profiles[name]))
		if set == nil {
			set = []string{}
		}
		// A profile named by a pasted key is shown as keys are.
		rows = append(rows, profileRow{shownValue(name), name == f.profile(), set})
	}
	if output != "table" {
		return writeOutput(writeData(f.IO.Out, output, map[string]any{"config": f.configPath(), "profiles": rows}))
	}
	if len(rows) == 0 {
		fmt.Fprintf(f.IO.ErrOut, "no profiles in %s; add one with: experiment --profile NAME config set KEY VALUE\n", f.configPath())
		return nil
	}
	t := f.IO.OutTable("PROFILE", "ACTIVE", "SETTINGS")
	for _, r := range rows {
		active := ""
		if r.Active {
			active = "yes"
		}
		t.AddRow(r.Name, active, strings.Join(r.Settings, ", "))
	}
	return writeOutput(t.Render(f.IO.Out))
}

func newConfigGetCmd(f *Factory) *cobra.Command {
	var reveal bool
	c := &cobra.Command{
		Use:   "get KEY",
		Short: "Print one setting's effective value (keys redacted unless --reveal)",
		Long: "Print the value a command would use for a setting (environment, then the config file with\n" +
			"its --profile section, then the default), and nothing else: for scripts.\n" +
			"Keys are printed redacted, as config list shows them; --reveal prints a key in full.\n" +
			"A setting with no value prints nothing.\nKeys: " + settingNamesList(),
		Args:              needArgs(1, 1, "a setting name"),
		ValidArgsFunction: completeSettingNames,
		RunE: func(c *cobra.Command, args []string) error {
			def, ok := lookupSetting(args[0])
			if !ok {
				return usageError("unknown setting %q: want one of %s", shownValue(args[0]), settingNamesList())
			}
			rows, err := settingRows(f, reveal)
			if err != nil {
				return err
			}
			v := rows[slices.IndexFunc(rows, func(r settingRow) bool { return r.Key == def.name })].Value
			if v == "" {
				fmt.Fprintf(f.IO.ErrOut, "%s is not set\n", def.name)
				return nil
			}
			_, err = fmt.Fprintln(f.IO.Out, v)
			return writeOutput(err)
		},
	}
	c.Flags().BoolVar(&reveal, "reveal", false, "print a key in full (it is redacted otherwise)")
	return c
}

func newConfigPathCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "path",
		Short: "Print the config file's path (--config, EXPERIMENT_CONFIG, or the default)",
		Long: "Print the path of the config file that settings are read from and written to, whether\n" +
			"or not it exists yet.",
		Args: argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			path := f.configPath()
			if path == "" {
				return usageError("no config directory: pass --config FILE")
			}
			_, err := fmt.Fprintln(f.IO.Out, path)
			return writeOutput(err)
		},
	}
}

func newConfigSetCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Write one setting to the config file (mode 0600)",
		Long: "Write a setting to the config file, in the --profile section when one is given.\n" +
			"VALUE - reads the value from stdin (one line; a trailing newline is dropped), so that a\n" +
			"key never lands in shell history:\n\n" +
			"  experiment config set deployment-key - < key.txt\n\n" +
			"On a terminal, the value is read without echo.\nKeys: " + settingNamesList(),
		Args:              needArgs(2, 2, "a setting name and its value"),
		ValidArgsFunction: completeSettingNames,
		RunE: func(c *cobra.Command, args []string) error {
			value := args[1]
			if value == "-" {
				if _, ok := lookupSetting(args[0]); !ok {
					return usageError("unknown setting %q: want one of %s", shownValue(args[0]), settingNamesList())
				}
				var err error
				if value, err = readSettingValue(f.IO, args[0]); err != nil {
					return err
				}
			}
			return runConfigSet(c.Context(), f, args[0], value)
		},
	}
	return c
}

// maxSettingValue bounds what config set KEY - reads: a setting is one
// line, and a file piped by mistake is refused rather than stored.
const maxSettingValue = 4096

// readSettingValue reads config set's value from stdin: one line, less one
// trailing newline (echo and a file's last line end in one). On a terminal
// it is read without echo, as a password is: a key typed there must not
// stay on the screen either.
func readSettingValue(ios *cli.IOStreams, key string) (string, error) {
	var data []byte
	if ios.InTTY && ios.InFile != nil {
		fmt.Fprintf(ios.ErrOut, "%s: ", key)
		line, err := term.ReadPassword(int(ios.InFile.Fd()))
		fmt.Fprintln(ios.ErrOut)
		if err != nil {
			return "", ioError(fmt.Errorf("reading %s from the terminal: %w", key, err))
		}
		data = line
	} else {
		var err error
		data, err = io.ReadAll(io.LimitReader(ios.In, maxSettingValue+1))
		if err != nil {
			return "", ioError(fmt.Errorf("reading %s from stdin: %w", key, err))
		}
	}
	if len(data) > maxSettingValue {
		return "", usageError("%s from stdin: more than %d bytes; a setting is one line", key, maxSettingValue)
	}
	value := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	switch {
	case value == "":
		return "", withHint(usageError("%s from stdin: empty value", key), "to remove a setting: experiment config unset "+key)
	case strings.ContainsAny(value, "\r\n"):
		return "", usageError("%s from stdin: more than one line; a setting is one line", key)
	}
	return value, nil
}

func newConfigUnsetCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:               "unset KEY",
		Short:             "Remove one setting from the config file",
		Long:              "Remove a setting from the config file, from the --profile section when one is given.\nKeys: " + settingNamesList(),
		Args:              needArgs(1, 1, "a setting name"),
		ValidArgsFunction: completeSettingNames,
		RunE: func(c *cobra.Command, args []string) error {
			return runConfigUnset(c.Context(), f, args[0])
		},
	}
}

// completeSettingNames completes the KEY of config set and unset.
func completeSettingNames(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, d := range settingDefs {
		names = append(names, d.name+"\t"+d.help)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func settingNamesList() string {
	var names []string
	for _, d := range settingDefs {
		names = append(names, d.name)
	}
	return strings.Join(names, ", ")
}

func runConfigSet(ctx context.Context, f *Factory, key, value string) error {
	def, ok := lookupSetting(key)
	if !ok {
		return usageError("unknown setting %q: want one of %s", shownValue(key), settingNamesList())
	}
	if value == "" {
		return withHint(usageError("%s: empty value", key), "to remove a setting: experiment config unset "+key)
	}
	if def.check != nil {
		if err := def.check(value); err != nil {
			return usageError("%s %q: %v", key, shownSetting(def, value), err)
		}
	}
	return updateConfig(ctx, f, key, func(settings map[string]string) bool { settings[key] = value; return true }, "wrote")
}

func runConfigUnset(ctx context.Context, f *Factory, key string) error {
	if _, ok := lookupSetting(key); !ok {
		return usageError("unknown setting %q: want one of %s", shownValue(key), settingNamesList())
	}
	return updateConfig(ctx, f, key, func(settings map[string]string) bool {
		_, had := settings[key]
		delete(settings, key)
		return had
	}, "removed")
}

// updateConfig applies change to the config file's top level, or to the
// --profile section, and writes the file atomically with mode 0600 when
// change reports that it changed something. The file is locked from the
// read to the write: another process's change in between would be lost.
func updateConfig(ctx context.Context, f *Factory, key string, change func(map[string]string) bool, did string) error {
	path := f.configPath()
	if path == "" {
		return usageError("no config directory: pass --config FILE")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return ioError(fmt.Errorf("config %s: %w", path, err))
	}
	unlock, err := lockConfig(ctx, path)
	if err != nil {
		return err
	}
	defer unlock()
	cfg, err := readConfig(path)
	if err != nil {
		return err
	}
	settings := cfg.Settings
	if p := f.profile(); p != "" {
		if cfg.Profiles[p] == nil {
			cfg.Profiles[p] = map[string]string{}
		}
		settings = cfg.Profiles[p]
	}
	if !change(settings) {
		fmt.Fprintf(f.IO.ErrOut, "%s was not set in %s\n", key, path)
		return nil
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return ioError(err)
	}
	fmt.Fprintf(f.IO.ErrOut, "%s %s in %s\n", did, key, path)
	return nil
}
