package lint

import (
	"testing"

	"github.com/flagkit/experiment/internal/conformance"
	"github.com/flagkit/experiment/pkg/eval"
)

// The conformance set is full of the edge cases lint is about. Linting it
// must work, and every finding's path must be one the locator found
// exactly, so that a report points at the field itself, not its flag.
func TestConformanceFindingsAreLocated(t *testing.T) {
	total := 0
	for _, c := range conformance.Cases(t) {
		data := c.Flags(t)
		flags, err := eval.DecodeFlags(data)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		findings, err := Check(flags, Options{HasCohort: func(string) bool { return true }})
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		l := Locate(data)
		for _, fd := range findings {
			if _, ok := l.offsets[fd.Path]; !ok {
				t.Errorf("%s: %s finding at %s, which the locator does not know", c.Name, fd.Rule, fd.Path)
			}
		}
		total += len(findings)
	}
	if total == 0 {
		t.Fatal("no findings in the whole conformance set: the rules found nothing to test against")
	}
}
