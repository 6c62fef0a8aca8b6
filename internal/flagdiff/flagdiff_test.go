package flagdiff

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/eval"
)

// base is a flag with every part the diff looks at: two variants, three
// segments (targeted, bucketed, everyone), a dependency and metadata.
const base = `{"key":"banner","metadata":{"flagVersion":7,"deployed":true,"flagType":"experiment"},
 "dependencies":["holdout"],
 "variants":{"on":{"key":"on","value":"on","payload":{"a":1}},"off":{"key":"off","metadata":{"default":true}}},
 "segments":[
  {"metadata":{"segmentName":"Mobile"},"conditions":[[{"selector":["context","user","platform"],"op":"is","values":["iOS"]}]],"variant":"on"},
  {"metadata":{"segmentName":"Half"},"conditions":[[{"selector":["context","user","country"],"op":"is","values":["DE"]}]],
   "bucket":{"selector":["context","user","device_id"],"salt":"s1","allocations":[{"range":[0,100],"distributions":[
     {"variant":"on","range":[0,21474836]},{"variant":"off","range":[21474836,42949673]}]}]},"variant":"off"},
  {"metadata":{"segmentName":"All Other Users"},"variant":"off"}]}`

// flag decodes one flag, after edit has changed its generic JSON form.
func flag(t *testing.T, edit func(m map[string]any)) *eval.Flag {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(base), &m))
	if edit != nil {
		edit(m)
	}
	data, err := json.Marshal([]any{m})
	require.NoError(t, err)
	flags, err := eval.DecodeFlags(data)
	require.NoError(t, err)
	return flags[0]
}

func segs(m map[string]any) []any { return m["segments"].([]any) }
func seg(m map[string]any, i int) map[string]any {
	return segs(m)[i].(map[string]any)
}
func bucket(m map[string]any, i int) map[string]any { return seg(m, i)["bucket"].(map[string]any) }
func dists(m map[string]any, i int) []any {
	return bucket(m, i)["allocations"].([]any)[0].(map[string]any)["distributions"].([]any)
}

func TestCompareSameIsNothing(t *testing.T) {
	assert.Nil(t, CompareFlag(flag(t, nil), flag(t, nil)))
	r := Compare([]*eval.Flag{flag(t, nil)}, []*eval.Flag{flag(t, nil)})
	assert.False(t, r.HasChanges())
	assert.Equal(t, Summary{Unchanged: 1, Before: 1, After: 1}, r.Summary)
}

func TestCompareAddedRemovedFlags(t *testing.T) {
	other := flag(t, func(m map[string]any) { m["key"] = "other" })
	r := Compare([]*eval.Flag{flag(t, nil), nil}, []*eval.Flag{other})
	require.Len(t, r.Flags, 2)
	assert.Equal(t, Summary{Added: 1, Removed: 1, Before: 1, After: 1}, r.Summary)
	removed, added := r.Flags[0], r.Flags[1]
	assert.Equal(t, "banner", removed.Key)
	assert.Equal(t, Removed, removed.Change)
	assert.Equal(t, "v7", removed.From)
	assert.Empty(t, removed.To)
	assert.Equal(t, "other", added.Key)
	assert.Equal(t, Added, added.Change)
	assert.Equal(t, "v7", added.To)
	// An added flag is every part added.
	assert.Len(t, added.Variants, 2)
	for _, v := range added.Variants {
		assert.Equal(t, Added, v.Change)
	}
	require.Len(t, added.Segments, 3)
	assert.Equal(t, Added, added.Segments[1].Change)
	assert.Equal(t, ptr(1), added.Segments[1].To)
	assert.Equal(t, []*Share{{Variant: "off", To: 50, Delta: 50}, {Variant: "on", To: 50, Delta: 50}}, added.Segments[1].Shares)
	assert.Equal(t, &ListChange{Added: []string{"holdout"}}, added.Dependencies)
}

