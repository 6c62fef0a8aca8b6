package analytics

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/flagkit/experiment/internal/httpx"
	"github.com/flagkit/experiment/internal/redact"
	"github.com/flagkit/experiment/internal/zone"
)

// Config configures a Client. It mirrors the settings of Amplitude's
// Python analytics client (amplitude.Config) with Go types; every zero
// value means the default.
type Config struct {
	// APIKey is the analytics project's API key (not a deployment key). It
	// is sent in each request body and never logged in full. Required.
	APIKey string

	// ServerURL is the full events URL, e.g.
	// "https://api2.amplitude.com/2/httpapi". Default: EventsURL(ServerZone,
	// UseBatch).
	ServerURL string
	// ServerZone picks the default ServerURL. Default: ServerZoneUS. Any
	// case is accepted ("eu" is ServerZoneEU).
	ServerZone ServerZone
	// UseBatch picks Amplitude's batch endpoint for the default ServerURL.
	UseBatch bool

	// FlushQueueSize is how many events one request carries at most; a
	// request is sent as soon as that many are queued. At most 2000, the
	// API's limit; a request also stays under 1 MB, the API's other limit,
	// by carrying fewer events when they are large. Default: 200, the
	// Python client's; a sender with a backlog (a batch job) wants 2000.
	FlushQueueSize int
	// FlushInterval is how often queued events are sent even when fewer
	// than FlushQueueSize are waiting. Default: 10s.
	FlushInterval time.Duration
	// FlushMaxRetries is how many times a request that failed with 408, 429,
	// a 5xx status or a transport error is retried before its events are
	// given up. Default: 12; a negative value means no retries.
	FlushMaxRetries int
	// QueueCapacity bounds the events waiting to be sent; what happens to
	// a new event when it is full is Overflow's choice. Default: 20000.
	QueueCapacity int
	// Overflow is what Track does when QueueCapacity events are waiting:
	// drop the oldest (OverflowDropOldest, the default) or wait for space
	// (OverflowBlock). See OverflowPolicy for which to choose.
	Overflow OverflowPolicy
	// MaxConcurrentRequests bounds the requests in flight at once. With a
	// backlog, that many batches are sent in parallel, so the server's
	// latency does not cap the throughput at one batch per round trip.
	// Events of different requests may therefore arrive out of order
	// (each carries its time). Default: 4.
	MaxConcurrentRequests int
	// MinIDLength, when set, is sent as options.min_id_length: Amplitude
	// ignores user and device IDs shorter than it (5 by default).
	MinIDLength *int

	// RequestTimeout bounds each request. Default: 10s.
	RequestTimeout time.Duration
	// RetryBackoffMin and RetryBackoffMax bound the delay before a retry:
	// the bound doubles from RetryBackoffMin with each retry up to
	// RetryBackoffMax, and the delay is drawn uniformly between half the
	// bound and the bound. A 429's Retry-After (at most a minute) is waited
	// for when longer. Defaults: 100ms and 3.2s, the delays of Amplitude's
	// Python analytics client.
	RetryBackoffMin time.Duration
	RetryBackoffMax time.Duration

	// HTTPClient sends the requests. Default: a client of the Client's own
	// whose idle connections Close releases. A client given here is used as
	// is and never closed.
	HTTPClient *http.Client
	// Logger receives warnings about events that were dropped or could not
	// be sent. Default: the process's default logger, slog.Default() as it
	// is when the Client is made.
	Logger *slog.Logger
	// Now is the clock for the times of events that have none (and of the
	// de-duplication of the services built on a Client). Default: time.Now.
	Now func() time.Time
	// Library is sent as each event's "library" when the event has none.
	// Default: "experiment-go/<module version>", the SDK's name.
	Library string
}

// OverflowPolicy is what Track does with new events when the queue is full.
//
// The default is OverflowDropOldest because the SDK's tracking runs on its
// user's request path (LocalClient.EvaluateV2 with TracksExposure): a
// blocking queue would hand every request the analytics API's latency and,
// during an outage, stall it while the senders wait out their retries
// (a full queue then drains at a few hundred events per second). A
// service's availability must not depend on its analytics. Drops are never
// silent: Stats.Dropped counts them, the log warns, and Close
// returns a *LostEventsError. A job that must deliver every event (the
// CLI's tracked batch, a backfill) chooses OverflowBlock and passes a
// context to TrackContext (or TrackExposureContext) to stay cancellable;
// it then loses nothing while the API accepts events.
type OverflowPolicy int

