package cmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/experiment"
)

// serverFlags are the options of commands that talk to Amplitude's flag
// config service with a deployment key. The settings among them are
// resolved before the command runs (settings.go): flag > environment >
// config file > default.
type serverFlags struct {
	deploymentKey   string
	serverZone      experiment.ServerZone
	serverURL       string
	streamServerURL string
	cacheDir        string
	// With a deployment key, the analytics keys turn on cohort sync, for
	// the commands that evaluate users (flagSource.register binds them).
	apiKey, secretKey, cohortServerURL string

	offline bool
	timeout time.Duration
	debug   bool
	f       *Factory
}

// registerWithout registers all but the omitted options, for a command where
// they would do nothing (`flags pull --offline`): help shows no option that
// is ignored, and giving one is an unknown-option error.
func (s *serverFlags) registerWithout(f *Factory, all *pflag.FlagSet, omit ...string) {
	s.f = f
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	defer fs.VisitAll(func(fl *pflag.Flag) {
		if !slices.Contains(omit, fl.Name) {
			all.AddFlag(fl)
		}
	})
	bindSetting(fs, &s.deploymentKey, "deployment-key", "server deployment key")
	bindZone(fs, &s.serverZone, "us or eu: picks every default URL")
	bindSetting(fs, &s.serverURL, "server-url", "flag config server URL")
	bindSetting(fs, &s.streamServerURL, "stream-server-url", "flag stream server URL")
	bindSetting(fs, &s.cacheDir, "cache-dir", "flag and cohort cache")
	fs.BoolVar(&s.offline, "offline", false, "use the cached flag configs only; never contact the server")
	fs.DurationVar(&s.timeout, "timeout", 10*time.Second, "how long to wait for the server")
	fs.BoolVar(&s.debug, "debug", false, "SDK debug log on stderr (keys redacted)")
}

// cachePath is the cache directory.
func (s *serverFlags) cachePath() (string, error) {
	return requireCacheDir(s.cacheDir, "pass --cache-dir or set EXPERIMENT_CACHE_DIR")
}

// localConfig builds the SDK configuration these flags describe.
func (s *serverFlags) localConfig(ios *cli.IOStreams) (string, *experiment.LocalConfig, error) {
	if s.deploymentKey == "" {
		return "", nil, withHint(usageError("no flag configs: pass --flags FILE, or a deployment key with --deployment-key or EXPERIMENT_DEPLOYMENT_KEY"),
			"a server deployment key is under Experiment > Deployments in Amplitude; "+s.f.tryOffline)
	}
	if s.timeout <= 0 {
		return "", nil, usageError("--timeout %v: want a positive duration", s.timeout)
	}
	cacheDir, err := s.cachePath()
	if err != nil {
		return "", nil, err
	}
	level := slog.LevelWarn
	if s.debug {
		level = slog.LevelDebug
	}
	cfg := &experiment.LocalConfig{
		ServerZone: s.serverZone, ServerURL: s.serverURL, StreamServerURL: s.streamServerURL,
		CacheDir: cacheDir, Offline: s.offline, FlagConfigPollerRequestTimeout: s.timeout,
		Logger:  slog.New(slog.NewTextHandler(ios.ErrOut, &slog.HandlerOptions{Level: level})),
		Library: cliLibrary(), // the SDK's default names the SDK; the CLI's traffic is told apart
	}
	if s.apiKey != "" && s.secretKey != "" {
		cfg.CohortSyncConfig = &experiment.CohortSyncConfig{APIKey: s.apiKey, SecretKey: s.secretKey,
			CohortServerURL: s.cohortServerURL}
	}
	return s.deploymentKey, cfg, nil
}

