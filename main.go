// Command experiment evaluates Amplitude Experiment flags from the terminal.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/flagkit/experiment/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Main(ctx, os.Args[1:], cmd.System())
	stop()
	os.Exit(code)
}
