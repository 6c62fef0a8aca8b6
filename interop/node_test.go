package interop

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestNode runs the Node SDK and OFREP provider tests in ./node (`node
// --test`) against the binary built here, so one `go test` covers both.
// node_modules comes from `npm ci` (the lockfile), run here when missing.
func TestNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		skipWithoutNode(t, "node")
	}
	if _, err := os.Stat("node/node_modules"); os.IsNotExist(err) {
		npm, err := exec.LookPath("npm")
		if err != nil {
			skipWithoutNode(t, "npm")
		}
		run(t, exec.Command(npm, "ci", "--no-audit", "--no-fund"))
	}
	cases, err := filepath.Abs(casesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "--test")
	cmd.Env = append(os.Environ(), "EXPERIMENT_BIN="+binary, "EXPERIMENT_CONFORMANCE_DIR="+cases)
	run(t, cmd)
}

// skipWithoutNode skips on a developer's machine without Node.js, and fails
// in CI (.ci/run sets INTEROP_REQUIRE_NODE), where a skip would pass the run
// without the Node SDK ever being tested.
func skipWithoutNode(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("INTEROP_REQUIRE_NODE") != "" {
		t.Fatalf("%s is not installed, and INTEROP_REQUIRE_NODE says the Node SDK tests must run", what)
	}
	t.Skipf("%s is not installed: the Node SDK tests do not run", what)
}

func run(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Dir = "node"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	t.Logf("%s:\n%s", cmd, out)
}
