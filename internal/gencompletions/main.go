// Command gencompletions writes experiment's shell completion scripts into a
// directory: exactly what `experiment completion SHELL` prints, produced by
// the real command tree through cmd.Main. Run it with `go generate ./cmd`;
// cmd's TestCompletionScripts fails when the committed files are stale.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flagkit/experiment/cmd"
	"github.com/flagkit/experiment/internal/cli"
)

// scripts maps each shell to its file name, as shells look for them:
// bash-completion loads experiment.bash (or experiment), zsh a _experiment on
// $fpath, fish experiment.fish, PowerShell dot-sources experiment.ps1.
var scripts = []struct{ shell, file string }{
	{"bash", "experiment.bash"},
	{"zsh", "_experiment"},
	{"fish", "experiment.fish"},
	{"powershell", "experiment.ps1"},
}

func main() {
	dir := flag.String("dir", "completions", "directory to write the scripts into")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "gencompletions:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, s := range scripts {
		var out, errOut bytes.Buffer
		ios := &cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut,
			Getenv: func(string) string { return "" }}
		if code := cmd.Main(context.Background(), []string{"completion", s.shell}, ios); code != 0 {
			return fmt.Errorf("experiment completion %s: exit %d: %s", s.shell, code, strings.TrimSpace(errOut.String()))
		}
		path := filepath.Join(dir, s.file)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, out.Bytes()) {
			continue // unchanged: keep the file's time stamp
		}
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