const (
	// OverflowDropOldest makes Track never wait: each new event beyond
	// QueueCapacity drops the oldest queued one, counted in
	// Stats.Dropped and reported by Close.
	OverflowDropOldest OverflowPolicy = iota
	// OverflowBlock makes Track wait until the senders free room in the
	// queue (back-pressure): the caller slows down to the rate the
	// analytics API accepts, and no event is dropped while it accepts
	// them. While the API fails (a batch was given up after
	// FlushMaxRetries, and no request has succeeded since), a full queue
	// drops its oldest events instead: they are being lost anyway, and
	// waiting would only slow the caller to the pace of the retries (a
	// 100,000-user batch against a server that was down would have taken
	// over ten minutes).
	OverflowBlock
)

// Defaults of Config: those of Amplitude's analytics clients, and the
// number of parallel requests.
const (
	DefaultFlushQueueSize        = 200
	DefaultFlushInterval         = 10 * time.Second
	DefaultFlushMaxRetries       = 12
	DefaultQueueCapacity         = 20000
	DefaultRequestTimeout        = 10 * time.Second
	DefaultRetryBackoffMin       = 100 * time.Millisecond
	DefaultRetryBackoffMax       = 3200 * time.Millisecond
	DefaultMaxConcurrentRequests = 4
)

const (
	// maxEventsPerRequest is the HTTP V2 API's limit.
	maxEventsPerRequest = 2000
	// maxRequestBytes is the HTTP V2 API's size limit: a request body
	// stays below it (1 MB, in the decimal sense, so below a MiB too).
	maxRequestBytes = 1_000_000
	// maxEventsRetryAfter caps how long a 429's Retry-After is honoured.
	maxEventsRetryAfter = time.Minute
	// maxEventsReplyBytes is how much of a reply body is read.
	maxEventsReplyBytes = 64 << 10
	// maxServerTextLen bounds server-supplied text in a log record.
	maxServerTextLen = 200
)

// ServerZone is the Amplitude data center an analytics project lives in:
// it picks Config's default ServerURL. The zero value is ServerZoneUS; any
// case is accepted, with surrounding white space.
type ServerZone string

// The data centers.
const (
	ServerZoneUS ServerZone = zone.US
	ServerZoneEU ServerZone = zone.EU
)

// canonical is the one spelling every comparison of zones uses
// (internal/zone); "" stays "" (US, by default).
func (z ServerZone) canonical() ServerZone { return ServerZone(zone.Canonical(string(z))) }

func (z ServerZone) valid() error { return zone.Check(string(z)) }

// The analytics endpoints.
const (
	eventsURLUS      = "https://api2.amplitude.com/2/httpapi"
	eventsURLEU      = "https://api.eu.amplitude.com/2/httpapi"
	eventsBatchURLUS = "https://api2.amplitude.com/batch"
	eventsBatchURLEU = "https://api.eu.amplitude.com/batch"
)

// EventsURL is the analytics endpoint of a zone: Amplitude's HTTP V2 API,
// or its batch API when useBatch is set. The zero zone is US; any case is
// accepted.
func EventsURL(zone ServerZone, useBatch bool) string {
	zone = zone.canonical()
	switch {
	case zone == ServerZoneEU && useBatch:
		return eventsBatchURLEU
	case zone == ServerZoneEU:
		return eventsURLEU
	case useBatch:
		return eventsBatchURLUS
	}
	return eventsURLUS
}

// ErrInvalidConfig matches, with errors.Is, every error NewClient and
// Config.Validate return for a config they cannot use: a bug in the
// caller's setup, which retrying cannot help.
var ErrInvalidConfig = errors.New("invalid analytics config")

// ConfigError is the error behind ErrInvalidConfig, for a caller that
// wants the problems one by one (errors.As): every invalid setting is
// reported, not only the first.
type ConfigError struct {
	// Problems says what is wrong, one error per setting, naming the
	// field ("FlushInterval is negative (-1s)").
	Problems []error
}

// Error is "analytics config: " and the problems, one a line.
func (e *ConfigError) Error() string {
	return "analytics config: " + errors.Join(e.Problems...).Error()
}

// Unwrap gives the problems to errors.Is and errors.As.
func (e *ConfigError) Unwrap() []error { return e.Problems }

// Is makes every ConfigError match ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// apiKey is the analytics API key. Every way of printing it shows it
// redacted (at most its first characters and a fingerprint), so it can
// be logged and quoted in errors; only string(k) is the key.
type apiKey string

func (k apiKey) String() string { return redact.Key(string(k)) }