func TestCompareVariants(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) {
		vs := m["variants"].(map[string]any)
		vs["on"].(map[string]any)["value"] = "ON"
		vs["on"].(map[string]any)["payload"] = map[string]any{"a": 2}
		vs["off"].(map[string]any)["metadata"] = map[string]any{"default": false}
		vs["beta"] = map[string]any{"key": "beta", "value": "beta"}
	}))
	require.NotNil(t, d)
	assert.Equal(t, Changed, d.Change)
	assert.Equal(t, []*VariantChange{
		{Key: "beta", Change: Added, Value: &ValueChange{To: "beta"}},
		{Key: "off", Change: Changed, Metadata: []*ValueChange{{Key: "default", From: true, To: false}}},
		{Key: "on", Change: Changed, Value: &ValueChange{From: "on", To: "ON"},
			Payload: &ValueChange{From: map[string]any{"a": float64(1)}, To: map[string]any{"a": float64(2)}}},
	}, d.Variants)
	assert.Nil(t, d.Segments)
	assert.Equal(t, []string{"variant beta added", "variant off changed: metadata", `variant on changed: value "on" → "ON", payload`}, d.Phrases())

	d = CompareFlag(flag(t, nil), flag(t, func(m map[string]any) { delete(m["variants"].(map[string]any), "on") }))
	require.NotNil(t, d)
	require.Len(t, d.Variants, 1)
	assert.Equal(t, Removed, d.Variants[0].Change)
	assert.Equal(t, &ValueChange{From: "on"}, d.Variants[0].Value)
}

func TestCompareSegmentMovedNotChanged(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) {
		s := segs(m)
		s[0], s[1] = s[1], s[0]
	}))
	require.NotNil(t, d)
	// One segment moved past the other: one move, not two changes.
	require.Len(t, d.Segments, 1)
	s := d.Segments[0]
	assert.Equal(t, Moved, s.Change)
	assert.True(t, s.Moved)
	assert.Nil(t, s.Conditions)
	assert.Nil(t, s.Bucket)
	assert.Equal(t, [2]*int{ptr(1), ptr(0)}, [2]*int{s.From, s.To}, "Half moved from 1 to 0")
	assert.Equal(t, "Half", s.Name)
	assert.Equal(t, []string{`segment "Half" moved 1 → 0`}, d.Phrases())
}

func TestCompareSegmentAddedRemoved(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) {
		s := segs(m)
		added := map[string]any{"conditions": []any{[]any{map[string]any{"selector": []any{"context", "user", "plan"}, "op": "is", "values": []any{"pro"}}}}, "variant": "on"}
		m["segments"] = []any{added, s[1], s[2]} // Mobile removed, one without a name added first
	}))
	require.NotNil(t, d)
	require.Len(t, d.Segments, 2)
	rem, add := d.Segments[0], d.Segments[1] // a removed one where it was, before what took its place
	assert.Equal(t, Added, add.Change)
	assert.Equal(t, ptr(0), add.To)
	assert.Equal(t, "segment 0", add.Title())
	assert.Equal(t, []*ConditionChange{{Change: Added, Group: 0, Condition: `context.user.plan is ["pro"]`}}, add.Conditions)
	assert.Equal(t, &ValueChange{From: nil, To: "on"}, add.Variant)
	assert.Equal(t, Removed, rem.Change)
	assert.Equal(t, ptr(0), rem.From)
	assert.Equal(t, "Mobile", rem.Name)
	assert.False(t, rem.Moved)
}

func TestCompareSegmentConditionChanged(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) {
		c := seg(m, 0)["conditions"].([]any)
		c[0].([]any)[0].(map[string]any)["values"] = []any{"iOS", "Android"}
		// A second OR-group.
		seg(m, 0)["conditions"] = append(c, []any{map[string]any{"selector": []any{"context", "user", "country"}, "op": "is not", "values": []any{"FR"}}})
		seg(m, 0)["metadata"].(map[string]any)["note"] = "x"
	}))
	require.NotNil(t, d)
	require.Len(t, d.Segments, 1)
	s := d.Segments[0]
	assert.Equal(t, Changed, s.Change)
	assert.Equal(t, [2]*int{ptr(0), ptr(0)}, [2]*int{s.From, s.To})
	assert.Equal(t, []*ConditionChange{
		{Change: Removed, Group: 0, Condition: `context.user.platform is ["iOS"]`},
		{Change: Added, Group: 0, Condition: `context.user.platform is ["iOS","Android"]`},
		{Change: Added, Group: 1, Condition: `context.user.country is not ["FR"]`},
	}, s.Conditions)
	assert.Equal(t, []*ValueChange{{Key: "note", To: "x"}}, s.Metadata)
	assert.Nil(t, s.Shares, "not bucketed: no shares")
	assert.Equal(t, []string{`segment "Mobile" targeting`, `segment "Mobile" metadata`}, d.Phrases())
}

func TestCompareConditionsEveryoneAndNobody(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) { seg(m, 2)["conditions"] = []any{} }))
	require.NotNil(t, d)
	require.Len(t, d.Segments, 1)
	assert.Equal(t, []*ConditionChange{{Change: Removed, Group: 0, Condition: "(everyone)"}}, d.Segments[0].Conditions)
}

