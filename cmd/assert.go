package cmd

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// expectation is what a check wants of one flag: a variant key, a value,
// or no result at all.
type expectation struct {
	Flag    string
	Variant string
	Value   *string
	Absent  bool
}

func (x expectation) String() string {
	switch {
	case x.Absent:
		return "no variant"
	case x.Value != nil:
		return "value " + strconv.Quote(*x.Value)
	}
	return "variant " + strconv.Quote(x.Variant)
}

// parseExpectation reads FLAG=VARIANT, FLAG=value:V or FLAG=absent.
func parseExpectation(arg string) (expectation, error) {
	flag, want, ok := strings.Cut(arg, "=")
	if !ok || flag == "" {
		return expectation{}, usageError("%q: want FLAG=VARIANT, FLAG=value:VALUE or FLAG=absent", arg)
	}
	x := expectation{Flag: flag}
	switch {
	case want == "absent":
		x.Absent = true
	case strings.HasPrefix(want, "value:"):
		v := strings.TrimPrefix(want, "value:")
		x.Value = &v
	default:
		x.Variant = want
	}
	return x, nil
}

// check compares a flag's result (nil when absent) with the expectation.
func (x expectation) check(r *eval.Result) bool {
	switch {
	case x.Absent:
		return r == nil
	case r == nil:
		return false
	case x.Value != nil:
		return r.Value == *x.Value
	}
	return r.Key == x.Variant
}

// describeResult says what a flag actually gave, with the deciding segment.
func describeResult(r *eval.Result, fs *experiment.FlagSet) string {
	if r == nil {
		return "no variant"
	}
	s := fmt.Sprintf("variant %q", r.Key)
	if r.Value != r.Key && r.Value != "" {
		s += fmt.Sprintf(" (value %q)", r.Value)
	}
	if f := fs.Snapshot().Flag(r.FlagKey); f != nil && r.Segment < len(f.Segments) {
		name, _ := f.Segments[r.Segment].Metadata["segmentName"].(string)
		s += fmt.Sprintf(" from segment %d %q", r.Segment, name)
	}
	return s
}

type assertOptions struct {
	IO           *cli.IOStreams
	Source       flagSource
	User         userFlags
	Expectations []expectation
	cmd          *cobra.Command
}

func newAssertCmd(f *Factory, runF func(context.Context, *assertOptions) error) *cobra.Command {
	opts := &assertOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "assert FLAG=VARIANT|FLAG=value:VALUE|FLAG=absent...",
		Short: "Exit 0 when the user gets every named variant, 1 with a diff when not",
		Long: "Check flag states in CI. Exit codes: 0 every expectation held; 1 some did not (one line\n" +
			"each on stdout); 2 usage; 3 invalid flags or user; so a job can tell a wrong flag from a\n" +
			"failure to evaluate.",
		Example: `  experiment assert new-editor=on dark-mode=off --flags testdata/flags.json --user @testdata/user.json
  experiment assert attachment-size-limit-mb=value:250 offline-mode=absent --flags flags.json --user-id u1`,
		Args: needArgs(1, -1, "at least one FLAG=VARIANT"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.cmd = c
			for _, a := range args {
				x, err := parseExpectation(a)
				if err != nil {
					return err
				}
				opts.Expectations = append(opts.Expectations, x)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runAssert(c.Context(), opts)
		},
	}
	opts.Source.register(f, c.Flags(), oneShot...)
	opts.User.register(c.Flags())
	c.ValidArgsFunction = completeAssertions
	return c
}

func runAssert(ctx context.Context, opts *assertOptions) error {
	keys := make([]string, len(opts.Expectations))
	for i, x := range opts.Expectations {
		keys[i] = x.Flag
	}
	fs, err := opts.Source.loadEvaluating(ctx, keys)
	if err != nil {
		return err
	}
	if err := checkKeys(fs, keys, opts.Source.name()); err != nil {
		return err
	}
	for _, x := range opts.Expectations {
		if err := checkVariant(fs, x); err != nil {
			return &exitError{code: ExitUsage, err: err, hint: "FLAG=VARIANT names a variant key; FLAG=value:VALUE checks the value, FLAG=absent no variant"}
		}
	}
	user, err := opts.User.build(opts.cmd.Flags(), opts.IO.In)
	if err != nil {
		return err
	}
	results, err := fs.EvaluateResults(user, keys, nil)
	if err != nil {
		return evalError(opts.Source.name(), err)
	}
	failed := 0
	scheme := opts.IO.OutScheme()
	for _, x := range opts.Expectations {
		r := findResult(results, x.Flag)
		if x.check(r) {
			if opts.IO.OutTTY {
				fmt.Fprintf(opts.IO.Out, "%s %s: %s\n", scheme.Matched("✓"), x.Flag, x)
			}
			continue
		}
		failed++
		fmt.Fprintf(opts.IO.Out, "%s %s: want %s, got %s\n", scheme.Failed("✗"), x.Flag, x, describeResult(r, fs))
	}
	if failed > 0 {
		return &silentError{code: ExitCheckFailed}
	}
	return nil
}

// checkVariant refuses an expectation of a variant the flag does not have:
// it could never hold, and is a typo far more often than a wish. The
// error lists the flag's variants and the nearest one.
func checkVariant(fs *experiment.FlagSet, x expectation) error {
	f := fs.Snapshot().Flag(x.Flag)
	if f == nil || x.Absent || x.Value != nil {
		return nil
	}
	if _, ok := f.Variants[x.Variant]; ok {
		return nil
	}
	variants := slices.Sorted(maps.Keys(f.Variants))
	err := fmt.Errorf("flag %q has no variant %q (its variants: %s)", x.Flag, x.Variant, strings.Join(variants, ", "))
	if near := closestKey(x.Variant, variants); near != "" {
		err = fmt.Errorf("%w; did you mean %q?", err, near)
	}
	return err
}

func findResult(results []eval.Result, flag string) *eval.Result {
	for i := range results {
		if results[i].FlagKey == flag {
			return &results[i]
		}
	}
	return nil
}
