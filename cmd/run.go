package cmd

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Run is the process's entry point, main's and the test scripts' alike: Main
// under a context that the first SIGINT or SIGTERM cancels. That signal asks
// the command to wind down (flush what is queued, remove its temporary
// files) and exit 130; a second one, once winding down is under way, ends
// the process at once, as users and CI runners expect.
func Run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	return Main(ctx, args, System())
}
