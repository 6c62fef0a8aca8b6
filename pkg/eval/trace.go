package eval

// The trace explains an evaluation: every segment tried, every condition
// with the value the user had, the bucketing arithmetic. It runs on its own
// path (Explain), so Evaluate pays nothing for it; a property test checks
// that both paths always pick the same variant.

// Trace is the explanation of one evaluation, flags in evaluation order.
// Its JSON form is a stable schema: fields may be added, never renamed.
type Trace struct {
	Flags []FlagTrace `json:"flags"`
}

// FlagTrace explains one flag.
type FlagTrace struct {
	Key          string            `json:"flag"`
	Dependencies []DependencyTrace `json:"dependencies"`
	Segments     []SegmentTrace    `json:"segments"`
	// Result is nil when no segment yielded a variant; Reason then says why.
	Result *Result `json:"-"`
	// Variant is the chosen variant key, "" with Absent when none.
	Variant  string         `json:"variant"`
	Value    string         `json:"value"`
	Payload  any            `json:"payload"`
	Absent   bool           `json:"absent"`
	Segment  int            `json:"segment"` // deciding segment index, -1 when absent
	Metadata map[string]any `json:"metadata"`
	Reason   Reason         `json:"reason"`
}

// Reason says in a few words why a flag got its result, or none.
type Reason string

const (
	// ReasonMatched: a segment matched and named the variant.
	ReasonMatched Reason = "segment matched"
	// ReasonBucketed: a segment matched and the variant came from hashing
	// the bucketing value.
	ReasonBucketed Reason = "segment matched and bucketed"
	// ReasonNoSegments: the flag has nothing that could give a variant.
	ReasonNoSegments Reason = "the flag has no segments"
	// ReasonMissingVariants: segments matched, but each picked a variant
	// the flag does not have.
	ReasonMissingVariants Reason = "every matching segment names a variant that does not exist"
	// ReasonNoMatch: no segment matched the user.
	ReasonNoMatch Reason = "no segment matched"
)

// DependencyTrace is a dependency's result as the flag saw it.
type DependencyTrace struct {
	Key     string `json:"flag"`
	Variant string `json:"variant"`
	Absent  bool   `json:"absent"`
	Missing bool   `json:"missing"` // not in the config at all
}

// SegmentTrace explains one segment. Reached is false for segments after
// the deciding one, which the engine never looks at.
type SegmentTrace struct {
	Index   int    `json:"index"`
	Name    string `json:"name"`
	Reached bool   `json:"reached"`
	// Always is true when the segment has no conditions (everyone matches).
	Always     bool               `json:"always"`
	Conditions [][]ConditionTrace `json:"conditions"`
	Matched    bool               `json:"matched"`
	Bucket     *BucketTrace       `json:"bucket"`
	// Variant is the key the segment picked; VariantMissing when it is not
	// among the flag's variants, so evaluation went on to the next segment.
	Variant        string `json:"variant"`
	VariantMissing bool   `json:"variant_missing"`
}

// ConditionTrace is one condition with the user's value after coercion.
type ConditionTrace struct {
	Selector []string `json:"selector"`
	Op       string   `json:"op"`
	Values   []string `json:"values"`
	// Absent is true when the selected value is null; otherwise Value is
	// its string form, and List its elements when it is a list.
	Absent          bool     `json:"absent"`
	Value           string   `json:"value"`
	List            []string `json:"list"`
	Matched         bool     `json:"matched"`
	UnknownOperator bool     `json:"unknown_operator"`
}

// BucketTrace is the bucketing arithmetic of a matched segment.
type BucketTrace struct {
	Selector []string `json:"selector"`
	// Absent is true when there is no bucketing value (null or ""): the
	// segment's own variant is used without hashing.
	Absent       bool   `json:"absent"`
	Value        string `json:"value"`
	Salt         string `json:"salt"`
	Hashed       string `json:"hashed"` // salt + "/" + value
	Hash         uint32 `json:"hash"`
	Allocation   uint64 `json:"allocation"`   // hash % 100
	Distribution uint64 `json:"distribution"` // hash / 100
	// AllocationIndex and DistributionIndex are -1 when nothing matched.
	AllocationIndex   int       `json:"allocation_index"`
	AllocationRange   [2]uint64 `json:"allocation_range"`
	DistributionIndex int       `json:"distribution_index"`
	DistributionRange [2]uint64 `json:"distribution_range"`
	Variant           string    `json:"variant"`
}

// Explain evaluates like Evaluate and records why each flag got its result.
func (s *Snapshot) Explain(ctx *Context, flagKeys []string) (*Trace, error) {
	if ctx == nil {
		ctx = &Context{}
	}
	e := s.pool.Get().(*evaluator)
	defer s.pool.Put(e)
	e.begin()
	order := s.order
	if len(flagKeys) > 0 {
		var err error
		if order, err = e.subsetOrder(flagKeys); err != nil {
			return nil, err
		}
		order = append([]int32(nil), order...)
	} else if s.cycle != nil {
		return nil, s.cycle
	}
	t := &Trace{Flags: make([]FlagTrace, 0, len(order))}
	for _, i := range order {
		t.Flags = append(t.Flags, e.traceFlag(ctx, int(i)))
	}
	return t, nil
}

