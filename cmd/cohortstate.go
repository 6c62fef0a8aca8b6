package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// With a deployment key and the analytics keys, the local client syncs the
// cohorts the flags target. The commands that evaluate users (evaluate,
// explain, assert, test) load flags through loadEvaluating, which says what
// the client could not bring up to date: a rejected API key is exit 4, as
// in `cohorts sync`; a cohort kept at an older copy, or with no copy (its
// members then evaluate as non-members), is a warning naming it, and with
// --strict, which already fails on what the engine tolerates, a failure.
// A result is never silently computed with memberships other than asked.

// loadEvaluating is load for the commands that evaluate users; keys are
// the flags they will evaluate (none: all), for reportNoMemberships.
func (s *flagSource) loadEvaluating(ctx context.Context, keys []string) (*experiment.FlagSet, error) {
	if s.flagsFile != "" {
		fs, err := s.load(ctx)
		if err != nil {
			return nil, err
		}
		return fs, s.reportNoMemberships(fs, keys)
	}
	f := s.server.f
	client, err := s.server.startClient(ctx, f.IO, s.cohortSettings)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	if err := s.reportCohorts(f.IO, client.Status().Cohorts, time.Now()); err != nil {
		return nil, err
	}
	fs, err := s.fromServer(f, client.FlagSet())
	if err != nil {
		return nil, err
	}
	return fs, s.reportNoMemberships(fs, keys)
}

// reportNoMemberships warns when the flags to evaluate target cohorts but
// nothing gives memberships (no --cohorts DIR, no cohort sync): every
// member would silently evaluate as a non-member. With --strict it is a
// usage error, since what is missing is an option.
func (s *flagSource) reportNoMemberships(fs *experiment.FlagSet, keys []string) error {
	if s.cohortsDir != "" || (s.flagsFile == "" && s.server.apiKey != "" && s.server.secretKey != "") {
		return nil
	}
	if len(fs.CohortReferences()) == 0 {
		return nil // spares decoding the flags of a set that keeps its document
	}
	flags, ids := flagsTargetingCohorts(fs.Flags(), keys)
	if len(flags) == 0 {
		return nil
	}
	subject, their := "flag "+flags[0]+" targets", "its"
	if len(flags) > 1 {
		subject, their = fmt.Sprintf("%d flags (%s) target", len(flags), listSome(flags)), "their"
	}
	cohorts := "cohort "
	if len(ids) > 1 {
		cohorts = "cohorts "
	}
	const how = "--cohorts DIR, or --api-key and --secret-key with a deployment key"
	what := fmt.Sprintf("%s: %s %s, but no cohort memberships are loaded", s.name(), subject, cohorts+listSome(ids))
	if s.strict {
		return &exitError{code: ExitUsage, err: errors.New(what), hint: "give " + how}
	}
	// One line, as every warning: the remedy in brackets, not a hint line.
	fmt.Fprintf(s.server.f.IO.ErrOut, "experiment: warning: %s (%s): %s members evaluate as non-members\n", what, how, their)
	return nil
}

// flagsTargetingCohorts lists, sorted, which of the flags to evaluate
// (keys and what they depend on; no keys: all) target cohorts, and which.
func flagsTargetingCohorts(all []*eval.Flag, keys []string) (flags, ids []string) {
	byKey := make(map[string]*eval.Flag, len(all))
	for _, f := range all {
		byKey[f.Key] = f
	}
	chosen := all
	if len(keys) > 0 {
		chosen = nil
		seen := map[string]bool{}
		var visit func(key string)
		visit = func(key string) {
			f, ok := byKey[key]
			if !ok || seen[key] {
				return
			}
			seen[key] = true
			chosen = append(chosen, f)
			for _, d := range f.Dependencies {
				visit(d)
			}
		}
		for _, k := range keys {
			visit(k)
		}
	}
	for _, f := range chosen {
		if refs := cohort.Referenced([]*eval.Flag{f}).All(); len(refs) > 0 {
			flags = append(flags, f.Key)
			ids = append(ids, refs...)
		}
	}
	slices.Sort(flags)
	slices.Sort(ids)
	return flags, slices.Compact(ids)
}

// listSome names up to three items, then how many more.
func listSome(items []string) string {
	const shown = 3
	if len(items) <= shown {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:shown], ", "), len(items)-shown)
}

