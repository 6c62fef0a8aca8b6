// Package eval is the local evaluation engine: it compiles Amplitude Experiment
// flag configs (the v2 schema served by GET /sdk/v2/flags) into an immutable
// Snapshot and evaluates user contexts against it, with results identical to
// Amplitude's reference engine (experiment-go-server v1.12.0).
//
// The work that depends only on the flags happens once, in Compile or Load:
// dependency order, number and version parsing of filter values, sorted
// value sets, and the shape of each regex. What many snapshots never need is
// done on first use and kept, safely for concurrent evaluations: compiling a
// regex the direct matchers do not cover, merging a segment's metadata for a
// variant it serves. The snapshot is flat (records in contiguous slices,
// referring to each other by index) so that evaluating 10,000 flags costs
// about ten times 1,000. Evaluate then only reads the snapshot, so one
// Snapshot may serve any number of goroutines.
//
// The package does no I/O, keeps no globals beyond immutable tables, and does
// not log: problems found while compiling are returned as values (see
// Snapshot.Problems) for the caller to report.
package eval