// Format prints the redacted form whatever the verb.
func (k apiKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue makes slog print the redacted form.
func (k apiKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// defaultLibrary is "experiment-go/<module version>", what the SDK calls
// itself to Amplitude.
var defaultLibrary = sync.OnceValue(func() string { return "experiment-go/" + redact.ModuleVersion() })

// settings is a validated Config with its defaults filled in.
type settings struct {
	key         apiKey
	url         string
	redactedURL string
	batch       int
	interval    time.Duration
	retries     int
	capacity    int
	overflow    OverflowPolicy
	concurrency int
	minIDLength *int
	timeout     time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
	client      *http.Client
	ownsClient  bool
	log         *slog.Logger
	now         func() time.Time
	library     string

	// bodyHead and bodyTail enclose a request's events: the JSON of
	// eventsPayload around its events array.
	bodyHead, bodyTail []byte
}

// Validate reports what NewClient would reject in c, as a *ConfigError,
// without starting anything.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// resolve validates c and fills its defaults, but for the HTTP client of
// the Client's own, which NewClient makes.
func (c *Config) resolve() (*settings, error) {
	key := apiKey(strings.TrimSpace(c.APIKey))
	s := &settings{
		key:         key,
		batch:       cmp.Or(c.FlushQueueSize, DefaultFlushQueueSize),
		interval:    cmp.Or(c.FlushInterval, DefaultFlushInterval),
		retries:     max(cmp.Or(c.FlushMaxRetries, DefaultFlushMaxRetries), 0),
		capacity:    cmp.Or(c.QueueCapacity, DefaultQueueCapacity),
		overflow:    c.Overflow,
		concurrency: cmp.Or(c.MaxConcurrentRequests, DefaultMaxConcurrentRequests),
		timeout:     cmp.Or(c.RequestTimeout, DefaultRequestTimeout),
		backoffMin:  cmp.Or(c.RetryBackoffMin, DefaultRetryBackoffMin),
		backoffMax:  cmp.Or(c.RetryBackoffMax, DefaultRetryBackoffMax),
		log:         cmp.Or(c.Logger, slog.Default()),
		now:         c.Now,
		library:     cmp.Or(c.Library, defaultLibrary()),
	}
	errs := c.problems(key)
	if s.backoffMax < s.backoffMin {
		errs = append(errs, fmt.Errorf("RetryBackoffMax (%v) is less than RetryBackoffMin (%v)", s.backoffMax, s.backoffMin))
	}
	raw := cmp.Or(c.ServerURL, EventsURL(c.ServerZone, c.UseBatch))
	if u, err := httpx.ParseURL("events server URL", raw); err != nil {
		errs = append(errs, err)
	} else {
		s.url, s.redactedURL = u.String(), httpx.RedactURL(u)
	}
	if len(errs) > 0 {
		return nil, &ConfigError{Problems: errs}
	}
	if c.MinIDLength != nil {
		n := *c.MinIDLength
		s.minIDLength = &n
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.bodyHead, s.bodyTail = payloadFrame(s.key, s.minIDLength)
	s.client = c.HTTPClient
	return s, nil
}

// problems lists the settings of c that are invalid on their own.
func (c *Config) problems(key apiKey) []error {
	var errs []error
	if key == "" {
		errs = append(errs, errors.New("API key is empty"))
	} else if strings.IndexFunc(string(key), func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		errs = append(errs, fmt.Errorf("API key %v contains white space or control characters", key))
	}
	if err := c.ServerZone.valid(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"FlushInterval", c.FlushInterval}, {"RequestTimeout", c.RequestTimeout},
		{"RetryBackoffMin", c.RetryBackoffMin}, {"RetryBackoffMax", c.RetryBackoffMax},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%v)", d.name, d.v))
		}
	}
	if c.FlushQueueSize < 0 || c.FlushQueueSize > maxEventsPerRequest {
		errs = append(errs, fmt.Errorf("FlushQueueSize %d: want 1 to %d", c.FlushQueueSize, maxEventsPerRequest))
	}
	if c.QueueCapacity < 0 {
		errs = append(errs, fmt.Errorf("QueueCapacity is negative (%d)", c.QueueCapacity))
	}
	if c.Overflow != OverflowDropOldest && c.Overflow != OverflowBlock {
		errs = append(errs, fmt.Errorf("overflow policy %d: want OverflowDropOldest or OverflowBlock", c.Overflow))
	}
	if c.MaxConcurrentRequests < 0 {
		errs = append(errs, fmt.Errorf("MaxConcurrentRequests is negative (%d)", c.MaxConcurrentRequests))
	}
	if c.MinIDLength != nil && *c.MinIDLength < 1 {
		errs = append(errs, fmt.Errorf("MinIDLength %d: want at least 1", *c.MinIDLength))
	}
	return errs
}
