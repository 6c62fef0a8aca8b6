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
		t.Skip("node is not installed: the Node SDK tests do not run")
	}
	if _, err := os.Stat("node/node_modules"); os.IsNotExist(err) {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("npm is not installed: the Node SDK tests do not run")
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

func run(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Dir = "node"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	t.Logf("%s:\n%s", cmd, out)
}
