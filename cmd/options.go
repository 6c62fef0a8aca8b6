package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Errors about command-line options. pflag says "flag" for what this CLI
// calls an option: here a flag is a feature flag, so every message about
// argv says "option" (issue 16). A mistyped option is answered with the
// closest one, as a mistyped command is; an option given before the
// command it belongs to is told to go after it.

// optionError turns pflag's error for c's argv into one that says what
// to type instead. args is the whole argv, for finding the command that
// an option given too early belongs to.
func optionError(c *cobra.Command, args []string, err error) error {
	hint := fmt.Sprintf("see '%s --help'", c.CommandPath())
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "unknown flag: --"):
		name := strings.TrimPrefix(msg, "unknown flag: --")
		if target := commandOfOption(c, args, name); target != nil {
			return &exitError{code: ExitUsage,
				err:  fmt.Errorf("option --%s goes after the command: %s --%s", name, target.CommandPath(), name),
				hint: fmt.Sprintf("--%s is an option of '%s', not of '%s'", name, target.CommandPath(), c.CommandPath())}
		}
		if near := closestOption(c, name); near != "" {
			hint = "did you mean --" + near + "?"
		}
		return &exitError{code: ExitUsage, err: fmt.Errorf("unknown option --%s", name), hint: hint}
	case strings.HasPrefix(msg, "unknown shorthand flag: "):
		// "unknown shorthand flag: 'x' in -xyz"
		rest := strings.TrimPrefix(msg, "unknown shorthand flag: ")
		short, in, _ := strings.Cut(rest, " in ")
		name := "-" + strings.Trim(short, "'")
		if in != name {
			name += " (in " + in + ")"
		}
		return &exitError{code: ExitUsage, err: fmt.Errorf("unknown option %s", name), hint: hint}
	case strings.HasPrefix(msg, "flag needs an argument: "):
		// "flag needs an argument: --user" or "... 'p' in -p"
		name := strings.TrimPrefix(msg, "flag needs an argument: ")
		if short, in, ok := strings.Cut(name, " in "); ok {
			name = "-" + strings.Trim(short, "'") + " (in " + in + ")"
		}
		return &exitError{code: ExitUsage, err: fmt.Errorf("option %s needs a value", name), hint: hint}
	case strings.HasPrefix(msg, "invalid argument "):
		// `invalid argument "x" for "-t, --timeout" flag: why`
		msg = strings.Replace(strings.TrimPrefix(msg, "invalid argument "), " flag: ", ": ", 1)
		return &exitError{code: ExitUsage, err: fmt.Errorf("invalid value %s", msg), hint: hint}
	case strings.HasPrefix(msg, "bad flag syntax: "):
		return &exitError{code: ExitUsage, err: fmt.Errorf("bad option syntax: %s", strings.TrimPrefix(msg, "bad flag syntax: ")), hint: hint}
	}
	return &exitError{code: ExitUsage, err: err, hint: hint}
}

// commandOfOption finds the subcommand of c named later in args that has
// the option name, when c does not: `experiment --offline flags list`
// meant `experiment flags list --offline`. Cobra took "flags" for the
// value of --offline there, so args are walked here: each word that names
// a subcommand of the command reached so far goes one level down.
func commandOfOption(c *cobra.Command, args []string, name string) *cobra.Command {
	target := c.Root()
	for _, a := range args {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		for _, sub := range target.Commands() {
			if sub.Name() == a || sub.HasAlias(a) {
				target = sub
				break
			}
		}
	}
	if target == c || !strings.HasPrefix(target.CommandPath(), c.CommandPath()+" ") {
		return nil
	}
	if target.Flags().Lookup(name) == nil && target.InheritedFlags().Lookup(name) == nil {
		return nil
	}
	return target
}

// closestOption is c's option nearest to a mistyped name: the same once
// "_" is read as "-" and case ignored (--user_id), or within a small edit
// distance (--userid, --flag). Hidden options are not suggested.
func closestOption(c *cobra.Command, name string) string {
	want := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	best, bestD := "", 3
	if len(want) <= 4 {
		bestD = 2 // one edit in a short name: --flag, not --out for --opt
	}
	visit := func(fl *pflag.Flag) {
		if fl.Hidden {
			return
		}
		d := editDistance(want, fl.Name)
		if d < bestD || (d == bestD && best != "" && fl.Name < best) {
			best, bestD = fl.Name, d
		}
	}
	c.Flags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	return best
}
