package fleettest

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/flagkit/experiment/cmd"
)

// asExperiment, set in a child's environment, makes this test binary the
// experiment command: the relays are the real command line, run as separate
// processes that a test can kill -9, without a build step.
const asExperiment = "FLEETTEST_AS_EXPERIMENT"

func TestMain(m *testing.M) {
	if os.Getenv(asExperiment) == "1" {
		os.Exit(cmd.Run(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}
