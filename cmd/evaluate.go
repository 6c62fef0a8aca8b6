package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

type evaluateOptions struct {
	IO          *cli.IOStreams
	Source      flagSource
	User        userFlags
	UsersFile   string
	Output      string
	Stats       bool
	SkipInvalid bool
	Progress    bool
	Keys        []string
	Tracking    trackingFlags
	exposures   *exposureSink
	userGiven   bool
	cmd         *cobra.Command
}

func newEvaluateCmd(f *Factory, runF func(context.Context, *evaluateOptions) error) *cobra.Command {
	opts := &evaluateOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "evaluate [FLAG_KEY...]",
		Short: "Evaluate flags locally for one user or a file of users",
		Long: "Evaluate flags locally, offline, exactly as Amplitude's engine does.\n\n" +
			"With FLAG_KEYs, only those flags are shown (their dependencies are still evaluated).\n" +
			"One user comes from the user flags; many come from --users FILE (JSON Lines), and then\n" +
			"the output is one line per user, in input order.",
		Example: `  experiment evaluate --flags testdata/flags.json --user @testdata/user.json
  experiment evaluate --flags flags.json --user-id u1 -p plan=pro new-editor
  experiment evaluate --flags flags.json --users users.jsonl -o jsonl --stats`,
		RunE: func(c *cobra.Command, args []string) error {
			opts.Keys = args
			opts.cmd = c
			opts.userGiven = opts.User.given(c.Flags())
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runEvaluate(c.Context(), opts)
		},
	}
	fl := c.Flags()
	opts.Source.register(f, fl, oneShot...)
	opts.User.register(fl)
	opts.Tracking.register(fl)
	fl.StringVar(&opts.UsersFile, "users", "", "evaluate many users: a JSON Lines file, or - for stdin")
	registerBatchOutput(fl, &opts.Output, func() (bool, bool) { return opts.UsersFile != "", opts.Stats })
	fl.BoolVar(&opts.Stats, "stats", false, "with --users: per flag and variant counts and shares; on a terminal or with -o table only this summary, otherwise on stderr after the data")
	fl.BoolVar(&opts.SkipInvalid, "skip-invalid", false, "with --users: report and skip lines that are not user objects instead of failing")
	fl.BoolVar(&opts.Progress, "progress", true, "with --users: show a progress bar on stderr when it is a terminal")
	c.ValidArgsFunction = completeFlagKeys
	return c
}

func (o *evaluateOptions) validate() error {
	if o.UsersFile != "" {
		if o.userGiven {
			return usageError("--users cannot be combined with a single user's flags (--user, --user-id, -p, ...)")
		}
		// -o table with --stats asks for the summary table alone, which
		// is what --stats shows on a terminal: the same request both ways.
		if o.Output == "yaml" || (o.Output == "table" && !o.Stats) {
			return withHint(usageError("--users writes jsonl or json, not %s", o.Output), "use --stats for a summary table")
		}
		if o.UsersFile == "-" && (o.Source.flagsFile == "-" || o.User.user == "-") {
			return usageError("only one of --users and --flags can read stdin")
		}
	} else if o.Stats || o.SkipInvalid {
		return usageError("--stats and --skip-invalid need --users")
	}
	if o.Source.flagsFile == "-" && o.User.user == "-" {
		return usageError("only one of --user and --flags can read stdin")
	}
	return nil
}

func runEvaluate(ctx context.Context, opts *evaluateOptions) (err error) {
	fs, err := opts.Source.loadEvaluating(ctx, opts.Keys)
	if err != nil {
		return err
	}
	if err := checkKeys(fs, opts.Keys, opts.Source.name()); err != nil {
		return err
	}
	if opts.exposures, err = opts.Tracking.open(opts.IO, opts.Source.server.apiKey, opts.Source.server.serverZone); err != nil {
		return err
	}
	defer func() {
		if cerr := opts.exposures.close(ctx, err != nil); err == nil {
			err = cerr
		}
	}()
	if opts.UsersFile != "" {
		return runBatch(ctx, opts, fs)
	}
	user, err := opts.User.build(opts.cmd.Flags(), opts.IO.In)
	if err != nil {
		return err
	}
	if !opts.userGiven {
		warnEmptyUser(opts.IO)
	}
	results, err := fs.EvaluateResults(user, opts.Keys, nil)
	if err != nil {
		return evalError(opts.Source.name(), err)
	}
	opts.exposures.track(user, onlyRequested(slices.Clone(results), opts.Keys))
	return renderVariants(opts.IO, opts.Output, onlyRequested(results, opts.Keys))
}

// summaryOnly reports whether a batch prints only its --stats summary, on
// stdout: --stats on a terminal without -o, or with -o table (outputFlag
// resolves the one to the other). On a terminal the per-user JSON (a line
// per user, thousands of them) would scroll the summary away, and nobody
// reads it there; a pipe keeps the data on stdout and the summary on
// stderr, as scripts expect.
func (o *evaluateOptions) summaryOnly() bool {
	return o.UsersFile != "" && o.Stats && o.Output == "table"
}

// evalError reports an evaluation failure (a dependency cycle) as bad input.
func evalError(file string, err error) error {
	var ce *eval.CycleError
	if errors.As(err, &ce) {
		return withHint(inputError(fmt.Errorf("%s: %w", file, err)), "name flags outside the cycle, or fix their dependencies")
	}
	return err
}

// checkKeys rejects unknown flag keys: the SDK ignores them, but on the
// command line an unknown key is almost always a typo.
func checkKeys(fs *experiment.FlagSet, keys []string, file string) error {
	snap := fs.Snapshot()
	for _, k := range keys {
		if snap.Flag(k) != nil {
			continue
		}
		err := usageError("unknown flag %q: not in %s", k, file)
		if near := closestKey(k, snap.Keys()); near != "" {
			return withHint(err, fmt.Sprintf("did you mean %q?", near))
		}
		return withHint(err, "see 'experiment flags list'")
	}
	return nil
}

// onlyRequested keeps the named flags' results (dependencies are evaluated
// but not shown); all results when no flag is named.
func onlyRequested(results []eval.Result, keys []string) []eval.Result {
	if len(keys) == 0 {
		return results
	}
	return slices.DeleteFunc(results, func(r eval.Result) bool { return !slices.Contains(keys, r.FlagKey) })
}

// closestKey suggests a key within a small edit distance.
func closestKey(k string, keys []string) string {
	best, bestD := "", 4
	for _, c := range keys {
		if d := editDistance(strings.ToLower(k), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance counts the single-character edits (of runes, not bytes)
// between a and b; a well-used library rather than another copy of the
// algorithm.
func editDistance(a, b string) int { return levenshtein.ComputeDistance(a, b) }