func (e *evaluator) traceFlag(ctx *Context, i int) FlagTrace {
	s := e.snap
	f := &s.flags[i]
	src := s.source(i)
	ft := FlagTrace{Key: f.key, Segment: -1, Dependencies: []DependencyTrace{}, Segments: []SegmentTrace{}}
	for _, d := range src.Dependencies {
		ft.Dependencies = append(ft.Dependencies, e.traceDependency(d))
	}
	v := int32(-1)
	for si := range f.segs.len() {
		var st SegmentTrace
		st, v = e.traceSegment(ctx, f, src.Segments[si], si)
		ft.Segments = append(ft.Segments, st)
		if v >= 0 {
			ft.Segment = si
			break
		}
	}
	for si := len(ft.Segments); si < f.segs.len(); si++ {
		ft.Segments = append(ft.Segments, SegmentTrace{Index: si, Name: segmentName(src.Segments[si]), Conditions: [][]ConditionTrace{}})
	}
	if ft.Segment < 0 {
		ft.Absent = true
		ft.Reason = absentReason(ft.Segments)
		return ft
	}
	si := int32(f.segs.start) + int32(ft.Segment)
	e.res[i] = resultSlot{gen: e.gen, variant: v, segment: si}
	var r Result
	s.fill(&r, f, v, si)
	ft.Variant, ft.Value, ft.Payload, ft.Metadata, ft.Result = r.Key, r.Value, r.Payload, r.Metadata, &r
	ft.Reason = ReasonMatched
	if b := ft.Segments[ft.Segment].Bucket; b != nil && !b.Absent {
		ft.Reason = ReasonBucketed
	}
	return ft
}

func (e *evaluator) traceDependency(key string) DependencyTrace {
	i, ok := e.snap.index[key]
	if !ok {
		return DependencyTrace{Key: key, Absent: true, Missing: true}
	}
	slot := e.res[i]
	if slot.gen != e.gen {
		return DependencyTrace{Key: key, Absent: true}
	}
	f := &e.snap.flags[i]
	return DependencyTrace{Key: key, Variant: e.snap.variants[f.variants+uint32(slot.variant)].key}
}

// traceSegment explains segment si of flag f; src is its configuration,
// whose conditions the compiled ones follow one for one. It returns the
// variant the segment yields (an index among the flag's), -1 for none.
func (e *evaluator) traceSegment(ctx *Context, f *flagRec, src *Segment, si int) (SegmentTrace, int32) {
	s := e.snap
	seg := &s.segments[int(f.segs.start)+si]
	st := SegmentTrace{Index: si, Name: segmentName(src), Reached: true, Always: src.Conditions == nil, Conditions: [][]ConditionTrace{}}
	st.Matched = st.Always
	k := seg.conds.start
	for _, group := range src.Conditions {
		groupTrace := make([]ConditionTrace, len(group))
		all := true
		for ci, cond := range group {
			groupTrace[ci] = e.traceCondition(ctx, &s.conds[k], cond)
			all = all && groupTrace[ci].Matched
			k++
		}
		st.Conditions = append(st.Conditions, groupTrace)
		st.Matched = st.Matched || all
	}
	if !st.Matched {
		return st, -1
	}
	if seg.bucket >= 0 {
		st.Bucket = e.traceBucket(ctx, &s.buckets[seg.bucket], src.Bucket)
	}
	v := e.bucket(ctx, seg)
	if v < 0 {
		st.VariantMissing = true
		st.Variant = src.Variant
		if st.Bucket != nil && st.Bucket.Variant != "" {
			st.Variant = st.Bucket.Variant
		}
		return st, -1
	}
	st.Variant = s.variants[f.variants+uint32(v)].key
	return st, v
}

func segmentName(s *Segment) string {
	name, _ := s.Metadata["segmentName"].(string)
	return name
}

func (e *evaluator) traceCondition(ctx *Context, c *condRec, src *Condition) ConditionTrace {
	v := e.value(ctx, c.sel)
	ct := ConditionTrace{Selector: nonNil(src.Selector), Op: src.Op, Values: nonNil(src.Values), Absent: v.null,
		Matched: e.snap.match(c, v, &e.text), UnknownOperator: c.op == opUnknown}
	if v.isList {
		ct.List = append([]string{}, v.list...)
		ct.Value = jsonText(ct.List)
	} else if len(v.elems) == 1 {
		ct.Value = v.elems[0].s
	}
	return ct
}

func (e *evaluator) traceBucket(ctx *Context, b *bucketRec, src *Bucket) *BucketTrace {
	bt := &BucketTrace{Selector: nonNil(src.Selector), Salt: src.Salt, AllocationIndex: -1, DistributionIndex: -1}
	value, ok := e.bucketValue(ctx, b.selector)
	if !ok || value == "" {
		bt.Absent = true
		return bt
	}
	bt.Value = value
	bt.Hashed = src.Salt + "/" + value
	bt.Hash, bt.Allocation, bt.Distribution = HashBucket(src.Salt, value)
	for ai, a := range src.Allocations { // the ranges as configured, not saturated
		if bt.Allocation < a.Range[0] || bt.Allocation >= a.Range[1] {
			continue
		}
		for di, d := range a.Distributions {
			if bt.Distribution >= d.Range[0] && bt.Distribution < d.Range[1] {
				bt.AllocationIndex, bt.AllocationRange = ai, [2]uint64{a.Range[0], a.Range[1]}
				bt.DistributionIndex, bt.DistributionRange = di, [2]uint64{d.Range[0], d.Range[1]}
				bt.Variant = d.Variant
				return bt
			}
		}
	}
	return bt
}

func absentReason(segments []SegmentTrace) Reason {
	if len(segments) == 0 {
		return ReasonNoSegments
	}
	for _, s := range segments {
		if s.Matched {
			return ReasonMissingVariants
		}
	}
	return ReasonNoMatch
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
