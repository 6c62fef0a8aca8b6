package cmd

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/internal/redact"
	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/fleet"
)

// Settings are the values a command may take from its option, an
// environment variable or the config file. One table says, for each, its
// name (the option's and the config file key's), its variables, whether it
// is a secret, what it is, how a value is checked and what it defaults to.
// From it, before any command runs, every setting is resolved once, flag >
// environment > config file (the --profile section over the top level) >
// default (docs/cli.md#settings-and-precedence), into the field of the
// options struct that its option is bound to; the same table writes the
// variables into each option's help and is what config list and get show. A command reads its
// settings from its options struct and nowhere else.

type settingDef struct {
	name   string
	envs   []string
	secret bool
	help   string
	// check rejects a value that could never work, wherever it comes from,
	// so that the error names that place and not a failure much later.
	check func(string) error
	// defaultHelp is the default as an option's help states it.
	defaultHelp string
	// deflt is what the setting amounts to when nothing sets it, for the
	// zone in use and this stdout: config list and get show it.
	deflt func(zone experiment.ServerZone, outTTY bool) string
	// unsetForSDK keeps an option empty when nothing sets it: the SDK
	// then picks the zone's URL of each service itself (fetch's server
	// and the flag config server differ in the EU). Other options get
	// deflt.
	unsetForSDK bool
	// password: the value is a URL whose password is hidden wherever it
	// is shown.
	password bool
}

var settingDefs = []settingDef{
	{name: "deployment-key", envs: []string{"EXPERIMENT_DEPLOYMENT_KEY", "EXPERIMENT_KEY"}, secret: true,
		help: "server deployment key", check: checkDeploymentKey},
	{name: "api-key", envs: []string{"EXPERIMENT_API_KEY", "AMPLITUDE_API_KEY"}, secret: true,
		help: "analytics API key"},
	{name: "secret-key", envs: []string{"EXPERIMENT_SECRET_KEY", "AMPLITUDE_SECRET_KEY"}, secret: true,
		help: "analytics secret key"},
	{name: "server-zone", envs: []string{"EXPERIMENT_SERVER_ZONE"}, help: "us or eu", check: checkZone,
		defaultHelp: "us", deflt: func(z experiment.ServerZone, _ bool) string { return strings.ToLower(string(z)) }},
	{name: "server-url", envs: []string{"EXPERIMENT_SERVER_URL"}, help: "evaluation and flag config server", check: checkServerURL,
		defaultHelp: "by --server-zone", deflt: zoneServerURLs, unsetForSDK: true},
	{name: "stream-server-url", envs: []string{"EXPERIMENT_STREAM_SERVER_URL"}, help: "flag stream server", check: checkServerURL,
		defaultHelp: "by --server-zone", deflt: func(z experiment.ServerZone, _ bool) string { return z.StreamServerURL() }, unsetForSDK: true},
	{name: "cohort-server-url", envs: []string{"EXPERIMENT_COHORT_SERVER_URL"}, help: "cohort download server", check: checkServerURL,
		defaultHelp: "by --server-zone", deflt: func(z experiment.ServerZone, _ bool) string { return z.CohortServerURL() }, unsetForSDK: true},
	{name: "events-server-url", envs: []string{"EXPERIMENT_EVENTS_SERVER_URL"}, help: "analytics events server", check: checkServerURL,
		defaultHelp: "by --server-zone", deflt: func(z experiment.ServerZone, _ bool) string {
			return analytics.EventsURL(analytics.ServerZone(z), false)
		}, unsetForSDK: true},
	{name: "cache-dir", envs: []string{"EXPERIMENT_CACHE_DIR"}, help: "flag and cohort cache",
		defaultHelp: "the user cache directory", deflt: func(experiment.ServerZone, bool) string { dir, _ := userCacheDir(); return dir }},
	{name: "listen", envs: []string{"EXPERIMENT_SERVE_LISTEN"}, help: "serve: address to serve on", check: checkListen,
		defaultHelp: "127.0.0.1:3546", deflt: func(experiment.ServerZone, bool) string { return "127.0.0.1:3546" }},
	{name: "redis", envs: []string{"EXPERIMENT_REDIS_URL"}, help: "serve: Redis of a relay fleet", check: checkRedisURL,
		password: true},
	{name: "ops-listen", envs: []string{"EXPERIMENT_SERVE_OPS_LISTEN"}, help: "serve: address of the operational endpoints", check: checkListen,
		defaultHelp: "the --listen address"},
	// Each command's -o picks its own default (outputFlag); deflt is the
	// one of data commands, which config list shows.
	{name: "output", envs: []string{"EXPERIMENT_OUTPUT"}, help: "default output form", check: checkOutputForm,
		deflt: func(_ experiment.ServerZone, tty bool) string { return defaultOutput(outputForms, false, tty) }},
}

