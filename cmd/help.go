package cmd

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// optionGroupAnnotation is the pflag annotation that puts an option under a
// heading in --help: evaluate and explain take some 40 options, which read
// as a wall in one alphabetical block (kubectl and gh group theirs too).
const optionGroupAnnotation = "experiment_group"

// optionGroups are the headings, in the order --help shows them after the
// command's own options.
var optionGroups = []string{"User", "Flag source", "Output", "Tracking", "Network"}

// optionGroupOf assigns the options shared by several commands. They are
// registered in many places (userflags.go, serverflags.go, the commands), so
// the headings are kept here in one table rather than at each definition;
// an option may still carry its own annotation, which wins.
var optionGroupOf = map[string]string{
	"user": "User", "user-id": "User", "device-id": "User", "country": "User", "region": "User",
	"dma": "User", "city": "User", "language": "User", "platform": "User", "version": "User",
	"os": "User", "device-manufacturer": "User", "device-brand": "User", "device-model": "User",
	"carrier": "User", "library": "User", "prop": "User", "group": "User", "group-prop": "User",
	"users": "User", "skip-invalid": "User",

	"flags": "Flag source", "cohorts": "Flag source", "offline": "Flag source",
	"cache-dir": "Flag source", "strict": "Flag source",

	"output": "Output", "stats": "Output", "progress": "Output",

	"track-exposure": "Tracking", "track-assignment": "Tracking", "print-events": "Tracking",

	"deployment-key": "Network", "api-key": "Network", "secret-key": "Network",
	"server-zone": "Network", "server-url": "Network", "stream-server-url": "Network",
	"cohort-server-url": "Network", "events-server-url": "Network", "timeout": "Network",
	"retries": "Network", "concurrency": "Network", "debug": "Network",
}

// annotateOptionGroups gives every command's options their group, unless
// the option already has one.
func annotateOptionGroups(c *cobra.Command) {
	c.LocalNonPersistentFlags().VisitAll(func(fl *pflag.Flag) {
		if _, ok := fl.Annotations[optionGroupAnnotation]; ok {
			return
		}
		if g, ok := optionGroupOf[fl.Name]; ok {
			if fl.Annotations == nil {
				fl.Annotations = map[string][]string{}
			}
			fl.Annotations[optionGroupAnnotation] = []string{g}
		}
	})
	for _, sub := range c.Commands() {
		annotateOptionGroups(sub)
	}
}

// groupedOptions renders a command's local options: its own first (under
// "Options:"), then each group that has any, each aligned on its own.
func groupedOptions(c *cobra.Command) string {
	sets := map[string]*pflag.FlagSet{}
	own := pflag.NewFlagSet("", pflag.ContinueOnError)
	own.SortFlags = c.LocalFlags().SortFlags
	c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
		if fl.Hidden {
			return
		}
		set := own
		if g := fl.Annotations[optionGroupAnnotation]; len(g) > 0 {
			if sets[g[0]] == nil {
				sets[g[0]] = pflag.NewFlagSet(g[0], pflag.ContinueOnError)
			}
			set = sets[g[0]]
		}
		set.AddFlag(fl)
	})
	var b strings.Builder
	section := func(title string, fs *pflag.FlagSet) {
		if !fs.HasAvailableFlags() {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(title + ":\n" + strings.TrimRight(fs.FlagUsages(), " \n"))
	}
	section("Options", own)
	for _, g := range optionGroups {
		if fs := sets[g]; fs != nil {
			section(g+" options", fs)
		}
	}
	return b.String()
}

// usageTemplate is cobra's default with the options grouped, and called
// options (as every message calls them; "flags" are feature flags here).
const usageTemplate = `Usage:{{if .Runnable}}
  {{useLine .}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

{{groupedOptions .}}{{end}}{{if .HasAvailableInheritedFlags}}

Global options:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

func init() {
	// Template functions are cobra-global; registered once, before any
	// command tree is built.
	cobra.AddTemplateFuncs(map[string]any{
		"groupedOptions": groupedOptions,
		"useLine": func(c *cobra.Command) string {
			line := c.UseLine()
			if s, ok := strings.CutSuffix(line, " [flags]"); ok {
				return s + " [options]"
			}
			return line
		},
	})
}
