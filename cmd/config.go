package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/flagkit/experiment/internal/atomicfile"
	"github.com/flagkit/experiment/internal/redact"
	"github.com/flagkit/experiment/pkg/experiment"
)

// A setting is named like its flag; its value comes from the flag, else its
// environment variables, else the config file (the --profile section over
// the top level), else the flag's default. CLI.md's precedence, in one place.
type settingDef struct {
	name   string
	envs   []string
	secret bool
	help   string
	// check rejects a value that could never work, wherever it comes from,
	// so that the error names that place and not a failure much later.
	check func(string) error
}

var settingDefs = []settingDef{
	{"deployment-key", []string{"EXPERIMENT_DEPLOYMENT_KEY", "EXPERIMENT_KEY"}, true, "server deployment key", nil},
	{"api-key", []string{"EXPERIMENT_API_KEY", "AMPLITUDE_API_KEY"}, true, "analytics API key", nil},
	{"secret-key", []string{"EXPERIMENT_SECRET_KEY", "AMPLITUDE_SECRET_KEY"}, true, "analytics secret key", nil},
	{"server-zone", []string{"EXPERIMENT_SERVER_ZONE"}, false, "us or eu", checkZone},
	{"server-url", []string{"EXPERIMENT_SERVER_URL"}, false, "evaluation and flag config server", checkServerURL},
	{"stream-server-url", []string{"EXPERIMENT_STREAM_SERVER_URL"}, false, "flag stream server", checkServerURL},
	{"cohort-server-url", []string{"EXPERIMENT_COHORT_SERVER_URL"}, false, "cohort download server", checkServerURL},
	{"events-server-url", []string{"EXPERIMENT_EVENTS_SERVER_URL"}, false, "analytics events server", checkServerURL},
	{"cache-dir", []string{"EXPERIMENT_CACHE_DIR"}, false, "flag and cohort cache", nil},
	{"output", []string{"EXPERIMENT_OUTPUT"}, false, "default output form", checkOutputForm},
}

func checkZone(v string) error {
	if _, err := experiment.ParseServerZone(v); err != nil {
		return errors.New("want us or eu")
	}
	return nil
}

// checkServerURL wants what every client accepts: an absolute http(s) URL
// with a host and no credentials (keys travel in headers, never in URLs).
func checkServerURL(v string) error {
	u, err := url.Parse(v)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("want an absolute http or https URL, such as https://api.lab.amplitude.com")
	case u.User != nil:
		return errors.New("a URL must not carry credentials")
	}
	return nil
}

// shownValue is a value a user gave, as an error may echo it: the
// password of a URL hidden, and anything that looks like a key (one pasted
// into the wrong setting) shown as keys are, a prefix and a fingerprint.
func shownValue(v string) string { return redact.Text(redactURLCredentials(v)) }

// redactURLCredentials hides the password of a URL-shaped value.
func redactURLCredentials(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	return v
}

func checkOutputForm(v string) error {
	if !slices.Contains(outputForms, v) {
		return fmt.Errorf("want one of %s", strings.Join(outputForms, ", "))
	}
	return nil
}

// outputForms are every -o form some command has.
var outputForms = []string{"table", "json", "jsonl", "yaml"}

func lookupSetting(name string) (settingDef, bool) {
	i := slices.IndexFunc(settingDefs, func(d settingDef) bool { return d.name == name })
	if i < 0 {
		return settingDef{}, false
	}
	return settingDefs[i], true
}

// configFile is the YAML config: settings at the top level and in named
// profiles.
type configFile struct {
	Settings map[string]string            `yaml:",inline"`
	Profiles map[string]map[string]string `yaml:"profiles,omitempty"`
}