func lookupSetting(name string) (*settingDef, bool) {
	i := slices.IndexFunc(settingDefs, func(d settingDef) bool { return d.name == name })
	if i < 0 {
		return nil, false
	}
	return &settingDefs[i], true
}

// zoneServerURLs is server-url's default: one URL, or fetch's and the flag
// config server's where the zone has two.
func zoneServerURLs(z experiment.ServerZone, _ bool) string {
	if z.RemoteServerURL() == z.FlagsServerURL() {
		return z.RemoteServerURL()
	}
	return z.RemoteServerURL() + " (fetch), " + z.FlagsServerURL() + " (flags)"
}

// userCacheDir is cache-dir's default.
func userCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "experiment"), nil
}

// requireCacheDir is a resolved cache directory, which is empty only when
// nothing set it and there was no user cache directory to default to;
// hint says how to give one.
func requireCacheDir(dir, hint string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	dir, err := userCacheDir()
	if err != nil {
		return "", withHint(usageError("no cache directory: %v", err), hint)
	}
	return dir, nil
}

// checkDeploymentKey refuses, before anything is sent, a key that the flag
// config and evaluation services would reject anyway: every command that
// takes one (fetch, flags pull, watch, local evaluation) needs a server
// deployment key, and a 401 after a round trip (or a silent fall back on
// the cache) says less than naming the problem here.
func checkDeploymentKey(v string) error {
	const where = "a server deployment key starts with server- (Amplitude: Experiment > Deployments)"
	switch rest, isServer := strings.CutPrefix(v, "server-"); {
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return errors.New("contains white space or control characters: copy the key again, without spaces or line breaks")
	case strings.HasPrefix(v, "client-"):
		return errors.New("a client deployment key, for browser and mobile SDKs; this command needs a server deployment key: " + where)
	case isServer && rest == "":
		return errors.New("only the prefix server-: the key is missing after it")
	case !isServer && analyticsKeyShape.MatchString(v):
		return errors.New("an analytics API or secret key (32 hex digits), not a deployment key: " + where)
	case !isServer:
		return errors.New("not a deployment key: " + where)
	}
	return nil
}

// analyticsKeyShape is how analytics API and secret keys look.
var analyticsKeyShape = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

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

// checkListen wants HOST:PORT (HOST may be empty: every interface).
func checkListen(v string) error {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return errors.New("want HOST:PORT, such as 127.0.0.1:3546")
	}
	return nil
}

func checkOutputForm(v string) error {
	if !slices.Contains(outputForms, v) {
		return fmt.Errorf("want one of %s", strings.Join(outputForms, ", "))
	}
	return nil
}

// outputForms are every -o form some command has.
var outputForms = []string{"table", "json", "jsonl", "yaml"}

// shownValue is a value a user gave, as an error may echo it: the
// password of a URL hidden, and anything that looks like a key (one pasted
// into the wrong setting) shown as keys are, a prefix and a fingerprint.
func shownValue(v string) string { return redact.Text(redactURLCredentials(v)) }

