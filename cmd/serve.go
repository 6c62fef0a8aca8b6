package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/server"
)

type serveOptions struct {
	IO            *cli.IOStreams
	FlagsFile     string
	CohortsDir    string
	Listen        string
	OpsListen     string
	RequireKey    string
	Overrides     []string
	OverridesFile string
	CheckInterval time.Duration
	Drain         time.Duration
	Debug         bool
	Now           func() time.Time
	Relay         relayOptions
}

func newServeCmd(f *Factory, runF func(context.Context, *serveOptions) error) *cobra.Command {
	opts := &serveOptions{IO: f.IO, Now: f.Now}
	c := &cobra.Command{
		Use:   "serve --flags FILE [--cohorts DIR] | --deployment-key KEY...",
		Short: "Serve flag configs to Amplitude's SDKs and OpenFeature providers",
		Long: "Serve flag configs as Amplitude's flag, stream, evaluation and cohort services do, so that\n" +
			"the official SDKs (local and remote evaluation) and OFREP providers use it unmodified: point\n" +
			"their server URL at http://ADDR. With --flags FILE (snapshot mode), no account and no network\n" +
			"are needed; edits to the files are picked up within a second and pushed to streaming clients,\n" +
			"and a broken edit keeps the last good flags. --override forces a variant for everyone or for one\n" +
			"user id or device id, in the served flag configs themselves. With --deployment-key (relay mode,\n" +
			"repeatable) each deployment's flags are kept fresh from Amplitude and served to requests carrying\n" +
			"that key (401 for others); --api-key/--secret-key add cohorts, --forward-events sends the events\n" +
			"remote evaluation requests ask for. With --redis URL, relays share Redis as a fleet: one of them\n" +
			"talks to Amplitude per deployment and all serve its exact bytes from memory. SIGTERM or Ctrl-C\n" +
			"drains and exits 0.\n" +
			"Endpoints: docs/serve.md.",
		Example: `  experiment serve --flags snapshot.json
  experiment serve --flags flags.json --cohorts cohorts --override new-editor=on@user-1
  experiment serve --flags flags.json --listen 0.0.0.0:3546 --ops-listen 127.0.0.1:9090 --require-key server-ci
  experiment serve --deployment-key server-a --deployment-key server-b --stream --api-key K --secret-key S
  experiment serve --deployment-key server-a --redis redis://:PASSWORD@redis.internal:6379/0`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			relay := len(opts.Relay.keys) > 0
			if err := opts.Relay.check(c, opts, relay); err != nil {
				return err
			}
			switch {
			case relay:
			case opts.FlagsFile == "":
				return withHint(usageError("serve needs --flags FILE (snapshot mode) or --deployment-key KEY (relay mode)"),
					"pull a snapshot with experiment flags pull --out FILE, or relay a deployment with --deployment-key")
			case opts.FlagsFile == "-":
				return usageError("--flags -: serve needs a file it can read again")
			case opts.CheckInterval <= 0:
				return usageError("--file-check-interval %v: want a positive duration", opts.CheckInterval)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			if relay {
				return runRelay(c.Context(), opts)
			}
			return runServe(c.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&opts.FlagsFile, "flags", "", "flag configs to serve: a JSON file (the body of GET /sdk/v2/flags)")
	fl.StringVar(&opts.CohortsDir, "cohorts", "", "directory of cohort files <cohortId>.json to serve and target")
	bindSetting(fl, &opts.Listen, "listen", "address to serve on")
	bindSetting(fl, &opts.OpsListen, "ops-listen", "address for /healthz, /readyz, /status and /metrics")
	fl.StringVar(&opts.RequireKey, "require-key", "", "accept only this deployment key (default: any)")
	fl.StringArrayVar(&opts.Overrides, "override", nil, "force a variant: FLAG=VARIANT for everyone, FLAG=VARIANT@ID for one user id or device id (repeatable)")
	fl.StringVar(&opts.OverridesFile, "overrides", "", "YAML file of overrides (a list of {flag, variant, id}), reloaded on change")
	fl.DurationVar(&opts.CheckInterval, "file-check-interval", time.Second, "how often the files are checked for changes")
	fl.DurationVar(&opts.Drain, "drain-timeout", 10*time.Second, "how long SIGTERM waits for requests in flight")
	fl.BoolVar(&opts.Debug, "debug", false, "log one line per request on stderr (never a key)")
	fl.MarkHidden("file-check-interval")
	opts.Relay.register(fl)
	return c
}

// logger is where --debug sends a line per request, and the relay's
// clients their records; without --debug, nowhere (and at no cost).
func (o *serveOptions) logger() *slog.Logger {
	if o.Debug {
		return slog.New(slog.NewTextHandler(o.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// serveFiles are the files snapshot mode serves, and what they held when
// last read: a change of any is a reload.
type serveFiles struct {
	opts  *serveOptions
	stamp []byte
}

// changed reports whether the files differ from the last load: the
// flags and overrides files' bytes, and each cohort file's name, size
// and time.
func (s *serveFiles) changed() ([]byte, bool) {
	var b bytes.Buffer
	for _, name := range []string{s.opts.FlagsFile, s.opts.OverridesFile} {
		if name == "" {
			continue
		}
		data, err := os.ReadFile(name)
		fmt.Fprintf(&b, "%s %v %d\n", name, err, len(data))
		b.Write(data)
	}
	if s.opts.CohortsDir != "" {
		entries, err := os.ReadDir(s.opts.CohortsDir)
		fmt.Fprintf(&b, "%v\n", err)
		for _, e := range entries {
			if info, err := e.Info(); err == nil {
				fmt.Fprintf(&b, "%s %d %d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
			}
		}
	}
	return b.Bytes(), !bytes.Equal(b.Bytes(), s.stamp)
}

// load reads the files into flags to serve, with the overrides compiled in.
func (s *serveFiles) load(ctx context.Context, now time.Time) (*server.Flags, []eval.Problem, error) {
	o := s.opts
	body, err := readInput(ctx, o.FlagsFile, maxFlagsBytes)
	if err != nil {
		return nil, nil, namedFileError("--flags", o.FlagsFile, err)
	}
	flags, err := eval.DecodeFlags(body)
	if err != nil {
		var pe *eval.ParseError
		if errors.As(err, &pe) {
			pe.File = o.FlagsFile
		}
		return nil, nil, inputError(err)
	}
	cohorts, err := s.loadCohorts()
	if err != nil {
		return nil, nil, err
	}
	overrides, err := s.overrides()
	if err != nil {
		return nil, nil, err
	}
	var f *server.Flags
	if len(overrides) == 0 {
		f, err = server.NewFlags(body, cohorts, "file "+o.FlagsFile, now)
	} else if flags, err = server.ApplyOverrides(flags, overrides); err == nil {
		f, err = server.FlagsOf(flags, cohorts, "file "+o.FlagsFile, now)
	}
	if err != nil {
		return nil, nil, inputError(fmt.Errorf("%s: %w", o.FlagsFile, err))
	}
	return f, f.Set.Snapshot().Problems(), nil
}

// loadCohorts reads every cohort file of --cohorts: they are served whole
// (/sdk/v1/cohort/{id}), and the targeted ones applied to evaluations.
func (s *serveFiles) loadCohorts() (*cohort.Store, error) {
	dir := s.opts.CohortsDir
	if dir == "" {
		return nil, nil
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, namedFileError("--cohorts", dir, err)
	} else if !st.IsDir() {
		return nil, inputError(fmt.Errorf("--cohorts %s: not a directory", dir))
	}
	store, errs := cohort.LoadDir(dir, nil)
	if len(errs) > 0 {
		return nil, inputError(fmt.Errorf("--cohorts %s: %w", dir, errs[0]))
	}
	return store, nil
}

// overrides are --override's, then the file's.
func (s *serveFiles) overrides() ([]server.Override, error) {
	var out []server.Override
	for _, v := range s.opts.Overrides {
		o, err := server.ParseOverride(v)
		if err != nil {
			return nil, usageError("--override: %v", err)
		}
		out = append(out, o)
	}
	name := s.opts.OverridesFile
	if name == "" {
		return out, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, namedFileError("--overrides", name, err)
	}
	var fromFile []server.Override
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fromFile); err != nil && !errors.Is(err, io.EOF) {
		return nil, inputError(fmt.Errorf("--overrides %s: %v", name, err))
	}
	for i, o := range fromFile {
		if o.Flag == "" || o.Variant == "" {
			return nil, inputError(fmt.Errorf("--overrides %s: entry %d: want flag and variant", name, i+1))
		}
	}
	return append(out, fromFile...), nil
}

func runServe(ctx context.Context, opts *serveOptions) error {
	files := &serveFiles{opts: opts}
	files.stamp, _ = files.changed() // before the load: an edit in between is seen as one
	flags, problems, err := files.load(ctx, opts.Now())
	if err != nil {
		return err
	}
	for _, p := range problems {
		if p.Kind != eval.ProblemCycle {
			fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: %s: %s: %s\n", opts.FlagsFile, p.Path, p.Message)
		}
	}
	store := server.NewStore()
	store.Set(flags)
	logger := opts.logger()
	h := server.New(store, server.Options{RequireKey: opts.RequireKey, Logger: logger, Mode: "snapshot", Now: opts.Now})
	servers, err := listenAll(opts, h)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "serving %d flags from %s on http://%s", flags.Set.Snapshot().Len(), opts.FlagsFile, servers[0].addr)
	if len(servers) > 1 {
		fmt.Fprintf(opts.IO.ErrOut, " (operations on http://%s)", servers[1].addr)
	}
	fmt.Fprintln(opts.IO.ErrOut, "; Ctrl-C to stop")
	failed := make(chan error, len(servers))
	for _, s := range servers {
		go func() { failed <- s.serve() }()
	}
	err = watchServed(ctx, opts, files, store, failed)
	return drain(opts, h, servers, err)
}

// listening is one listener and its server.
type listening struct {
	srv  *http.Server
	ln   net.Listener
	addr string
}

func (l *listening) serve() error {
	if err := l.srv.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listenAll opens the listeners, before anything is served: an address
// in use is an error at once, not a log line later.
func listenAll(opts *serveOptions, h *server.Handler) ([]*listening, error) {
	type pair struct {
		addr, name string
		handler    http.Handler
	}
	pairs := []pair{{opts.Listen, "--listen", h}}
	if opts.OpsListen != "" {
		pairs = []pair{{opts.Listen, "--listen", h.API()}, {opts.OpsListen, "--ops-listen", h.Ops()}}
	}
	var out []*listening
	for _, p := range pairs {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			for _, l := range out {
				l.ln.Close()
			}
			return nil, ioError(fmt.Errorf("%s %s: %w", p.name, p.addr, errors.Unwrap(err)))
		}
		srv := &http.Server{Handler: p.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: log.New(io.Discard, "", 0)}
		out = append(out, &listening{srv: srv, ln: ln, addr: ln.Addr().String()})
	}
	return out, nil
}

// watchServed checks the files every interval and applies changes until
// ctx ends (nil) or a server fails (its error). A broken edit keeps the
// last good flags, said once per distinct problem on stderr and in /status.
func watchServed(ctx context.Context, opts *serveOptions, files *serveFiles, store *server.Store, failed <-chan error) error {
	tick := time.NewTicker(opts.CheckInterval)
	defer tick.Stop()
	broken := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			return ioError(fmt.Errorf("serving: %w", err))
		case <-tick.C:
		}
		stamp, changed := files.changed()
		if !changed {
			continue
		}
		files.stamp = stamp
		flags, _, err := files.load(ctx, opts.Now())
		if err != nil {
			if msg := err.Error(); msg != broken {
				// The problem first: whoever reads the warning and then
				// /status (serve.txtar does) must find it degraded.
				store.SetProblem(msg + "; keeping the last good flags")
				fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: %v; keeping the last good flags\n", err)
				broken = msg
			}
			continue
		}
		broken = ""
		store.Set(flags)
		fmt.Fprintf(opts.IO.ErrOut, "%s reloaded: %d flags\n", opts.Now().Format(time.RFC3339), flags.Set.Snapshot().Len())
	}
}

// drain stops serving: listeners close, streams end, requests in flight
// finish (within --drain-timeout).
func drain(opts *serveOptions, h *server.Handler, servers []*listening, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), opts.Drain)
	defer cancel()
	for _, s := range servers {
		s.srv.RegisterOnShutdown(h.Close)
	}
	for _, s := range servers {
		if serr := s.srv.Shutdown(ctx); serr != nil && err == nil {
			err = ioError(fmt.Errorf("draining %s: %w", s.addr, serr))
		}
	}
	h.Close()
	if err == nil {
		fmt.Fprintln(opts.IO.ErrOut, "drained; stopped")
	}
	return err
}
