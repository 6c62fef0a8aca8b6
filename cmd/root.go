// Package cmd is the experiment command line: thin cobra commands that parse
// flags, call the SDK packages under pkg/, and render their results.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/cli"
)

// Factory carries what commands share, injected so tests can replace it.
type Factory struct {
	IO  *cli.IOStreams
	Now func() time.Time
	// ConfigPath and Profile are --config and --profile.
	ConfigPath, Profile string

	loadedConfig *configFile
	configErr    error
	// args is the command line as given, for errors about an option placed
	// before its command (cobra keeps its own copy to itself).
	args []string
	// tryOffline is how the running command would run on the bundled
	// flags, for the hint of an error that found no flag source.
	tryOffline string
}

// Main runs the command line and returns the process exit code. It is the
// only place that turns errors into exit codes and error lines.
func Main(ctx context.Context, args []string, io *cli.IOStreams) int {
	streams := *io
	out := &outputWriter{w: io.Out}
	streams.Out = out
	if io.In != nil {
		// Every read of stdin ends with ctx: a command waiting for input
		// from a stalled pipe or a terminal still stops at Ctrl-C.
		streams.In = newCancelReader(ctx, io.In)
	}
	f := &Factory{IO: &streams, Now: time.Now, args: args}
	root := NewRootCmd(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if out.err != nil && (err == nil || exitCode(ctx, err) == ExitCheckFailed) {
		// Output that did not arrive is a failure whatever the command
		// thought of its work: a check's verdict that was never seen too.
		err = ioError(fmt.Errorf("writing output: %w", out.err))
	}
	code := exitCode(ctx, err)
	var se *silentError
	if err != nil && !errors.As(err, &se) {
		if code == ExitInterrupted {
			fmt.Fprintln(io.ErrOut, "experiment: interrupted")
		} else {
			fmt.Fprint(io.ErrOut, errorLines(err))
		}
	}
	return code
}

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:   "experiment",
		Short: "Evaluate Amplitude Experiment feature flags and experiments",
		Long: "experiment evaluates Amplitude Experiment flags locally, exactly as Amplitude's engine does,\n" +
			"and shows which variant a user gets and why.",
		SilenceErrors: true,
		SilenceUsage:  true,
		// Every setting is resolved, into the options of the command, and
		// checked before any command runs (settings.go; a subcommand with a
		// PersistentPreRunE of its own must call this too).
		PersistentPreRunE: func(c *cobra.Command, _ []string) error { return f.resolveSettings(c) },
		// Checked here rather than by cobra, so that an option of a
		// subcommand given before it (`experiment --offline flags list`)
		// reaches the option error, which says where it goes, instead of
		// cobra's "unknown command" for the word after it.
		Args: unknownCommand,
		RunE: func(c *cobra.Command, _ []string) error {
			if showVersion {
				return printVersion(f.IO.Out)
			}
			return c.Help()
		},
	}
	// The root's own --version, as gh and kubectl have; `evaluate
	// --version` stays the user's app version (a local option there).
	root.Flags().BoolVar(&showVersion, "version", false, "print the version (as 'experiment version')")
	root.PersistentFlags().StringVar(&f.ConfigPath, "config", "", "config file (env EXPERIMENT_CONFIG; default: the user config dir + /experiment/config.yaml)")
	root.PersistentFlags().StringVar(&f.Profile, "profile", "", "config file profile to use (env EXPERIMENT_PROFILE)")
	root.PersistentFlags().BoolVar(&f.IO.NoColor, "no-color", false, "no colour in output (also NO_COLOR, or when not a terminal)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return optionError(c, f.args, err) })
	root.AddCommand(
		newEvaluateCmd(f, nil),
		newExplainCmd(f, nil),
		newFlagsCmd(f),
		newWatchCmd(f, nil),
		newCohortsCmd(f, nil),
		newAssertCmd(f, nil),
		newTestCmd(f, nil),
		newFetchCmd(f, nil),
		newCookieCmd(f),
		newVersionCmd(f),
		newConfigCmd(f),
		newServeCmd(f, nil),
		newLintCmd(f, nil),
		newFindUserCmd(f, nil),
		newDiffCmd(f, nil),
	)
	registerCompletions(root)
	// The streams first: cobra's completion command keeps the writer it
	// sees when it is made.
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	// Cobra adds `completion` only when it executes; adding it now puts it
	// under the same unknown-subcommand rule (`completion tcsh` is exit 2).
	root.InitDefaultCompletionCmd()
	// --jq on every command with JSON output (jq.go).
	registerJQ(root, f.IO)
	// Options grouped under headings in --help (help.go).
	annotateOptionGroups(root)
	root.SetUsageTemplate(usageTemplate)
	for _, c := range root.Commands() {
		if c.HasSubCommands() {
			rejectUnknownSubcommands(c)
		}
	}
	return root
}

// unknownCommand is cobra's check of the root's arguments, with the same
// suggestion of the nearest command.
func unknownCommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := fmt.Sprintf("see '%s --help'", c.CommandPath())
	if near := c.SuggestionsFor(args[0]); len(near) > 0 {
		hint = "did you mean " + strings.Join(near, " or ") + "?"
	}
	return &exitError{code: ExitUsage, err: fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath()), hint: hint}
}

// rejectUnknownSubcommands makes `experiment cookie bogus` a usage error:
// cobra only checks subcommand names on the root.
func rejectUnknownSubcommands(c *cobra.Command) {
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return &exitError{code: ExitUsage, err: fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()),
				hint: fmt.Sprintf("see '%s --help'", cmd.CommandPath())}
		}
		return nil
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// argsUsage is a cobra argument check with the usage exit code.
func argsUsage(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return &exitError{code: ExitUsage, err: err, hint: fmt.Sprintf("see '%s --help'", c.CommandPath())}
		}
		return nil
	}
}

// needArgs checks a command's positional arguments, between min and max
// (max < 0: no limit), and says what they are when they are missing or
// extra, with the command's usage line: cobra's "accepts 1 arg(s),
// received 0" tells a newcomer neither what to give nor where.
func needArgs(min, max int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		usage := c.Use
		if c.HasParent() {
			usage = c.Parent().CommandPath() + " " + c.Use
		}
		name := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
		var err error
		switch {
		case len(args) < min:
			err = fmt.Errorf("%s needs %s: %s", name, what, usage)
		case max >= 0 && len(args) > max:
			err = fmt.Errorf("unexpected argument %q: %s takes %s: %s", args[max], name, what, usage)
		default:
			return nil
		}
		return &exitError{code: ExitUsage, err: err, hint: fmt.Sprintf("see '%s --help'", c.CommandPath())}
	}
}

// outputWriter remembers the first error writing stdout, so that commands
// that print and forget (help, version, completion scripts, a test's
// summary) still end with exit 6 when stdout is a full disk or a pipe
// whose reader has gone (EPIPE: System keeps SIGPIPE from killing us).
type outputWriter struct {
	w   io.Writer
	err error
}

func (o *outputWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil && o.err == nil {
		o.err = err
	}
	return n, err
}