// shownSetting is a setting's value as an error may echo it: a key always
// as keys are shown, however short or odd it is (shownValue leaves a run
// alone that does not look like a key: "client-abc", a key with a space).
func shownSetting(def *settingDef, v string) string {
	switch {
	case def.secret:
		return experiment.Secret(v).String()
	case def.password:
		return fleet.Redact(v) // also what url.Parse takes for no credentials ("u:pw@h")
	}
	return shownValue(v)
}

// redactURLCredentials hides the password of a URL-shaped value.
func redactURLCredentials(v string) string {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return fleet.Redact(v) // a Cluster's host list is no URL to url.Parse
	case u.User != nil:
		return u.Redacted()
	}
	return v
}

// resolvedSetting is a setting's value and where it came from: "flag
// --NAME", "env NAME", "config PATH", "config PATH (profile P)" or
// "default" (then value is "").
type resolvedSetting struct {
	def           *settingDef
	value, source string
}

// resolveSetting resolves def for a command whose options are fs (nil:
// none), checking the value it finds; an error names where the value came
// from: exit 2 for a flag or variable, 3 for the config file (README).
func (f *Factory) resolveSetting(def *settingDef, fs *pflag.FlagSet) (resolvedSetting, error) {
	if fl := settingOptionFlag(fs, def.name); fl != nil && fl.Changed {
		return def.checked(fl.Value.String(), "flag --"+def.name, func(shown string, err error) error {
			return usageError("--%s %q: %v", def.name, shown, err)
		})
	}
	for _, e := range def.envs {
		if v := f.IO.Env(e); v != "" {
			return def.checked(v, "env "+e, func(shown string, err error) error {
				return usageError("%s=%q: %v", e, shown, err)
			})
		}
	}
	cfg, err := f.config()
	if err != nil {
		return resolvedSetting{}, err
	}
	// A bad value in the file is put right with config set or unset,
	// which the hint spells (with the profile, for the profile's value).
	fromFile := func(v, source, fix string) (resolvedSetting, error) {
		return def.checked(v, source, func(shown string, err error) error {
			return withHint(inputError(fmt.Errorf("%s: %s %q: %v", source, def.name, shown, err)),
				fmt.Sprintf("%s set %s VALUE, or %s unset %s", fix, def.name, fix, def.name))
		})
	}
	if p := f.profile(); p != "" {
		if v, ok := cfg.Profiles[p][def.name]; ok {
			shown := shownValue(p)
			return fromFile(v, fmt.Sprintf("config %s (profile %s)", f.configPath(), shown), "experiment --profile "+shown+" config")
		}
	}
	if v, ok := cfg.Settings[def.name]; ok {
		return fromFile(v, "config "+f.configPath(), "experiment config")
	}
	return resolvedSetting{def: def, source: "default"}, nil
}

// checked is v from source, or fail's error (given v as it may be shown)
// when def refuses it.
func (def *settingDef) checked(v, source string, fail func(shown string, err error) error) (resolvedSetting, error) {
	if def.check != nil && v != "" {
		if err := def.check(v); err != nil {
			return resolvedSetting{}, fail(shownSetting(def, v), err)
		}
	}
	return resolvedSetting{def: def, value: v, source: source}, nil
}

// resolveAll resolves every setting as a command without options would,
// for config list and get.
func (f *Factory) resolveAll() ([]resolvedSetting, error) {
	all := make([]resolvedSetting, 0, len(settingDefs))
	for i := range settingDefs {
		r, err := f.resolveSetting(&settingDefs[i], nil)
		if err != nil {
			return nil, err
		}
		all = append(all, r)
	}
	return all, nil
}

// shown is r's value as config list and get show it: a default spelled
// out for zone and this stdout, a key redacted unless reveal.
func (r resolvedSetting) shown(zone experiment.ServerZone, outTTY, reveal bool) string {
	v := r.value
	switch {
	case v == "" && r.def.deflt != nil:
		return r.def.deflt(zone, outTTY)
	case r.def.secret && !reveal && v != "":
		return experiment.Secret(v).String()
	case r.def.password && !reveal:
		return fleet.Redact(v)
	}
	return v
}

