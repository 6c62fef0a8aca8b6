package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Config configures a Fleet.
type Config struct {
	// Redis are the connection options, from ParseURL. Timeouts and
	// retries are set by New (bounded: Redis is never waited on for long).
	Redis *redis.UniversalOptions
	// Prefix begins every key and the notice channel. Default "experiment".
	Prefix string
	// LeaseTTL is how long a lease lasts without renewal. Default 15 s,
	// minimum 1 s.
	LeaseTTL time.Duration
	// CallTimeout bounds every Redis call. Default 2 s.
	CallTimeout time.Duration
	// Metrics, when set, count lease changes, notices, reloads and errors.
	Metrics *Metrics
	// Say receives a line when Redis becomes unreachable and when it
	// answers again, with the Fleet locked so that the change and its
	// line are seen together: it must not call the Fleet. Default: nothing.
	Say func(line string)
}

// Defaults of Config.
const (
	DefaultPrefix      = "experiment"
	DefaultLeaseTTL    = 15 * time.Second
	DefaultCallTimeout = 2 * time.Second
	// SeenTTL is how long an event identity stays seen: the 24 hours of
	// Amplitude's own de-duplication.
	SeenTTL = 24 * time.Hour
)

// Fleet is one relay's handle on the shared Redis: its instance token,
// the key model and every operation on it. It is safe for concurrent use.
type Fleet struct {
	rdb      redis.UniversalClient
	prefix   string
	instance string
	ttl      time.Duration
	timeout  time.Duration
	metrics  *Metrics
	say      func(string)

	mu      sync.Mutex
	up      bool   // the last call's outcome
	lastErr string // the last failure, for /status
}

// New connects to nothing yet: go-redis dials on the first call, so a
// Redis down at start is not an error here.
func New(cfg Config) (*Fleet, error) {
	if cfg.Redis == nil {
		return nil, errors.New("fleet: no Redis options")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < time.Second {
		return nil, fmt.Errorf("lease TTL %v: want at least 1s", cfg.LeaseTTL)
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.Say == nil {
		cfg.Say = func(string) {}
	}
	o := *cfg.Redis
	// Short, bounded waits: a slow Redis costs a background loop a
	// second or two, never a request (none waits on Redis).
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = time.Second, time.Second, time.Second
	o.PoolTimeout, o.ContextTimeoutEnabled = time.Second, true
	o.MaxRetries, o.DialerRetries = 1, 1
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	f := &Fleet{rdb: redis.NewUniversalClient(&o), prefix: cfg.Prefix, ttl: cfg.LeaseTTL,
		timeout: cfg.CallTimeout, metrics: cfg.Metrics, say: cfg.Say, up: true}
	var b [8]byte
	rand.Read(b[:])
	f.instance = hex.EncodeToString(b[:])
	return f, nil
}

// Close closes the connections.
func (f *Fleet) Close() error { return f.rdb.Close() }

// Instance is this relay's random id, the token of its leases.
func (f *Fleet) Instance() string { return f.instance }

// Prefix is the key prefix.
func (f *Fleet) Prefix() string { return f.prefix }

// LeaseTTL is the configured lease time.
func (f *Fleet) LeaseTTL() time.Duration { return f.ttl }

// Metrics are the fleet's counters.
func (f *Fleet) Metrics() *Metrics { return f.metrics }

// Up reports whether the last Redis call succeeded, and the last failure.
func (f *Fleet) Up() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up, f.lastErr
}

// note records a call's outcome: a failure other than "no such key" or
// the caller's cancellation is Redis's, counted and kept for /status. A
// change between reachable and unreachable is said once, under the lock
// that publishes it: said after, a concurrent call could see Redis down,
// and its relay turn alone, with the warning not yet written; and whoever
// reads the line and then Up finds the change made.
func (f *Fleet) note(err error) error {
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	if errors.Is(err, context.Canceled) {
		return err // the relay stops: no sign of Redis's health
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.up
	if err != nil {
		f.metrics.redisErrors.Inc()
		f.up, f.lastErr = false, scrub(err.Error())
	} else {
		f.up = true
	}
	switch {
	case was && err != nil:
		f.say("experiment: warning: redis unreachable (" + f.lastErr + "); serving what we have, syncing from Amplitude alone")
	case !was && err == nil:
		f.say("redis reachable again")
	}
	return err
}

// scrub drops anything after an "@" from a message (an address with
// credentials, should a library ever print one).
func scrub(msg string) string {
	if i := strings.Index(msg, "@"); i >= 0 {
		return msg[:i] + "@…"
	}
	return msg
}

func (f *Fleet) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, f.timeout)
}

// Ping checks that Redis answers.
func (f *Fleet) Ping(ctx context.Context) error {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	return f.note(f.rdb.Ping(ctx).Err())
}

// Hash is what keys hold instead of a secret: 32 hex digits of its
// SHA-256.
func Hash(secret string) string { return hashBytes([]byte(secret)) }

// Keys of the model (docs/serve.md#fleet); dep is Hash(deployment key).
func (f *Fleet) flagsKey(dep string) string   { return f.prefix + ":dep:" + dep + ":flags" }
func (f *Fleet) metaKey(dep string) string    { return f.prefix + ":dep:" + dep + ":meta" }
func (f *Fleet) depLease(dep string) string   { return f.prefix + ":lease:dep:" + dep }
func (f *Fleet) cohortLease(id string) string { return f.prefix + ":lease:cohort:" + id }
func (f *Fleet) descKey(id string) string     { return f.prefix + ":{cohort:" + id + "}:desc" }
func (f *Fleet) blobKey(id string, version int64) string {
	return f.prefix + ":{cohort:" + id + "}:blob:" + strconv.FormatInt(version, 10)
}
func (f *Fleet) seenKey(h string) string { return f.prefix + ":seen:" + h }
func (f *Fleet) channel() string         { return f.prefix + ":events" }

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
