package experiment

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
)

// The cohorts a loaded set targets, found in its compiled conditions, are
// those cohort.Referenced finds in its flags decoded: user and group
// cohorts, a selector spelled with escapes, and only the later definition
// of a key defined twice.
func TestSnapshotReferences(t *testing.T) {
	for doc, want := range map[string]cohort.References{
		`[{"key":"a"}]`: {},
		`[{"key":"a","segments":[{"conditions":[[{"selector":["context","user","cohort_ids"],"op":"set contains any","values":["u1","u2"]}]]}]},
		  {"key":"b","segments":[{"conditions":[[{"selector":["context","groups","org","cohort\u005fids"],"op":"set does not contain any","values":["g1"]},
		    {"selector":["context","user","cohort_ids"],"op":"set contains","values":["ignored"]}]]}]},
		  {"key":"c","segments":[{"conditions":[[{"selector":["context","user","cohort_ids"],"op":"set contains any","values":["overridden"]}]]}]},
		  {"key":"c","segments":[{"conditions":[[{"selector":["context","user","cohort_ids"],"op":"set contains any","values":["u1","u3"]}]]}]}]`: {
			cohort.UserGroupType: {"u1", "u2", "u3"}, "org": {"g1"},
		},
	} {
		snap, err := eval.Load([]byte(doc))
		require.NoError(t, err)
		assert.Equal(t, want, snapshotReferences(snap), doc)
		flags := make([]*eval.Flag, 0, snap.Len())
		for _, k := range snap.Keys() {
			flags = append(flags, snap.Flag(k))
		}
		assert.Equal(t, cohort.Referenced(flags), snapshotReferences(snap), "as decoded")
	}
}
