package cmd

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/flagkit/experiment/internal/atomicfile"
	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// testFile is the format of `experiment test FILE` (YAML or JSON): flag
// sources relative to the file, and cases of (user, flag, expectation).
type testFile struct {
	Flags   string     `json:"flags"`
	Cohorts string     `json:"cohorts"`
	Cases   []testCase `json:"cases"`
}

type testCase struct {
	// Line is where the case starts in the file, for its errors.
	Line    int             `json:"-"`
	Name    string          `json:"name"`
	User    json.RawMessage `json:"user"`
	Flag    string          `json:"flag"`
	Variant *string         `json:"variant"`
	Value   *string         `json:"value"`
	Absent  bool            `json:"absent"`
	// Expect checks several flags: flag -> variant key, or "absent".
	Expect map[string]string `json:"expect"`
}

// flagKeys are the flags the cases check; a case that cannot say is
// reported when it runs.
func (tf *testFile) flagKeys() []string {
	var keys []string
	for _, c := range tf.Cases {
		xs, err := c.expectations()
		if err != nil {
			return nil // all: the case's own error follows
		}
		for _, x := range xs {
			keys = append(keys, x.Flag)
		}
	}
	return keys
}

func (c testCase) expectations() ([]expectation, error) {
	var xs []expectation
	if c.Flag != "" {
		x := expectation{Flag: c.Flag, Absent: c.Absent, Value: c.Value}
		switch {
		case c.Variant != nil:
			x.Variant = *c.Variant
		case c.Value == nil && !c.Absent:
			return nil, errors.New("flag without variant, value or absent")
		}
		xs = append(xs, x)
	}
	for _, flag := range sortedMapKeys(c.Expect) {
		want := c.Expect[flag]
		xs = append(xs, expectation{Flag: flag, Variant: want, Absent: want == "absent"})
	}
	if len(xs) == 0 {
		return nil, errors.New("nothing to check: give flag and variant, or expect")
	}
	return xs, nil
}

type testOptions struct {
	IO     *cli.IOStreams
	Source flagSource
	File   string
	JUnit  string
	Now    func() time.Time
}

func newTestCmd(f *Factory, runF func(context.Context, *testOptions) error) *cobra.Command {
	opts := &testOptions{IO: f.IO, Now: f.Now}
	c := &cobra.Command{
		Use:   "test FILE",
		Short: "Run a file of (user, flag, expected variant) cases, for CI",
		Long: "Run flag test cases from a YAML or JSON file and report like go test: a line per failure\n" +
			"with the deciding segment, then 'N passed, M failed'. Exit 1 when any case fails.\n\n" +
			// The format is spelt out here: an installed binary has no
			// testdata/ to point at.
			"A test file (flags and cohorts are relative to it; --flags and --cohorts override them):\n\n" +
			"  flags: flags.json\n" +
			"  cohorts: cohorts\n" +
			"  cases:\n" +
			"    - name: Acme staff dogfood the new editor\n" +
			"      user: {user_id: user-1, user_properties: {email: alice@acme.com}}\n" +
			"      flag: new-editor\n" +
			"      variant: \"on\"        # or value: \"250\", or absent: true\n" +
			"    - name: mobile gets dark mode\n" +
			"      user: {user_id: user-4, platform: iOS}\n" +
			"      expect: {dark-mode: \"on\", new-editor: \"off\"}   # flag -> variant key, or absent",
		Example: `  experiment test flagtests.yaml
  experiment test flagtests.yaml --flags flags.json --junit report.xml`,
		Args: needArgs(1, 1, "a test file (YAML or JSON)"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.File = args[0]
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runTest(c.Context(), opts)
		},
	}
	opts.Source.register(f, c.Flags(), oneShot...)
	c.Flags().StringVar(&opts.JUnit, "junit", "", "also write a JUnit XML report to this file")
	return c
}