func TestCompareAllocationShares(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) {
		ds := dists(m, 1)
		ds[0].(map[string]any)["range"] = []any{0, 30064771} // on: 70%
		ds[1].(map[string]any)["range"] = []any{30064771, 42949673}
		bucket(m, 1)["allocations"].([]any)[0].(map[string]any)["range"] = []any{0, 50}
	}))
	require.NotNil(t, d)
	require.Len(t, d.Segments, 1)
	s := d.Segments[0]
	assert.False(t, d.Rebuckets)
	require.NotNil(t, s.Bucket)
	assert.Nil(t, s.Bucket.Salt)
	assert.Nil(t, s.Bucket.Selector)
	assert.Equal(t, &ValueChange{From: "0-100%: on 50%, off 50%", To: "0-50%: on 70%, off 30%"}, s.Bucket.Allocations)
	// Half the users are allocated now: 35% on, 15% off, and the other
	// half gets the segment's variant, off.
	assert.Equal(t, []*Share{
		{Variant: "off", From: 50, To: 65, Delta: 15},
		{Variant: "on", From: 50, To: 35, Delta: -15},
	}, s.Shares)
	assert.Equal(t, []string{`segment "Half" allocation: off +15 pp, on -15 pp`}, d.Phrases())
}

func TestCompareSaltRebuckets(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) { bucket(m, 1)["salt"] = "s2" }))
	require.NotNil(t, d)
	assert.True(t, d.Rebuckets)
	s := d.Segments[0]
	assert.Equal(t, &BucketChange{Salt: &ValueChange{From: "s1", To: "s2"}, Rebuckets: true}, s.Bucket)
	assert.Nil(t, s.Shares, "the same shares, other users")
	assert.Equal(t, []string{`salt changed: segment "Half" re-buckets everyone`}, d.Phrases())

	d = CompareFlag(flag(t, nil), flag(t, func(m map[string]any) { bucket(m, 1)["selector"] = []any{"context", "user", "user_id"} }))
	require.NotNil(t, d)
	assert.True(t, d.Rebuckets)
	assert.Equal(t, &ValueChange{From: "context.user.device_id", To: "context.user.user_id"}, d.Segments[0].Bucket.Selector)
	assert.Equal(t, []string{`bucketing selector changed: segment "Half" re-buckets everyone`}, d.Phrases())
}

func TestCompareSegmentVariant(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) { seg(m, 2)["variant"] = "on" }))
	require.NotNil(t, d)
	assert.Equal(t, &ValueChange{From: "off", To: "on"}, d.Segments[0].Variant)
	assert.Equal(t, []string{`segment "All Other Users" variant off → on`}, d.Phrases())
}

func TestCompareDependenciesAndMetadata(t *testing.T) {
	d := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) {
		m["dependencies"] = []any{"gate"}
		md := m["metadata"].(map[string]any)
		md["flagVersion"], md["deployed"] = 8, false
		delete(md, "flagType")
	}))
	require.NotNil(t, d)
	assert.Equal(t, [2]string{"v7", "v8"}, [2]string{d.From, d.To})
	assert.Equal(t, &ListChange{Added: []string{"gate"}, Removed: []string{"holdout"}}, d.Dependencies)
	assert.Equal(t, []*ValueChange{
		{Key: "deployed", From: true, To: false},
		{Key: "flagType", From: "experiment"},
		{Key: "flagVersion", From: float64(7), To: float64(8)},
	}, d.Metadata)
	assert.Equal(t, []string{"dependencies +gate -holdout", "deployed true → false", `flagType "experiment" → (none)`}, d.Phrases())
}

func TestSharesOverlappingAllocations(t *testing.T) {
	// The engine takes the first allocation and distribution that hold the
	// user's numbers: [0,60) on 1/3, then [40,100) on all. Below 40 only
	// the first applies (1/3 on), 40-60 the first then the second (all on,
	// as the first's miss falls through), 60-100 the second.
	s := &eval.Segment{Variant: "off", Bucket: &eval.Bucket{Allocations: []*eval.Allocation{
		{Range: []uint64{0, 60}, Distributions: []*eval.Distribution{{Variant: "on", Range: []uint64{0, 14316558}}}},
		{Range: []uint64{40, 100}, Distributions: []*eval.Distribution{{Variant: "on", Range: []uint64{0, 42949673}}}},
	}}}
	sh := Shares(s, map[string]*eval.Variant{"on": {Key: "on"}, "off": {Key: "off"}})
	assert.InDelta(t, 0.40/3+0.60, sh["on"], 1e-6)
	assert.InDelta(t, 0.40*2/3, sh["off"], 1e-6)
}

