package cmd

import (
	"context"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/flagkit/experiment/internal/cli"
)

// Run is the process's entry point, main's and the test scripts' alike (the
// process exits when it returns): Main
// under a context that the first SIGINT or SIGTERM cancels. That signal asks
// the command to wind down (flush what is queued, remove its temporary
// files) and exit 130; a second one, once winding down is under way, ends
// the process at once, as users and CI runners expect. "Under way" starts a
// moment after the first: timeout(1) and process-group signals deliver one
// request twice within milliseconds, and that is not a second request.
func Run(args []string) int {
	// No stop when Main returns: the process exits right after, and a
	// duplicate of the first signal arriving then must not kill it while it
	// exits with its own code.
	startupGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, func() { time.AfterFunc(duplicateSignalWindow, stop) })
	return Main(ctx, args, cli.System())
}

// duplicateSignalWindow is how long after the first signal another one is
// taken for the same request.
const duplicateSignalWindow = time.Second

// startupHeap is how much the heap may grow before the first collection.
const startupHeap = 64 << 20

// startupGC lets a short command end without a garbage collection: the
// collector first runs when the heap reaches startupHeap, and from then on
// as usual (GOGC=100) for the rest of a long command (a batch, watch,
// serve). A single evaluation against 100 flags allocates a few MiB, and
// collecting them cost 14% of the process's wall time (19% of its CPU),
// which made the one-shot CLI slower than the official SDK doing the same.
// A GOGC or GOMEMLIMIT in the environment is the user's choice and wins.
func startupGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(startupHeap)
	// The first collection finds the sentinel unreachable and runs its
	// finalizer, which hands the collector back its usual settings. (Large
	// enough, and holding a pointer, not to come from the tiny allocator,
	// whose objects may never be finalized.)
	type sentinel struct {
		_ *int
		_ [2]int64
	}
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	})
}