// resolveSettings resolves every setting for the command c, once, before
// it runs, into the options it is bound to. A setting c has no option for
// is still resolved, so that a value that cannot work is refused where it
// came from whether or not c uses it. A value that a higher source
// overrides is not used, and not checked: a flag is how one runs past a
// bad variable, and -o past a bad configured output.
//
// version, help and completion always run, and so do config set, unset
// and path: they are how a bad value in the file is found and put right.
// They resolve only the settings they have options for (version's -o).
func (f *Factory) resolveSettings(c *cobra.Command) error {
	f.tryOffline = offlineExample(c)
	ownOnly := alwaysRuns(c)
	fs := c.Flags()
	zone := experiment.ServerZoneUS
	for i := range settingDefs {
		def := &settingDefs[i]
		out, _ := outputFlagOf(fs, def.name)
		opt := settingOptionFlag(fs, def.name)
		switch {
		case out != nil && fs.Changed("output") && out.String() != "":
			if err := out.checkGiven(); err != nil {
				return err
			}
			continue
		case out != nil && out.unconfigured:
			out.resolve("", f.IO.OutTTY)
			continue
		case out == nil && opt == nil && ownOnly:
			continue
		}
		r, err := f.resolveSetting(def, fs)
		if err != nil {
			return err
		}
		switch {
		case out != nil:
			out.resolve(r.value, f.IO.OutTTY)
		case opt != nil:
			opt.Value.(*settingFlag).resolve(r, zone, f.IO.OutTTY)
		}
		if def.name == "server-zone" {
			zone, _ = experiment.ParseServerZone(r.value) // checked
		}
	}
	return nil
}

// alwaysRuns reports whether c is one of the commands that run whatever
// the settings are.
func alwaysRuns(c *cobra.Command) bool {
	for p := c; p != nil && p.HasParent(); p = p.Parent() {
		switch {
		case p.Name() == "version" || p.Name() == "help" || p.Name() == "completion" || strings.HasPrefix(p.Name(), "__complete"):
			return true
		case p.Parent().Name() == "config" && (p.Name() == "set" || p.Name() == "unset" || p.Name() == "path"):
			return true
		}
	}
	return false
}

// settingFlag is the value of an option that is a setting. It reads and
// writes the options struct's field itself, as pflag's own values do, so
// that what resolveSettings puts there, from the flag, the environment,
// the config file or the default, is what the command reads.
type settingFlag struct {
	def *settingDef
	get func() string
	set func(string)
}

func (s *settingFlag) String() string     { return s.get() }
func (s *settingFlag) Set(v string) error { s.set(v); return nil }
func (s *settingFlag) Type() string       { return "string" }

// resolve puts r's value in the option: the default (for zone) when
// nothing set it, unless the SDK picks it.
func (s *settingFlag) resolve(r resolvedSetting, zone experiment.ServerZone, outTTY bool) {
	v := r.value
	if r.source == "default" && !s.def.unsetForSDK && s.def.deflt != nil {
		v = s.def.deflt(zone, outTTY)
	}
	s.set(v)
}

// bindSetting registers the option of the setting name, bound to dst;
// what says what it is for this command, and the help adds the setting's
// variables and default from the table.
func bindSetting(fs *pflag.FlagSet, dst *string, name, what string) {
	bindSettingValue(fs, name, what, func() string { return *dst }, func(v string) { *dst = v })
}

// bindZone is bindSetting for --server-zone, whose field is a zone: US or
// EU once resolved (the text as given until then, for the check to show).
func bindZone(fs *pflag.FlagSet, dst *experiment.ServerZone, what string) {
	bindSettingValue(fs, "server-zone", what, func() string { return string(*dst) }, func(v string) {
		if z, err := experiment.ParseServerZone(v); err == nil {
			*dst = z
		} else {
			*dst = experiment.ServerZone(v)
		}
	})
}

