package cmd

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/fleet"
	"github.com/flagkit/experiment/pkg/server"
)

// fleetOptions are relay mode's fleet settings: relays sharing Redis.
type fleetOptions struct {
	redisURL string // --redis, EXPERIMENT_REDIS_URL
	prefix   string
	cluster  bool
	leaseTTL time.Duration
}

func (o *fleetOptions) register(fl *pflag.FlagSet) {
	bindSetting(fl, &o.redisURL, "redis", "relay mode: share one upstream writer per deployment, cohorts and event de-duplication with the other relays on this Redis (redis://, rediss://, redis-sentinel://)")
	fl.StringVar(&o.prefix, "redis-prefix", fleet.DefaultPrefix, "fleet mode: prefix of every Redis key (one per fleet)")
	fl.BoolVar(&o.cluster, "redis-cluster", false, "fleet mode: --redis names Redis Cluster nodes")
	fl.DurationVar(&o.leaseTTL, "lease-ttl", fleet.DefaultLeaseTTL, "fleet mode: how long a writer's lease lasts unrenewed; a follower takes over within it (at least 1s)")
}

// fleetOnly are the fleet settings that mean nothing without --redis.
var fleetOnly = []string{"redis-prefix", "redis-cluster", "lease-ttl"}

// check refuses fleet settings without relay mode or without --redis, a
// URL that cannot be read (shown without its password) and a short lease.
func (o *fleetOptions) check(c *cobra.Command) error {
	fl := c.Flags()
	if o.redisURL == "" {
		for _, name := range fleetOnly {
			if fl.Changed(name) {
				return usageError("--%s is for fleet mode: pass --redis too", name)
			}
		}
		return nil
	}
	if _, err := fleet.ParseURL(o.redisURL, o.cluster); err != nil {
		return usageError("--redis %s: %v", fleet.Redact(o.redisURL), err)
	}
	switch {
	case o.leaseTTL < time.Second:
		return usageError("--lease-ttl %v: want at least 1s", o.leaseTTL)
	case o.prefix == "" || strings.ContainsAny(o.prefix, " \t\n{}"):
		return usageError("--redis-prefix %q: want a non-empty prefix without spaces or braces", o.prefix)
	}
	return nil
}

// checkRedisURL is the settings table's check of --redis: a URL that
// neither a server nor a Cluster could be reached by.
func checkRedisURL(v string) error {
	if _, err := fleet.ParseURL(v, false); err != nil {
		if _, cerr := fleet.ParseURL(v, true); cerr != nil {
			return err
		}
	}
	return nil
}

// lineWriter writes whole lines, one goroutine at a time: the fleet's
// loops report from several.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) say(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, line)
}

// quietRedis keeps go-redis's own log lines (reconnects, pool errors) off
// stderr: serve says what matters once, in its own words.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// quietRedisOnce sets go-redis's logger (a global of its own) once per
// process, before any client exists: two serves in one test process must
// not write it while the other's connections read it.
var quietRedisOnce sync.Once

func runFleet(ctx context.Context, opts *serveOptions, logger *slog.Logger, cfg experiment.LocalConfig) error {
	o := &opts.Relay
	ropts, err := fleet.ParseURL(o.fleet.redisURL, o.fleet.cluster)
	if err != nil {
		return usageError("--redis %s: %v", fleet.Redact(o.fleet.redisURL), err)
	}
	quietRedisOnce.Do(func() { redis.SetLogger(quietRedis{}) })
	out := &lineWriter{w: opts.IO.ErrOut}
	f, err := fleet.New(fleet.Config{Redis: ropts, Prefix: o.fleet.prefix, LeaseTTL: o.fleet.leaseTTL, Say: out.say})
	if err != nil {
		return usageError("--redis: %v", err)
	}
	defer f.Close()
	rejected := make(chan error, 1)
	relays, closeAll, err := makeFleetRelays(opts, f, cfg, logger, out, rejected)
	if err != nil {
		return err
	}
	defer closeAll()
	var events *fleetEvents
	sopts := relayServerOptions(opts, logger, cfg, relays, func(t server.Tracked) { events.track(t) })
	sopts.Collectors = f.Metrics().Collectors()
	sopts.Fleet = func() *server.FleetStatus { return fleetStatus(f, events) }
	h, servers, err := listenRelaying(opts, sopts)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "fleet: redis %s, prefix %s, instance %s, lease %v\n",
		fleet.Redact(o.fleet.redisURL), f.Prefix(), f.Instance(), f.LeaseTTL())
	if o.stream {
		fmt.Fprintln(opts.IO.ErrOut, "fleet: --stream is not used: each deployment's writer polls every --poll-interval")
	}
	if o.forwardEvents {
		if events, err = newFleetEvents(o, f, logger); err != nil {
			return drain(opts, h, servers, err)
		}
	}
	return serveFleet(ctx, opts, h, servers, f, relays, events, rejected)
}

// serveFleet serves until ctx ends or a listener fails. The leases are
// released before the drain, so that another relay writes at once.
func serveFleet(ctx context.Context, opts *serveOptions, h *server.Handler, servers []*listening,
	f *fleet.Fleet, relays []*fleet.Relay, events *fleetEvents, rejected <-chan error) error {
	failed := make(chan error, len(servers))
	for _, s := range servers {
		go func() { failed <- s.serve() }()
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan struct{})
	go func() { defer close(ran); fleet.Run(runCtx, f, relays) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
		err = ioError(fmt.Errorf("serving: %w", err))
	case err = <-rejected:
	}
	stop()
	<-ran
	err = drain(opts, h, servers, err)
	if events != nil {
		err = errors.Join(err, events.close(opts.IO.ErrOut, opts.Drain))
	}
	return err
}

