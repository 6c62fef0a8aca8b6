package experiment

import "testing"

// A document that does not name cohort_ids, even through \u escapes of its
// letters, needs no second decoding to find the cohorts it targets.
func TestMayTargetCohorts(t *testing.T) {
	for doc, want := range map[string]bool{
		`[{"key":"a"}]`: false,
		`[{"key":"a","metadata":{"x":"\u003c\u00e9"}}]`:       false,
		`[{"selector":["context","user","cohort_ids"]}]`:      true,
		`[{"selector":["context","user","cohort\u005fids"]}]`: true,
		`[{"selector":["context","user","\u0063ohort_ids"]}]`: true,
		`[{"key":"\u00`:      true,
		`[{"key":"\uzzzz"}]`: true,
	} {
		if got := mayTargetCohorts([]byte(doc)); got != want {
			t.Errorf("mayTargetCohorts(%s) = %v, want %v", doc, got, want)
		}
	}
}