func bindSettingValue(fs *pflag.FlagSet, name, what string, get func() string, set func(string)) {
	def, ok := lookupSetting(name)
	if !ok {
		panic("bindSetting: no setting " + name) // a programming error, caught by every test
	}
	fs.Var(&settingFlag{def: def, get: get, set: set}, name, def.usage(what))
}

// usage is an option's help: what it is, then the setting's variables and
// default.
func (def *settingDef) usage(what string) string {
	s := what + " (env " + strings.Join(def.envs, " or ")
	if def.defaultHelp != "" {
		s += "; default: " + def.defaultHelp
	}
	return s + ")"
}

// settingOptionFlag is fs's option bound to the setting name, or nil.
func settingOptionFlag(fs *pflag.FlagSet, name string) *pflag.Flag {
	if fs == nil {
		return nil
	}
	if fl := fs.Lookup(name); fl != nil {
		if _, ok := fl.Value.(*settingFlag); ok {
			return fl
		}
	}
	return nil
}

// environmentHelp is the paragraph of a command's long help that lists
// the variables of its options, from the table, and then rest.
func environmentHelp(fs *pflag.FlagSet, rest string) string {
	var names []string
	for i := range settingDefs {
		def := &settingDefs[i]
		if _, isOutput := outputFlagOf(fs, def.name); settingOptionFlag(fs, def.name) == nil && !isOutput {
			continue
		}
		name := def.envs[0]
		if len(def.envs) > 1 {
			name += " (or " + strings.Join(def.envs[1:], ", ") + ")"
		}
		names = append(names, name)
	}
	return wrapWords("Environment: "+strings.Join(names, ", ")+". "+rest, 95)
}

