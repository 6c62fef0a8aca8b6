package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// noQueryChild names the environment variable that makes the test binary
// the child of TestNoTerminalQuery.
const noQueryChild = "CLI_TEST_NO_QUERY_CHILD"

// childOutput paints adaptive colours and a table on stdout, as a command
// does, from the process's own streams.
func childOutput(ios *IOStreams) string {
	var b strings.Builder
	s := ios.OutScheme()
	fmt.Fprintln(&b, s.Matched("matched"), s.Failed("failed"), s.Warning("warning"), s.Key("key"))
	t := ios.OutTable("FLAG", "VARIANT")
	t.AddRow("new-editor", "on")
	t.StyleCell(1, Matched)
	t.AddRow("offline-mode", "off")
	t.StyleRow(Dimmed)
	_ = t.Render(&b)
	return b.String()
}

// TestNoTerminalQuery: a command on a terminal writes its output and
// nothing else. lipgloss asks the terminal for its background colour
// (OSC 11) to pick adaptive colours unless it is told; the scheme tells it.
// The child process has a pseudo-terminal as stdin and stdout, as a user's
// shell gives, and everything it writes there must be its output: a query
// would come first, and the child would wait seconds for an answer.
func TestNoTerminalQuery(t *testing.T) {
	if os.Getenv(noQueryChild) == "1" {
		ios := System()
		if !ios.ColorOut() {
			fmt.Fprintln(os.Stderr, "stdout is no terminal")
			os.Exit(2)
		}
		_, _ = io.WriteString(ios.Out, childOutput(ios))
		os.Exit(0)
	}
	master, slave := openPTY(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoTerminalQuery$")
	cmd.Env = []string{noQueryChild + "=1", "TERM=xterm-256color", "PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, &stderr
	// The terminal is the child's controlling terminal and the child is in
	// its foreground, as a command run from a shell is: lipgloss queries
	// only such a terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close() // the child's copy is the last: reads end when it exits
	read := make(chan []byte)
	go func() {
		data, _ := io.ReadAll(master) // ends with EIO once the child is gone
		read <- data
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v: %s", err, stderr.String())
	}
	var got []byte
	select {
	case got = <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal was not closed")
	}
	elapsed := time.Since(start)

	want := childOutput(&IOStreams{OutTTY: true, Getenv: envOf(map[string]string{"TERM": "xterm-256color"})})
	// The terminal's line discipline shows "\n" as "\r\n".
	if text := strings.ReplaceAll(string(got), "\r\n", "\n"); text != want {
		t.Errorf("the terminal got %q\nwant only the output %q", text, want)
	}
	// A query waits up to termenv's OSCTimeout (5 s) for an answer that
	// never comes; the rest is the child's start, which a loaded -race
	// machine can stretch past a second or two.
	if elapsed > 4500*time.Millisecond {
		t.Errorf("the child took %v: waiting for a terminal's answer?", elapsed)
	}
}

// openPTY opens a pseudo-terminal pair, or skips the test where there is
// none.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("naming the pseudo-terminal: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}
