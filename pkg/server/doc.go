// Package server is a flag server that Amplitude's own SDKs and OpenFeature
// OFREP providers use unmodified: point their server URL at it. It is an
// http.Handler, for a Go service to embed or for `experiment serve` to run.
//
// It serves, from memory, what a Source currently holds: the flag configs
// (GET /sdk/v2/flags and the SSE stream /sdk/stream/v1/flags), remote
// evaluation (/sdk/v2/vardata and the v1 forms), cohorts and memberships,
// OFREP single and bulk evaluation, and the operational endpoints /healthz,
// /readyz, /status and /metrics. A Source replaces its Flags as a whole and
// atomically; requests read the current value with one atomic load and no
// lock, and every open stream is pushed the new flags.
//
// Store is the Source a program feeds by hand (snapshot files, tests);
// ApplyOverrides compiles forced variants into flag configs, so that local
// evaluation SDKs fetching them see the overrides too.
//
// The wire formats are those of docs/protocol.md; what is served where, and
// the SDK quirks absorbed, are in docs/serve.md. Keys are never logged, and
// /status and /metrics show them only as fingerprints.
package server