// wrapWords breaks text into lines of at most width columns, between words.
func wrapWords(text string, width int) string {
	var b strings.Builder
	line := 0
	for i, w := range strings.Fields(text) {
		switch {
		case i == 0:
		case line+1+len(w) > width:
			b.WriteByte('\n')
			line = 0
		default:
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}

// outputFlag is a command's -o. Before the command runs, its field holds
// the form the command writes: -o when given (one of the command's
// forms), else the configured output (EXPERIMENT_OUTPUT or the config
// file) when the command has that form (the setting is global: a form a
// command lacks is ignored), else the command's default. It is the one
// place where an output form is chosen.
type outputFlag struct {
	form  *string
	forms []string
	kind  outputKind
	// batch, for evaluate and fetch, says whether the command writes a
	// line per user (--users), and whether it shows a --stats summary.
	batch func() (many, stats bool)
	// unconfigured: -o alone picks the form, never the output setting
	// (version, which runs whatever the settings are).
	unconfigured bool
}

type outputKind int

const (
	// dataOutput is a table on a terminal and the machine form (json, or
	// watch's jsonl) in a pipe.
	dataOutput outputKind = iota
	// reportOutput is a report for people (explain, flags show): the
	// table in a pipe too, so that `| less` or `> report.txt` gets what a
	// terminal shows, without colour. Scripts ask for the machine form
	// with -o json (docs/cli.md#human-output-in-pipes).
	reportOutput
)

func (o *outputFlag) String() string     { return *o.form }
func (o *outputFlag) Set(v string) error { *o.form = v; return nil }
func (o *outputFlag) Type() string       { return "string" }

// registerOutput adds -o with the command's forms, bound to form.
func registerOutput(fs *pflag.FlagSet, form *string, kind outputKind, forms ...string) {
	deflt := "table on a terminal, " + machineOutput(forms) + " otherwise"
	if kind == reportOutput {
		deflt = "table, the text report, in a pipe too"
	}
	addOutputFlag(fs, &outputFlag{form: form, forms: forms, kind: kind}, deflt)
}

// registerVersionOutput is registerOutput for version: a report, whose
// form only -o picks.
func registerVersionOutput(fs *pflag.FlagSet, form *string) {
	o := &outputFlag{form: form, forms: []string{"table", "json", "yaml"}, kind: reportOutput, unconfigured: true}
	fs.VarP(o, "output", "o", "output format: "+strings.Join(o.forms, "|")+" (default: table, also in a pipe)")
}

// registerBatchOutput is registerOutput for evaluate and fetch, whose
// --users writes a line per user.
func registerBatchOutput(fs *pflag.FlagSet, form *string, batch func() (many, stats bool)) {
	addOutputFlag(fs, &outputFlag{form: form, forms: outputForms, kind: dataOutput, batch: batch},
		"table on a terminal, json otherwise; jsonl with --users")
}

func addOutputFlag(fs *pflag.FlagSet, o *outputFlag, deflt string) {
	def, _ := lookupSetting("output")
	fs.VarP(o, "output", "o", fmt.Sprintf("output format: %s (env %s; default: %s)",
		strings.Join(o.forms, "|"), strings.Join(def.envs, " or "), deflt))
}

// outputFlagOf is fs's -o when name is the output setting's.
func outputFlagOf(fs *pflag.FlagSet, name string) (*outputFlag, bool) {
	if fs == nil || name != "output" {
		return nil, false
	}
	fl := fs.Lookup("output")
	if fl == nil {
		return nil, false
	}
	o, ok := fl.Value.(*outputFlag)
	return o, ok
}

// checkGiven refuses an -o form the command lacks.
func (o *outputFlag) checkGiven() error {
	if !slices.Contains(o.forms, *o.form) {
		return usageError("--output %q: want %s", *o.form, orList(o.forms))
	}
	return nil
}

// resolve sets the form when -o was not given: configured ("" when
// nothing configures one) if the command has it, else the default.
func (o *outputFlag) resolve(configured string, outTTY bool) {
	if o.batch != nil {
		if many, stats := o.batch(); many {
			// Lines, one per user: a configured table or yaml is ignored,
			// and on a terminal --stats shows its summary table alone (the
			// JSON of thousands of users would scroll it away).
			switch {
			case configured == "json" || configured == "jsonl":
				*o.form = configured
			case stats && outTTY:
				*o.form = "table"
			default:
				*o.form = "jsonl"
			}
			return
		}
	}
	if slices.Contains(o.forms, configured) {
		*o.form = configured
		return
	}
	*o.form = defaultOutput(o.forms, o.kind == reportOutput, outTTY)
}

// defaultOutput is the form among forms when nothing asks for one: a
// table on a terminal, or for a report; else the machine form.
func defaultOutput(forms []string, report, outTTY bool) string {
	if outTTY || report {
		return "table"
	}
	return machineOutput(forms)
}

// machineOutput is the form for scripts among forms: json where the
// command has it (docs/cli.md#output-forms: the default off a terminal),
// else its first form that is not a table (watch's jsonl).
func machineOutput(forms []string) string {
	if slices.Contains(forms, "json") {
		return "json"
	}
	for _, form := range forms {
		if form != "table" {
			return form
		}
	}
	return "table"
}

// orList spells a list of choices: "a", "a or b", "a, b or c".
func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

// offlineExample is c's command line on the bundled flags: whole when c
// was given no arguments and needs none, otherwise the option to add to
// what was typed (a whole line would drop the flag keys of explain
// dark-mode); evaluate's when c has no --flags (flags pull).
func offlineExample(c *cobra.Command) string {
	switch {
	case c.Flags().Lookup("flags") == nil:
		return "or try: experiment evaluate --flags testdata/flags.json"
	case c.Flags().NArg() == 0 && c.ValidateArgs(nil) == nil:
		return "or try: " + c.CommandPath() + " --flags testdata/flags.json"
	}
	return "or add --flags testdata/flags.json to try the bundled flags"
}