// configPath is --config, EXPERIMENT_CONFIG, or the user config dir.
func (f *Factory) configPath() string {
	if f.ConfigPath != "" {
		return f.ConfigPath
	}
	if p := f.IO.env("EXPERIMENT_CONFIG"); p != "" {
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
	return f.IO.env("EXPERIMENT_PROFILE")
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

// setting resolves one setting for a command whose flags are fs (which may
// lack the flag): the value and where it came from.
func (f *Factory) setting(fs *pflag.FlagSet, name string) (value, source string, err error) {
	def, _ := lookupSetting(name)
	// fail says where a rejected value came from; the value is shown with
	// any credentials of a URL redacted.
	checked := func(v, source string, fail func(shown string, err error) error) (string, string, error) {
		if def.check != nil && v != "" {
			if err := def.check(v); err != nil {
				return "", "", fail(shownValue(v), err)
			}
		}
		return v, source, nil
	}
	if fs != nil {
		if fl := fs.Lookup(name); fl != nil && fl.Changed {
			return checked(fl.Value.String(), "flag --"+name, func(shown string, err error) error {
				return usageError("--%s %q: %v", name, shown, err)
			})
		}
	}
	for _, e := range def.envs {
		if v := f.IO.env(e); v != "" {
			return checked(v, "env "+e, func(shown string, err error) error {
				return usageError("%s=%q: %v", e, shown, err)
			})
		}
	}
	cfg, err := f.config()
	if err != nil {
		return "", "", err
	}
	// A bad value in the file is put right with config set or unset,
	// which the hint spells (with the profile, for the profile's value).
	fromFile := func(v, source, fix string) (string, string, error) {
		return checked(v, source, func(shown string, err error) error {
			return withHint(inputError(fmt.Errorf("%s: %s %q: %v", source, name, shown, err)),
				fmt.Sprintf("%s set %s VALUE, or %s unset %s", fix, name, fix, name))
		})
	}
	if p := f.profile(); p != "" {
		if v, ok := cfg.Profiles[p][name]; ok {
			shown := shownValue(p)
			return fromFile(v, fmt.Sprintf("config %s (profile %s)", f.configPath(), shown), "experiment --profile "+shown+" config")
		}
	}
	if v, ok := cfg.Settings[name]; ok {
		return fromFile(v, "config "+f.configPath(), "experiment config")
	}
	if fs != nil {
		if fl := fs.Lookup(name); fl != nil {
			return fl.Value.String(), "default", nil
		}
	}
	return "", "default", nil
}

// checkSettings resolves every setting for the command c as it would be
// used, so that a value that cannot work is refused where it came from
// whether or not c uses it: README's exit 2 for a flag or variable, 3 for
// the config file. A value that a higher source overrides is not used,
// and not checked: a flag is how one runs past a bad variable. -o is left
// to each command, whose forms are its own (config list has no jsonl);
// the variable's or the file's output is checked when no -o is given.
//
// version, help and completion always run, and so do config set and
// unset: they are how a bad value in the file is put right.
func (f *Factory) checkSettings(c *cobra.Command) error {
	for p := c; p != nil; p = p.Parent() {
		switch {
		case p.Parent() == nil:
		case p.Name() == "version" || p.Name() == "help" || p.Name() == "completion" || strings.HasPrefix(p.Name(), "__complete"):
			return nil
		case p.Parent().Name() == "config" && (p.Name() == "set" || p.Name() == "unset"):
			return nil
		}
	}
	fs := c.Flags()
	for _, d := range settingDefs {
		flags := fs
		if d.name == "output" {
			if fl := fs.Lookup("output"); fl != nil && fl.Changed {
				continue
			}
			flags = nil
		}
		if _, _, err := f.setting(flags, d.name); err != nil {
			return err
		}
	}
	return nil
}

// settingValue is setting without the source; a broken config file is an
// error of its own, reported once.
func (f *Factory) settingValue(fs *pflag.FlagSet, name string) (string, error) {
	v, _, err := f.setting(fs, name)
	return v, err
}

func newConfigCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Show effective settings, or write one to the config file",
		Long: "Settings come from flags, then environment variables, then the config file (a --profile\n" +
			"section over the top level), then defaults. The file is YAML:\n\n" +
			"  server-zone: eu\n  deployment-key: server-...\n  profiles:\n    staging:\n      deployment-key: server-...",
	}
	c.AddCommand(newConfigListCmd(f), newConfigSetCmd(f), newConfigUnsetCmd(f))
	return c
}

type settingRow struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func newConfigListCmd(f *Factory) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "list",
		Short: "Each effective setting and where it came from (keys redacted)",
		Args:  argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(&output, f, "table", "json", "yaml"); err != nil {
				return err
			}
			var rows []settingRow
			for _, d := range settingDefs {
				v, src, err := f.setting(nil, d.name)
				if err != nil {
					return err
				}
				if d.secret && v != "" {
					v = experiment.Secret(v).String()
				}
				if v == "" && src == "default" {
					v = f.defaultSetting(d.name)
				}
				rows = append(rows, settingRow{d.name, v, src})
			}
			if output != "table" {
				return writeOutput(writeData(f.IO.Out, output, map[string]any{"config": f.configPath(), "profile": f.profile(), "settings": rows}))
			}
			t := newTable(f.IO, "KEY", "VALUE", "SOURCE")
			for _, r := range rows {
				t.addRow(styleNone, r.Key, r.Value, r.Source)
			}
			return writeOutput(t.render(f.IO.Out))
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "output format: table|json|yaml (default: table on a terminal, json otherwise)")
	return c
}

func newConfigSetCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:               "set KEY VALUE",
		Short:             "Write one setting to the config file (mode 0600)",
		Long:              "Write a setting to the config file, in the --profile section when one is given.\nKeys: " + settingNamesList(),
		Args:              needArgs(2, 2, "a setting name and its value"),
		ValidArgsFunction: completeSettingNames,
		RunE: func(c *cobra.Command, args []string) error {
			return runConfigSet(c.Context(), f, args[0], args[1])
		},
	}
	return c
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

// defaultSetting is what a setting left unset amounts to, for config list:
// the URLs of the effective server zone, the cache directory, the output
// form for this stdout. Keys have no default.
func (f *Factory) defaultSetting(name string) string {
	zoneName, _ := f.settingValue(nil, "server-zone")
	zone, err := experiment.ParseServerZone(zoneName)
	if err != nil {
		return ""
	}
	switch name {
	case "server-zone":
		return strings.ToLower(string(zone))
	case "server-url":
		if zone.RemoteServerURL() == zone.FlagsServerURL() {
			return zone.RemoteServerURL()
		}
		return zone.RemoteServerURL() + " (fetch), " + zone.FlagsServerURL() + " (flags)"
	case "stream-server-url":
		return zone.StreamServerURL()
	case "cohort-server-url":
		return zone.CohortServerURL()
	case "events-server-url":
		return experiment.EventsURL(zone, false)
	case "cache-dir":
		if base, err := os.UserCacheDir(); err == nil {
			return filepath.Join(base, "experiment")
		}
	case "output":
		if f.IO.OutTTY {
			return "table"
		}
		return "json"
	}
	return ""
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
			return usageError("%s %q: %v", key, shownValue(value), err)
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
