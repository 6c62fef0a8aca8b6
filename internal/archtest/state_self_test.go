package archtest

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// parseSources parses in-memory files as one package, for testing the
// checker itself.
func parseSources(t *testing.T, sources map[string]string) []*parsedFile {
	t.Helper()
	fset := token.NewFileSet()
	var files []*parsedFile
	for name, src := range sources {
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, &parsedFile{fset: fset, file: f, name: name})
	}
	return files
}

// The checker must find each kind of state it is meant to find, across
// files, and must leave alone what only looks like it.
func TestStateCheckerFindsPlantedState(t *testing.T) {
	files := parseSources(t, map[string]string{
		"a.go": `package p
import ("errors"; "regexp"; "sync"; "sync/atomic"; "net/http")
var ErrX = errors.New("x")
var re = regexp.MustCompile("a+")
var table = map[string]int{"a": 1}
var mu sync.Mutex
var hits atomic.Int64
var client = &http.Client{}
var events = make(chan int)
var counter int
func init() {}
`,
		"b.go": `package p
func bump() { counter++ }
func set(k string) { table[k] = 2 }
func forget(k string) { delete(table, k) }
func addr() *int { return &counter }
func shadow() { counter := 1; counter++; _ = counter; table := map[string]int{}; table["x"] = 1 }
func param(re string) string { re = re + "x"; return re }
func read() int { return table["a"] + counter }
`,
	})
	got := strings.Join(stateProblems(files), "\n")
	for _, want := range []string{
		"a.go:11: func init",
		"a.go:6: package-level sync.Mutex mu",
		"a.go:7: package-level atomic.Int64 hits",
		"a.go:8: package-level http.Client client",
		"a.go:9: package-level channel events",
		"b.go:2: writes package-level variable counter",
		"b.go:3: writes package-level variable table",
		"b.go:4: deletes from package-level variable table",
		"b.go:5: takes the address of package-level variable counter",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	for _, notWant := range []string{"ErrX", " re", "b.go:6", "b.go:7", "b.go:8"} {
		if strings.Contains(got, notWant) {
			t.Errorf("flagged %q, which is not state:\n%s", notWant, got)
		}
	}
}