// loadWithoutCohorts is load for the commands that evaluate nobody (flags
// list and show) and for `cohorts sync`, which downloads the cohorts
// itself: the local client that fetches the flags syncs none, so a slow
// cohort server cannot hold them up.
func (s *flagSource) loadWithoutCohorts(ctx context.Context) (*experiment.FlagSet, error) {
	if s.flagsFile != "" {
		return s.load(ctx)
	}
	f := s.server.f
	client, err := s.server.startClient(ctx, f.IO, func(cfg *experiment.LocalConfig) { cfg.CohortSyncConfig = nil })
	if err != nil {
		return nil, err
	}
	defer client.Close()
	return s.fromServer(f, client.FlagSet())
}

// fromServer is the flag set of a started client, with --cohorts DIR's
// memberships when given, its problems reported.
func (s *flagSource) fromServer(f *Factory, fs *experiment.FlagSet) (*experiment.FlagSet, error) {
	if s.cohortsDir != "" {
		store, err := s.loadCohorts(f, fs.CohortReferences().All())
		if err != nil {
			return nil, err
		}
		fs = fs.WithCohorts(store)
	}
	return fs, s.reportProblems(f, "server flags", fs.Snapshot().Problems())
}

// cohortSettings adjusts the local client's cohort sync: none when
// --cohorts DIR gives the memberships (nothing synced would be used), and
// otherwise --timeout for each download and for the whole wait of the
// flags for their cohorts, apart from the flags' own request.
func (s *flagSource) cohortSettings(cfg *experiment.LocalConfig) {
	switch {
	case cfg.CohortSyncConfig == nil:
	case s.cohortsDir != "":
		cfg.CohortSyncConfig = nil
	default:
		cfg.CohortSyncConfig.RequestTimeout = s.server.timeout
		cfg.CohortSyncConfig.LoadTimeout = s.server.timeout
	}
}

// reportCohorts says on stderr which targeted cohorts are not up to date,
// and what is used instead, and which could not be cached; a rejected key,
// or with --strict a cohort not up to date, is an error.
func (s *flagSource) reportCohorts(ios *cli.IOStreams, cohorts []experiment.CohortStatus, now time.Time) error {
	var problems []experiment.CohortStatus
	for _, c := range cohorts {
		if c.CacheError != nil { // as the flag cache's: only a later --offline run misses the copy
			fmt.Fprintf(ios.ErrOut, "experiment: warning: cohort cache not written (%v); --offline will not have this copy\n", c.CacheError)
		}
		if c.LastError == nil {
			continue
		}
		if errors.Is(c.LastError, cohort.ErrUnauthorized) {
			return cohortKeysRejected(s.server.apiKey, s.server.secretKey, c.LastError)
		}
		problems = append(problems, c)
	}
	if len(problems) == 0 {
		return nil
	}
	if !s.strict {
		for _, c := range problems {
			fmt.Fprintf(ios.ErrOut, "experiment: warning: %v; %s\n", c.LastError, inUse(c, now))
		}
		return nil
	}
	for _, c := range problems[1:] {
		fmt.Fprintf(ios.ErrOut, "experiment: warning: %v; %s\n", c.LastError, inUse(c, now))
	}
	first := problems[0]
	err := &exitError{code: ExitNetwork, err: first.LastError,
		hint: "check --cohort-server-url, --server-zone and the network; without --strict: " + inUse(first, now)}
	var de *cohort.DownloadError
	switch {
	case errors.As(first.LastError, &de):
	case errors.Is(first.LastError, experiment.ErrCohortNotCached):
		err.code, err.hint = ExitIO, "run 'experiment cohorts sync' while online; without --strict: "+inUse(first, now)
	case errors.Is(first.LastError, cohort.ErrMalformed), errors.Is(first.LastError, cohort.ErrBadID):
		err.code, err.hint = ExitInput, "run 'experiment cohorts sync' to download it again; without --strict: "+inUse(first, now)
	default: // a cached copy that could not be read
		err.code, err.hint = ExitIO, "run 'experiment cohorts sync' to download it again; without --strict: "+inUse(first, now)
	}
	return err
}

// inUse says what a cohort that is not up to date is evaluated with.
func inUse(c experiment.CohortStatus, now time.Time) string {
	switch {
	case !c.Loaded():
		return "its members evaluate as non-members"
	case c.FetchedAt.IsZero():
		return fmt.Sprintf("using the %s copy last modified %s", copyKind(c), c.LastModified.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("using the %s copy from %s ago", copyKind(c), c.Age(now).Round(time.Second))
}

func copyKind(c experiment.CohortStatus) string {
	if c.Source == experiment.SourceCache {
		return "cached"
	}
	return "last downloaded"
}