func TestMovedPairsInsertionMovesNothing(t *testing.T) {
	assert.Equal(t, []bool{false, false, false}, movedPairs([][2]int{{0, 1}, {1, 2}, {2, 3}}))
	assert.Equal(t, []bool{true, false, false}, movedPairs([][2]int{{0, 2}, {1, 0}, {2, 1}}))
}

// FuzzCompare: any two flag documents the decoder accepts compare without
// a panic, a document compared with itself has no changes, and one
// compared with nothing is every flag added.
func FuzzCompare(f *testing.F) {
	f.Add([]byte("["+base+"]"), []byte(`[{"key":"banner","segments":[{"variant":"on"}]}]`))
	f.Add([]byte(`[{"key":"a","segments":[{"conditions":[],"bucket":{"allocations":[{"range":[5,1],"distributions":[{"range":[9,99999999999]}]}]}}]}]`),
		[]byte(`[{"key":"a","segments":[{"bucket":{"salt":"x"}},null]}]`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		fa, err1 := eval.DecodeFlags(a)
		fb, err2 := eval.DecodeFlags(b)
		if err1 != nil || err2 != nil {
			return
		}
		r := Compare(fa, fb)
		for _, d := range r.Flags {
			_ = d.Phrases()
		}
		if self := Compare(fa, fa); self.HasChanges() {
			t.Fatalf("a document differs from itself: %+v", self.Flags[0])
		}
		if r := Compare(nil, fb); r.Summary.Added != r.Summary.After {
			t.Fatalf("%d of %d flags added", r.Summary.Added, r.Summary.After)
		}
	})
}

// Two variants that trade ranges keep their widths, so the allocation text
// and the shares read the same, yet every bucketed user changes variant:
// the diff must say the allocations changed, with the ranges that differ.
func TestCompareSwappedRangesIsAChange(t *testing.T) {
	swapped := flag(t, func(m map[string]any) {
		ds := dists(m, 1)
		on, off := ds[0].(map[string]any), ds[1].(map[string]any)
		on["range"], off["range"] = off["range"], on["range"]
	})
	d := CompareFlag(flag(t, nil), swapped)
	require.NotNil(t, d, "every bucketed user of segment 1 changes variant")
	require.Len(t, d.Segments, 1)
	b := d.Segments[0].Bucket
	require.NotNil(t, b)
	assert.Equal(t, &ValueChange{
		From: "0-100%: on [0, 21474836), off [21474836, 42949673)",
		To:   "0-100%: on [21474836, 42949673), off [0, 21474836)"}, b.Allocations)
	assert.False(t, b.Rebuckets)
}

// Distributions listed in another order, or a range written beyond the
// hash space, send every hash where they did: no change.
func TestCompareReorderedRangesIsNothing(t *testing.T) {
	reordered := flag(t, func(m map[string]any) {
		ds := dists(m, 1)
		ds[0], ds[1] = ds[1], ds[0]
		ds[0].(map[string]any)["range"] = []any{21474836, 99999999999}
	})
	assert.Nil(t, CompareFlag(flag(t, nil), reordered))
}

// An added segment reads as every part added, its bucket too: the salt,
// selector and allocations it brings (a removed one likewise, taken
// away). Nobody was hashed before, so nobody is re-bucketed.
func TestCompareAddedSegmentShowsItsBucket(t *testing.T) {
	d := CompareFlag(flag(t, func(m map[string]any) { m["segments"] = append(segs(m)[:1], segs(m)[2]) }), flag(t, nil))
	require.NotNil(t, d)
	require.Len(t, d.Segments, 1)
	s := d.Segments[0]
	assert.Equal(t, Added, s.Change)
	assert.Equal(t, &BucketChange{
		Selector:    &ValueChange{From: nil, To: "context.user.device_id"},
		Salt:        &ValueChange{From: nil, To: "s1"},
		Allocations: &ValueChange{From: nil, To: "0-100%: on 50%, off 50%"},
	}, s.Bucket)
	assert.False(t, d.Rebuckets)

	r := CompareFlag(flag(t, nil), flag(t, func(m map[string]any) { m["segments"] = append(segs(m)[:1], segs(m)[2]) }))
	require.NotNil(t, r)
	require.Len(t, r.Segments, 1)
	assert.Equal(t, Removed, r.Segments[0].Change)
	require.NotNil(t, r.Segments[0].Bucket)
	assert.Equal(t, &ValueChange{From: "s1", To: nil}, r.Segments[0].Bucket.Salt)
}
