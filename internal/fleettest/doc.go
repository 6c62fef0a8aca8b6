// Package fleettest holds the fleet tests of `experiment serve --redis`
// (issue 20): real redis-server processes, real relay processes (this test
// binary re-executed as the experiment command) and a fake Amplitude on
// 127.0.0.1, started, killed and restarted by the tests. It has no code
// outside its tests.
//
// The tests need redis-server on PATH (Debian's redis-server package). They
// skip without it, unless EXPERIMENT_REQUIRE_REDIS=1, then they fail: CI
// sets it. TestFleetChaos runs for EXPERIMENT_CHAOS_DURATION (default 15s;
// CI: 60s) with the seed EXPERIMENT_CHAOS_SEED (default: the clock; logged).
// EXPERIMENT_FLEET_BINARY=PATH runs that experiment binary as the relays
// instead (a release build, or one without the race detector for timings).
package fleettest
