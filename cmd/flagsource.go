package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// maxFlagsBytes bounds a flag config document; the largest real deployments
// are a few megabytes.
const maxFlagsBytes = 256 << 20

// flagSource is where flag configs and cohorts come from.
type flagSource struct {
	flagsFile  string
	cohortsDir string
	strict     bool
	server     serverFlags
}

// register adds the options that say where flags (and cohorts) come from;
// omit names those that would do nothing for the command, so that help
// shows none that is ignored and giving one is an unknown-option error.
func (s *flagSource) register(f *Factory, fs *pflag.FlagSet, omit ...string) {
	fs.StringVar(&s.flagsFile, "flags", "", "flag configs: a JSON file (the body of GET /sdk/v2/flags), or - for stdin")
	fs.StringVar(&s.cohortsDir, "cohorts", "", "directory of cohort files <cohortId>.json (the body of GET /sdk/v1/cohort/<id>)")
	if !slices.Contains(omit, "strict") { // lint reports those problems itself
		fs.BoolVar(&s.strict, "strict", false, "fail on config problems the engine tolerates (unknown operators, bad regexes, missing dependencies) and on cohorts not loaded")
	}
	s.server.registerWithout(f, fs, omit...)
	// With a deployment key, these turn on cohort sync for cohort targeting.
	for _, o := range []struct {
		dst         *string
		name, usage string
	}{
		{&s.server.apiKey, "api-key", "analytics API key, for cohort sync with a deployment key"},
		{&s.server.secretKey, "secret-key", "analytics secret key, for cohort sync with a deployment key"},
		{&s.server.cohortServerURL, "cohort-server-url", "cohort download server URL"},
	} {
		if !slices.Contains(omit, o.name) {
			bindSetting(fs, o.dst, o.name, o.usage)
		}
	}
}

// Options a command may have no use for: only watch keeps a stream open,
// and commands that evaluate nobody sync no cohorts.
var (
	oneShot      = []string{"stream-server-url"}
	noEvaluation = []string{"stream-server-url", "api-key", "secret-key", "cohort-server-url"}
)

// load reads, compiles and checks the flag set, warning on stderr about
// what the engine tolerates unless strict makes it an error.
func (s *flagSource) load(ctx context.Context) (*experiment.FlagSet, error) {
	f := s.server.f
	if s.flagsFile == "" {
		return s.loadFromServer(ctx, f)
	}
	data, name, err := s.readFlags(ctx, f.IO.In)
	if err != nil {
		return nil, err
	}
	// Loaded, not decoded then compiled: the set keeps the document, and a
	// single evaluation decodes it once instead of building every flag.
	fs, err := experiment.LoadFlagSet(data, nil)
	if err != nil {
		return nil, flagsDocError(name, err)
	}
	store, err := s.loadCohorts(f, fs.CohortReferences().All())
	if err != nil {
		return nil, err
	}
	if store != nil {
		fs = fs.WithCohorts(store)
	}
	return fs, s.reportProblems(f, name, fs.Snapshot().Problems())
}

// loadFromServer gets the flags of a deployment key: from the server, or
// the cache when the server cannot be reached (or with --offline).
func (s *flagSource) loadFromServer(ctx context.Context, f *Factory) (*experiment.FlagSet, error) {
	client, err := s.server.startClient(ctx, f.IO, nil)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	return s.fromServer(f, client.FlagSet())
}

// name is how errors refer to the flag source.
func (s *flagSource) name() string {
	if s.flagsFile == "" {
		return "server flags"
	}
	return s.flagsFile
}

// readFlags reads --flags; a read blocked on a stalled pipe or terminal
// ends with ctx.
func (s *flagSource) readFlags(ctx context.Context, stdin io.Reader) ([]byte, string, error) {
	if s.flagsFile == "-" {
		data, err := io.ReadAll(io.LimitReader(newCancelReader(ctx, stdin), maxFlagsBytes+1))
		if err != nil {
			return nil, "", ioError(fmt.Errorf("stdin: %w", err))
		}
		if len(data) > maxFlagsBytes {
			return nil, "", inputError(fmt.Errorf("stdin: flag configs larger than %d MiB", maxFlagsBytes>>20))
		}
		return data, "stdin", nil
	}
	data, err := readInput(ctx, s.flagsFile, maxFlagsBytes)
	if err != nil {
		return nil, "", namedFileError("--flags", s.flagsFile, err)
	}
	return data, s.flagsFile, nil
}

// reportProblems prints the first few problems as warnings; with --strict,
// any problem other than a missing variant or a duplicate is an error. A
// dependency cycle is no warning: an evaluation that reaches it fails and
// says so itself, and one that does not is not concerned.
func (s *flagSource) reportProblems(f *Factory, name string, problems []eval.Problem) error {
	if !s.strict {
		problems = slices.DeleteFunc(slices.Clone(problems), func(p eval.Problem) bool { return p.Kind == eval.ProblemCycle })
	}
	if len(problems) == 0 {
		return nil
	}
	if s.strict {
		p := problems[0]
		return inputError(fmt.Errorf("%s: %s: %s", name, p.Path, p.Message))
	}
	const shown = 3
	for i, p := range problems {
		if i == shown {
			fmt.Fprintf(f.IO.ErrOut, "experiment: warning: %s: %d more problems (use --strict to fail on them)\n", name, len(problems)-shown)
			break
		}
		fmt.Fprintf(f.IO.ErrOut, "experiment: warning: %s: %s: %s\n", name, p.Path, p.Message)
	}
	return nil
}

// loadCohorts reads the referenced cohorts from --cohorts DIR, as a cohort
// sync would have stored them: a targeted cohort without a file has no
// members, and says so.
func (s *flagSource) loadCohorts(f *Factory, ids []string) (*cohort.Store, error) {
	if s.cohortsDir == "" {
		return nil, nil
	}
	if st, err := os.Stat(s.cohortsDir); err != nil {
		return nil, namedFileError("--cohorts", s.cohortsDir, err)
	} else if !st.IsDir() {
		return nil, inputError(fmt.Errorf("--cohorts %s: not a directory", s.cohortsDir))
	}
	if ids == nil {
		ids = []string{} // nil would mean every file in the directory
	}
	store, errs := cohort.LoadDir(s.cohortsDir, ids)
	for _, err := range errs {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, cohort.ErrBadID):
			fmt.Fprintf(f.IO.ErrOut, "experiment: warning: %v; nobody is a member of that cohort\n", err)
		default:
			return nil, inputError(err)
		}
	}
	return store, nil
}

// flagsDocError is the exit-3 error for a flag-config document that does
// not decode, naming the source: a parse error gets its file (and so its
// line and column), any other the name as a prefix.
func flagsDocError(name string, err error) error {
	var pe *eval.ParseError
	if errors.As(err, &pe) {
		pe.File = name
		return inputError(err)
	}
	return inputError(fmt.Errorf("%s: %w", name, err))
}
