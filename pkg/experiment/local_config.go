package experiment

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/flagkit/experiment/internal/httpx"
)

// Defaults of LocalConfig, the Python SDK's LocalEvaluationConfig.
const (
	DefaultFlagConfigPollingInterval      = 30 * time.Second
	defaultFlagConfigPollerRequestTimeout = 10 * time.Second
	defaultStreamFlagConnTimeout          = 1500 * time.Millisecond
	// streamKeepAliveTimeout: the server sends a keep-alive every 15 s;
	// two seconds of grace, as the official SDKs allow.
	streamKeepAliveTimeout = 17 * time.Second
	streamRetryDelay       = 15 * time.Second
	streamMaxAge           = 15 * time.Minute
	// maxFlagConfigBytes bounds a flag config response.
	maxFlagConfigBytes = 256 << 20
)

// LocalConfig configures a LocalClient. Zero values mean the defaults.
//
// One config reaches every part of the client: the flag fetch, the stream,
// the cohort sync and the exposure and assignment services all use its
// ServerZone, HTTPClient (and so its Timeout and Transport), Logger and
// Library, unless the part's own config (CohortSyncConfig,
// ExposureConfig.Config, AssignmentConfig.Config) sets that setting
// explicitly. Each part keeps its own request timeout
// (FlagConfigPollerRequestTimeout, StreamFlagConnTimeout,
// CohortSyncConfig.RequestTimeout, analytics.Config.RequestTimeout).
type LocalConfig struct {
	// Debug lets the client's DEBUG records through to the default logger
	// when Logger is nil.
	Debug bool
	// Logger, when set, is used as is and Debug is ignored; otherwise the
	// process's default logger, slog.Default() as it is when the client is
	// made. The tracking services use it too unless their analytics.Config
	// has one.
	Logger *slog.Logger
	// ServerURL is the flag config server; default by ServerZone.
	ServerURL string
	// ServerZone is the data center of the project: it picks the default
	// URL of the flag server, the stream, the cohort server and the
	// analytics API tracked events are sent to ("EU" keeps all of them in
	// the EU). A URL set explicitly, or a tracking config's own ServerZone,
	// wins.
	// Any case is accepted ("eu" is ServerZoneEU).
	ServerZone ServerZone
	// FlagConfigPollingInterval is how often flags are fetched when not
	// streaming (30 s), and while the stream is down.
	FlagConfigPollingInterval time.Duration
	// FlagConfigPollerRequestTimeout bounds each flag config request (10 s).
	FlagConfigPollerRequestTimeout time.Duration
	// StartTimeout bounds LocalClient.Start, retries and the wait for
	// cohorts included, when the context given to Start has no earlier
	// deadline (10 s by default): a server that cannot be
	// reached fails Start instead of hanging it.
	StartTimeout time.Duration
	// StreamUpdates receives flag updates over server-sent events instead
	// of polling; polling takes over whenever the stream is down.
	StreamUpdates   bool
	StreamServerURL string
	// StreamFlagConnTimeout is how long the stream may take to deliver
	// its first message (1.5 s).
	StreamFlagConnTimeout time.Duration
	// CacheDir, when set, keeps the last good flag configs on disk and
	// uses them when the server cannot be reached at start.
	CacheDir string
	// Offline uses the cache in CacheDir only: nothing is fetched, and
	// Start fails (errors.Is ErrNoCache) when the cache has no flags for
	// the key. For a service that must not reach the network
	// (tests, air-gapped hosts) with a cache placed at FlagCachePath.
	Offline bool
	// CohortSyncConfig enables cohort targeting.
	CohortSyncConfig *CohortSyncConfig
	// ExposureConfig enables exposure events for evaluations with
	// EvaluateOptions.TracksExposure.
	ExposureConfig *ExposureConfig
	// AssignmentConfig sends an assignment event for every evaluation.
	//
	// Deprecated: use ExposureConfig with EvaluateOptions.TracksExposure;
	// Amplitude keeps assignment events for old analyses only.
	AssignmentConfig *AssignmentConfig
	// OnUpdate is called, from the updater goroutine, after new flags are
	// applied; prev is nil for the first set. It must not block for long.
	OnUpdate func(prev, next *FlagSet)
	// OnStatusChange, when set, is called with each change of Status: new
	// flags (with the keys that changed), a failed update, flags from the
	// cache, updates succeeding again, a change in a cohort's state (see
	// StatusEventKind). It is how a service alerts on a flag source or
	// cohort sync that fails, or an OpenFeature provider emits its events.
	//
	// The contract: calls are made one at a time, in the order the changes
	// happened, on the goroutine that made the change (the updater, the
	// cohort poller, or the one calling Start), never while the client
	// holds a lock, so the callback may call any method of the client
	// except Start and Close. It must return quickly: while it runs, the
	// goroutine that called it does no other work (flag updates wait), and
	// other goroutines only queue their events for it. To do slow work
	// (a network call), hand the event to a goroutine of your own. No call
	// is made once Close has returned.
	OnStatusChange func(StatusEvent)
	// HTTPClient is used for every request (flags, stream, cohorts and
	// tracked events) unless a tracking config has its own; default: a
	// client of the LocalClient's own for flags and cohorts, and one of
	// each analytics client's own for events.
	HTTPClient *http.Client
	// Library is sent in X-Amp-Exp-Library and as each event's "library".
	// Default: "experiment-go/<module version>"; only a
	// program wrapping the SDK, such as the experiment CLI, sets its own.
	Library string
}

