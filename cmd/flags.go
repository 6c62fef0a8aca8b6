package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/atomicfile"
	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

func newFlagsCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "flags",
		Short: "Download, list and inspect flag configs",
	}
	c.AddCommand(newFlagsPullCmd(f, nil), newFlagsListCmd(f, nil), newFlagsShowCmd(f, nil))
	return c
}

type flagsPullOptions struct {
	IO     *cli.IOStreams
	Server serverFlags
	Out    string
}

func newFlagsPullCmd(f *Factory, runF func(context.Context, *flagsPullOptions) error) *cobra.Command {
	opts := &flagsPullOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "pull [--out FILE]",
		Short: "Download flag configs with a deployment key into the cache or a file",
		Long: "Download the deployment's flag configs into the cache, and with --out into a file.\n\n" +
			"Failures that may pass (no answer, a body that is not flag configs, 429, 5xx) are retried\n" +
			"with backoff, or after the server's Retry-After, until --timeout; a rejected key is exit 4\n" +
			"at once. On failure the cache and --out are left as they were.",
		Example: `  experiment flags pull --deployment-key server-...
  experiment flags pull --out flags.json && experiment evaluate --flags flags.json --user-id u1`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runFlagsPull(c.Context(), opts)
		},
	}
	// A pull always downloads, and never streams.
	opts.Server.registerWithout(f, c.Flags(), "offline", "stream-server-url")
	c.Flags().StringVar(&opts.Out, "out", "", "write the flag configs (the JSON array) to FILE, or - for stdout, as well as to the cache")
	return c
}

func runFlagsPull(ctx context.Context, opts *flagsPullOptions) error {
	key, cfg, err := opts.Server.localConfig(opts.IO)
	if err != nil {
		return err
	}
	client, err := experiment.NewLocalClient(key, cfg)
	if err != nil {
		return usageError("%v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, opts.Server.timeout)
	defer cancel()
	// The flags stream to the cache, and from it to --out: a pull of any
	// size costs little memory. --out is opened first, so that a path that
	// cannot be written fails before the download, and is replaced only
	// when the pull succeeds.
	var out io.Writer
	var outFile *atomicfile.File
	switch opts.Out {
	case "":
	case "-":
		out = opts.IO.Out
	default:
		if outFile, err = atomicfile.Create(opts.Out, 0o644); err != nil {
			return ioError(err)
		}
		defer outFile.Abort() // after Commit, nothing
		out = outFile
	}
	n, err := client.PullFlagConfigs(ctx, out)
	if err != nil {
		if errors.As(err, new(*experiment.FlagsError)) {
			return pullError(err, key)
		}
		return ioError(err) // the cache or --out could not be written
	}
	if opts.Out == "-" {
		if _, err := io.WriteString(out, "\n"); err != nil {
			return ioError(err)
		}
	}
	if outFile != nil {
		if err := outFile.Commit(); err != nil {
			return ioError(err)
		}
	}
	where := experiment.FlagCachePath(cfg.CacheDir, key)
	if outFile != nil {
		where = opts.Out + " and " + where
	}
	fmt.Fprintf(opts.IO.ErrOut, "pulled %d flags into %s\n", n, where)
	return nil
}

type flagsListOptions struct {
	IO     *cli.IOStreams
	Source flagSource
	Output string
}

func newFlagsListCmd(f *Factory, runF func(context.Context, *flagsListOptions) error) *cobra.Command {
	opts := &flagsListOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "list",
		Short: "List flags: key, type, variants, segments, deployed",
		Args:  argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runFlagsList(c.Context(), opts)
		},
	}
	opts.Source.register(f, c.Flags(), noEvaluation...)
	registerOutput(c.Flags(), &opts.Output, dataOutput, "table", "json", "jsonl", "yaml")
	return c
}

// flagSummary is one flag in `flags list -o json`.
type flagSummary struct {
	Key           string   `json:"key"`
	Type          string   `json:"type"`
	Version       any      `json:"version"`
	Deployed      bool     `json:"deployed"`
	ExperimentKey string   `json:"experiment_key,omitempty"`
	Variants      []string `json:"variants"`
	Segments      int      `json:"segments"`
	Dependencies  []string `json:"dependencies"`
}

func summarize(f *eval.Flag) flagSummary {
	s := flagSummary{Key: f.Key, Segments: len(f.Segments), Deployed: true,
		Variants: slices.Sorted(func(yield func(string) bool) {
			for k := range f.Variants {
				if !yield(k) {
					return
				}
			}
		}), Dependencies: f.Dependencies}
	s.Type, _ = f.Metadata["flagType"].(string)
	s.Version = f.Metadata["flagVersion"]
	s.ExperimentKey, _ = f.Metadata["experimentKey"].(string)
	if d, ok := f.Metadata["deployed"].(bool); ok {
		s.Deployed = d
	}
	if s.Dependencies == nil {
		s.Dependencies = []string{}
	}
	return s
}