// startClient starts a local client and waits at most --timeout for flags;
// when it falls back on the cache it says so, with the cache's age.
func (s *serverFlags) startClient(ctx context.Context, ios *cli.IOStreams, mutate func(*experiment.LocalConfig)) (*experiment.LocalClient, error) {
	key, cfg, err := s.localConfig(ios)
	if err != nil {
		return nil, err
	}
	if !s.debug {
		cfg.Logger = slog.New(slog.DiscardHandler) // the CLI reports what matters itself
	}
	if mutate != nil {
		mutate(cfg) // after the logger is chosen: a command may wrap it to hear of an event
	}
	// Start's own bound, not a deadline on ctx: Start starts the clock
	// itself, so a timeout names --timeout exactly, however long the
	// client took to make on a loaded machine.
	cfg.StartTimeout = s.timeout
	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.failFastWhenRefused(cfg, key, cancel)
	client, err := experiment.NewLocalClient(key, cfg)
	if err != nil {
		return nil, usageError("%v", err)
	}
	if err := client.Start(startCtx); err != nil {
		client.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, serverError(err, key)
	}
	st := client.Status()
	if st.Source == experiment.SourceCache && !s.offline {
		fmt.Fprintf(ios.ErrOut, "experiment: warning: flag config server unreachable (%v); using cached flags from %s ago\n",
			st.LastError, st.ConfigAge(time.Now()).Round(time.Second))
	}
	if st.CacheError != nil {
		fmt.Fprintf(ios.ErrOut, "experiment: warning: flag cache not written (%v); --offline will not have these flags\n", st.CacheError)
	}
	return client, nil
}

// failFastWhenRefused ends Start (through stop, which cancels its context)
// at the first refused connection when there is no cache to fall back on:
// nothing listens at that address, and retrying it until --timeout runs out
// is seconds of silence before the same error. Start then returns the
// refusal, as it does any failure it saw. With a cache, Start falls back on
// it at once by itself, so the cache's absence is checked first.
func (s *serverFlags) failFastWhenRefused(cfg *experiment.LocalConfig, key string, stop context.CancelFunc) {
	if s.offline {
		return
	}
	if _, err := os.Stat(experiment.FlagCachePath(cfg.CacheDir, key)); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	next := cfg.OnStatusChange
	cfg.OnStatusChange = func(ev experiment.StatusEvent) {
		if ev.Kind == experiment.StatusEventError && ev.Status.Source == experiment.SourceNone &&
			errors.Is(ev.Err, syscall.ECONNREFUSED) {
			stop()
		}
		if next != nil {
			next(ev)
		}
	}
}

// serverError maps SDK failures to the exit codes of docs/cli.md#exit-codes:
// a rejected key is 4, with the key's fingerprint and where to get a valid
// one; anything else from the network is 5.
func serverError(err error, key string) error {
	switch {
	case errors.Is(err, experiment.ErrUnauthorized):
		return &exitError{code: ExitAuth, err: fmt.Errorf("deployment key %v rejected: %w", experiment.Secret(key), err),
			hint: rejectedKeyHint(key)}
	case errors.Is(err, experiment.ErrCorruptCache):
		// Local data, not the network: invalid input, replaced by a pull.
		return &exitError{code: ExitInput, err: err, hint: "run 'experiment flags pull' while online to replace it"}
	case errors.Is(err, experiment.ErrNoCache):
		return &exitError{code: ExitIO, err: err, hint: "run 'experiment flags pull' while online first"}
	case errors.As(err, new(*experiment.CacheError)):
		return &exitError{code: ExitIO, err: err}
	case errors.Is(err, context.Canceled):
		return err
	}
	return &exitError{code: ExitNetwork, err: err, hint: "check --server-url / --server-zone and the network; cached flags are used when there are some"}
}

// rejectedKeyHint is the hint for a deployment key the server refused. It
// has the shape of a server key (checkDeploymentKey refuses any other before
// sending), so the likely causes are a key of another project or zone, or
// a deleted one, and not a client key.
func rejectedKeyHint(key string) string {
	return fmt.Sprintf("the server rejected deployment key %v, a server key by its shape: check that it belongs to this "+
		"project and zone (--server-zone eu for EU projects) and still exists under Experiment > Deployments in Amplitude",
		experiment.Secret(key))
}

// pullError is serverError for flags pull, which never falls back on the
// cache: its hint must not promise that it does.
func pullError(err error, key string) error {
	var ee *exitError
	if err = serverError(err, key); errors.As(err, &ee) && ee.code == ExitNetwork {
		ee.hint = "check --server-url / --server-zone and the network; the cache and --out are left as they were"
	}
	return err
}
