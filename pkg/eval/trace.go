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
	Reason   string         `json:"reason"`
}

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
	e.begin(ctx)
	defer e.end()
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
		t.Flags = append(t.Flags, e.traceFlag(int(i)))
	}
	return t, nil
}

func (e *evaluator) traceFlag(i int) FlagTrace {
	f := &e.snap.flags[i]
	ft := FlagTrace{Key: f.key, Segment: -1, Dependencies: []DependencyTrace{}, Segments: []SegmentTrace{}}
	for _, d := range f.src.Dependencies {
		ft.Dependencies = append(ft.Dependencies, e.traceDependency(d))
	}
	for si := range f.segments {
		st := e.traceSegment(f, si)
		ft.Segments = append(ft.Segments, st)
		if st.Matched && !st.VariantMissing {
			ft.Segment = si
		}
		if ft.Segment >= 0 {
			break
		}
	}
	for si := len(ft.Segments); si < len(f.segments); si++ {
		ft.Segments = append(ft.Segments, SegmentTrace{Index: si, Name: segmentName(f.src.Segments[si]), Conditions: [][]ConditionTrace{}})
	}
	if ft.Segment < 0 {
		ft.Absent = true
		ft.Reason = absentReason(ft.Segments)
		return ft
	}
	v := e.segmentVariant(f, ft.Segment)
	variant, meta := f.variants[v], f.segments[ft.Segment].meta[v]
	e.res[i] = resultSlot{gen: e.gen, variant: variant, meta: meta}
	ft.Variant, ft.Value, ft.Payload, ft.Metadata = variant.key, variant.valueString, variant.payload, meta
	ft.Result = &Result{FlagKey: f.key, Key: variant.key, Value: variant.valueString, RawValue: variant.value,
		Payload: variant.payload, Metadata: meta, Segment: ft.Segment, Outcome: f.segments[ft.Segment].outcome + int(v)}
	ft.Reason = "segment matched"
	if ft.Segments[ft.Segment].Bucket != nil && !ft.Segments[ft.Segment].Bucket.Absent {
		ft.Reason = "segment matched and bucketed"
	}
	return ft
}

// segmentVariant re-derives the variant index of a segment that decided.
func (e *evaluator) segmentVariant(f *compiledFlag, si int) int32 {
	return e.bucket(&f.segments[si])
}

func (e *evaluator) traceDependency(key string) DependencyTrace {
	i, ok := e.snap.index[key]
	if !ok {
		return DependencyTrace{Key: key, Absent: true, Missing: true}
	}
	slot := e.res[i]
	if slot.gen != e.gen || slot.variant == nil {
		return DependencyTrace{Key: key, Absent: true}
	}
	return DependencyTrace{Key: key, Variant: slot.variant.key}
}

func (e *evaluator) traceSegment(f *compiledFlag, si int) SegmentTrace {
	seg := &f.segments[si]
	src := f.src.Segments[si]
	st := SegmentTrace{Index: si, Name: segmentName(src), Reached: true, Always: seg.always, Conditions: [][]ConditionTrace{}}
	st.Matched = seg.always
	for gi, group := range seg.groups {
		groupTrace := make([]ConditionTrace, len(group))
		all := true
		for ci, c := range group {
			groupTrace[ci] = e.traceCondition(c, src.Conditions[gi][ci])
			all = all && groupTrace[ci].Matched
		}
		st.Conditions = append(st.Conditions, groupTrace)
		st.Matched = st.Matched || all
	}
	if !st.Matched {
		return st
	}
	if seg.bucket != nil {
		st.Bucket = e.traceBucket(seg, src.Bucket)
	}
	v := e.bucket(seg)
	if v < 0 {
		st.VariantMissing = true
		st.Variant = src.Variant
		if st.Bucket != nil && st.Bucket.Variant != "" {
			st.Variant = st.Bucket.Variant
		}
		return st
	}
	st.Variant = f.variants[v].key
	return st
}

func segmentName(s *Segment) string {
	name, _ := s.Metadata["segmentName"].(string)
	return name
}

func (e *evaluator) traceCondition(c *compiledCondition, src *Condition) ConditionTrace {
	v := e.value(c.selector)
	ct := ConditionTrace{Selector: nonNil(src.Selector), Op: src.Op, Values: nonNil(src.Values), Absent: v.null,
		Matched: c.match(v), UnknownOperator: c.op == opUnknown}
	if v.isList {
		ct.List = append([]string{}, v.list...)
		ct.Value = jsonText(ct.List)
	} else if len(v.elems) == 1 {
		ct.Value = v.elems[0].s
	}
	return ct
}

func (e *evaluator) traceBucket(seg *compiledSegment, src *Bucket) *BucketTrace {
	b := seg.bucket
	bt := &BucketTrace{Selector: nonNil(src.Selector), Salt: b.salt, AllocationIndex: -1, DistributionIndex: -1}
	value, ok := e.bucketValue(b.selector)
	if !ok || value == "" {
		bt.Absent = true
		return bt
	}
	bt.Value = value
	bt.Hashed = b.salt + "/" + value
	bt.Hash, bt.Allocation, bt.Distribution = HashBucket(b.salt, value)
	for ai, a := range b.allocs {
		if bt.Allocation < a.start || bt.Allocation >= a.end {
			continue
		}
		for di, d := range a.dists {
			if bt.Distribution >= d.start && bt.Distribution < d.end {
				bt.AllocationIndex, bt.AllocationRange = ai, [2]uint64{a.start, a.end}
				bt.DistributionIndex, bt.DistributionRange = di, [2]uint64{d.start, d.end}
				bt.Variant = src.Allocations[ai].Distributions[di].Variant
				return bt
			}
		}
	}
	return bt
}

func absentReason(segments []SegmentTrace) string {
	if len(segments) == 0 {
		return "the flag has no segments"
	}
	for _, s := range segments {
		if s.Matched {
			return "every matching segment names a variant that does not exist"
		}
	}
	return "no segment matched"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
