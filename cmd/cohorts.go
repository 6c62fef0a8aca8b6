package cmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/experiment"
)

// cohortsRunners replace the run functions of the cohorts subcommands in
// tests, which then see the parsed options without anything running.
type cohortsRunners struct {
	sync func(context.Context, *cohortsSyncOptions) error
	list func(context.Context, *cohortsListOptions) error
}

func newCohortsCmd(f *Factory, runF *cohortsRunners) *cobra.Command {
	if runF == nil {
		runF = &cohortsRunners{}
	}
	c := &cobra.Command{
		Use:   "cohorts",
		Short: "Download and list the behavioral cohorts flags target",
		Long: "Flags can target behavioral cohorts. Local evaluation needs their members, which come from\n" +
			"Amplitude's cohort download API with the analytics project's API key and secret key.",
	}
	c.AddCommand(newCohortsSyncCmd(f, runF.sync), newCohortsListCmd(f, runF.list))
	return c
}

type cohortsSyncOptions struct {
	IO     *cli.IOStreams
	Source flagSource

	APIKey          string
	SecretKey       string
	CohortServerURL string // the zone's when no setting gives one (validate)
	MaxCohortSize   int
	Out             string
	Output          string
}

func newCohortsSyncCmd(f *Factory, runF func(context.Context, *cohortsSyncOptions) error) *cobra.Command {
	opts := &cohortsSyncOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "sync [--out DIR]",
		Short: "Download the cohorts the flags target into the cache or a directory",
		Long: "Download every cohort the flags target (from --flags FILE, or the flags of a deployment key)\n" +
			"with the analytics project's API key and secret key, into --out DIR or the cache. Each cohort\n" +
			"is a file DIR/<cohortId>.json, the body of the download API, so the directory works with\n" +
			"'experiment evaluate --cohorts DIR'. Cohorts already there are only downloaded again when they\n" +
			"changed. A cohort whose download fails keeps its last good copy. --timeout bounds each\n" +
			"cohort's whole download, retries included: raise it for very large cohorts.\n\n" +
			"Exit status: 0 when every cohort is current (a cohort the server does not know, or one over\n" +
			"--max-cohort-size, is a warning: nobody is a member); 4 when the keys are rejected; 5 when\n" +
			"downloads failed after retries.",
		Example: `  export EXPERIMENT_API_KEY=... EXPERIMENT_SECRET_KEY=...
  experiment cohorts sync --flags flags.json --out cohorts/
  experiment evaluate --flags flags.json --cohorts cohorts/ --user-id user@company.com
  experiment cohorts sync --deployment-key server-... --server-zone eu`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runCohortsSync(c.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&opts.Source.flagsFile, "flags", "", "flag configs: a JSON file (the body of GET /sdk/v2/flags), or - for stdin; default: the flags of a deployment key")
	fl.BoolVar(&opts.Source.strict, "strict", false, "fail on config problems the engine tolerates (unknown operators, bad regexes, missing dependencies)")
	opts.Source.server.registerWithout(f, fl, oneShot...)
	bindSetting(fl, &opts.APIKey, "api-key", "analytics API key")
	bindSetting(fl, &opts.SecretKey, "secret-key", "analytics secret key")
	bindSetting(fl, &opts.CohortServerURL, "cohort-server-url", "cohort download server URL")
	fl.IntVar(&opts.MaxCohortSize, "max-cohort-size", cohort.DefaultMaxCohortSize, "skip cohorts with more members than this")
	fl.StringVar(&opts.Out, "out", "", "directory DIR to write <cohortId>.json files into (default: the cohort cache of the API key)")
	registerOutput(fl, &opts.Output, dataOutput, outputForms...)
	c.Long += "\n\n" + environmentHelp(fl, "Flags win over the environment, which wins over the config file.")
	return c
}

func (o *cohortsSyncOptions) validate() error {
	if o.Source.server.offline {
		return usageError("--offline: cohorts sync needs the cohort server")
	}
	if o.APIKey == "" || o.SecretKey == "" {
		missing := "an API key (--api-key or EXPERIMENT_API_KEY)"
		if o.APIKey != "" {
			missing = "a secret key (--secret-key or EXPERIMENT_SECRET_KEY)"
		}
		return withHint(usageError("cohort sync needs the analytics project's API key and secret key: %s is missing", missing),
			"both are under Settings > Projects > (project) > General in Amplitude; they are not the deployment key")
	}
	if o.CohortServerURL == "" {
		o.CohortServerURL = o.Source.server.serverZone.CohortServerURL()
	}
	if o.MaxCohortSize < 1 {
		return usageError("--max-cohort-size %d: want a positive number", o.MaxCohortSize)
	}
	if o.Source.server.timeout <= 0 {
		return usageError("--timeout %v: want a positive duration", o.Source.server.timeout)
	}
	return nil
}

