package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/server"
)

// relayOptions are serve's relay mode: deployments kept fresh from
// Amplitude, cohorts, and the events remote evaluation asks for.
type relayOptions struct {
	keys            []string // --deployment-key, repeatable
	serverZone      experiment.ServerZone
	serverURL       string
	streamServerURL string
	cacheDir        string
	apiKey          string
	secretKey       string
	cohortServerURL string
	eventsServerURL string
	pollInterval    time.Duration
	cohortPoll      time.Duration
	stream          bool
	forwardEvents   bool
	startTimeout    time.Duration
	fleet           fleetOptions // --redis: a fleet of relays
}

func (o *relayOptions) register(fl *pflag.FlagSet) {
	// The setting's value is resolved once (flag > environment > config
	// file) and given to set; a repeated flag gives each of its values
	// first. Empty values and repeats are dropped.
	bindSettingValue(fl, "deployment-key", "relay mode: serve this deployment's flags, kept fresh from Amplitude (repeatable)",
		func() string {
			if len(o.keys) == 0 {
				return ""
			}
			return o.keys[len(o.keys)-1]
		},
		func(v string) {
			if v != "" && !slices.Contains(o.keys, v) {
				o.keys = append(o.keys, v)
			}
		})
	bindZone(fl, &o.serverZone, "us or eu: picks every default URL (relay mode)")
	bindSetting(fl, &o.serverURL, "server-url", "flag config server URL (relay mode)")
	bindSetting(fl, &o.streamServerURL, "stream-server-url", "flag stream server URL (relay mode, --stream)")
	bindSetting(fl, &o.cacheDir, "cache-dir", "flag and cohort cache (relay mode)")
	bindSetting(fl, &o.apiKey, "api-key", "analytics API key: cohort sync and --forward-events (relay mode)")
	bindSetting(fl, &o.secretKey, "secret-key", "analytics secret key: cohort sync (relay mode)")
	bindSetting(fl, &o.cohortServerURL, "cohort-server-url", "cohort download server URL (relay mode)")
	bindSetting(fl, &o.eventsServerURL, "events-server-url", "analytics events server base URL, for --forward-events; /2/httpapi is added to one without a path")
	fl.DurationVar(&o.pollInterval, "poll-interval", experiment.DefaultFlagConfigPollingInterval, "relay mode: how often flags are fetched (also while --stream is down)")
	fl.DurationVar(&o.cohortPoll, "cohort-poll-interval", 60*time.Second, "relay mode: how often cohorts are refreshed (at least 60s against Amplitude)")
	fl.BoolVar(&o.stream, "stream", false, "relay mode: receive flag updates on Amplitude's stream, polling while it is down")
	fl.BoolVar(&o.forwardEvents, "forward-events", false, "relay mode: send the assignment and exposure events remote evaluation requests ask for (track headers), de-duplicated; needs --api-key")
	fl.DurationVar(&o.startTimeout, "start-timeout", 10*time.Second, "relay mode: how long to wait for each deployment's first flags before serving 503 for it")
	fl.MarkHidden("start-timeout")
	o.fleet.register(fl)
}

// relayOnly are the options that mean nothing in snapshot mode.
var relayOnly = []string{"server-zone", "server-url", "stream-server-url", "api-key", "secret-key", "cohort-server-url",
	"events-server-url", "poll-interval", "cohort-poll-interval", "stream", "forward-events",
	"redis", "redis-prefix", "redis-cluster", "lease-ttl"}

// check refuses what cannot work: the settings of one mode given to the
// other, a key of the wrong shape, events without an API key.
func (o *relayOptions) check(c *cobra.Command, opts *serveOptions, relay bool) error {
	fl := c.Flags()
	if !relay {
		for _, name := range relayOnly {
			if fl.Changed(name) {
				return usageError("--%s is for relay mode: pass --deployment-key too", name)
			}
		}
		return nil
	}
	switch {
	case opts.FlagsFile != "" || opts.CohortsDir != "":
		return usageError("--deployment-key (relay mode) and --flags/--cohorts (snapshot mode) exclude each other")
	case opts.RequireKey != "":
		return usageError("--require-key is for snapshot mode: relay mode accepts exactly its deployment keys")
	case len(opts.Overrides) > 0 || opts.OverridesFile != "":
		return usageError("--override and --overrides are for snapshot mode")
	case o.forwardEvents && o.apiKey == "":
		return usageError("--forward-events needs an analytics API key: --api-key or EXPERIMENT_API_KEY")
	case (o.apiKey == "") != (o.secretKey == "") && !o.forwardEvents:
		return usageError("cohort sync needs both --api-key and --secret-key")
	case o.pollInterval <= 0 || o.cohortPoll <= 0:
		return usageError("--poll-interval and --cohort-poll-interval: want positive durations")
	}
	for _, k := range o.keys {
		if err := checkDeploymentKey(k); err != nil {
			return usageError("--deployment-key %v: %v", experiment.Secret(k), err)
		}
	}
	return o.fleet.check(c)
}

