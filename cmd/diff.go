package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/internal/flagdiff"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

type diffOptions struct {
	IO        *cli.IOStreams
	Source    flagSource // the server settings for `live`, and --cohorts
	Old, New  string
	UsersFile string
	Examples  int
	Output    string
}

// liveSide is the argument that means the deployment's flags now.
const liveSide = "live"

func newDiffCmd(f *Factory, runF func(context.Context, *diffOptions) error) *cobra.Command {
	opts := &diffOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "Show what changed between two flag-config snapshots, and who changes variant",
		Long: "Compare two flag-config snapshots flag by flag: flags added and removed; for changed flags the\n" +
			"variants (values, payloads), segments (matched by content: a reorder reads as a move), conditions,\n" +
			"allocations with the share of users each variant gains or loses, salt changes (which re-bucket\n" +
			"everyone), dependencies and metadata. OLD and NEW are files, - for stdin (one of them), or live:\n" +
			"the deployment's flags now, downloaded with the deployment key (write ./live for a file named\n" +
			"live). With --users FILE every user is evaluated against both, on all cores, and the report adds\n" +
			"per flag how many users change variant, from which to which, with example ids; a flag that moves\n" +
			"only because a flag it depends on changed says so.\n\n" +
			"Exit codes: 0 nothing changed; 1 something did; others as for every command.",
		Example: `  experiment flags pull --out flags.json   # then edit it, or pull again later
  experiment diff live flags.json --users sample.jsonl
  experiment diff old.json new.json -o json --jq '.flags[].key'`,
		Args: needArgs(2, 2, "OLD and NEW"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Old, opts.New = args[0], args[1]
			if opts.Old == "-" && opts.New == "-" {
				return usageError("OLD and NEW are both -: stdin holds one of them")
			}
			if opts.Examples < 0 {
				return usageError("--examples %d: want 0 or more", opts.Examples)
			}
			if opts.Source.cohortsDir != "" && opts.UsersFile == "" {
				return usageError("--cohorts: only with --users (the diff itself evaluates nobody)")
			}
			if c.Flags().Changed("examples") && opts.UsersFile == "" {
				return usageError("--examples: only with --users (the ids are of users who change variant)")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runDiff(c.Context(), opts)
		},
	}
	fl := c.Flags()
	// `live` downloads the flags now: no cache, no stream, no cohort sync
	// (--cohorts gives the cohorts, to both sides alike).
	opts.Source.server.registerWithout(f, fl, "offline", "stream-server-url")
	fl.StringVar(&opts.Source.cohortsDir, "cohorts", "", "with --users: directory of cohort files <cohortId>.json, for both sides")
	fl.StringVar(&opts.UsersFile, "users", "", "JSON Lines file of users (or - for stdin) to evaluate against both sides")
	fl.IntVar(&opts.Examples, "examples", 3, "with --users: example user ids per change of variant")
	registerOutput(fl, &opts.Output, reportOutput, "table", "json", "yaml")
	return c
}

// diffSide is one side of a diff: its flags decoded, and the document
// they came from, for an evaluation.
type diffSide struct {
	name  string
	data  []byte
	flags []*eval.Flag
}

func runDiff(ctx context.Context, opts *diffOptions) error {
	if opts.UsersFile == "-" && (opts.Old == "-" || opts.New == "-") {
		return usageError("--users - and a side read from -: stdin holds one of them")
	}
	old, err := opts.readSide(ctx, opts.Old)
	if err != nil {
		return err
	}
	next, err := opts.readSide(ctx, opts.New)
	if err != nil {
		return err
	}
	out := &diffOutput{Old: old.name, New: next.name, Report: flagdiff.Compare(old.flags, next.flags)}
	out.Changed = out.Report.HasChanges()
	if opts.UsersFile != "" {
		if out.Impact, err = opts.impact(ctx, old, next, out.Report); err != nil {
			return err
		}
	}
	if opts.Output == "table" {
		err = newDiffPrinter(opts.IO).print(opts.IO.Out, out)
	} else {
		err = writeData(opts.IO.Out, opts.Output, out)
	}
	if err := writeOutput(err); err != nil {
		return err
	}
	if out.Changed {
		return &silentError{code: ExitCheckFailed}
	}
	return nil
}

// diffOutput is `diff -o json`: docs/cli.md#diff documents it.
type diffOutput struct {
	Old     string `json:"old"`
	New     string `json:"new"`
	Changed bool   `json:"changed"`
	*flagdiff.Report
	Impact *diffImpact `json:"impact,omitempty"`
}

