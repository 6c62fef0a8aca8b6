package lint

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// The rule ids and severities are a contract (CI filters, SARIF): the
// table in docs/cli.md must list each rule, in order, at its severity.
func TestRulesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z-]+)` \\| (error|warning|note) \\|")
	var documented, want []string
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1]+" "+m[2])
	}
	for _, r := range Rules() {
		want = append(want, r.ID+" "+r.Severity.String())
	}
	if !slices.Equal(documented, want) {
		t.Fatalf("docs/cli.md lists the rules\n%q\nwant (Rules())\n%q", documented, want)
	}
}