// clientConfig is the local client config of every deployment.
func (o *relayOptions) clientConfig(logger *slog.Logger) (experiment.LocalConfig, error) {
	cacheDir, err := requireCacheDir(o.cacheDir, "pass --cache-dir or set EXPERIMENT_CACHE_DIR")
	if err != nil {
		return experiment.LocalConfig{}, err
	}
	cfg := experiment.LocalConfig{
		ServerZone: o.serverZone, ServerURL: o.serverURL, StreamServerURL: o.streamServerURL,
		StreamUpdates: o.stream, FlagConfigPollingInterval: o.pollInterval, CacheDir: cacheDir,
		StartTimeout: o.startTimeout, Logger: logger, Library: cliLibrary(),
	}
	if o.apiKey != "" && o.secretKey != "" {
		cfg.CohortSyncConfig = &experiment.CohortSyncConfig{APIKey: o.apiKey, SecretKey: o.secretKey,
			CohortServerURL: o.cohortServerURL, CohortPollingInterval: o.cohortPoll}
	}
	return cfg, nil
}

// relayEvents forwards tracked evaluations to the de-duplicating
// assignment and exposure services.
type relayEvents struct {
	assignments *experiment.AssignmentTracker
	exposures   *experiment.ExposureService
}

func newRelayEvents(o *relayOptions, logger *slog.Logger) (*relayEvents, error) {
	cfg := analytics.Config{APIKey: o.apiKey, ServerURL: eventsEndpoint(o.eventsServerURL),
		ServerZone: analytics.ServerZone(o.serverZone), Logger: logger, Library: cliLibrary()}
	a, err := experiment.NewAssignmentTracker(cfg, 0)
	if err != nil {
		return nil, usageError("--forward-events: %v", err)
	}
	e, err := experiment.NewExposureService(experiment.ExposureConfig{Config: cfg})
	if err != nil {
		a.Close(context.Background())
		return nil, usageError("--forward-events: %v", err)
	}
	return &relayEvents{assignments: a, exposures: e}, nil
}

func (ev *relayEvents) track(t server.Tracked) {
	if t.Assignment {
		ev.assignments.TrackAssignment(t.User, t.Variants)
	}
	if t.Exposure {
		ev.exposures.TrackExposure(t.User, t.Variants)
	}
}

// close flushes what is queued, within d, and says what was sent and
// what was lost: failed, or dropped from a full queue while serving.
func (ev *relayEvents) close(ios io.Writer, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := errors.Join(ev.assignments.Close(ctx), ev.exposures.Close(ctx))
	a, e := ev.assignments.Stats(), ev.exposures.Stats()
	fmt.Fprintf(ios, "events flushed: %d sent, %d failed, %d dropped\n", a.Sent+e.Sent, a.Failed+e.Failed, a.Dropped+e.Dropped)
	if err != nil {
		return ioError(fmt.Errorf("flushing events: %w", err))
	}
	return nil
}

// sayRelaying is relay mode's start line, with or without a fleet.
func sayRelaying(opts *serveOptions, deployments int, servers []*listening) {
	fmt.Fprintf(opts.IO.ErrOut, "relaying %d deployments on http://%s", deployments, servers[0].addr)
	if len(servers) > 1 {
		fmt.Fprintf(opts.IO.ErrOut, " (operations on http://%s)", servers[1].addr)
	}
	fmt.Fprintln(opts.IO.ErrOut, "; Ctrl-C to stop")
}

