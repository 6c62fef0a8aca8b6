package experiment

import "github.com/flagkit/experiment/pkg/analytics"

// ExposureConfig enables exposure tracking in the local client: the Go form
// of the Python SDK's ExposureConfig. Like the Python class, which extends
// the analytics client's Config, it carries the analytics client's
// settings (analytics.Config, whose zero values mean the defaults) plus
// its own. By default tracking never waits and a full queue drops its
// oldest events, counted and reported; Config.Overflow =
// analytics.OverflowBlock makes it wait instead (see
// analytics.OverflowPolicy).
type ExposureConfig struct {
	analytics.Config

	// CacheCapacity bounds the de-duplication cache: how many distinct
	// evaluations (user, flags and variants) are remembered for 24 hours.
	// Default: 65536, the Python SDK's.
	CacheCapacity int

	// Printer, when set, receives the events instead of an analytics
	// client: each event that would be sent, and each one de-duplication
	// held back, is written as a JSON line with the decision. Nothing is
	// sent and APIKey is not needed. It backs the CLI's --print-events.
	Printer *analytics.Printer
}

// AssignmentConfig enables assignment tracking in the local client: the Go
// form of the Python SDK's AssignmentConfig.
//
// Deprecated: use ExposureConfig; Amplitude keeps assignment events for old
// analyses.
type AssignmentConfig struct {
	analytics.Config

	// CacheCapacity bounds the de-duplication cache, as in ExposureConfig.
	// Default: 65536.
	CacheCapacity int

	// SendEvaluatedProps copies the user's device fields (country, region,
	// city, dma, language, platform, version, os, device brand,
	// manufacturer and model, carrier, library, IP address) onto each
	// event and sends the user's user properties with the event's $set and
	// $unset.
	SendEvaluatedProps bool

	// Printer, when set, receives the events instead of an analytics
	// client, as in ExposureConfig.
	Printer *analytics.Printer
}

// defaultCacheCapacity is the default size of a de-duplication cache, the
// Python SDK's cache_capacity.
const defaultCacheCapacity = 65536
