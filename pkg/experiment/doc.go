// Package experiment is the Go SDK for Amplitude Experiment: remote and local
// flag evaluation, cohort targeting, and exposure tracking. Its surface
// mirrors Amplitude's Python server SDK in Go idiom: constructors return
// errors, contexts come first, nothing is global, evaluation never modifies
// the caller's User, and every client ends with Close.
//
// # Remote evaluation
//
// A [RemoteClient] asks Amplitude's evaluation servers for a user's variants
// on each call, so targeting that needs Amplitude's user data (cohorts of
// every kind, user properties Amplitude holds) works without any local state:
//
//	client, err := experiment.NewRemoteClient(deploymentKey, nil)
//	...
//	defer client.Close()
//	variants, err := client.FetchV2(ctx, &experiment.User{UserID: "user@company.com"}, nil)
//	if variants["checkout-flow"].Value == "treatment" { ... }
//
// FetchV2 retries transient failures within ctx and returns a [*FetchError]
// when it gives up. A nil config takes the Python SDK's defaults;
// [RemoteConfig] sets the zone, timeouts and retries.
//
// # Local evaluation
//
// A [LocalClient] downloads the flag configs and evaluates them in memory,
// in microseconds and without a request, giving the same results as
// Amplitude's own engine. It polls for changes (or, with
// LocalConfig.StreamUpdates, receives them as they happen):
//
//	client, err := experiment.NewLocalClient(deploymentKey, &experiment.LocalConfig{CacheDir: dir})
//	...
//	if err := client.Start(ctx); err != nil { ... }
//	defer client.Close()
//	variants, err := client.EvaluateV2(user, "new-editor")
//
// A [FlagSet] is the same evaluation over flags loaded by other means
// (a file, a test), with no client at all.
//
// The map EvaluateV2 returns is the caller's, but the Metadata and Payload
// of its variants are the flag set's, shared by every evaluation: read them
// and never modify them (maps.Clone first), as results of Amplitude's own
// SDKs are treated. Sharing keeps an evaluation to the one allocation of
// the map.
//
// # Cohorts
//
// Flags may target behavioural cohorts. With LocalConfig.CohortSyncConfig
// (the analytics project's API key and secret key) the local client
// downloads the cohorts its flags target before Start returns, keeps them
// fresh, and keeps the last good copy of each through outages. Without it,
// users evaluate as members of no cohort. Status().Cohorts says, per cohort,
// where its copy came from, how old it is and why it is not current.
// Package cohort holds the cohort store and download client themselves.
//
// # Exposure tracking
//
// An experiment's analysis counts the users who were exposed to a variant.
// With LocalConfig.ExposureConfig, an evaluation whose [EvaluateOptions] set
// TracksExposure sends an "[Experiment] Exposure" event per variant served,
// de-duplicated for 24 hours, through a background [analytics.Client] that
// batches and retries; evaluation never waits for it. Remote evaluation tracks on
// the server instead (FetchOptions.TracksExposure). The analytics API key
// belongs to the same project as the deployment key.
//
// # Lifecycle
//
// NewLocalClient only checks its config: an invalid one is an error that
// matches [ErrInvalidConfig]. Start fetches the first flag configs and
// starts the background updater; it returns once flags are in use, or an
// error when its context ends first, and never waits longer than
// LocalConfig.StartTimeout (10 s by default) even under
// context.Background() (with LocalConfig.CacheDir, a cached copy is used at
// once instead, and Status says so). Until then evaluations fail with
// [ErrNotStarted]. A failed Start may be called again, and concurrent Starts
// share one attempt; a rejected key stays final; Start after Close returns
// [ErrClosed] and starts nothing. [LocalClient.Status] reports the [State] (starting,
// ready, interrupted, closed), the [Source] and age of the flags in use, the
// last error and each cohort's state; LocalConfig.OnStatusChange delivers
// each change, for alerting. Close (or CloseContext, to bound the wait)
// stops every goroutine, sends the events still queued and reports those
// it could not; a closed client makes no more requests.
//
// Every client is safe for concurrent use by many goroutines.
//
// # Testing
//
// Package experimenttest serves fakes of Amplitude's flag and evaluation
// APIs on httptest servers, package analytics/analyticstest one of the
// analytics API and package cohort/cohorttest one of the cohort API, so
// tests of code that uses this package run offline; the examples here use
// them.
package experiment
