package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/experiment"
)

// Limits of `fetch --users`.
const (
	defaultFetchConcurrency = 8
	maxFetchConcurrency     = 256
)

type fetchOptions struct {
	IO *cli.IOStreams

	User      userFlags
	UsersFile string
	// Settings (settings.go): flag > environment > config file > default.
	DeploymentKey string
	ServerZone    experiment.ServerZone
	ServerURL     string

	Timeout     time.Duration
	Retries     int
	Concurrency int
	Output      string
	SkipInvalid bool
	Debug       bool
	Keys        []string
	// TrackAssignment and TrackExposure are nil unless their flag was
	// given: only then is the tracking header sent.
	TrackAssignment *bool
	TrackExposure   *bool

	userGiven bool
	cmd       *cobra.Command
}

func newFetchCmd(f *Factory, runF func(context.Context, *fetchOptions) error) *cobra.Command {
	opts := &fetchOptions{IO: f.IO}
	var trackAssignment, trackExposure bool
	c := &cobra.Command{
		Use:   "fetch [FLAG_KEY...]",
		Short: "Ask Amplitude's evaluation API which variants a user gets (remote evaluation)",
		Long: "Fetch a user's variants from Amplitude's remote evaluation API with a server deployment key.\n\n" +
			"Every variant the server sends is shown, default (off) variants included; with FLAG_KEYs,\n" +
			"only those flags are evaluated. One user comes from the user flags; many come from\n" +
			"--users FILE (JSON Lines), fetched concurrently and written one line per user, in input order.\n\n" +
			"The server tracks an assignment event per fetch unless --track-assignment=false; exposures\n" +
			"are tracked only with --track-exposure. Without these flags no tracking header is sent.",
		Example: `  export EXPERIMENT_DEPLOYMENT_KEY=server-...
  experiment fetch --user-id user@company.com -p plan=pro
  experiment fetch --device-id d-1 checkout-flow new-nav -o json
  experiment fetch --server-zone eu --user @user.json --track-assignment=false
  experiment fetch --users users.jsonl --retries 2 > variants.jsonl`,
		RunE: func(c *cobra.Command, args []string) error {
			fl := c.Flags()
			opts.Keys = args
			opts.cmd = c
			opts.userGiven = opts.User.given(fl)
			if fl.Changed("track-assignment") {
				opts.TrackAssignment = &trackAssignment
			}
			if fl.Changed("track-exposure") {
				opts.TrackExposure = &trackExposure
			}
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runFetch(c.Context(), opts)
		},
	}
	fl := c.Flags()
	opts.User.register(fl)
	fl.StringVar(&opts.UsersFile, "users", "", "fetch for many users: a JSON Lines file, or - for stdin")
	bindSetting(fl, &opts.DeploymentKey, "deployment-key", "server deployment key")
	bindZone(fl, &opts.ServerZone, "us or eu: picks the default server URL")
	bindSetting(fl, &opts.ServerURL, "server-url", "evaluation server base URL; a path in it is kept")
	fl.DurationVar(&opts.Timeout, "timeout", experiment.DefaultFetchTimeout, "per request, including reading the answer")
	fl.IntVar(&opts.Retries, "retries", experiment.DefaultFetchRetries, "retries of a failed request (timeouts, network errors, 429, 5xx), with backoff")
	fl.IntVar(&opts.Concurrency, "concurrency", defaultFetchConcurrency, "with --users: requests in flight at once")
	fl.BoolVar(&trackAssignment, "track-assignment", false, "tell the server to track (true) or not track (false) an assignment event; unset: the server's default (track)")
	fl.BoolVar(&trackExposure, "track-exposure", false, "tell the server to track (true) or not track (false) an exposure event; unset: the server's default (no)")
	registerBatchOutput(fl, &opts.Output, func() (bool, bool) { return opts.UsersFile != "", false })
	fl.BoolVar(&opts.SkipInvalid, "skip-invalid", false, "with --users: report and skip lines that are not user objects instead of failing")
	fl.BoolVar(&opts.Debug, "debug", false, "log requests and retries on stderr (keys redacted)")
	c.ValidArgsFunction = completeFlagKeys
	c.Long += "\n\n" + environmentHelp(fl, "Flags win over the environment, which wins over the config file.")
	return c
}