func loadTestFile(path string) (*testFile, error) {
	data, err := readFileLimited(path, maxFlagsBytes)
	if err != nil {
		return nil, namedFileError("test file", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil { // YAML is a superset of JSON
		return nil, inputError(fmt.Errorf("%s: %w", path, yamlError(err)))
	}
	tf, err := decodeTestFile(&doc)
	if err != nil {
		return nil, inputError(fmt.Errorf("%s:%w", path, err))
	}
	return tf, nil
}

type caseResult struct {
	name     string
	failures []string
	elapsed  time.Duration
}

func runTest(ctx context.Context, opts *testOptions) error {
	tf, err := loadTestFile(opts.File)
	if err != nil {
		return err
	}
	src := opts.Source
	base := filepath.Dir(opts.File)
	if src.flagsFile == "" && tf.Flags != "" {
		src.flagsFile = relativeTo(base, tf.Flags)
	}
	if src.cohortsDir == "" && tf.Cohorts != "" {
		src.cohortsDir = relativeTo(base, tf.Cohorts)
	}
	fs, err := src.loadEvaluating(ctx, tf.flagKeys())
	if err != nil {
		return err
	}
	var results []caseResult
	for i, c := range tf.Cases {
		r, err := runCase(fs, c, i)
		if err != nil {
			return inputError(fmt.Errorf("%s:%d: %s: %w", opts.File, c.Line, caseLabel(i, c.Name), err))
		}
		results = append(results, r)
	}
	failed := reportCases(opts.IO, results)
	if opts.JUnit != "" {
		if err := writeJUnit(opts.JUnit, opts.File, results, opts.Now()); err != nil {
			return ioError(err)
		}
	}
	if failed > 0 {
		return &silentError{code: ExitCheckFailed}
	}
	return nil
}

func runCase(fs *experiment.FlagSet, c testCase, i int) (caseResult, error) {
	start := time.Now()
	r := caseResult{name: c.Name}
	if r.name == "" {
		r.name = fmt.Sprintf("case %d", i+1)
	}
	xs, err := c.expectations()
	if err != nil {
		return r, err
	}
	user := &experiment.User{}
	if len(c.User) > 0 && string(c.User) != "null" {
		if user, err = decodeCaseUser(c.User); err != nil {
			return r, err
		}
	}
	keys := make([]string, len(xs))
	for i, x := range xs {
		if !fs.Snapshot().Has(x.Flag) {
			err := fmt.Errorf("unknown flag %q", x.Flag)
			if near := closestKey(x.Flag, fs.Snapshot().Keys()); near != "" {
				err = fmt.Errorf("%w (did you mean %q?)", err, near)
			}
			return r, err
		}
		if err := checkVariant(fs, x); err != nil {
			return r, err
		}
		keys[i] = x.Flag
	}
	results, err := fs.EvaluateResults(user, keys, nil)
	if err != nil {
		return r, err
	}
	for _, x := range xs {
		if res := findResult(results, x.Flag); !x.check(res) {
			r.failures = append(r.failures, fmt.Sprintf("%s: want %s, got %s%s", x.Flag, x, describeResult(res, fs), failedConditions(fs, user, x.Flag, res)))
		}
	}
	r.elapsed = time.Since(start)
	return r, nil
}

// failedConditions adds, for a flag that fell through to a later segment,
// which conditions of the segments before it failed: usually the answer.
func failedConditions(fs *experiment.FlagSet, user *experiment.User, flag string, r *eval.Result) string {
	trace, err := fs.Explain(user, flag)
	if err != nil {
		return ""
	}
	var notes []string
	for _, ft := range trace.Flags {
		if ft.Key != flag {
			continue
		}
		for _, s := range ft.Segments {
			if !s.Reached || s.Matched {
				continue
			}
			for _, group := range s.Conditions {
				for _, c := range group {
					if !c.Matched {
						value := "absent"
						if !c.Absent {
							value = fmt.Sprintf("%q", c.Value)
						}
						notes = append(notes, fmt.Sprintf("segment %d %q: %s %s %s is false (user: %s)", s.Index, s.Name, strings.Join(c.Selector, "."), c.Op, jsonText(c.Values), value))
					}
				}
			}
		}
	}
	if len(notes) == 0 {
		return ""
	}
	return "\n        " + strings.Join(notes, "\n        ")
}

func reportCases(ios *cli.IOStreams, results []caseResult) int {
	scheme := ios.OutScheme()
	failed := 0
	for _, r := range results {
		if len(r.failures) == 0 {
			continue
		}
		failed++
		fmt.Fprintf(ios.Out, "%s %s\n", scheme.Failed("--- FAIL:"), r.name)
		for _, f := range r.failures {
			fmt.Fprintf(ios.Out, "    %s\n", f)
		}
	}
	word := scheme.Matched("ok:")
	if failed > 0 {
		word = scheme.Failed("FAIL:")
	}
	fmt.Fprintf(ios.Out, "%s %d passed, %d failed\n", word, len(results)-failed, failed)
	return failed
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Stamp    string      `xml:"timestamp,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(path, suite string, results []caseResult, now time.Time) error {
	s := junitSuite{Name: suite, Tests: len(results), Stamp: now.UTC().Format(time.RFC3339), Cases: []junitCase{}}
	var total time.Duration
	for _, r := range results {
		total += r.elapsed
		c := junitCase{Name: r.name, ClassName: "experiment.test", Time: seconds(r.elapsed)}
		if len(r.failures) > 0 {
			s.Failures++
			c.Failure = &junitFailure{Message: strings.SplitN(r.failures[0], "\n", 2)[0], Text: strings.Join(r.failures, "\n")}
		}
		s.Cases = append(s.Cases, c)
	}
	s.Time = seconds(total)
	data, err := xml.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append([]byte(xml.Header), append(data, '\n')...), 0o644)
}

func relativeTo(base, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(base, path)
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.6f", d.Seconds()) }

func sortedMapKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
