// Command experiment evaluates Amplitude Experiment flags from the terminal.
package main

import (
	"os"

	"github.com/flagkit/experiment/cmd"
)

func main() {
	os.Exit(cmd.Run(os.Args[1:]))
}