func (o *fetchOptions) validate() error {
	if o.Timeout <= 0 {
		return usageError("--timeout %v: want a positive duration, e.g. 5s", o.Timeout)
	}
	if o.Retries < 0 {
		return usageError("--retries %d: want 0 or more", o.Retries)
	}
	if o.Concurrency < 1 || o.Concurrency > maxFetchConcurrency {
		return usageError("--concurrency %d: want 1 to %d", o.Concurrency, maxFetchConcurrency)
	}
	if o.UsersFile != "" {
		if o.userGiven {
			return usageError("--users cannot be combined with a single user's flags (--user, --user-id, -p, ...)")
		}
		if o.Output == "table" || o.Output == "yaml" {
			return usageError("--users writes jsonl or json, not %s", o.Output)
		}
		if o.UsersFile == "-" && o.User.user == "-" {
			return usageError("only one of --users and --user can read stdin")
		}
	} else {
		if o.SkipInvalid {
			return usageError("--skip-invalid needs --users")
		}
		if !o.userGiven {
			return withHint(usageError("no user: remote evaluation needs a user"),
				"pass --user-id, --device-id or --user JSON, or --users FILE for many")
		}
	}

	if o.DeploymentKey == "" {
		return withHint(usageError("no deployment key: pass --deployment-key or set EXPERIMENT_DEPLOYMENT_KEY"),
			"use a server deployment key: in Amplitude, Experiment > Deployments (it starts with \"server-\")")
	}
	return nil
}

// sdkOptions are the fetch options of the SDK call.
func (o *fetchOptions) sdkOptions() *experiment.FetchOptions {
	return &experiment.FetchOptions{FlagKeys: o.Keys, TracksAssignment: o.TrackAssignment, TracksExposure: o.TrackExposure}
}

func (o *fetchOptions) client() (*experiment.RemoteClient, error) {
	logger := slog.New(slog.DiscardHandler) // failures are reported once, by Main
	if o.Debug {
		logger = slog.New(slog.NewTextHandler(o.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := experiment.NewRemoteClient(o.DeploymentKey, &experiment.RemoteConfig{
		ServerURL: o.ServerURL, ServerZone: o.ServerZone, FetchTimeout: o.Timeout, FetchRetryTimeout: o.Timeout,
		FetchRetries: o.Retries, Logger: logger, Library: cliLibrary(),
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return c, nil
}

func runFetch(ctx context.Context, opts *fetchOptions) error {
	client, err := opts.client()
	if err != nil {
		return err
	}
	defer client.Close()
	if opts.UsersFile != "" {
		return runFetchUsers(ctx, opts, client)
	}
	user, err := opts.User.build(opts.cmd.Flags(), opts.IO.In)
	if err != nil {
		return err
	}
	variants, err := client.FetchV2(ctx, user, opts.sdkOptions())
	if err != nil {
		return fetchFailure(err, opts.DeploymentKey)
	}
	for _, k := range opts.Keys {
		if _, ok := variants[k]; !ok {
			fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: no variant for flag %q: not in this deployment, or no such flag\n", k)
		}
	}
	return renderVariantMap(opts.IO, opts.Output, variants)
}

// fetchFailure maps a failed fetch to the exit codes of docs/cli.md#exit-codes:
// a rejected key is 4, naming the key by fingerprint; network, server and
// response failures after the retries are 5; an interruption stays
// context.Canceled (130).
func fetchFailure(err error, key string) error {
	var fe *experiment.FetchError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, experiment.ErrUnauthorized):
		return &exitError{code: ExitAuth, err: err, hint: rejectedKeyHint(key)}
	case errors.As(err, &fe):
		return &exitError{code: ExitNetwork, err: err, hint: fetchHint(fe)}
	}
	return err
}

func fetchHint(fe *experiment.FetchError) string {
	switch {
	case errors.Is(fe, context.DeadlineExceeded):
		return "the server did not answer in time: raise --timeout, or add --retries"
	case errors.Is(fe, experiment.ErrMalformedResponse):
		return "the server's answer is not remote evaluation's JSON: check --server-url"
	case fe.StatusCode == http.StatusNotFound:
		return "check --server-url: it is the base URL, /sdk/v2/vardata is added to it"
	case fe.StatusCode == http.StatusBadRequest:
		return "the server rejected the request; check the user object"
	case fe.StatusCode == http.StatusTooManyRequests || fe.StatusCode >= 500:
		return "the server is throttling or failing: try again later, or add --retries"
	case fe.StatusCode == 0:
		return "check the network, --server-url and --server-zone"
	}
	return ""
}

// fetchJob is one line of --users on its way through the pipeline.
type fetchJob struct {
	line int
	data []byte
	out  []byte // the output line, newline included
	err  error
	done chan struct{} // closed when out or err is set
}

// runFetchUsers fetches for every user of a JSON Lines input with at most
// --concurrency requests in flight, and writes one line per user in input
// order. The reader queues jobs in order on a bounded channel, so memory
// stays flat however long the input; workers complete them in any order;
// the writer waits for each in turn. The first failure stops everything:
// the lines before it are written whole, the rest are not.
func runFetchUsers(parent context.Context, opts *fetchOptions, client *experiment.RemoteClient) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	in, err := openUsers(ctx, opts.IO, opts.UsersFile)
	if err != nil {
		return err
	}
	defer in.close()
	name := in.name

	n := opts.Concurrency
	order := make(chan *fetchJob, 2*n) // bounds the jobs read but not yet written
	jobs := make(chan *fetchJob, n)
	go readFetchUsers(ctx, in, opts.SkipInvalid, order, jobs)

	fo := opts.sdkOptions()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.out, j.err = fetchUserLine(ctx, client, fo, opts.DeploymentKey, name, j)
				j.data = nil
				close(j.done)
			}
		}()
	}

	w := cli.NewJSONList(opts.IO.Out, opts.Output == "json")
	var werr error
	for j := range order {
		<-j.done
		if werr != nil {
			continue // draining: the reader and workers stop at cancel
		}
		if j.err != nil {
			var ie *invalidLine
			if opts.SkipInvalid && errors.As(j.err, &ie) {
				fmt.Fprintf(opts.IO.ErrOut, "experiment: skipped %v\n", ie)
				continue
			}
			werr = j.err
			cancel()
			continue
		}
		if err := w.Write(j.out); err != nil {
			werr = ioError(fmt.Errorf("writing output: %w", err))
			cancel()
		}
	}
	wg.Wait()
	if werr == nil && parent.Err() != nil {
		werr = parent.Err()
	}
	// The JSON array is closed even after a failure: what was written
	// stays valid JSON, and the exit code says the run failed.
	if err := w.Close(); err != nil && werr == nil {
		werr = ioError(fmt.Errorf("writing output: %w", err))
	}
	return werr
}

