package cmd

// Shell completion. Cobra provides `experiment completion bash|zsh|fish|powershell`
// and the hidden `__complete` command the scripts call back into; this file
// adds what only experiment knows: flag keys and cohort ids read from local
// files (never the network), and the values of enum-like flags.
//
// The scripts committed under completions/ (and shipped in release archives)
// are exactly what `experiment completion SHELL` prints; TestCompletionScripts
// fails when they are stale.

//go:generate go run ../internal/gencompletions -dir ../completions

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/pkg/experiment"
)

// registerCompletions walks the command tree and registers completions for
// the flags each command has: --server-zone, -o/--output (the values listed
// in the flag's own usage text), --flags, --users, --cohorts, --cache-dir,
// --out, --junit, --config, and no file completion for keys and URLs. A flag
// that already has a completion function keeps it, so calling this twice, or
// after a command registered its own, is harmless. It also makes sure the
// `completion` command stays available and visible.
func registerCompletions(root *cobra.Command) {
	root.CompletionOptions.DisableDefaultCmd = false
	root.CompletionOptions.HiddenDefaultCmd = false
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		register := func(fl *pflag.Flag) {
			if _, ok := c.GetFlagCompletionFunc(fl.Name); ok {
				return
			}
			if fn := completeFlagValue(fl); fn != nil {
				_ = c.RegisterFlagCompletionFunc(fl.Name, fn) // the flag exists and has no function: cannot fail
			}
		}
		c.Flags().VisitAll(register)
		c.PersistentFlags().VisitAll(register)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completionZones are the values of --server-zone.
var completionZones = []string{"us\tAmplitude's US data center (the default)", "eu\tAmplitude's EU data center"}

// completionOutputDescs describe the -o values commands list in their usage.
var completionOutputDescs = map[string]string{
	"table": "aligned columns (the default on a terminal)",
	"json":  "one JSON document",
	"jsonl": "JSON Lines: one object per line",
	"yaml":  "YAML",
}

// completionNoFileFlags take a value that is never a file name: keys and URLs.
var completionNoFileFlags = map[string]bool{
	"deployment-key": true, "api-key": true, "secret-key": true,
	"server-url": true, "stream-server-url": true, "cohort-server-url": true, "events-server-url": true,
}

// completeFlagValue is the static completion of one flag's value, or nil
// when the shell's default (file names) is right or nothing is known.
func completeFlagValue(fl *pflag.Flag) cobra.CompletionFunc {
	switch name := fl.Name; {
	case name == "server-zone":
		return cobra.FixedCompletions(completionZones, cobra.ShellCompDirectiveNoFileComp)
	case name == "output":
		values := usageValues(fl.Usage)
		if len(values) == 0 {
			return nil
		}
		for i, v := range values {
			if d := completionOutputDescs[v]; d != "" {
				values[i] = v + "\t" + d
			}
		}
		return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
	case name == "flags":
		return completeFileExt("json")
	case name == "users":
		return completeFileExt("jsonl", "ndjson", "json")
	case name == "user":
		return completeUserArg
	case name == "junit":
		return completeFileExt("xml")
	case name == "config":
		return completeFileExt("yaml", "yml")
	case name == "profile":
		return completeProfiles
	case name == "cohorts" || name == "cache-dir":
		return completeDirs
	case name == "out":
		if usageMentionsDir(fl.Usage) {
			return completeDirs
		}
		return nil // a file, existing or not: the shell's default
	case completionNoFileFlags[name]:
		return cobra.NoFileCompletions
	}
	return nil
}

// usageValuesRe finds "table|json|jsonl" in a flag's usage text.
var usageValuesRe = regexp.MustCompile(`[a-z][a-z0-9-]*(?:\|[a-z][a-z0-9-]*)+`)

// usageValues are the values a --output flag's usage names, as in
// "output format: table|json (default: …)", so completion follows the help.
func usageValues(usage string) []string {
	m := usageValuesRe.FindString(usage)
	if m == "" {
		return nil
	}
	return strings.Split(m, "|")
}

var usageDirRe = regexp.MustCompile(`\bDIR\b|(?i)\bdirector(y|ies)\b`)

func usageMentionsDir(usage string) bool { return usageDirRe.MatchString(usage) }

// completeProfiles completes --profile with the profiles of the config
// file that --config or EXPERIMENT_CONFIG names (or the default one). A
// name that looks like a key (one pasted where a profile goes) is never
// offered: completion output lands on the screen.
func completeProfiles(c *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	flag := ""
	if fl := c.Flag("config"); fl != nil {
		flag = fl.Value.String()
	}
	cfg, err := readConfig(configPathFor(flag, os.Getenv))
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Profiles)) {
		if strings.HasPrefix(name, toComplete) && shownValue(name) == name {
			names = append(names, name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeUserArg completes --user's @FILE form: the shell's own file
// completion would offer the bare name, which --user takes as JSON. JSON
// files and directories are offered with the @ (with a directory among
// them, no space is added, so that one can be descended into); - (stdin)
// with nothing typed.
func completeUserArg(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	typed, ok := strings.CutPrefix(toComplete, "@")
	if !ok && toComplete != "" {
		return nil, cobra.ShellCompDirectiveNoFileComp // JSON being typed
	}
	dir, prefix := filepath.Split(typed)
	readDir := dir
	if readDir == "" {
		readDir = "."
	}
	entries, err := os.ReadDir(readDir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	if toComplete == "" {
		out = append(out, "-\tread the user from stdin")
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || strings.HasPrefix(name, ".") && !strings.HasPrefix(prefix, ".") {
			continue
		}
		switch {
		case e.IsDir() || e.Type()&os.ModeSymlink != 0 && isDir(filepath.Join(dir, name)):
			out = append(out, "@"+dir+name+"/")
		case strings.HasSuffix(name, ".json"):
			out = append(out, "@"+dir+name)
		}
	}
	directive := cobra.ShellCompDirectiveNoFileComp
	if slices.ContainsFunc(out, func(c string) bool { return strings.HasSuffix(c, "/") }) {
		directive |= cobra.ShellCompDirectiveNoSpace // a directory is descended into
	}
	return out, directive
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func completeFileExt(exts ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(exts, cobra.ShellCompDirectiveFilterFileExt)
}

func completeDirs(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// completeFlagKeys completes flag keys, for commands whose arguments are
// FLAG_KEYs: from the --flags FILE on the command line, else from the cached
// flag configs of the deployment key (--deployment-key, EXPERIMENT_DEPLOYMENT_KEY
// or EXPERIMENT_KEY) in the cache directory. Keys already given are left out;
// each has its flag type and version as description. It never contacts the
// network and completes nothing when there is no file or cache to read.
func completeFlagKeys(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	given := completionGiven(args)
	var out []string
	for _, f := range completionFlagConfigs(cmd) {
		if given[f.Key] || !strings.HasPrefix(f.Key, toComplete) {
			continue
		}
		out = append(out, f.Key+completionDesc(f.description()))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeAssertions completes the FLAG=VARIANT arguments of assert: first
// "FLAG=" (without a trailing space), then, after the "=", the flag's
// variants, "absent" and "value:".
func completeAssertions(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	flags := completionFlagConfigs(cmd)
	key, want, hasEq := strings.Cut(toComplete, "=")
	if !hasEq {
		given := completionGiven(args)
		var out []string
		for _, f := range flags {
			if !given[f.Key] && strings.HasPrefix(f.Key, toComplete) {
				out = append(out, f.Key+"="+completionDesc(f.description()))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	var out []string
	for _, f := range flags {
		if f.Key != key {
			continue
		}
		for _, v := range append(f.variants(), "absent\tthe flag yields no variant", "value:\tcompare the variant's value") {
			if strings.HasPrefix(v, want) {
				out = append(out, key+"="+v)
			}
		}
	}
	if len(out) == 1 && strings.HasPrefix(out[0], key+"=value:") {
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace // the value follows
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeFlagThenVariant completes FLAG_KEY VARIANT (find-user): a flag
// key first, then that flag's variants, then nothing, so that TAB after the
// key does not offer other flags' keys where a variant belongs.
func completeFlagThenVariant(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return completeFlagKeys(cmd, args, toComplete)
	case 1:
		var out []string
		for _, f := range completionFlagConfigs(cmd) {
			if f.Key != args[0] {
				continue
			}
			for _, v := range f.variants() {
				if strings.HasPrefix(v, toComplete) {
					out = append(out, v)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeAtMost limits fn to the first n positional arguments, for commands
// such as `flags show KEY` that take exactly one.
func completeAtMost(n int, fn cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return fn(cmd, args, toComplete)
	}
}

// completionFlag is the part of a flag config completion shows.
type completionFlag struct {
	Key      string                     `json:"key"`
	Variants map[string]json.RawMessage `json:"variants"`
	Metadata struct {
		FlagType    string          `json:"flagType"`
		FlagVersion json.RawMessage `json:"flagVersion"`
	} `json:"metadata"`
}

// description is "release v14": the flag type and version, when known.
func (f completionFlag) description() string {
	var parts []string
	if f.Metadata.FlagType != "" {
		parts = append(parts, f.Metadata.FlagType)
	}
	if v := strings.Trim(string(f.Metadata.FlagVersion), `" `); v != "" && v != "null" {
		parts = append(parts, "v"+v)
	}
	return strings.Join(parts, " ")
}

func (f completionFlag) variants() []string {
	vs := make([]string, 0, len(f.Variants))
	for k := range f.Variants {
		vs = append(vs, k)
	}
	sort.Strings(vs)
	return vs
}

// completionFlagConfigs reads the flags completion offers, sorted by key:
// from --flags FILE, else from the deployment key's cache. Anything missing
// or unreadable gives none: completion never reports errors.
func completionFlagConfigs(cmd *cobra.Command) []completionFlag {
	var raw []byte
	if file := completionFlagOrEnv(cmd, "flags"); file != "" {
		if file == "-" {
			return nil // stdin belongs to the shell during completion
		}
		data, err := readFileLimited(file, maxFlagsBytes)
		if err != nil {
			return nil
		}
		raw = data
	} else {
		key := completionSetting(cmd, "deployment-key")
		cacheDir := completionCacheDir(cmd)
		if key == "" || cacheDir == "" {
			return nil
		}
		data, err := readFileLimited(experiment.FlagCachePath(cacheDir, key), maxFlagsBytes)
		if err != nil {
			return nil
		}
		var env struct {
			Version int             `json:"version"`
			Flags   json.RawMessage `json:"flags"`
		}
		if json.Unmarshal(data, &env) != nil || env.Version != 1 {
			return nil
		}
		raw = env.Flags
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	flags := make([]completionFlag, 0, len(items))
	for _, item := range items {
		var f completionFlag
		if json.Unmarshal(item, &f) == nil && f.Key != "" {
			flags = append(flags, f)
		}
	}
	sort.SliceStable(flags, func(i, j int) bool { return flags[i].Key < flags[j].Key })
	return flags
}

// completionFlagOrEnv is a string flag's value when it was given on the command line,
// else the first non-empty environment variable. Completion functions run
// without the Factory, so they read the process environment.
func completionFlagOrEnv(cmd *cobra.Command, name string, envs ...string) string {
	if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed {
		return fl.Value.String()
	}
	for _, e := range envs {
		if v := os.Getenv(e); v != "" {
			return v
		}
	}
	return ""
}

// completionSetting is a setting as commands resolve it (settings.go):
// its option when given, else its variables (the settings table's), else
// the config file, --profile's section over the top level. Completion runs
// without the Factory, so it reads the file here; an unreadable one gives
// nothing.
func completionSetting(cmd *cobra.Command, name string) string {
	def, _ := lookupSetting(name)
	if v := completionFlagOrEnv(cmd, name, def.envs...); v != "" {
		return v
	}
	cfg, err := readConfig(configPathFor(completionFlagOrEnv(cmd, "config"), os.Getenv))
	if err != nil {
		return ""
	}
	if p := completionFlagOrEnv(cmd, "profile", "EXPERIMENT_PROFILE"); p != "" {
		if v, ok := cfg.Profiles[p][name]; ok {
			return v
		}
	}
	return cfg.Settings[name]
}

// completionCacheDir is the cache directory as settings resolve it, but for
// the config file.
func completionCacheDir(cmd *cobra.Command) string {
	if dir := completionSetting(cmd, "cache-dir"); dir != "" {
		return dir
	}
	dir, _ := userCacheDir()
	return dir
}

// completionGiven is the set of keys already on the command line (FLAG of
// FLAG=VARIANT too).
func completionGiven(args []string) map[string]bool {
	given := make(map[string]bool, len(args))
	for _, a := range args {
		k, _, _ := strings.Cut(a, "=")
		given[k] = true
	}
	return given
}

// completionDesc is cobra's tab-separated description suffix, or nothing.
func completionDesc(d string) string {
	if d == "" {
		return ""
	}
	return "\t" + d
}
