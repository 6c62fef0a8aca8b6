package eval

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	"github.com/twmb/murmur3"
)

// Result is the variant one flag produced. Metadata is the merged flag,
// segment and variant metadata; it is shared with the Snapshot and must not
// be modified. Value is the variant value as a string (null is "", objects
// are compact JSON); RawValue is the configured JSON value.
type Result struct {
	FlagKey  string
	Key      string
	Value    string
	RawValue any
	Payload  any
	Metadata map[string]any
	// Segment is the index of the segment that decided the variant.
	Segment int
	// Outcome identifies the (flag, segment, variant) within the Snapshot,
	// in [0, Snapshot.Outcomes()).
	Outcome int
}

// Evaluate evaluates the flags named by flagKeys, plus their dependencies,
// or every flag when flagKeys is empty, and appends one Result per flag that
// produced a variant to dst, dependencies before their dependents. Unknown
// keys are ignored. It fails only with a *CycleError, when the requested
// flags depend on a dependency cycle. ctx is not modified.
func (s *Snapshot) Evaluate(ctx *Context, flagKeys []string, dst []Result) ([]Result, error) {
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
			return dst, err
		}
	} else if s.cycle != nil {
		return dst, s.cycle
	}
	if dst == nil {
		dst = make([]Result, 0, len(order))
	}
	for _, i := range order {
		f := &s.flags[i]
		v, seg := e.evaluateFlag(f)
		if v < 0 {
			continue
		}
		variant := f.variants[v]
		meta := f.segments[seg].meta[v]
		e.res[i] = resultSlot{gen: e.gen, variant: variant, meta: meta}
		dst = append(dst, Result{
			FlagKey: f.key, Key: variant.key, Value: variant.valueString, RawValue: variant.value,
			Payload: variant.payload, Metadata: meta, Segment: seg, Outcome: f.segments[seg].outcome + int(v),
		})
	}
	return dst, nil
}

// evaluator is the scratch space of one evaluation, pooled per Snapshot so
// that a warm evaluation allocates nothing but its results. Cached values
// and results are valid only while their gen equals the evaluator's.
type evaluator struct {
	snap    *Snapshot
	ctx     *Context
	ctxCopy Context // the caller's context, copied so it stays on the caller's stack
	gen     uint32
	values  []normValue
	buckets []bucketValue
	res     []resultSlot
	emitted []uint32
	order   []int32
	elems   []elem
	strs    []string
	bytes   []byte
	scratch normValue
}

func newEvaluator(s *Snapshot) any {
	return &evaluator{
		snap:    s,
		values:  make([]normValue, len(s.selectors)),
		buckets: make([]bucketValue, len(s.selectors)),
		res:     make([]resultSlot, len(s.flags)),
		emitted: make([]uint32, len(s.flags)),
	}
}

func (e *evaluator) begin(ctx *Context) {
	e.ctxCopy = *ctx
	e.ctx = &e.ctxCopy
	e.gen++
	if e.gen == 0 { // wrapped: stale stamps could look current
		clear(e.values)
		clear(e.buckets)
		clear(e.res)
		clear(e.emitted)
		e.gen = 1
	}
	e.elems, e.strs, e.bytes = e.elems[:0], e.strs[:0], e.bytes[:0]
}

// end drops references into the caller's context so the pool keeps nothing
// of it alive.
func (e *evaluator) end() {
	e.ctx, e.ctxCopy = nil, Context{}
	clear(e.elems)
	clear(e.strs)
	e.scratch = normValue{}
}

// subsetOrder orders the requested flags and their dependencies the way the
// reference's traversal does: each requested key in turn, dependencies first.
func (e *evaluator) subsetOrder(keys []string) ([]int32, error) {
	e.order = e.order[:0]
	for _, k := range keys {
		i, ok := e.snap.index[k]
		if !ok {
			continue
		}
		if c := e.snap.flags[i].cyclic; c != nil {
			return nil, c
		}
		e.visit(int32(i))
	}
	return e.order, nil
}

func (e *evaluator) visit(i int32) {
	if e.emitted[i] == e.gen {
		return
	}
	e.emitted[i] = e.gen
	for _, d := range e.snap.flags[i].deps {
		e.visit(d)
	}
	e.order = append(e.order, i)
}

// evaluateFlag returns the variant index and segment that decide the flag,
// or -1 when no segment yields a variant.
func (e *evaluator) evaluateFlag(f *compiledFlag) (int32, int) {
	for si := range f.segments {
		seg := &f.segments[si]
		if !e.segmentMatches(seg) {
			continue
		}
		if v := e.bucket(seg); v >= 0 {
			return v, si
		}
	}
	return -1, -1
}

func (e *evaluator) segmentMatches(seg *compiledSegment) bool {
	if seg.always {
		return true
	}
	for _, group := range seg.groups {
		if e.groupMatches(group) {
			return true
		}
	}
	return false
}

func (e *evaluator) groupMatches(group []*compiledCondition) bool {
	for _, c := range group {
		if !e.matches(c) {
			return false
		}
	}
	return true
}

