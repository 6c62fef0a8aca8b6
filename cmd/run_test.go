package cmd

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// gcSettings restores the collector's settings when the test ends.
func gcSettings(t *testing.T) (percent int, limit int64) {
	t.Helper()
	percent = debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	limit = debug.SetMemoryLimit(-1) // negative: read only
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
	return percent, limit
}

// TestStartupGCHandsBack checks that the first collection after startupGC
// hands the collector back GOGC=100 and no memory limit: a long command
// (a batch, watch, serve) must not run on with the collector off.
func TestStartupGCHandsBack(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	gcSettings(t)

	startupGC()
	if got := debug.SetMemoryLimit(-1); got != startupHeap {
		t.Fatalf("memory limit after startupGC = %d, want %d", got, startupHeap)
	}
	if got := debug.SetGCPercent(-1); got != -1 { // -1 already: a read
		t.Fatalf("GC percent after startupGC = %d, want -1 (off)", got)
	}

	// The finalizer sets the percent, then the limit: once the limit is
	// back, so is the percent.
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) != math.MaxInt64 {
		if time.Now().After(deadline) {
			t.Fatal("the memory limit is still set after collections: the sentinel's finalizer did not run")
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent after the first collection = %d, want 100", got)
	}
}

// TestStartupGCLeavesUserSettings checks that GOGC or GOMEMLIMIT in the
// environment, the user's choice, keeps startupGC's hands off.
func TestStartupGCLeavesUserSettings(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, "200")
			percent, limit := gcSettings(t)
			startupGC()
			if got := debug.SetMemoryLimit(-1); got != limit {
				t.Errorf("memory limit = %d, want it left at %d", got, limit)
			}
			if got := debug.SetGCPercent(percent); got != percent {
				t.Errorf("GC percent = %d, want it left at %d", got, percent)
			}
		})
	}
}
