package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/itchyny/gojq"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/internal/cli"
)

// --jq EXPR filters a command's JSON output, as gh's --jq does: every
// command with a JSON form gets it, and it is implemented here once, around
// the command, rather than in each: the command writes its JSON as usual
// and the filter reads it as it is written.

const jqUsage = "filter the JSON output with a jq expression (implies -o json); strings print raw, " +
	"other results as compact JSON, each on its own line; a bad expression is exit 2, " +
	"an error while filtering (e.g. .[0] on an object) exit 3"

// registerJQ adds --jq to every command under c that has a JSON output
// form (an -o whose forms include json or jsonl); ios is the streams the
// commands write to.
func registerJQ(c *cobra.Command, ios *cli.IOStreams) {
	for _, sub := range c.Commands() {
		registerJQ(sub, ios)
	}
	forms := jqForms(c)
	if c.RunE == nil || !slices.ContainsFunc(forms, func(f string) bool { return f == "json" || f == "jsonl" }) {
		return
	}
	var expr string
	c.Flags().StringVar(&expr, "jq", "", jqUsage)
	c.Flags().Lookup("jq").Annotations = map[string][]string{optionGroupAnnotation: {"Output"}}
	run := c.RunE
	c.RunE = func(c *cobra.Command, args []string) error {
		if !c.Flags().Changed("jq") {
			return run(c, args)
		}
		return runWithJQ(c, args, ios, run, expr, forms)
	}
}

// jqForms lists the forms -o takes, read from its usage line
// ("output format: table|json|yaml (...)"): the one place every command
// states them.
func jqForms(c *cobra.Command) []string {
	fl := c.LocalNonPersistentFlags().Lookup("output")
	if fl == nil {
		return nil
	}
	list, ok := strings.CutPrefix(fl.Usage, "output format: ")
	if !ok {
		return nil
	}
	list, _, _ = strings.Cut(list, " ")
	return strings.Split(list, "|")
}

// runWithJQ runs the command with its output forced to JSON and piped
// through the filter. The expression is compiled first: a bad one stops
// the command before it does anything.
func runWithJQ(c *cobra.Command, args []string, ios *cli.IOStreams, run func(*cobra.Command, []string) error, expr string, forms []string) error {
	code, err := compileJQ(expr)
	if err != nil {
		return withHint(usageError("--jq %s: %v", quoteArg(expr), err), "see https://jqlang.org/manual/ for the language")
	}
	output := c.Flags().Lookup("output")
	switch {
	case !output.Changed:
		// The command's JSON form: JSON Lines where the data is a stream
		// (a line per user, per change), so that the filter sees each
		// item as it comes, as `| jq` would.
		form := "json"
		if !slices.Contains(forms, "json") || flagChanged(c.Flags(), "users") {
			form = "jsonl"
		}
		if err := output.Value.Set(form); err != nil {
			return err
		}
	case output.Value.String() != "json" && output.Value.String() != "jsonl":
		return usageError("--jq filters JSON: it cannot be combined with -o %s", output.Value.String())
	}
	w := newJQWriter(c.Context(), code, ios.Out)
	out := ios.Out
	ios.Out = w
	err = run(c, args)
	ios.Out = out
	ferr := w.Close()
	var je *jqError
	if errors.As(ferr, &je) {
		// The filter's failure comes first: the command's own error, if
		// any, is its failing to write into the stopped filter.
		return &exitError{code: ExitInput, err: fmt.Errorf("--jq %s: %w", quoteArg(expr), je.err)}
	}
	if err != nil {
		return err
	}
	return writeOutput(ferr)
}

func flagChanged(fs *pflag.FlagSet, name string) bool {
	fl := fs.Lookup(name)
	return fl != nil && fl.Changed
}

func compileJQ(expr string) (*gojq.Code, error) {
	q, err := gojq.Parse(expr)
	if err != nil {
		return nil, err
	}
	return gojq.Compile(q)
}

// quoteArg quotes an expression for an error line as a shell would take it.
func quoteArg(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// jqError is a failure of the filter while it ran, as opposed to one
// writing its results.
type jqError struct{ err error }

func (e *jqError) Error() string { return e.err.Error() }

// jqWriter filters the JSON values written to it, one at a time as each is
// complete, and writes the results to out: strings raw, anything else as
// compact JSON, a line each. Values stream through a pipe to a goroutine
// that decodes them, so a command that writes a line per item (a batch, a
// watch) is filtered as it goes, with memory for one item.
type jqWriter struct {
	pw   *io.PipeWriter
	done chan struct{}
	err  error // the decoder's outcome, once done is closed
}

func newJQWriter(ctx context.Context, code *gojq.Code, out io.Writer) *jqWriter {
	pr, pw := io.Pipe()
	w := &jqWriter{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		if w.err = filterJSON(ctx, code, pr, out); w.err != nil {
			// A filter that failed fails the command's next write, as a
			// closed pipe would, so that it stops too.
			pr.CloseWithError(w.err)
			return
		}
		// Done early (halt), or at the end: the rest is not wanted, and
		// the command finishes as it would.
		_, _ = io.Copy(io.Discard, pr)
	}()
	return w
}

func (w *jqWriter) Write(p []byte) (int, error) { return w.pw.Write(p) }

// Close ends the input and waits for the last results to be written.
func (w *jqWriter) Close() error {
	w.pw.Close()
	<-w.done
	return w.err
}

func filterJSON(ctx context.Context, code *gojq.Code, in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(in)
	dec.UseNumber() // numbers as written: ids and payload integers keep every digit
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			return nil
		} else if err != nil {
			return &jqError{fmt.Errorf("reading the command's JSON: %w", err)}
		}
		iter := code.RunWithContext(ctx, v)
		for {
			r, ok := iter.Next()
			if !ok {
				break
			}
			if err, ok := r.(error); ok {
				var halt *gojq.HaltError
				if errors.As(err, &halt) && halt.Value() == nil {
					return nil // `halt`: stop, successfully
				}
				return &jqError{err}
			}
			var line []byte
			if s, ok := r.(string); ok {
				line = []byte(s)
			} else {
				line, _ = gojq.Marshal(r) // its only error is for values JSON cannot hold, which decoding never gives
			}
			if _, err := out.Write(append(line, '\n')); err != nil {
				return err
			}
		}
	}
}
