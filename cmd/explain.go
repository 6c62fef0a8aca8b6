package cmd

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/eval"
)

type explainOptions struct {
	IO     *cli.IOStreams
	Source flagSource
	User   userFlags
	Output string
	All    bool
	Keys   []string
	cmd    *cobra.Command
}

func newExplainCmd(f *Factory, runF func(context.Context, *explainOptions) error) *cobra.Command {
	opts := &explainOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "explain FLAG_KEY... | --all",
		Short: "Show why a user gets a variant: segments, conditions, bucketing",
		Long: "Evaluate flags for one user and show the whole decision: the dependency results used,\n" +
			"each segment in order, each condition with the user's value and whether it matched, and\n" +
			"for bucketed segments the hashed string, the murmur3 hash and the ranges it fell in.",
		Example: `  experiment explain new-editor --flags testdata/flags.json --user @testdata/user.json
  experiment explain --all --flags flags.json --user-id u1 -o json`,
		RunE: func(c *cobra.Command, args []string) error {
			opts.Keys, opts.cmd = args, c
			if len(args) == 0 && !opts.All {
				return withHint(usageError("name at least one flag, or --all"), "see 'experiment explain --help'")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runExplain(c.Context(), opts)
		},
	}
	opts.Source.register(f, c.Flags(), oneShot...)
	opts.User.register(c.Flags())
	c.Flags().BoolVar(&opts.All, "all", false, "explain every flag")
	registerOutput(c.Flags(), &opts.Output, reportOutput, "table", "json", "yaml")
	c.ValidArgsFunction = completeFlagKeys
	return c
}

func runExplain(ctx context.Context, opts *explainOptions) error {
	fs, err := opts.Source.loadEvaluating(ctx, opts.Keys)
	if err != nil {
		return err
	}
	if err := checkKeys(fs, opts.Keys, opts.Source.name()); err != nil {
		return err
	}
	user, err := opts.User.build(opts.cmd.Flags(), opts.IO.In)
	if err != nil {
		return err
	}
	if !opts.User.given(opts.cmd.Flags()) {
		warnEmptyUser(opts.IO)
	}
	keys := opts.Keys
	if opts.All {
		keys = nil
	}
	trace, err := fs.Explain(user, keys...)
	if err != nil {
		return evalError(opts.Source.name(), err)
	}
	if len(keys) > 0 {
		trace.Flags = slices.DeleteFunc(trace.Flags, func(ft eval.FlagTrace) bool { return !slices.Contains(keys, ft.Key) })
	}
	if opts.Output != "table" {
		err = writeData(opts.IO.Out, opts.Output, trace)
	} else {
		err = newTracePrinter(opts.IO).print(opts.IO.Out, trace)
	}
	if err != nil {
		return ioError(fmt.Errorf("writing output: %w", err))
	}
	return nil
}

// tracePrinter renders a trace as an indented tree: matched conditions
// green, failed red, the deciding segment bold, segments never reached dim.
type tracePrinter struct{ *textReport }

func newTracePrinter(ios *cli.IOStreams) *tracePrinter { return &tracePrinter{newTextReport(ios)} }

func (p *tracePrinter) print(w io.Writer, t *eval.Trace) error {
	for i, ft := range t.Flags {
		if i > 0 {
			p.blank()
		}
		p.flag(ft)
	}
	return p.writeTo(w)
}

func (p *tracePrinter) flag(ft eval.FlagTrace) {
	outcome := p.scheme.Failed("no variant") + " (" + string(ft.Reason) + ")"
	if !ft.Absent {
		outcome = p.scheme.Matched(ft.Variant)
		if ft.Value != "" && ft.Value != ft.Variant {
			outcome += " = " + strconv.Quote(ft.Value)
		}
		outcome += fmt.Sprintf(" from segment %d %q", ft.Segment, ft.Segments[ft.Segment].Name)
	}
	p.line(0, "%s → %s", p.scheme.Key(ft.Key), outcome)
	for _, d := range ft.Dependencies {
		switch {
		case d.Missing:
			p.line(1, "depends on %s: %s", d.Key, p.scheme.Dimmed("not in the config (reads as no result)"))
		case d.Absent:
			p.line(1, "depends on %s: %s", d.Key, p.scheme.Dimmed("no result"))
		default:
			p.line(1, "depends on %s: %s", d.Key, d.Variant)
		}
	}
	for _, s := range ft.Segments {
		p.segment(s, s.Index == ft.Segment)
	}
	if ft.Payload != nil {
		p.line(1, "payload: %s", jsonText(ft.Payload))
	}
}

func (p *tracePrinter) segment(s eval.SegmentTrace, deciding bool) {
	title := fmt.Sprintf("segment %d %q", s.Index, s.Name)
	switch {
	case !s.Reached:
		p.line(1, "%s", p.scheme.Dimmed("· "+title+" (not reached)"))
		return
	case deciding:
		p.line(1, "%s %s", p.scheme.Matched("✓"), p.scheme.Strong(title))
	case s.Matched:
		p.line(1, "%s %s", p.scheme.Failed("✗"), title+" matched, but variant "+strconv.Quote(s.Variant)+" does not exist")
	default:
		p.line(1, "%s %s", p.scheme.Failed("✗"), title)
	}
	if s.Always {
		p.line(2, "%s", p.scheme.Dimmed("no conditions: everyone matches"))
	}
	for gi, group := range s.Conditions {
		if gi > 0 {
			p.line(2, "%s", p.scheme.Dimmed("or"))
		}
		for _, c := range group {
			p.condition(c)
		}
	}
	if s.Bucket != nil {
		p.bucket(s.Bucket)
	}
	if s.Matched && !s.VariantMissing {
		p.line(2, "→ variant %s", s.Variant)
	}
}

func (p *tracePrinter) condition(c eval.ConditionTrace) {
	mark := p.scheme.Matched("✓")
	if !c.Matched {
		mark = p.scheme.Failed("✗")
	}
	value := "absent"
	if !c.Absent {
		value = strconv.Quote(c.Value)
		if c.List != nil {
			value = "list " + c.Value
		}
	}
	op := c.Op
	if c.UnknownOperator {
		op += " (unknown operator: never matches)"
	}
	p.line(2, "%s %s %s %s %s", mark, strings.Join(c.Selector, "."), op, jsonText(c.Values), p.scheme.Dimmed("(user: "+value+")"))
}

func (p *tracePrinter) bucket(b *eval.BucketTrace) {
	sel := strings.Join(b.Selector, ".")
	if b.Absent {
		p.line(2, "bucket by %s: %s", sel, p.scheme.Dimmed("no value, so no bucketing"))
		return
	}
	p.line(2, "bucket by %s = %q", sel, b.Value)
	p.line(3, "murmur3(%q) = %d", b.Hashed, b.Hash)
	if b.AllocationIndex < 0 {
		p.line(3, "allocation %d, distribution %d: %s", b.Allocation, b.Distribution, p.scheme.Dimmed("no allocation and distribution hit: segment variant"))
		return
	}
	p.line(3, "allocation %d in [%d, %d) of allocation %d", b.Allocation, b.AllocationRange[0], b.AllocationRange[1], b.AllocationIndex)
	p.line(3, "distribution %d in [%d, %d) → %s", b.Distribution, b.DistributionRange[0], b.DistributionRange[1], b.Variant)
}