// CohortSyncConfig enables cohort downloads for cohort targeting, with the
// analytics project's API key and secret key (not the deployment key).
type CohortSyncConfig struct {
	APIKey    string
	SecretKey string
	// MaxCohortSize: larger cohorts are skipped (default 2147483647).
	MaxCohortSize int
	// CohortPollingInterval: how often cohorts are refreshed (60 s,
	// minimum 60 s).
	CohortPollingInterval time.Duration
	CohortServerURL       string
	// RequestTimeout bounds each download (10 s).
	RequestTimeout time.Duration
	// LoadTimeout bounds how long a flag update waits for the cohorts its
	// flags target (30 s); during Start, Start's context bounds it too.
	// Flags are then used without the cohorts still missing (their
	// members evaluate as non-members until a later sync brings them) or
	// with the last good copies, and Status.Cohorts says which.
	LoadTimeout time.Duration
}

type localSettings struct {
	flagsURL, redactedFlagsURL   string
	streamURL, redactedStreamURL string
	pollInterval, requestTimeout time.Duration
	streamConnTimeout            time.Duration
	stream, offline              bool
	cacheDir                     string
	library                      string
	logger                       *slog.Logger
	httpClient                   *http.Client
	ownsClient                   bool
	onUpdate                     func(prev, next *FlagSet)
	notify                       *statusNotifier // nil without OnStatusChange
	cohorts                      *CohortSyncConfig
	cohortURL                    string
	zone                         ServerZone
	// exposure and assignment are copies of the caller's configs with
	// what they leave unset taken from the LocalConfig (inherit).
	exposure   *ExposureConfig
	assignment *AssignmentConfig
}

func newLocalSettings(cfg *LocalConfig) (*localSettings, error) {
	if cfg == nil {
		cfg = &LocalConfig{}
	}
	var errs []error
	for name, d := range map[string]time.Duration{
		"FlagConfigPollingInterval": cfg.FlagConfigPollingInterval, "FlagConfigPollerRequestTimeout": cfg.FlagConfigPollerRequestTimeout,
		"StreamFlagConnTimeout": cfg.StreamFlagConnTimeout,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%v)", name, d))
		}
	}
	if err := cfg.ServerZone.valid(); err != nil {
		errs = append(errs, err)
	}
	s := &localSettings{
		pollInterval:      cmp.Or(cfg.FlagConfigPollingInterval, DefaultFlagConfigPollingInterval),
		requestTimeout:    cmp.Or(cfg.FlagConfigPollerRequestTimeout, defaultFlagConfigPollerRequestTimeout),
		streamConnTimeout: cmp.Or(cfg.StreamFlagConnTimeout, defaultStreamFlagConnTimeout),
		stream:            cfg.StreamUpdates, offline: cfg.Offline, cacheDir: cfg.CacheDir,
		library: cmp.Or(cfg.Library, defaultLibrary()), onUpdate: cfg.OnUpdate, cohorts: cfg.CohortSyncConfig,
		zone: cfg.ServerZone.canonical(),
	}
	if u, err := endpointURL(cmp.Or(cfg.ServerURL, cfg.ServerZone.FlagsServerURL()), "/sdk/v2/flags", "v=0"); err != nil {
		errs = append(errs, err)
	} else {
		s.flagsURL, s.redactedFlagsURL = u.String(), httpx.RedactURL(u)
	}
	if u, err := endpointURL(cmp.Or(cfg.StreamServerURL, cfg.ServerZone.StreamServerURL()), "/sdk/stream/v1/flags", ""); err != nil {
		errs = append(errs, fmt.Errorf("stream %w", err))
	} else {
		s.streamURL, s.redactedStreamURL = u.String(), httpx.RedactURL(u)
	}
	if c := cfg.CohortSyncConfig; c != nil {
		if c.APIKey == "" || c.SecretKey == "" {
			errs = append(errs, errors.New("CohortSyncConfig needs both APIKey and SecretKey"))
		}
		s.cohortURL = cmp.Or(c.CohortServerURL, cfg.ServerZone.CohortServerURL())
	}
	if len(errs) > 0 {
		return nil, newConfigError("local config", errs...)
	}
	s.logger = sdkLogger(cfg.Logger, cfg.Debug)
	s.httpClient, s.ownsClient = httpClientOr(cfg.HTTPClient)
	s.notify = newStatusNotifier(cfg.OnStatusChange, s.logger)
	if e := cfg.ExposureConfig; e != nil {
		c := *e
		c.Config = s.inherit(c.Config)
		s.exposure = &c
	}
	if a := cfg.AssignmentConfig; a != nil {
		c := *a
		c.Config = s.inherit(c.Config)
		s.assignment = &c
	}
	return s, nil
}