func (e *evaluator) matches(c *compiledCondition) bool {
	if c.cohortAny {
		if hit, ok := e.cohortHit(c); ok {
			return hit == (c.op == opSetContainsAny)
		}
	}
	return c.match(e.value(c.selector))
}

// cohortHit decides "set (does not) contain any" on a lazily enriched
// cohort list by looking up only the condition's values, stopping at the
// first membership: with a list of thousands of members per cohort, each
// lookup is a likely cache miss, and the full list is not needed. ok is
// false when the list is not lazy or is already materialized.
func (e *evaluator) cohortHit(c *compiledCondition) (hit, ok bool) {
	if e.values[c.selector].gen == e.gen {
		return false, false
	}
	sel := &e.snap.selectors[c.selector]
	groupType, member := UserCohorts, ""
	if sel.kind == selUserCohorts {
		member, _, ok = e.ctx.lazyUserCohorts()
	} else {
		groupType = sel.groupType
		member, _, ok = e.ctx.lazyGroupCohorts(groupType)
	}
	if !ok {
		return false, false
	}
	return e.ctx.Cohorts.MemberOfAny(groupType, member, c.values), true
}

// bucket picks the variant of a matched segment: by hash when it has a
// bucket and a bucketing value, otherwise the segment's own variant.
func (e *evaluator) bucket(seg *compiledSegment) int32 {
	b := seg.bucket
	if b == nil {
		return seg.variant
	}
	value, ok := e.bucketValue(b.selector)
	if !ok || value == "" {
		return seg.variant
	}
	h := hashBucket(b.salt, value)
	allocation, distribution := uint64(h%100), uint64(h/100)
	for ai := range b.allocs {
		a := &b.allocs[ai]
		if allocation < a.start || allocation >= a.end {
			continue
		}
		for _, d := range a.dists {
			if distribution >= d.start && distribution < d.end {
				return d.variant
			}
		}
	}
	return seg.variant
}

// hashBucket is murmur3 x86 32-bit, seed 0, of salt + "/" + value, hashed
// from a stack buffer when it fits.
func hashBucket(salt, value string) uint32 {
	var buf [256]byte
	b := append(buf[:0], salt...)
	b = append(b, '/')
	b = append(b, value...)
	return murmur3.Sum32(b)
}

// HashBucket exposes the bucketing hash and its two derived numbers for
// tracing tools: allocation = hash % 100, distribution = hash / 100.
func HashBucket(salt, value string) (hash uint32, allocation, distribution uint64) {
	h := hashBucket(salt, value)
	return h, uint64(h % 100), uint64(h / 100)
}

// value returns the normalized value of a selector, computed at most once per
// evaluation unless it reads flag results.
func (e *evaluator) value(id int32) *normValue {
	sel := &e.snap.selectors[id]
	if sel.dependsOnResults() {
		e.scratch = normValue{}
		e.normalize(&e.scratch, sel.selectResult(e))
		return &e.scratch
	}
	v := &e.values[id]
	if v.gen != e.gen {
		*v = normValue{gen: e.gen}
		e.normalize(v, sel.selectContext(e.ctx))
	}
	return v
}

type bucketValue struct {
	gen uint32
	ok  bool
	s   string
}

func (e *evaluator) bucketValue(id int32) (string, bool) {
	sel := &e.snap.selectors[id]
	if sel.dependsOnResults() {
		return e.bucketString(sel.selectResult(e))
	}
	b := &e.buckets[id]
	if b.gen != e.gen {
		s, ok := e.bucketString(sel.selectContext(e.ctx))
		*b = bucketValue{gen: e.gen, ok: ok, s: s}
	}
	return b.s, b.ok
}

// bucketString is the reference's string form of a bucketing value: arrays
// and objects as JSON text, numbers as %v.
func (e *evaluator) bucketString(r rawValue) (string, bool) {
	switch r.kind {
	case rawString, rawText:
		return r.s, true
	case rawList:
		return jsonText(r.list), true
	case rawAny:
		return e.scalarString(r.a), true
	}
	return "", false
}

// normValue is a selected value ready for matching: null, or elements that
// non-set operators try in turn (one for a scalar), and for lists the list
// itself for set operators.
type normValue struct {
	gen    uint32
	null   bool
	isList bool
	list   []string
	elems  []elem
}

// elem caches the parses an operator may need, so each happens once.
type elem struct {
	s         string
	lower     string
	num       float64
	ver       version
	lowerDone bool
	numState  int8 // 0 unknown, 1 number, -1 not a number
	verState  int8
}

func (x *elem) lowered() string {
	if !x.lowerDone {
		x.lower, x.lowerDone = strings.ToLower(x.s), true
	}
	return x.lower
}

func (x *elem) number() (float64, bool) {
	if x.numState == 0 {
		x.numState = -1
		if looksNumeric(x.s) {
			if f, err := strconv.ParseFloat(x.s, 64); err == nil {
				x.num, x.numState = f, 1
			}
		}
	}
	return x.num, x.numState == 1
}

