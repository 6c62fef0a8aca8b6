package flagdiff

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/eval"
)

// Every operator takes its values as a set (any of them matches), so
// values listed in another order, or twice, mean the same condition.
func TestCompareReorderedValuesIsNothing(t *testing.T) {
	old := flag(t, func(m map[string]any) {
		seg(m, 0)["conditions"] = []any{[]any{map[string]any{"selector": []any{"context", "user", "platform"}, "op": "is", "values": []any{"iOS", "Android"}}}}
	})
	reordered := flag(t, func(m map[string]any) {
		seg(m, 0)["conditions"] = []any{[]any{map[string]any{"selector": []any{"context", "user", "platform"}, "op": "is", "values": []any{"Android", "iOS", "iOS"}}}}
	})
	assert.Nil(t, CompareFlag(old, reordered))

	// A real change shows each side's values as written.
	edited := flag(t, func(m map[string]any) {
		seg(m, 0)["conditions"] = []any{[]any{map[string]any{"selector": []any{"context", "user", "platform"}, "op": "is", "values": []any{"Web", "Android"}}}}
	})
	d := CompareFlag(old, edited)
	require.NotNil(t, d)
	require.Len(t, d.Segments, 1)
	assert.Equal(t, []*ConditionChange{
		{Change: Removed, Group: 0, Condition: `context.user.platform is ["iOS","Android"]`},
		{Change: Added, Group: 0, Condition: `context.user.platform is ["Web","Android"]`},
	}, d.Segments[0].Conditions)
}

// An empty AND-group holds for everybody, as absent conditions do: the
// two spellings are the same targeting.
func TestCompareEmptyGroupIsEveryone(t *testing.T) {
	old := flag(t, func(m map[string]any) { delete(seg(m, 2), "conditions") })
	same := flag(t, func(m map[string]any) { seg(m, 2)["conditions"] = []any{[]any{}} })
	assert.Nil(t, CompareFlag(old, same))
}

// Conditions and values read as written: JSON without HTML escapes, so a
// carrier "AT&T" is not shown as "AT\u0026T".
func TestTextsKeepHTMLCharacters(t *testing.T) {
	c := &eval.Condition{Selector: []string{"context", "user", "carrier"}, Op: "is", Values: []string{"AT&T", "<x>"}}
	assert.Equal(t, `context.user.carrier is ["AT&T","<x>"]`, ConditionText(c))
	assert.Equal(t, `"a&b<c>"`, ScalarText("a&b<c>"))
}

// A variant removed while a distribution still names it: the engine skips
// what names a missing variant, so those users fall through, and the
// shares say so rather than keep the gone variant's half.
func TestSharesOfARemovedVariantFallThrough(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) {
		delete(m["variants"].(map[string]any), "off")
	}))
	require.NotNil(t, d)
	var half *SegmentChange
	for _, s := range d.Segments {
		if s.Name == "Half" {
			half = s
		}
	}
	require.NotNil(t, half, "segment Half's users who got off now fall through")
	assert.Equal(t, []*Share{
		{Variant: "", From: 0, To: 50, Delta: 50},
		{Variant: "off", From: 50, To: 0, Delta: -50},
		{Variant: "on", From: 50, To: 50, Delta: 0},
	}, half.Shares)
}

// A variant's own "key" is what evaluation returns: changing it changes
// what every user of the variant gets, even with the same map key.
func TestCompareVariantServedKey(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) {
		m["variants"].(map[string]any)["on"].(map[string]any)["key"] = "ON"
	}))
	require.NotNil(t, d)
	require.Len(t, d.Variants, 1)
	assert.Equal(t, &ValueChange{From: "on", To: "ON"}, d.Variants[0].ServedKey)
	assert.Equal(t, []string{`variant on changed: served key "on" → "ON"`}, d.Phrases())
}
