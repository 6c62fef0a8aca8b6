package experiment

import (
	"context"
	"log/slog"
	"sync"

	"github.com/flagkit/experiment/internal/redact"
	"github.com/flagkit/experiment/pkg/analytics"
)

// libraryName is what the SDK calls itself to Amplitude by default: the
// X-Amp-Exp-Library header, a fetched user's "library" field and each
// event's "library". A program that wraps the SDK and wants its own traffic
// told apart (the experiment CLI sends "experiment-go-cli/<version>") sets
// the Library field of LocalConfig, RemoteConfig or analytics.Config; nothing
// else should.
const libraryName = "experiment-go"

// defaultLibrary is "experiment-go/<module version>" (redact.ModuleVersion).
var defaultLibrary = sync.OnceValue(func() string { return libraryName + "/" + redact.ModuleVersion() })

// sdkLogger is the logger of a client: the caller's, used as is, or else
// the process's default logger (slog.Default, read now: a later
// slog.SetDefault does not reach an existing client). Debug lets DEBUG
// records of the SDK through to that default logger's handler, whatever
// level the handler itself enables.
func sdkLogger(logger *slog.Logger, debug bool) *slog.Logger {
	if logger != nil {
		return logger
	}
	def := slog.Default()
	if !debug {
		return def
	}
	return slog.New(minLevelHandler{min: slog.LevelDebug, Handler: def.Handler()})
}

// minLevelHandler enables records from min up, and hands them to the
// wrapped handler, which writes them without asking its own level again
// (slog's handlers check the level in Enabled only).
type minLevelHandler struct {
	min slog.Level
	slog.Handler
}

func (h minLevelHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{min: h.min, Handler: h.Handler.WithAttrs(attrs)}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{min: h.min, Handler: h.Handler.WithGroup(name)}
}

// inherit fills the settings an analytics client of a LocalClient leaves
// unset with the client's own, so that one LocalConfig reaches every
// part: the zone (unless the analytics config has a ServerURL or a zone of
// its own), the HTTP client (and with it its timeout and transport), the
// logger and the library name. What the analytics config sets explicitly
// wins. cfg is a copy: the caller's config is not modified.
func (s *localSettings) inherit(cfg analytics.Config) analytics.Config {
	if cfg.ServerURL == "" && cfg.ServerZone == "" {
		cfg.ServerZone = analytics.ServerZone(s.zone)
	}
	if cfg.HTTPClient == nil && !s.ownsClient {
		cfg.HTTPClient = s.httpClient
	}
	if cfg.Logger == nil {
		cfg.Logger = s.logger
	}
	if cfg.Library == "" {
		cfg.Library = s.library
	}
	return cfg
}
