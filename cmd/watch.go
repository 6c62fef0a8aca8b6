package cmd

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/internal/flagdiff"
	"github.com/flagkit/experiment/internal/redact"
	"github.com/flagkit/experiment/pkg/experiment"
)

type watchOptions struct {
	IO           *cli.IOStreams
	Source       flagSource
	User         userFlags
	Stream       bool
	PollInterval time.Duration
	UntilChange  bool
	Output       string
	Now          func() time.Time
	cmd          *cobra.Command
	decoded      watchFlags // the last set's flags, for the next update
}

func newWatchCmd(f *Factory, runF func(context.Context, *watchOptions) error) *cobra.Command {
	opts := &watchOptions{IO: f.IO, Now: f.Now}
	c := &cobra.Command{
		Use:   "watch [user flags]",
		Short: "Keep flag configs fresh and print each change",
		Long: "Stream (or poll) the deployment's flag configs and print every change: flags added,\n" +
			"removed or changed. With user flags, also print when that user's variants change.\n" +
			"With --flags FILE, watch that file instead (checked every second unless --poll-interval\n" +
			"says otherwise), for editing flag configs by hand. With an API key and secret key,\n" +
			"cohorts are synced too. --until-change exits 0 after the first change, for scripts.\n" +
			"Ctrl-C stops.",
		Example: `  experiment watch --stream
  experiment watch --user-id user-1 -p plan=pro --until-change -o jsonl
  experiment watch --flags flags.json --cohorts cohorts --user @user.json`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			opts.cmd = c
			if opts.Source.server.offline {
				return usageError("--offline: watch needs the server")
			}
			if opts.Source.flagsFile == "-" {
				return usageError("--flags -: watch needs a file it can read again")
			}
			if opts.Source.flagsFile != "" && !c.Flags().Changed("poll-interval") {
				opts.PollInterval = time.Second
			}
			if opts.PollInterval <= 0 {
				return usageError("--poll-interval %v: want a positive duration", opts.PollInterval)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runWatch(c.Context(), opts)
		},
	}
	opts.Source.register(f, c.Flags())
	opts.User.register(c.Flags())
	c.Flags().BoolVar(&opts.Stream, "stream", false, "receive updates over the flag stream (polling while it is down)")
	c.Flags().DurationVar(&opts.PollInterval, "poll-interval", experiment.DefaultFlagConfigPollingInterval, "how often to poll")
	c.Flags().BoolVar(&opts.UntilChange, "until-change", false, "exit after the first change")
	registerOutput(c.Flags(), &opts.Output, dataOutput, "table", "jsonl")
	return c
}

// watchEvent is one printed change; its JSON form is the jsonl contract.
type watchEvent struct {
	Time time.Time      `json:"time"`
	Kind watchEventKind `json:"kind"`
	Flag string         `json:"flag"`
	From string         `json:"from,omitempty"`
	To   string         `json:"to,omitempty"`
	// Changes says what changed in a changed flag, a phrase per part
	// ("variant beta added", "segment 2 allocation"): the version alone
	// does not, and stays the same for some edits.
	Changes []string `json:"changes,omitempty"`
	// Diff is the semantic diff of a changed flag, as `experiment diff`
	// reports it (docs/cli.md#diff).
	Diff *flagdiff.Flag `json:"diff,omitempty"`
}

func runWatch(ctx context.Context, opts *watchOptions) error {
	var user *experiment.User
	if opts.User.given(opts.cmd.Flags()) {
		u, err := opts.User.build(opts.cmd.Flags(), opts.IO.In)
		if err != nil {
			return err
		}
		user = u
	}
	if opts.Source.flagsFile != "" {
		return watchFile(ctx, opts, user)
	}
	return watchServer(ctx, opts, user)
}

// report prints the changes from prev to next and says whether watching
// is over (--until-change and something changed).
func (opts *watchOptions) report(prev, next *experiment.FlagSet, user *experiment.User) (bool, error) {
	events, err := diffFlagSets(&opts.decoded, prev, next, user, opts.Now())
	if err != nil {
		fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: %s: cannot evaluate the user, so variant changes are not shown: %v\n", opts.Source.name(), err)
	}
	if err := printWatchEvents(opts, events); err != nil {
		return false, err
	}
	return opts.UntilChange && len(events) > 0, nil
}