// invalidLine is a --users line that is not a user object: exit 3, or
// skipped with --skip-invalid.
type invalidLine struct {
	name string
	line int
	err  error
}

func (e *invalidLine) Error() string { return fmt.Sprintf("%s:%d: %v", e.name, e.line, e.err) }
func (e *invalidLine) Unwrap() error { return e.err }

// readFetchUsers queues every non-blank line, in order, then closes both
// channels. A read failure becomes a last job, so it is reported after the
// lines before it; so does a line over the limit unless skipInvalid, when
// it is an invalid line like any other and reading goes on after it.
func readFetchUsers(ctx context.Context, in *usersInput, skipInvalid bool, order, jobs chan<- *fetchJob) {
	defer close(jobs)
	defer close(order)
	for {
		line, data, err := in.next()
		if err == io.EOF {
			return
		}
		if err != nil {
			j := &fetchJob{line: line, err: err, done: make(chan struct{})}
			if errors.Is(err, errLineTooLong) {
				j.err = inputError(&invalidLine{name: in.name, line: line, err: err})
			}
			close(j.done)
			select {
			case order <- j:
			case <-ctx.Done():
				return
			}
			if !skipInvalid || !errors.Is(err, errLineTooLong) {
				return
			}
			continue
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		j := &fetchJob{line: line, data: data, done: make(chan struct{})}
		select {
		case order <- j:
		case <-ctx.Done():
			return
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
			j.err = ctx.Err()
			close(j.done)
			return
		}
	}
}

// fetchUserLine decodes one user and fetches its variants as one JSON line.
func fetchUserLine(ctx context.Context, client *experiment.RemoteClient, fo *experiment.FetchOptions, key, name string, j *fetchJob) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	user, err := decodeUsersLine(j.data) // strict, as evaluate --users
	if err != nil {
		return nil, inputError(&invalidLine{name: name, line: j.line, err: err})
	}
	variants, err := client.FetchV2(ctx, user, fo)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fetchFailure(fmt.Errorf("%s:%d: %w", name, j.line, err), key)
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, variants, false); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
