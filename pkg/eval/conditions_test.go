package eval

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConditions: Conditions gives the conditions of the flags in use as
// configured (the later definition of a key defined twice), in config
// order, whether the Snapshot was loaded or compiled.
func TestConditions(t *testing.T) {
	doc := []byte(`[
		{"key":"a","segments":[{"conditions":[[{"selector":["context","user","cohort_ids"],"op":"set contains any","values":["c1","c2"]}]]}]},
		{"key":"b","segments":[{"conditions":[[{"selector":["context","user","id"],"op":"nonsense","values":["x"]},{"selector":["context","user","id"],"op":"is"}]]},
			{"conditions":[[{"selector":["context","groups","org","cohort_ids"],"op":"set does not contain any","values":[]}]]}]},
		{"key":"a","segments":[{"conditions":[[{"selector":["context","user","cohort_ids"],"op":"set contains any","values":["c3"]}]]}]}]`)
	want := []string{
		`a [context user cohort_ids] "set contains any" [c3] false`,
		`b [context user id] "nonsense" [x] false`,
		`b [context user id] "is" [] true`,
		`b [context groups org cohort_ids] "set does not contain any" [] false`,
	}
	flags, err := DecodeFlags(doc)
	require.NoError(t, err)
	compiled, err := Compile(flags)
	require.NoError(t, err)
	loaded, err := Load(doc)
	require.NoError(t, err)
	for _, s := range []*Snapshot{compiled, loaded} {
		var got []string
		s.Conditions(func(key string, c *Condition) {
			got = append(got, fmt.Sprintf("%s %v %q %v %v", key, c.Selector, c.Op, c.Values, c.Values == nil))
		})
		assert.Equal(t, want, got)
	}

	// On a real set: every condition of every flag, as decoded.
	data := benchDoc(t, 1000)
	flags, err = DecodeFlags(data)
	require.NoError(t, err)
	var decoded []Condition
	for _, f := range flags {
		for _, seg := range f.Segments {
			for _, group := range seg.Conditions {
				for _, c := range group {
					decoded = append(decoded, *c)
				}
			}
		}
	}
	big, err := Load(data)
	require.NoError(t, err)
	var got []Condition
	big.Conditions(func(_ string, c *Condition) { got = append(got, *c) })
	require.Len(t, got, len(decoded))
	for i := range got {
		w, g := decoded[i], got[i]
		if !slices.Equal(w.Selector, g.Selector) || w.Op != g.Op || !slices.Equal(w.Values, g.Values) || (w.Values == nil) != (g.Values == nil) {
			t.Fatalf("condition %d: got %+v, want %+v", i, g, w)
		}
	}
}
