package experiment

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/flagkit/experiment/internal/httpx"
)

// RemoteConfig configures a RemoteClient. It mirrors the Python SDK's
// RemoteEvaluationConfig with Go types; every zero value means "use the
// default", so &RemoteConfig{} and nil are the same configuration.
type RemoteConfig struct {
	// Debug lets the client's DEBUG records through to the default logger.
	// It is ignored when Logger is set.
	Debug bool
	// Logger receives the client's log records. When set it is used as is
	// (its level is its own); otherwise the process's default logger,
	// slog.Default() as it is when the client is made. Keys are always
	// logged redacted.
	Logger *slog.Logger

	// ServerURL is the evaluation server's base URL; a path in it is kept
	// ("https://proxy.example.com/amplitude" posts to
	// ".../amplitude/sdk/v2/vardata"). Default: the ServerZone's URL.
	ServerURL string
	// ServerZone picks the default ServerURL. Default: ServerZoneUS. It
	// never overrides a ServerURL set explicitly.
	ServerZone ServerZone

	// FetchTimeout bounds the first attempt: connecting, sending the user
	// and reading the whole response. Default: 10s.
	FetchTimeout time.Duration
	// FetchRetries is how many times a retryable failure (a transport error,
	// a timeout, a malformed response, 429 or 5xx) is retried. Default: 0.
	FetchRetries int
	// RetryBackoffMin bounds the delay before the first retry. Each retry's
	// bound is the previous one times RetryBackoffScalar, capped at
	// RetryBackoffMax, and the delay is drawn uniformly below it (full
	// jitter). Defaults: 500ms, 10s, 1.5.
	RetryBackoffMin    time.Duration
	RetryBackoffMax    time.Duration
	RetryBackoffScalar float64
	// FetchRetryTimeout bounds each retry attempt. Default: 10s.
	FetchRetryTimeout time.Duration

	// HTTPClient sends the requests. Default: a client of the client's own
	// (proxy settings from the environment) whose idle connections Close
	// releases. A client given here is used as is and never closed.
	HTTPClient *http.Client

	// Library is sent as the user's "library" field when the user has none.
	// Default: "experiment-go/<module version>"; only a
	// program wrapping the SDK, such as the experiment CLI, sets its own.
	Library string
}

// Defaults of RemoteConfig: the Python SDK's.
const (
	DefaultFetchTimeout       = 10 * time.Second
	DefaultFetchRetries       = 0
	defaultRetryBackoffMin    = 500 * time.Millisecond
	defaultRetryBackoffMax    = 10 * time.Second
	defaultRetryBackoffScalar = 1.5
	defaultFetchRetryTimeout  = 10 * time.Second
)

// resolved is a validated RemoteConfig with every default filled in.
type remoteSettings struct {
	logger        *slog.Logger
	url           string // endpoint URL, with query
	redactedURL   string
	timeout       time.Duration
	retries       int
	backoffMin    time.Duration
	backoffMax    time.Duration
	backoffScalar float64
	retryTimeout  time.Duration
	httpClient    *http.Client
	ownsClient    bool
	library       string
}

// resolve validates cfg and fills defaults. The caller's config is not
// modified.
func (cfg *RemoteConfig) resolve() (*remoteSettings, error) {
	if cfg == nil {
		cfg = &RemoteConfig{}
	}
	var errs []error
	negative := func(name string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%v)", name, d))
		}
	}
	negative("FetchTimeout", cfg.FetchTimeout)
	negative("RetryBackoffMin", cfg.RetryBackoffMin)
	negative("RetryBackoffMax", cfg.RetryBackoffMax)
	negative("FetchRetryTimeout", cfg.FetchRetryTimeout)
	if cfg.FetchRetries < 0 {
		errs = append(errs, fmt.Errorf("FetchRetries is negative (%d)", cfg.FetchRetries))
	}
	if cfg.RetryBackoffScalar < 0 || math.IsNaN(cfg.RetryBackoffScalar) || math.IsInf(cfg.RetryBackoffScalar, 0) {
		errs = append(errs, fmt.Errorf("RetryBackoffScalar must be a positive number (%v)", cfg.RetryBackoffScalar))
	}
	if err := cfg.ServerZone.valid(); err != nil {
		errs = append(errs, err)
	}
	s := &remoteSettings{
		timeout:       cmp.Or(cfg.FetchTimeout, DefaultFetchTimeout),
		retries:       cfg.FetchRetries,
		backoffMin:    cmp.Or(cfg.RetryBackoffMin, defaultRetryBackoffMin),
		backoffMax:    cmp.Or(cfg.RetryBackoffMax, defaultRetryBackoffMax),
		backoffScalar: cmp.Or(cfg.RetryBackoffScalar, defaultRetryBackoffScalar),
		retryTimeout:  cmp.Or(cfg.FetchRetryTimeout, defaultFetchRetryTimeout),
		library:       cmp.Or(cfg.Library, defaultLibrary()),
	}
	if s.backoffMax < s.backoffMin {
		errs = append(errs, fmt.Errorf("RetryBackoffMax (%v) is less than RetryBackoffMin (%v)", s.backoffMax, s.backoffMin))
	}
	base := cfg.ServerURL
	if base == "" {
		base = cfg.ServerZone.RemoteServerURL() // the zone switches only the default
	}
	u, err := endpointURL(base, "/sdk/v2/vardata", "v=0")
	if err != nil {
		errs = append(errs, err)
	} else {
		s.url, s.redactedURL = u.String(), httpx.RedactURL(u)
	}
	if len(errs) > 0 {
		return nil, newConfigError("remote config", errs...)
	}

	s.logger = sdkLogger(cfg.Logger, cfg.Debug)
	s.httpClient, s.ownsClient = httpClientOr(cfg.HTTPClient)
	return s, nil
}

// httpClientOr is the caller's client, or one of our own (owned: its idle
// connections are closed with the SDK client).
func httpClientOr(c *http.Client) (*http.Client, bool) {
	if c != nil {
		return c, false
	}
	// Enough idle connections per host for concurrent fetches; timeouts
	// are per attempt, through the request context.
	return httpx.NewClient(32), true
}
