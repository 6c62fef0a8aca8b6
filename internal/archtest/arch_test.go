package archtest

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// forbiddenInSDK are the packages that belong to the CLI: a service that
// imports the SDK must not link a terminal library, a flag parser or the
// CLI's own code.
var forbiddenInSDK = []string{
	"github.com/spf13/cobra",
	"github.com/spf13/pflag",
	"github.com/charmbracelet/",
	"github.com/olekukonko/",
	"github.com/fatih/color",
	"github.com/mattn/go-isatty",
	"github.com/mattn/go-colorable",
	"github.com/mattn/go-runewidth",
	"github.com/muesli/",
	"golang.org/x/term",
	"github.com/flagkit/experiment/cmd",
	"github.com/flagkit/experiment/internal/cli",
}

// repoRoot is the module's root, two levels above this file.
func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

type listedPackage struct {
	ImportPath string
	Dir        string
	Deps       []string
}

// listPackages lists the packages of pattern with their transitive non-test dependencies.
func listPackages(t *testing.T, pattern string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Dir,Deps", pattern)
	cmd.Dir = repoRoot(t)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pattern, err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %s found no packages", pattern)
	}
	return pkgs
}

func TestSDKImportsNoCLIPackages(t *testing.T) {
	for _, p := range listPackages(t, "./pkg/...") {
		for _, dep := range forbiddenDeps(p.Deps) {
			t.Errorf("%s depends on %s: the SDK must not link CLI or terminal packages", p.ImportPath, dep)
		}
	}
}

// The import check must see what it looks for: the CLI links cobra.
func TestForbiddenDepsSeesTheCLI(t *testing.T) {
	cli := listPackages(t, "./cmd")
	if got := forbiddenDeps(cli[0].Deps); !slices.Contains(got, "github.com/spf13/cobra") {
		t.Fatalf("forbiddenDeps(cmd's deps) = %v, want cobra among them", got)
	}
}

// forbiddenDeps are the dependencies named in forbiddenInSDK.
func forbiddenDeps(deps []string) (bad []string) {
	for _, dep := range deps {
		for _, prefix := range forbiddenInSDK {
			if dep == prefix || strings.HasPrefix(dep, strings.TrimSuffix(prefix, "/")+"/") {
				bad = append(bad, dep)
			}
		}
	}
	return bad
}

// The SDK's packages, and the module's internal packages they link: state
// in internal/httpx is the SDK's state as much as state in pkg/eval.
func TestSDKHasNoPackageLevelState(t *testing.T) {
	pkgs := listPackages(t, "./pkg/...")
	module, _, _ := strings.Cut(pkgs[0].ImportPath, "/pkg/")
	dirs := map[string]string{}
	for _, p := range pkgs {
		dirs[p.ImportPath] = p.Dir
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, module+"/internal/") {
				dirs[dep] = ""
			}
		}
	}
	for _, path := range slices.Sorted(maps.Keys(dirs)) {
		dir := dirs[path]
		if dir == "" {
			dir = filepath.Join(repoRoot(t), strings.TrimPrefix(path, module+"/"))
		}
		files := parsePackage(t, dir)
		if len(files) == 0 {
			t.Fatalf("%s: no Go files in %s", path, dir)
		}
		for _, problem := range stateProblems(files) {
			t.Errorf("%s: %s", path, problem)
		}
	}
}

// parsePackage parses the non-test Go files of one directory.
func parsePackage(t *testing.T, dir string) (files []*parsedFile) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0) // with object resolution: state.go tells locals from package-level names
		if err != nil {
			t.Fatalf("parsing %s: %v", name, err)
		}
		files = append(files, &parsedFile{fset: fset, file: f, name: filepath.Base(name)})
	}
	return files
}

type parsedFile struct {
	fset *token.FileSet
	file *ast.File
	name string
}

func (f *parsedFile) at(pos token.Pos) string {
	p := f.fset.Position(pos)
	return f.name + ":" + strconv.Itoa(p.Line)
}