func watchServer(ctx context.Context, opts *watchOptions, user *experiment.User) error {
	updates := make(chan [2]*experiment.FlagSet, 16)
	// stopped ends with this function, before Close: an update the loop
	// will never read must not block the updater that Close waits for.
	stopped, stop := context.WithCancel(ctx)
	// streamDown hears, from the SDK's log, that the stream failed and
	// polling took over: with --stream the user asked for the stream, and
	// the fall back must be said, not only logged with --debug.
	streamDown := make(chan string, 1)
	client, err := opts.Source.server.startClient(ctx, opts.IO, func(cfg *experiment.LocalConfig) {
		cfg.StreamUpdates, cfg.FlagConfigPollingInterval = opts.Stream, opts.PollInterval
		if opts.Stream {
			cfg.Logger = slog.New(&streamDownHandler{next: cfg.Logger.Handler(), down: streamDown, once: new(sync.Once)})
		}
		cfg.OnUpdate = func(prev, next *experiment.FlagSet) {
			select {
			case updates <- [2]*experiment.FlagSet{prev, next}:
			case <-stopped.Done():
			}
		}
	})
	if err != nil {
		stop()
		return err
	}
	defer client.Close()
	defer stop()
	fs := client.FlagSet()
	// Cohorts synced with the flags are reported as evaluate reports them,
	// at the start and then whenever one's problem changes: a watched
	// variant computed with stale or missing memberships is said.
	if err := opts.Source.reportCohorts(opts.IO, client.Status().Cohorts, opts.Now()); err != nil {
		return err
	}
	cohortProblems := cohortErrors(client.Status().Cohorts)
	fmt.Fprintf(opts.IO.ErrOut, "watching %d flags (%s); Ctrl-C to stop\n", fs.Snapshot().Len(), describeStatus(client.Status()))
	status := time.NewTicker(time.Second)
	defer status.Stop()
	last := client.Status()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case why := <-streamDown:
			fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: --stream: the flag stream is down (%s); polling every %v until it is back\n",
				why, opts.PollInterval)
		case u := <-updates:
			// Each update is diffed against the set it replaced, not the
			// set read above: one that lands between the client getting
			// ready and that read must still be printed.
			if u[0] == nil {
				continue // the initial set, already reported
			}
			if done, err := opts.report(u[0], u[1], user); done || err != nil {
				return err
			}
		case <-client.Done():
			// Updates stopped for good (the key was rejected): the flags
			// shown can no longer change, so watching them would be a lie.
			err := client.Status().LastError
			if err == nil {
				err = errors.New("flag updates stopped")
			}
			return serverError(err, opts.Source.server.deploymentKey)
		case <-status.C:
			st := client.Status()
			if st.State != last.State || st.Streaming != last.Streaming {
				fmt.Fprintf(opts.IO.ErrOut, "%s %s\n", opts.Now().Format(time.RFC3339), describeStatus(st))
				last = st
			}
			cohortProblems = reportCohortChanges(opts.IO, st.Cohorts, cohortProblems, opts.Now())
		}
	}
}

// watchFile rereads --flags every poll interval and reports what changed.
// A file caught half-written, or broken by an edit, is a warning: the last
// good flags stay in use until the file is fixed.
func watchFile(ctx context.Context, opts *watchOptions, user *experiment.User) error {
	name := opts.Source.flagsFile
	last, _ := os.ReadFile(name) // before load: a change in between is seen as one
	fs, err := opts.Source.load(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "watching %d flags in %s; Ctrl-C to stop\n", fs.Snapshot().Len(), name)
	tick := time.NewTicker(opts.PollInterval)
	defer tick.Stop()
	broken := ""
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		data, err := os.ReadFile(name)
		if err == nil && bytes.Equal(data, last) {
			continue
		}
		next := fs
		if err == nil {
			next, err = opts.Source.load(ctx)
		}
		if err != nil {
			last = data                            // a file that stays broken is not reread every tick
			if msg := err.Error(); msg != broken { // once per distinct problem
				fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: %v; keeping the last good flags\n", err)
				broken = msg
			}
			continue
		}
		last, broken = data, ""
		done, err := opts.report(fs, next, user)
		if done || err != nil {
			return err
		}
		fs = next
	}
}

