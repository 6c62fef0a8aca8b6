package cmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/internal/lint"
	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

type lintOptions struct {
	IO       *cli.IOStreams
	Source   flagSource
	Output   string
	Severity string
	fileArg  bool // the flags file came as FILE, not --flags: errors name it so
}

func newLintCmd(f *Factory, runF func(context.Context, *lintOptions) error) *cobra.Command {
	opts := &lintOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "lint [FILE]",
		Short: "Find what makes a flag behave other than its author thinks",
		Long: "Check flag configs for unreachable segments, allocation and distribution ranges that are\n" +
			"out of bounds, overlap or leave users out, variants never served or missing, invalid regexes,\n" +
			"versions and numbers, unknown operators, missing or undeployed dependencies, cycles, and\n" +
			"(with --cohorts DIR) targeted cohorts without a file. FILE (or - for stdin) is the same as\n" +
			"--flags; without either, the deployment's flags are checked. Exit 1 when a finding is at or\n" +
			"above --severity; -o sarif for code-scanning tools.",
		Example: `  experiment lint testdata/flags.json
  experiment lint flags.json --cohorts cohorts --severity warning
  experiment lint flags.json -o sarif > lint.sarif`,
		Args: needArgs(0, 1, "at most one FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				if opts.Source.flagsFile != "" {
					return usageError("give the flags as FILE or --flags, not both")
				}
				opts.Source.flagsFile, opts.fileArg = args[0], true
			}
			if _, err := lint.ParseSeverity(opts.Severity); err != nil {
				return usageError("--severity: %v", err)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runLint(c.Context(), opts)
		},
	}
	// No --strict: every problem the engine tolerates is a finding here.
	opts.Source.register(f, c.Flags(), append(slices.Clone(noEvaluation), "strict")...)
	c.Flags().StringVar(&opts.Severity, "severity", "error", "exit 1 on a finding at or above: error, warning or note")
	registerOutput(c.Flags(), &opts.Output, reportOutput, "table", "json", "sarif")
	return c
}

// lintReport is lint's JSON form; a stable schema (docs/cli.md#lint).
type lintReport struct {
	Source    string          `json:"source"`
	Flags     int             `json:"flags"`
	Threshold string          `json:"severity"`
	Failed    bool            `json:"failed"`
	Counts    map[string]int  `json:"counts"`
	Findings  []lintedFinding `json:"findings"`
}

// lintedFinding is a finding with its place in the file, when known.
type lintedFinding struct {
	lint.Finding
	Line   *int `json:"line"`
	Column *int `json:"column"`
}

func runLint(ctx context.Context, opts *lintOptions) error {
	threshold, _ := lint.ParseSeverity(opts.Severity)
	flags, data, name, err := opts.lintFlags(ctx)
	if err != nil {
		return err
	}
	checkOpts, err := opts.cohorts(flags)
	if err != nil {
		return err
	}
	findings, err := lint.Check(flags, checkOpts)
	if err != nil {
		return inputError(fmt.Errorf("%s: %w", name, err))
	}
	var locator *lint.Locator
	report := lintReport{Source: name, Flags: len(flags), Threshold: threshold.String(),
		Failed: lint.Failing(findings, threshold), Counts: lint.Counts(findings), Findings: make([]lintedFinding, len(findings))}
	for i, fd := range findings {
		report.Findings[i].Finding = fd
	}
	if data != nil {
		locator = lint.Locate(data)
		sortByPosition(report.Findings, locator)
		for i := range findings {
			findings[i] = report.Findings[i].Finding // SARIF lists them in the same order
		}
	}
	switch opts.Output {
	case "json":
		err = writeJSON(opts.IO.Out, report, true)
	case "sarif":
		src := lint.SARIFSource{Locator: locator}
		if data != nil && opts.Source.flagsFile != "-" {
			src.URI = artifactURI(opts.Source.flagsFile)
		}
		err = writeJSON(opts.IO.Out, lint.SARIF(findings, src, currentVersion().Version), true)
	default:
		err = printLint(opts.IO, report)
	}
	if err != nil {
		return ioError(fmt.Errorf("writing output: %w", err))
	}
	if report.Failed {
		return &silentError{code: ExitCheckFailed}
	}
	return nil
}

