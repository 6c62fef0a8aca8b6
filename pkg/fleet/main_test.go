package fleet

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no goroutine outlives the tests: a Run, a Dedup or
// a subscription left behind would be a relay that never stops.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