func runRelay(ctx context.Context, opts *serveOptions) error {
	o := &opts.Relay
	logger := opts.logger()
	cfg, err := o.clientConfig(logger)
	if err != nil {
		return err
	}
	if o.fleet.redisURL != "" {
		return runFleet(ctx, opts, logger, cfg)
	}
	relays, err := makeRelays(opts, o.keys, cfg)
	if err != nil {
		return err
	}
	defer closeRelays(relays)
	var events *relayEvents // made once the address is printed, before anything is served
	sopts := relayServerOptions(opts, logger, cfg, relays, func(t server.Tracked) { events.track(t) })
	h, servers, err := listenRelaying(opts, sopts)
	if err != nil {
		return err
	}
	if o.forwardEvents {
		if events, err = newRelayEvents(o, logger); err != nil {
			return drain(opts, h, servers, err)
		}
	}
	failed := make(chan error, len(servers)+len(relays))
	for _, s := range servers {
		go func() { failed <- s.serve() }()
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	for i, r := range relays {
		go startRelay(runCtx, opts, o.keys[i], r, failed)
	}
	select {
	case <-ctx.Done():
		err = nil
	case err = <-failed:
	}
	stop()
	err = drain(opts, h, servers, err)
	return errors.Join(err, closeEvents(opts, events))
}

// relayServerOptions are the handler options of both relay modes: a
// deployment per key served from its source, the cohort credentials when
// cohorts are synced, and track for the events when they are forwarded.
func relayServerOptions[S server.Source](opts *serveOptions, logger *slog.Logger, cfg experiment.LocalConfig,
	sources []S, track func(server.Tracked)) server.Options {
	o := &opts.Relay
	sopts := server.Options{Logger: logger, Mode: "relay", Now: opts.Now}
	for i, k := range o.keys {
		sopts.Deployments = append(sopts.Deployments, server.Deployment{Key: k, Source: sources[i]})
	}
	if cfg.CohortSyncConfig != nil {
		sopts.CohortAPIKey, sopts.CohortSecretKey = o.apiKey, o.secretKey
	}
	if o.forwardEvents {
		sopts.Track = track
	}
	return sopts
}

// listenRelaying makes the handler, opens the listeners and says where.
func listenRelaying(opts *serveOptions, sopts server.Options) (*server.Handler, []*listening, error) {
	h := server.New(nil, sopts)
	servers, err := listenAll(opts, h)
	if err != nil {
		return nil, nil, err
	}
	sayRelaying(opts, len(opts.Relay.keys), servers)
	return h, servers, nil
}

func closeEvents(opts *serveOptions, ev *relayEvents) error {
	if ev == nil {
		return nil
	}
	return ev.close(opts.IO.ErrOut, opts.Drain)
}

func makeRelays(opts *serveOptions, keys []string, cfg experiment.LocalConfig) ([]*server.Relay, error) {
	var out []*server.Relay
	for _, k := range keys {
		r, err := server.NewRelay(k, relayNotices(opts, experiment.Secret(k).Fingerprint(), cfg))
		if err != nil {
			closeRelays(out)
			return nil, usageError("--deployment-key %v: %v", experiment.Secret(k), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// relayNotices adds to cfg the lines serve writes on stderr about one
// deployment (by its key's fingerprint): each update applied, the first
// failure after a success, and the recovery; never a key.
func relayNotices(opts *serveOptions, fp string, cfg experiment.LocalConfig) experiment.LocalConfig {
	failing := false // only touched by OnStatusChange, whose calls are one at a time
	cfg.OnUpdate = func(_, next *experiment.FlagSet) {
		fmt.Fprintf(opts.IO.ErrOut, "%s deployment %s: updated, %d flags\n", opts.Now().Format(time.RFC3339), fp, next.Snapshot().Len())
	}
	cfg.OnStatusChange = func(ev experiment.StatusEvent) {
		switch {
		case ev.Kind == experiment.StatusEventError && !failing:
			failing = true
			fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: deployment %s: update failed (%v); serving the last good flags\n", fp, ev.Err)
		case ev.Kind == experiment.StatusEventReady && failing:
			failing = false
			fmt.Fprintf(opts.IO.ErrOut, "deployment %s: updates succeed again\n", fp)
		}
	}
	return cfg
}

func closeRelays(relays []*server.Relay) {
	for _, r := range relays {
		r.Close()
	}
}

// startRelay waits for a deployment's first flags and says where they
// came from. A failure is a warning: the client goes on trying and the
// deployment is served (503 until then) as soon as flags arrive; only a
// rejected key, which no retry mends, ends serve.
func startRelay(ctx context.Context, opts *serveOptions, key string, r *server.Relay, failed chan<- error) {
	secret := experiment.Secret(key)
	err := r.Start(ctx)
	switch {
	case ctx.Err() != nil:
		return
	case errors.Is(err, experiment.ErrUnauthorized):
		failed <- serverError(err, key)
		return
	case err != nil:
		fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: deployment %s: no flags yet (%v); serving 503 for it until they arrive\n", secret.Fingerprint(), err)
		return
	}
	up := r.Report()
	flags := 0
	if f := r.Current().Flags; f != nil {
		flags = f.Set.Snapshot().Len()
	}
	fmt.Fprintf(opts.IO.ErrOut, "deployment %s: %d flags from %s\n", secret.Fingerprint(), flags, up.Source)
}