// lintFlags reads the flags to lint: the document when it is a file (for
// line numbers), nil data when they came from the server, and how the
// report names where they came from. The engine's
// problems are not printed as warnings here: they are findings.
func (o *lintOptions) lintFlags(ctx context.Context) (flags []*eval.Flag, data []byte, name string, err error) {
	s := &o.Source
	if s.flagsFile == "" {
		client, err := s.server.startClient(ctx, o.IO, func(cfg *experiment.LocalConfig) { cfg.CohortSyncConfig = nil })
		if err != nil {
			return nil, nil, "", err
		}
		defer client.Close()
		return client.FlagSet().Flags(), nil, s.name(), nil
	}
	if o.fileArg && s.flagsFile != "-" {
		name = s.flagsFile
		if data, err = readInput(ctx, name, maxFlagsBytes); err != nil {
			return nil, nil, "", namedFileError("", name, err)
		}
	} else if data, name, err = s.readFlags(ctx, o.IO.In); err != nil {
		return nil, nil, "", err
	}
	if flags, err = eval.DecodeFlags(data); err != nil {
		return nil, nil, "", flagsDocError(name, err)
	}
	return flags, data, name, nil
}

// cohorts reads which targeted cohorts --cohorts DIR has; a cohort without
// a file is a finding, a file that is not a cohort invalid input.
func (o *lintOptions) cohorts(flags []*eval.Flag) (lint.Options, error) {
	dir := o.Source.cohortsDir
	if dir == "" {
		return lint.Options{}, nil
	}
	if st, err := os.Stat(dir); err != nil {
		return lint.Options{}, namedFileError("--cohorts", dir, err)
	} else if !st.IsDir() {
		return lint.Options{}, inputError(fmt.Errorf("--cohorts %s: not a directory", dir))
	}
	ids := cohort.Referenced(flags).All()
	if ids == nil {
		ids = []string{} // nil would read every file in the directory
	}
	store, errs := cohort.LoadDir(dir, ids)
	for _, err := range errs {
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, cohort.ErrBadID) {
			return lint.Options{}, inputError(err)
		}
	}
	return lint.Options{HasCohort: func(id string) bool { return store.Get(id) != nil }}, nil
}

// sortByPosition gives findings their place in the file and puts them in
// the file's order, line and column, where lint.Check has them by JSON
// path: a flag's variants written before its segments come first.
// Findings at one place keep their order; one not found goes first. Each
// place is looked up once: Position counts the lines before it.
func sortByPosition(findings []lintedFinding, locator *lint.Locator) {
	for i := range findings {
		if line, col, ok := locator.Position(findings[i].Path); ok {
			findings[i].Line, findings[i].Column = &line, &col
		}
	}
	at := func(f lintedFinding) (int, int) {
		if f.Line == nil {
			return 0, 0
		}
		return *f.Line, *f.Column
	}
	slices.SortStableFunc(findings, func(a, b lintedFinding) int {
		la, ca := at(a)
		lb, cb := at(b)
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(ca, cb))
	})
}

// artifactURI is how SARIF names the file: relative to the working
// directory with forward slashes, as code scanning matches paths in the
// repository; a file elsewhere by its file: URI.
func artifactURI(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && filepath.IsLocal(rel) {
			return filepath.ToSlash(rel)
		}
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	if !strings.HasPrefix(u.Path, "/") { // C:/x on Windows
		u.Path = "/" + u.Path
	}
	return u.String()
}

// printLint writes the text report: one line per finding, file:line:col
// first as compilers do (editors and CI annotators jump to it), then a
// summary line.
func printLint(ios *cli.IOStreams, r lintReport) error {
	p := newTextReport(ios)
	for _, fd := range r.Findings {
		where := r.Source + ": " + fd.Path
		if fd.Line != nil {
			where = fmt.Sprintf("%s:%d:%d", r.Source, *fd.Line, *fd.Column)
		}
		p.line(0, "%s: %s: %s %s", where, paintSeverity(p.scheme, fd.Severity), fd.Message, p.scheme.Dimmed("["+fd.Rule+"]"))
	}
	if len(r.Findings) > 0 {
		p.blank()
	}
	p.line(0, "%s", lintSummary(p.scheme, r))
	return p.writeTo(ios.Out)
}

func paintSeverity(s *cli.Scheme, sev lint.Severity) string {
	switch sev {
	case lint.Error:
		return s.Failed(sev.String())
	case lint.Warning:
		return s.Warning(sev.String())
	}
	return s.Dimmed(sev.String())
}

// lintSummary counts what was found: "18 flags: 1 error, 2 warnings".
func lintSummary(s *cli.Scheme, r lintReport) string {
	flags := plural(r.Flags, "flag")
	if len(r.Findings) == 0 {
		return s.Matched(flags + ": no problems")
	}
	var parts []string
	for _, sev := range []string{"error", "warning", "note"} {
		if n := r.Counts[sev]; n > 0 {
			parts = append(parts, plural(n, sev))
		}
	}
	line := flags + ": " + strings.Join(parts, ", ")
	if r.Failed {
		return line + s.Failed(fmt.Sprintf(" (failing at --severity %s)", r.Threshold))
	}
	return line
}
