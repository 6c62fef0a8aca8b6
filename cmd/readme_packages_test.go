package cmd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEListsEveryPackage checks the development section's package
// list: each directory of pkg/ and internal/ holding Go files has its row
// (`pkg/NAME` or `internal/NAME`), and no row names one that is gone.
func TestREADMEListsEveryPackage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if name, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ = strings.Cut(name, "`")
			if strings.HasPrefix(name, "pkg/") || strings.HasPrefix(name, "internal/") {
				rows[name] = true
			}
		}
	}
	found := 0
	for _, parent := range []string{"pkg", "internal"} {
		dirs, err := filepath.Glob(filepath.Join("..", parent, "*", "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, f := range dirs {
			name := parent + "/" + filepath.Base(filepath.Dir(f))
			if seen[name] {
				continue
			}
			seen[name] = true
			found++
			if !rows[name] {
				t.Errorf("README.md's package list has no row for %s", name)
			}
			delete(rows, name)
		}
	}
	if found == 0 {
		t.Fatal("no packages found under ../pkg and ../internal")
	}
	for name := range rows {
		if !strings.Contains(name, "…") && !strings.Contains(name, "*") {
			t.Errorf("README.md's package list names %s, which has no Go files", name)
		}
	}
}