// streamDownMsg is the message the SDK logs when the flag stream fails and
// polling takes over (pkg/experiment, LocalClient.run); watch_stream_down's
// script fails if it changes.
const streamDownMsg = "flag stream down; polling until it is retried"

// streamDownHandler passes every record on to next and sends the error of
// the first stream-down record to down: once, because the stream is
// retried and may fail again and again while polling carries on.
type streamDownHandler struct {
	next slog.Handler
	down chan<- string
	once *sync.Once
}

func (h *streamDownHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *streamDownHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == streamDownMsg {
		why := "no reason given"
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" {
				why = redact.Text(a.Value.String()) // an error never has a key; a slip must not print it
				return false
			}
			return true
		})
		h.once.Do(func() { h.down <- why }) // the first send: room in the channel
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *streamDownHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &streamDownHandler{next: h.next.WithAttrs(as), down: h.down, once: h.once}
}

func (h *streamDownHandler) WithGroup(name string) slog.Handler {
	return &streamDownHandler{next: h.next.WithGroup(name), down: h.down, once: h.once}
}

func describeStatus(st experiment.Status) string {
	if st.Source == experiment.SourceCache {
		s := "cached flags; retrying the server"
		if st.LastError != nil {
			s += ": " + st.LastError.Error()
		}
		return s
	}
	s := string(st.State) + " from " + string(st.Source)
	if st.Streaming {
		s += ", streaming"
	}
	if st.State == experiment.StateInterrupted && st.LastError != nil {
		s += ": " + st.LastError.Error()
	}
	return s
}

func printWatchEvents(opts *watchOptions, events []watchEvent) error {
	for _, e := range events {
		var err error
		if opts.Output == "jsonl" {
			err = writeJSON(opts.IO.Out, e, false)
		} else {
			_, err = fmt.Fprintf(opts.IO.Out, "%s  %-8s %s  %s\n", e.Time.Format(time.RFC3339), string(e.Kind), e.Flag, watchChangeText(e))
			if err == nil && e.Diff != nil {
				// Under the summary, the whole change as diff shows it.
				p := newDiffPrinter(opts.IO)
				p.changes(e.Diff)
				err = p.writeTo(opts.IO.Out)
			}
		}
		if err != nil {
			return ioError(err)
		}
	}
	return nil
}

// watchChangeText is the end of an event's table line: the variants of a
// variant event, the version of a flag added or removed, the versions of
// a changed one as diff's header has them, then what changed.
func watchChangeText(e watchEvent) string {
	var change string
	switch e.Kind {
	case watchVariant:
		// The same variant on both sides is a new value or payload.
		change = orNone(e.From) + " → " + orNone(e.To)
	case watchChanged:
		change = versions(e.From, e.To)
	default:
		change = cmp.Or(e.To, e.From)
	}
	if len(e.Changes) == 0 {
		return change
	}
	if change != "" {
		change += ": "
	}
	return change + strings.Join(e.Changes, "; ")
}

// cohortErrors maps each cohort with a problem to its error's text.
func cohortErrors(cohorts []experiment.CohortStatus) map[string]string {
	m := map[string]string{}
	for _, c := range cohorts {
		if c.LastError != nil {
			m[c.ID] = c.LastError.Error()
		}
	}
	return m
}

// reportCohortChanges says which cohorts have a new problem, and which are
// up to date again, since seen; it returns the problems now.
func reportCohortChanges(ios *cli.IOStreams, cohorts []experiment.CohortStatus, seen map[string]string, now time.Time) map[string]string {
	current := cohortErrors(cohorts)
	for _, c := range cohorts {
		switch msg, bad := current[c.ID]; {
		case bad && msg != seen[c.ID]:
			fmt.Fprintf(ios.ErrOut, "experiment: warning: %v; %s\n", c.LastError, inUse(c, now))
		case !bad && seen[c.ID] != "":
			fmt.Fprintf(ios.ErrOut, "%s cohort %s up to date again (%d members)\n", now.Format(time.RFC3339), c.ID, c.Members)
		}
	}
	return current
}