// readSide reads and decodes one side: a file, stdin, or live.
func (opts *diffOptions) readSide(ctx context.Context, arg string) (*diffSide, error) {
	var data []byte
	var name string
	var err error
	switch arg {
	case liveSide:
		name = "live"
		data, err = opts.pullLive(ctx)
	case "-":
		name = "stdin"
		src := flagSource{flagsFile: "-"}
		data, _, err = src.readFlags(ctx, opts.IO.In)
	default:
		name = arg
		if data, err = readInput(ctx, arg, maxFlagsBytes); err != nil {
			err = namedFileError("", arg, err)
		}
	}
	if err != nil {
		return nil, err
	}
	flags, err := eval.DecodeFlags(data)
	if err != nil {
		return nil, flagsDocError(name, err)
	}
	warnRedefined(opts.IO.ErrOut, name, flags)
	return &diffSide{name: name, data: data, flags: flags}, nil
}

// warnRedefined says which flags a side defines twice: the diff compares
// the later definition, the one the engine serves, and the earlier one is
// not looked at. The words are the engine's, as evaluate prints them.
func warnRedefined(w io.Writer, name string, flags []*eval.Flag) {
	seen := make(map[string]bool, len(flags))
	for i, f := range flags {
		if f == nil {
			continue
		}
		if seen[f.Key] {
			fmt.Fprintf(w, "experiment: warning: %s: flags[%d]: flag %q is defined again; the later definition wins\n", name, i, f.Key)
		}
		seen[f.Key] = true
	}
}

// pullLive downloads the deployment's flags as flags pull does (and
// refreshes the cache with them): the flags now, never the cache's.
func (opts *diffOptions) pullLive(ctx context.Context) ([]byte, error) {
	if opts.Source.server.deploymentKey == "" {
		return nil, withHint(usageError("live: no deployment key: pass --deployment-key or set EXPERIMENT_DEPLOYMENT_KEY"),
			"or compare a file written by 'experiment flags pull --out FILE'")
	}
	key, cfg, err := opts.Source.server.localConfig(opts.IO)
	if err != nil {
		return nil, err
	}
	client, err := experiment.NewLocalClient(key, cfg)
	if err != nil {
		return nil, usageError("%v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, opts.Source.server.timeout)
	defer cancel()
	var buf bytes.Buffer
	if _, err := client.PullFlagConfigs(ctx, &buf); err != nil {
		if errors.As(err, new(*experiment.FlagsError)) {
			return nil, pullError(err, key)
		}
		return nil, ioError(err)
	}
	return buf.Bytes(), nil
}

// loadSets compiles both sides for evaluation, with the cohorts of
// --cohorts read once for both (a cohort file can hold millions of ids,
// and a missing one is said once); what the engine tolerates is a
// warning, as for evaluate.
func (opts *diffOptions) loadSets(sides ...*diffSide) ([]*experiment.FlagSet, error) {
	sets := make([]*experiment.FlagSet, len(sides))
	var ids []string
	for i, side := range sides {
		fs, err := experiment.LoadFlagSet(side.data, nil)
		if err != nil {
			return nil, inputError(fmt.Errorf("%s: %w", side.name, err))
		}
		sets[i] = fs
		ids = append(ids, fs.CohortReferences().All()...)
	}
	slices.Sort(ids)
	store, err := opts.Source.loadCohorts(opts.Source.server.f, slices.Compact(ids))
	if err != nil {
		return nil, err
	}
	for i, side := range sides {
		if store != nil {
			sets[i] = sets[i].WithCohorts(store)
		}
		if err := opts.checkSet(side, sets[i]); err != nil {
			return nil, err
		}
	}
	return sets, nil
}

// checkSet warns of what the engine tolerates in a side.
func (opts *diffOptions) checkSet(side *diffSide, fs *experiment.FlagSet) error {
	// A flag defined twice was said when the side was read.
	problems := slices.DeleteFunc(slices.Clone(fs.Snapshot().Problems()),
		func(p eval.Problem) bool { return p.Kind == eval.ProblemDuplicateFlag })
	if err := opts.Source.reportProblems(opts.Source.server.f, side.name, problems); err != nil {
		return err
	}
	// Without --cohorts every member is a non-member on both sides, and a
	// change to a cohort's segment would read as moving nobody: warn, as
	// evaluate does. The side is named as a file: diff never syncs cohorts.
	src := opts.Source
	src.flagsFile = side.name
	return src.reportNoMemberships(fs, nil)
}
