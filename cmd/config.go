package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/flagkit/experiment/internal/atomicfile"
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
}

var settingDefs = []settingDef{
	{"deployment-key", []string{"EXPERIMENT_DEPLOYMENT_KEY", "EXPERIMENT_KEY"}, true, "server deployment key"},
	{"api-key", []string{"EXPERIMENT_API_KEY", "AMPLITUDE_API_KEY"}, true, "analytics API key"},
	{"secret-key", []string{"EXPERIMENT_SECRET_KEY", "AMPLITUDE_SECRET_KEY"}, true, "analytics secret key"},
	{"server-zone", []string{"EXPERIMENT_SERVER_ZONE"}, false, "us or eu"},
	{"server-url", []string{"EXPERIMENT_SERVER_URL"}, false, "evaluation and flag config server"},
	{"stream-server-url", []string{"EXPERIMENT_STREAM_SERVER_URL"}, false, "flag stream server"},
	{"cohort-server-url", []string{"EXPERIMENT_COHORT_SERVER_URL"}, false, "cohort download server"},
	{"events-server-url", []string{"EXPERIMENT_EVENTS_SERVER_URL"}, false, "analytics events server"},
	{"cache-dir", []string{"EXPERIMENT_CACHE_DIR"}, false, "flag and cohort cache"},
	{"output", []string{"EXPERIMENT_OUTPUT"}, false, "default output form"},
}

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

// config reads the config file once; a missing file is an empty config.
func (f *Factory) config() (*configFile, error) {
	if f.loadedConfig != nil || f.configErr != nil {
		return f.loadedConfig, f.configErr
	}
	f.loadedConfig, f.configErr = readConfig(f.configPath())
	if f.configErr == nil && f.profile() != "" {
		if _, ok := f.loadedConfig.Profiles[f.profile()]; !ok {
			f.configErr = usageError("--profile %q: no such profile in %s", f.profile(), f.configPath())
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
	for key := range cfg.Settings {
		if _, ok := lookupSetting(key); !ok {
			return nil, inputError(fmt.Errorf("config %s: unknown setting %q", path, key))
		}
	}
	return cfg, nil
}

// setting resolves one setting for a command whose flags are fs (which may
// lack the flag): the value and where it came from.
func (f *Factory) setting(fs *pflag.FlagSet, name string) (value, source string, err error) {
	def, _ := lookupSetting(name)
	if fs != nil {
		if fl := fs.Lookup(name); fl != nil && fl.Changed {
			return fl.Value.String(), "flag --" + name, nil
		}
	}
	for _, e := range def.envs {
		if v := f.IO.env(e); v != "" {
			return v, "env " + e, nil
		}
	}
	cfg, err := f.config()
	if err != nil {
		return "", "", err
	}
	if p := f.profile(); p != "" {
		if v, ok := cfg.Profiles[p][name]; ok {
			return v, fmt.Sprintf("config %s (profile %s)", f.configPath(), p), nil
		}
	}
	if v, ok := cfg.Settings[name]; ok {
		return v, "config " + f.configPath(), nil
	}
	if fs != nil {
		if fl := fs.Lookup(name); fl != nil {
			return fl.Value.String(), "default", nil
		}
	}
	return "", "default", nil
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
	c.AddCommand(newConfigListCmd(f), newConfigSetCmd(f))
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
			if err := checkOutput(&output, f, "table", "json"); err != nil {
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
				rows = append(rows, settingRow{d.name, v, src})
			}
			if output == "json" {
				return writeOutput(writeJSON(f.IO.Out, map[string]any{"config": f.configPath(), "profile": f.profile(), "settings": rows}, true))
			}
			t := newTable(f.IO, "KEY", "VALUE", "SOURCE")
			for _, r := range rows {
				t.addRow(styleNone, r.Key, r.Value, r.Source)
			}
			return writeOutput(t.render(f.IO.Out))
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "output format: table|json")
	return c
}

func newConfigSetCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Write one setting to the config file (mode 0600)",
		Long:  "Write a setting to the config file, in the --profile section when one is given.\nKeys: " + settingNamesList(),
		Args:  argsUsage(cobra.ExactArgs(2)),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, d := range settingDefs {
				names = append(names, d.name+"\t"+d.help)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runConfigSet(c.Context(), f, args[0], args[1])
		},
	}
	return c
}

func settingNamesList() string {
	var names []string
	for _, d := range settingDefs {
		names = append(names, d.name)
	}
	return strings.Join(names, ", ")
}

func runConfigSet(_ context.Context, f *Factory, key, value string) error {
	if _, ok := lookupSetting(key); !ok {
		return usageError("unknown setting %q: want one of %s", key, settingNamesList())
	}
	path := f.configPath()
	if path == "" {
		return usageError("no config directory: pass --config FILE")
	}
	cfg, err := readConfig(path)
	if err != nil {
		return err
	}
	if p := f.profile(); p != "" {
		if cfg.Profiles[p] == nil {
			cfg.Profiles[p] = map[string]string{}
		}
		cfg.Profiles[p][key] = value
	} else {
		cfg.Settings[key] = value
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return ioError(err)
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return ioError(err)
	}
	fmt.Fprintf(f.IO.ErrOut, "wrote %s to %s\n", key, path)
	return nil
}