// makeFleetRelays makes each deployment's relay: its flags fetched raw
// (PullFlagConfigs: the bytes Amplitude sent, with the SDK's headers and
// retries), its cohorts through one cohort client.
func makeFleetRelays(opts *serveOptions, f *fleet.Fleet, cfg experiment.LocalConfig, logger *slog.Logger,
	out *lineWriter, rejected chan<- error) ([]*fleet.Relay, func(), error) {
	o := &opts.Relay
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	var dl cohort.Downloader
	if cs := cfg.CohortSyncConfig; cs != nil {
		cc, err := cohort.NewClient(cohort.Config{APIKey: cs.APIKey, SecretKey: cs.SecretKey,
			ServerURL: cmp.Or(cs.CohortServerURL, o.serverZone.CohortServerURL()), Logger: logger, Library: cliLibrary()})
		if err != nil {
			return nil, nil, usageError("cohort sync: %v", err)
		}
		closers = append(closers, cc.Close)
		dl = cc
	}
	var relays []*fleet.Relay
	for _, k := range o.keys {
		client, err := experiment.NewLocalClient(k, &cfg)
		if err != nil {
			closeAll()
			return nil, nil, usageError("--deployment-key %v: %v", experiment.Secret(k), err)
		}
		closers = append(closers, func() { client.Close() })
		var r *fleet.Relay
		fetch := endOnRejectedKey(rawFetch(client), k, func() bool { return r.Current().Flags != nil }, rejected)
		r, err = fleet.NewRelay(fleet.RelayConfig{Fleet: f, Key: k, Fetch: fetch, Cohorts: dl,
			PollInterval: o.pollInterval, CohortPollInterval: o.cohortPoll, Now: opts.Now, Say: out.say})
		if err != nil {
			closeAll()
			return nil, nil, usageError("--deployment-key %v: %v", experiment.Secret(k), err)
		}
		relays = append(relays, r)
	}
	return relays, closeAll, nil
}

// rawFetch fetches a deployment's flags as Amplitude sent them, within
// fetchTimeout.
func rawFetch(client *experiment.LocalClient) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		defer cancel()
		var b bytes.Buffer
		if _, err := client.PullFlagConfigs(ctx, &b); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
}

// endOnRejectedKey ends serve (exit 4) when Amplitude rejects key before
// this relay served any flags for it, as relay mode does at start: a key
// mistyped or of another project is no outage to ride out, and a fleet of
// relays would otherwise sit unready, each taking the lease and polling in
// vain. Once flags are served, a rejection (a key revoked) is a warning
// and the last good flags stay.
func endOnRejectedKey(fetch func(context.Context) ([]byte, error), key string, served func() bool,
	rejected chan<- error) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		body, err := fetch(ctx)
		if errors.Is(err, experiment.ErrUnauthorized) && !served() {
			select {
			case rejected <- serverError(err, key):
			default: // another deployment's rejection ends serve already
			}
		}
		return body, err
	}
}

// fetchTimeout bounds one upstream flag fetch, retries included.
const fetchTimeout = 30 * time.Second

func fleetStatus(f *fleet.Fleet, events *fleetEvents) *server.FleetStatus {
	up, lastErr := f.Up()
	st := &server.FleetStatus{Redis: "down", Instance: f.Instance(), Prefix: f.Prefix(), LastError: lastErr}
	if up {
		st.Redis = "up"
	}
	if events != nil {
		st.Dedup = events.dedup.Mode()
	}
	return st
}

// fleetEvents forwards tracked evaluations once per fleet: an identity
// seen by any relay in the last 24 hours is not sent again.
type fleetEvents struct {
	*relayEvents
	dedup *fleet.Dedup
}

// dedupCapacity bounds the identities a relay remembers and the checks
// waiting for Redis.
const dedupCapacity = 1 << 16

func newFleetEvents(o *relayOptions, f *fleet.Fleet, logger *slog.Logger) (*fleetEvents, error) {
	ev, err := newRelayEvents(o, logger)
	if err != nil {
		return nil, err
	}
	d, err := fleet.NewDedup(f, dedupCapacity)
	if err != nil {
		return nil, errors.Join(err, ev.close(io.Discard, time.Second))
	}
	return &fleetEvents{relayEvents: ev, dedup: d}, nil
}

func (ev *fleetEvents) track(t server.Tracked) {
	if t.Assignment {
		ev.dedup.Admit(eventIdentity("assignment", t), func() { ev.assignments.TrackAssignment(t.User, t.Variants) })
	}
	if t.Exposure {
		ev.dedup.Admit(eventIdentity("exposure", t), func() { ev.exposures.TrackExposure(t.User, t.Variants) })
	}
}

// close sends what the de-duplication holds, then flushes.
func (ev *fleetEvents) close(w io.Writer, d time.Duration) error {
	ev.dedup.Close()
	return ev.relayEvents.close(w, d)
}

// eventIdentity is what makes two events the same for Amplitude's
// de-duplication: the kind, who, and which variant of which flag. It is
// hashed before it reaches Redis.
func eventIdentity(kind string, t server.Tracked) string {
	var b strings.Builder
	b.WriteString(kind)
	if t.User != nil {
		fmt.Fprintf(&b, "\x00%s\x00%s", t.User.UserID, t.User.DeviceID)
	}
	for _, k := range slices.Sorted(maps.Keys(t.Variants)) {
		fmt.Fprintf(&b, "\x00%s=%s", k, t.Variants[k].Key)
	}
	return b.String()
}