func runFlagsList(ctx context.Context, opts *flagsListOptions) error {
	fs, err := opts.Source.loadWithoutCohorts(ctx)
	if err != nil {
		return err
	}
	var list []flagSummary
	for _, f := range fs.Flags() {
		list = append(list, summarize(f))
	}
	slices.SortFunc(list, func(a, b flagSummary) int { return strings.Compare(a.Key, b.Key) })
	if opts.Output != "table" {
		if list == nil {
			list = []flagSummary{}
		}
		return writeOutput(writeData(opts.IO.Out, opts.Output, list))
	}
	t := opts.IO.OutTable("KEY", "TYPE", "VARIANTS", "SEGMENTS", "DEPLOYED", "DEPENDS ON")
	for _, s := range list {
		t.AddRow(s.Key, s.Type, strings.Join(s.Variants, ","), strconv.Itoa(s.Segments), strconv.FormatBool(s.Deployed), strings.Join(s.Dependencies, ","))
		if !s.Deployed {
			t.StyleRow(cli.Dimmed)
		}
	}
	return writeOutput(t.Render(opts.IO.Out))
}

type flagsShowOptions struct {
	IO     *cli.IOStreams
	Source flagSource
	Output string
	Key    string
}

func newFlagsShowCmd(f *Factory, runF func(context.Context, *flagsShowOptions) error) *cobra.Command {
	opts := &flagsShowOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "show KEY",
		Short: "Show one flag in full: variants, segments, conditions, allocations",
		Args:  needArgs(1, 1, "a flag key"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Key = args[0]
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runFlagsShow(c.Context(), opts)
		},
	}
	opts.Source.register(f, c.Flags(), noEvaluation...)
	registerOutput(c.Flags(), &opts.Output, reportOutput, "table", "json", "yaml")
	c.ValidArgsFunction = completeAtMost(1, completeFlagKeys)
	return c
}

func runFlagsShow(ctx context.Context, opts *flagsShowOptions) error {
	fs, err := opts.Source.loadWithoutCohorts(ctx)
	if err != nil {
		return err
	}
	if err := checkKeys(fs, []string{opts.Key}, opts.Source.name()); err != nil {
		return err
	}
	flag := fs.Snapshot().Flag(opts.Key)
	if opts.Output != "table" {
		return writeOutput(writeData(opts.IO.Out, opts.Output, flag))
	}
	return writeOutput(describeFlag(opts.IO, flag))
}

// describeFlag prints a flag for people: what it is, its variants, and its
// segments in order with their conditions and allocations.
func describeFlag(ios *cli.IOStreams, f *eval.Flag) error {
	p := newTextReport(ios)
	s := summarize(f)
	p.line(0, "%s  %s v%v, deployed: %t", p.scheme.Key(f.Key), s.Type, s.Version, s.Deployed)
	if s.ExperimentKey != "" {
		p.line(1, "experiment key: %s", s.ExperimentKey)
	}
	if len(f.Dependencies) > 0 {
		p.line(1, "depends on: %s", strings.Join(f.Dependencies, ", "))
	}
	p.line(1, "variants:")
	for _, k := range s.Variants {
		v := f.Variants[k]
		if v == nil {
			continue
		}
		line := k
		if v.Value != nil {
			line += " = " + jsonText(v.Value)
		}
		if v.Payload != nil {
			line += "  payload " + jsonText(v.Payload)
		}
		if d, _ := v.Metadata["default"].(bool); d {
			line += p.scheme.Dimmed("  (default)")
		}
		p.line(2, "%s", line)
	}
	for i, seg := range f.Segments {
		describeSegment(p, i, seg)
	}
	return p.writeTo(ios.Out)
}

func describeSegment(p *textReport, i int, seg *eval.Segment) {
	name, _ := seg.Metadata["segmentName"].(string)
	p.line(1, "segment %d %q:", i, name)
	switch {
	case seg.Conditions == nil:
		p.line(2, "%s", p.scheme.Dimmed("everyone"))
	case len(seg.Conditions) == 0:
		p.line(2, "%s", p.scheme.Dimmed("no one (empty condition list)"))
	}
	for gi, group := range seg.Conditions {
		if gi > 0 {
			p.line(2, "%s", p.scheme.Dimmed("or"))
		}
		for _, c := range group {
			p.line(2, "%s %s %s", strings.Join(c.Selector, "."), c.Op, jsonText(c.Values))
		}
	}
	if b := seg.Bucket; b != nil {
		p.line(2, "bucket by %s, salt %q:", strings.Join(b.Selector, "."), b.Salt)
		for _, a := range b.Allocations {
			var parts []string
			for _, d := range a.Distributions {
				share := float64(d.Range[1]-min(d.Range[0], d.Range[1])) / fullDistribution * 100
				parts = append(parts, fmt.Sprintf("%s %.1f%%", d.Variant, share))
			}
			p.line(3, "%d%% of users [%d, %d): %s", a.Range[1]-min(a.Range[0], a.Range[1]), a.Range[0], a.Range[1], strings.Join(parts, ", "))
		}
	}
	switch {
	case seg.Variant != "" && seg.Bucket != nil:
		p.line(2, "otherwise → %s", seg.Variant)
	case seg.Variant != "":
		p.line(2, "→ %s", seg.Variant)
	}
}

func writeOutput(err error) error {
	if err != nil {
		return ioError(fmt.Errorf("writing output: %w", err))
	}
	return nil
}
