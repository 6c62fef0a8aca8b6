// Package eval is the local evaluation engine: it compiles Amplitude Experiment
// flag configs (the v2 schema served by GET /sdk/v2/flags) into an immutable
// Snapshot and evaluates user contexts against it, with results identical to
// Amplitude's reference engine (experiment-go-server v1.12.0).
//
// All the work that depends only on the flags happens once, in Compile:
// dependency order, regex compilation, number and version parsing of filter
// values, set construction, metadata merging and value coercion. Evaluate then
// only reads the snapshot, so one Snapshot may serve any number of goroutines.
//
// The package does no I/O, keeps no globals beyond immutable tables, and does
// not log: problems found while compiling are returned as values (see
// Snapshot.Problems) for the caller to report.
package eval
