package cmd

import (
	"context"
	"os"
	"os/signal"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, func() { time.AfterFunc(duplicateSignalWindow, stop) })
	return Main(ctx, args, cli.System())
}

// duplicateSignalWindow is how long after the first signal another one is
// taken for the same request.
const duplicateSignalWindow = time.Second