// cohortRow is one cohort in the output of `cohorts sync` and `cohorts
// list`. -o json prints an array of them; fields may be added, never
// renamed.
type cohortRow struct {
	ID           string `json:"id"`
	GroupType    string `json:"group_type"`
	Size         int    `json:"size"`          // members held
	LastModified int64  `json:"last_modified"` // ms since the epoch, as the server sent it; 0 when none is held
	Status       string `json:"status,omitempty"`
	Error        string `json:"error,omitempty"`
}

// Statuses of `cohorts sync`.
const (
	statusUpdated   = "updated"
	statusUnchanged = "unchanged"
	statusFailed    = "failed"
	statusNotFound  = "not-found"
	statusTooLarge  = "too-large"
)

func runCohortsSync(ctx context.Context, opts *cohortsSyncOptions) error {
	flagSet, err := opts.Source.loadWithoutCohorts(ctx)
	if err != nil {
		return err
	}
	refs := flagSet.CohortReferences()
	ids := refs.All()
	if len(ids) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "no cohorts to sync: no flag in %s targets a cohort\n", opts.Source.name())
		return renderCohortRows(opts.IO, opts.Output, []cohortRow{}, "MEMBERS", true)
	}
	dir, err := opts.cohortDir()
	if err != nil {
		return err
	}
	results, err := downloadCohorts(ctx, opts, dir, ids)
	if err != nil {
		return err
	}
	// Save what arrived, even when interrupted: each file is whole or absent.
	if err := saveCohorts(dir, ids, results, time.Now()); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tally := syncTally{counts: map[string]int{}}
	for _, id := range ids {
		tally.add(opts, id, referencedType(refs, id), results[id])
	}
	return tally.report(opts, dir)
}

// cohortDir is where cohorts sync writes: --out, or the cohort cache of
// the API key. It fails before anything is downloaded that could not be
// saved.
func (o *cohortsSyncOptions) cohortDir() (string, error) {
	dir := o.Out
	if dir == "" {
		cache, err := o.Source.server.cachePath()
		if err != nil {
			return "", err
		}
		dir = experiment.CohortCacheDir(cache, o.APIKey)
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return "", ioError(fmt.Errorf("cohort directory %s: not a directory", dir))
	}
	return dir, nil
}