// looksNumeric rejects most non-numbers before ParseFloat, whose error
// allocates; everything ParseFloat accepts starts like this.
func looksNumeric(s string) bool {
	if s == "" {
		return false
	}
	switch c := s[0]; {
	case '0' <= c && c <= '9', c == '+', c == '-', c == '.', c == 'i', c == 'I', c == 'n', c == 'N':
		return true
	}
	return false
}

func (x *elem) version() (version, bool) {
	if x.verState == 0 {
		x.verState = -1
		if v, ok := parseVersion(x.s); ok {
			x.ver, x.verState = v, 1
		}
	}
	return x.ver, x.verState == 1
}

// normalize applies the reference's coercions: arrays and JSON-array strings
// become lists, other values their string form.
func (e *evaluator) normalize(v *normValue, r rawValue) {
	switch r.kind {
	case rawNull:
		v.null = true
	case rawString:
		if list, ok := jsonStringList(r.s); ok {
			e.setList(v, list)
			return
		}
		e.setScalar(v, r.s)
	case rawText:
		e.setScalar(v, r.s)
	case rawList:
		e.setList(v, r.list)
	case rawAny:
		if arr, ok := r.a.([]any); ok {
			if list := e.stringList(arr); len(list) > 0 {
				e.setList(v, list)
				return
			}
			e.setScalar(v, jsonText(arr))
			return
		}
		if list, ok := e.goTypedList(r.a); ok {
			e.setList(v, list)
			return
		}
		e.setScalar(v, e.scalarString(r.a))
	}
}

func (e *evaluator) setScalar(v *normValue, s string) {
	start := len(e.elems)
	e.elems = append(e.elems, elem{s: s})
	v.elems = e.elems[start:len(e.elems):len(e.elems)]
}

func (e *evaluator) setList(v *normValue, list []string) {
	v.isList, v.list = true, list
	start := len(e.elems)
	for _, s := range list {
		e.elems = append(e.elems, elem{s: s})
	}
	v.elems = e.elems[start:len(e.elems):len(e.elems)]
}

// goTypedList handles slices built in Go rather than decoded from JSON
// ([]string, []int, ...), as the reference's reflection does: a []string is
// a list even when empty; other slices are lists when some element is not
// nil.
func (e *evaluator) goTypedList(x any) ([]string, bool) {
	if l, ok := x.([]string); ok {
		return l, l != nil
	}
	rv := reflect.ValueOf(x)
	if k := rv.Kind(); k != reflect.Slice && k != reflect.Array {
		return nil, false
	}
	start := len(e.strs)
	for i := range rv.Len() {
		if el := rv.Index(i).Interface(); el != nil {
			e.strs = append(e.strs, e.scalarString(el))
		}
	}
	list := e.strs[start:len(e.strs):len(e.strs)]
	return list, len(list) > 0
}

// stringList converts a JSON array's elements, dropping nulls.
func (e *evaluator) stringList(arr []any) []string {
	start := len(e.strs)
	for _, x := range arr {
		if x != nil {
			e.strs = append(e.strs, e.scalarString(x))
		}
	}
	return e.strs[start:len(e.strs):len(e.strs)]
}

// scalarString is the reference's coerceString: %v for scalars, JSON text for
// objects and arrays. Numbers are formatted into the evaluator's byte arena;
// the strings never outlive the evaluation.
func (e *evaluator) scalarString(x any) string {
	switch t := x.(type) {
	case string:
		return t
	case bool:
		if t {
			return "true"
		}
		return "false"
	case float64:
		if len(e.bytes)+32 > cap(e.bytes) {
			e.bytes = make([]byte, 0, max(1024, 2*cap(e.bytes)))
		}
		start := len(e.bytes)
		e.bytes = strconv.AppendFloat(e.bytes, t, 'g', -1, 64)
		return unsafe.String(&e.bytes[start], len(e.bytes)-start)
	}
	return coerceValue(x)
}

// jsonStringList decodes a string holding a JSON array of strings (nulls read
// as ""). Anything else is not a list.
func jsonStringList(s string) ([]string, bool) {
	if len(s) == 0 || s[0] != '[' {
		return nil, false
	}
	var list []string
	if err := json.Unmarshal([]byte(s), &list); err != nil || list == nil {
		return nil, false
	}
	return list, true
}

// resultsJSON is the reference's JSON form of the results so far, for the
// rare selector that reads all of them.
func (e *evaluator) resultsJSON() string {
	type wireVariant struct {
		Key      string         `json:"key,omitempty"`
		Value    any            `json:"value,omitempty"`
		Payload  any            `json:"payload,omitempty"`
		Metadata map[string]any `json:"metadata,omitempty"`
	}
	all := map[string]wireVariant{}
	for i, slot := range e.res {
		if slot.gen == e.gen && slot.variant != nil {
			v := slot.variant
			all[e.snap.flags[i].key] = wireVariant{v.key, v.value, v.payload, slot.meta}
		}
	}
	return jsonText(all)
}