// downloadCohorts downloads the cohorts ids that changed since the copies
// in dir, with a progress bar on a terminal, and returns each one's result.
func downloadCohorts(ctx context.Context, opts *cohortsSyncOptions, dir string, ids []string) (map[string]cohort.Result, error) {
	ios := opts.IO
	current, loadErrs := cohort.LoadDir(dir, ids)
	for _, err := range loadErrs {
		if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(ios.ErrOut, "experiment: warning: %v; downloading it again\n", err)
		}
	}
	client, err := cohort.NewClient(cohort.Config{
		APIKey: opts.APIKey, SecretKey: opts.SecretKey, ServerURL: opts.CohortServerURL,
		// --timeout bounds each cohort's whole download, retries included,
		// and also any silence within it.
		MaxCohortSize: opts.MaxCohortSize, RequestTimeout: opts.Source.server.timeout, Timeout: opts.Source.server.timeout,
		Logger: debugLogger(ios, opts.Source.server.debug),
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	defer client.Close()

	bar := ios.NewProgress("syncing cohorts", int64(len(ids)), cli.Items)
	results := map[string]cohort.Result{}
	_, _ = cohort.Sync(ctx, client, current, ids, cohort.OnResult(func(r cohort.Result) {
		results[r.ID] = r
		bar.Add(1)
	}))
	bar.Finish()
	return results, nil
}

// saveCohorts writes the cohorts that were downloaded into dir. A file the
// server confirmed (204) gets the time of that answer, now, so that its age
// counts from when it was last known current.
func saveCohorts(dir string, ids []string, results map[string]cohort.Result, now time.Time) error {
	for _, id := range ids {
		switch r := results[id]; r.Outcome {
		case cohort.Updated:
			if err := cohort.SaveDir(dir, r.Cohort); err != nil {
				return ioError(fmt.Errorf("saving cohort %s: %w", r.Cohort.ID, err))
			}
		case cohort.Unchanged:
			if err := cohort.Touch(dir, r.Cohort.ID, now); err != nil {
				return ioError(fmt.Errorf("marking cohort %s current: %w", r.Cohort.ID, err))
			}
		}
	}
	return nil
}

// syncTally is what a sync did, cohort by cohort: the rows of its output,
// how many cohorts ended in each status, and the failures.
type syncTally struct {
	rows         []cohortRow
	counts       map[string]int
	failed       []error
	unauthorized error // the first rejection of the keys
}

// add counts the result r of cohort id, which the flags target as
// groupType, and warns on stderr of one nobody is a member of.
func (t *syncTally) add(opts *cohortsSyncOptions, id, groupType string, r cohort.Result) {
	row := cohortRow{ID: id, GroupType: groupType, Status: syncStatus(r)}
	if c := r.Cohort; c != nil {
		row.GroupType, row.Size, row.LastModified = c.GroupType, c.Len(), c.LastModified
	}
	t.counts[row.Status]++
	if r.Err != nil {
		row.Error = r.Err.Error()
	}
	switch row.Status {
	case statusNotFound:
		fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: cohort %s: not found on the cohort server (404); nobody is a member%s\n", id, kept(r))
	case statusTooLarge:
		fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: cohort %s: skipped: more than %d members (--max-cohort-size)%s\n", id, opts.MaxCohortSize, kept(r))
	case statusFailed:
		if !errors.Is(r.Err, cohort.ErrUnauthorized) {
			t.failed = append(t.failed, r.Err)
		} else if t.unauthorized == nil {
			t.unauthorized = r.Err
		}
	}
	t.rows = append(t.rows, row)
}

// report prints the rows, then fails with the keys' rejection (exit 4) or
// the downloads that failed (exit 5), or says what was synced into dir.
func (t *syncTally) report(opts *cohortsSyncOptions, dir string) error {
	ios := opts.IO
	if err := renderCohortRows(ios, opts.Output, t.rows, "MEMBERS", true); err != nil {
		return err
	}
	if t.unauthorized != nil {
		return cohortKeysRejected(opts.APIKey, opts.SecretKey, t.unauthorized)
	}
	if len(t.failed) > 0 {
		for _, err := range t.failed[1:] {
			fmt.Fprintf(ios.ErrOut, "experiment: warning: %v\n", err)
		}
		return &exitError{code: ExitNetwork,
			err:  fmt.Errorf("%d of %d cohorts failed to download: %w", len(t.failed), len(t.rows), t.failed[0]),
			hint: fmt.Sprintf("the last good copies in %s are kept; check --cohort-server-url / --server-zone and the network, then run again", dir)}
	}
	// Only on success: after a failure stderr holds just the error (docs/cli.md#errors),
	// and the table on stdout has each cohort's status.
	fmt.Fprintf(ios.ErrOut, "synced %d cohorts into %s: %s\n", len(t.rows), dir, countSummary(t.counts))
	return nil
}

// cohortKeysRejected is the error of a cohort download that rejected the
// API key and secret key (exit 4): the keys by prefix and fingerprint only.
func cohortKeysRejected(apiKey, secretKey string, err error) error {
	return &exitError{code: ExitAuth,
		err: fmt.Errorf("cohort download rejected API key %v with secret key (fp %s): %w",
			experiment.Secret(apiKey), experiment.Secret(secretKey).Fingerprint(), err),
		hint: "use the analytics project's API key and secret key (Settings > Projects > (project) > General in Amplitude), not a deployment key"}
}

func syncStatus(r cohort.Result) string {
	switch {
	case r.Outcome == cohort.Updated:
		return statusUpdated
	case r.Outcome == cohort.Unchanged:
		return statusUnchanged
	case errors.Is(r.Err, cohort.ErrNotFound):
		return statusNotFound
	case errors.Is(r.Err, cohort.ErrTooLarge):
		return statusTooLarge
	}
	return statusFailed
}

// kept says that a last good copy is still used.
func kept(r cohort.Result) string {
	if r.Cohort == nil {
		return ""
	}
	return fmt.Sprintf("; keeping the copy last modified %s", formatMillis(r.Cohort.LastModified))
}

// referencedType is the group type the flags target a cohort as.
func referencedType(refs cohort.References, id string) string {
	for _, groupType := range slices.Sorted(maps.Keys(refs)) {
		if slices.Contains(refs[groupType], id) {
			return groupType
		}
	}
	return ""
}

func countSummary(counts map[string]int) string {
	var parts []string
	for _, s := range []string{statusUpdated, statusUnchanged, statusNotFound, statusTooLarge, statusFailed} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// debugLogger is the SDK debug log on stderr with --debug, else nothing.
func debugLogger(ios *cli.IOStreams, debug bool) *slog.Logger {
	if !debug {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(ios.ErrOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// renderCohortRows prints rows as a table (sizeHeader names the size
// column) or data (writeData).
func renderCohortRows(ios *cli.IOStreams, format string, rows []cohortRow, sizeHeader string, withStatus bool) error {
	if format != "table" {
		return writeOutput(writeData(ios.Out, format, rows))
	}
	header := []string{"ID", "GROUP TYPE", sizeHeader, "LAST MODIFIED"}
	if withStatus {
		header = append(header, "STATUS")
	}
	t := ios.OutTable(header...)
	for _, r := range rows {
		cells := []string{r.ID, r.GroupType, strconv.Itoa(r.Size), formatMillis(r.LastModified)}
		if !withStatus {
			t.AddRow(cells...)
			continue
		}
		t.AddRow(append(cells, r.Status)...)
		switch r.Status {
		case statusFailed:
			t.StyleCell(len(cells), cli.Failed)
		case statusNotFound, statusTooLarge:
			t.StyleCell(len(cells), cli.Warning)
		}
	}
	return writeOutput(t.Render(ios.Out))
}

// formatMillis is a lastModified in RFC 3339, UTC, or "-" for none.
func formatMillis(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

type cohortsListOptions struct {
	IO       *cli.IOStreams
	Dir      string
	APIKey   string
	CacheDir string
	Output   string

	dir        string // resolved
	defaultDir bool   // dir is the cache's, not --dir
}

func newCohortsListCmd(f *Factory, runF func(context.Context, *cohortsListOptions) error) *cobra.Command {
	opts := &cohortsListOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "list [--dir DIR]",
		Short: "List cached cohorts: id, group type, size, last modified",
		Long: "List the cohorts in a directory of <cohortId>.json files: --dir DIR, or the cohort cache of\n" +
			"the API key (where 'experiment cohorts sync' writes by default).",
		Example: `  experiment cohorts list
  experiment cohorts list --dir cohorts/ -o json`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := opts.validate(c.Flags()); err != nil {
				return err
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runCohortsList(c.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&opts.Dir, "dir", "", "directory DIR of <cohortId>.json files (default: the cohort cache of the API key)")
	bindSetting(fl, &opts.APIKey, "api-key", "analytics API key whose cached cohorts to list")
	bindSetting(fl, &opts.CacheDir, "cache-dir", "flag and cohort cache")
	registerOutput(fl, &opts.Output, dataOutput, outputForms...)
	c.Long += "\n\n" + environmentHelp(fl, "")
	return c
}

func (o *cohortsListOptions) validate(fl *pflag.FlagSet) error {
	if o.Dir != "" {
		if fl.Changed("api-key") || fl.Changed("cache-dir") {
			return usageError("--dir names the directory: --api-key and --cache-dir only pick the default one")
		}
		o.dir = o.Dir
		return nil
	}
	if o.APIKey == "" {
		return withHint(usageError("which cohorts? pass --dir DIR, or the API key whose cache to list (--api-key or EXPERIMENT_API_KEY)"),
			"cohorts are cached per analytics API key by 'experiment cohorts sync'")
	}
	cache, err := requireCacheDir(o.CacheDir, "pass --dir, --cache-dir or set EXPERIMENT_CACHE_DIR")
	if err != nil {
		return err
	}
	o.dir, o.defaultDir = experiment.CohortCacheDir(cache, o.APIKey), true
	return nil
}

func runCohortsList(_ context.Context, opts *cohortsListOptions) error {
	ios := opts.IO
	if st, err := os.Stat(opts.dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) && opts.defaultDir {
			fmt.Fprintf(ios.ErrOut, "no cohorts cached in %s\n", opts.dir)
			return renderCohortRows(ios, opts.Output, []cohortRow{}, "SIZE", false)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return ioError(fmt.Errorf("--dir %s: no such directory", opts.dir))
		}
		return namedFileError("--dir", opts.dir, err)
	} else if !st.IsDir() {
		return inputError(fmt.Errorf("%s: not a directory", opts.dir))
	}
	store, errs := cohort.LoadDir(opts.dir, nil)
	rows := make([]cohortRow, 0, store.Len())
	for _, c := range store.Cohorts() {
		rows = append(rows, cohortRow{ID: c.ID, GroupType: c.GroupType, Size: c.Len(), LastModified: c.LastModified})
	}
	if err := renderCohortRows(ios, opts.Output, rows, "SIZE", false); err != nil {
		return err
	}
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs[1:] {
		fmt.Fprintf(ios.ErrOut, "experiment: warning: %v\n", err)
	}
	if errors.Is(errs[0], cohort.ErrMalformed) || errors.Is(errs[0], cohort.ErrBadID) {
		return withHint(inputError(errs[0]), "run 'experiment cohorts sync' to download it again")
	}
	return ioError(errs[0])
}
