package eval

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
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
	e.begin()
	order := s.order
	if len(flagKeys) > 0 {
		var err error
		if order, err = e.subsetOrder(flagKeys); err != nil {
			s.pool.Put(e)
			return dst, err
		}
	} else if s.cycle != nil {
		s.pool.Put(e)
		return dst, s.cycle
	}
	if dst == nil {
		dst = make([]Result, 0, len(order))
	}
	keep := s.keepsResults
	for _, i := range order {
		f := &s.flags[i]
		v, si := e.evaluateFlag(ctx, f)
		if v < 0 {
			continue
		}
		if keep {
			e.res[i] = resultSlot{gen: e.gen, variant: v, segment: si}
		}
		dst = append(dst, Result{})
		s.fill(&dst[len(dst)-1], f, v, si)
	}
	s.pool.Put(e)
	return dst, nil
}

// fill writes into r flag f's Result for its variant v decided by segment
// si, in place: a Result is too large to copy around on this path.
func (s *Snapshot) fill(r *Result, f *flagRec, v int32, si int32) {
	variant := &s.variants[f.variants+uint32(v)]
	seg := &s.segments[si]
	r.FlagKey, r.Key, r.Value = f.key, variant.key, variant.valueString
	r.RawValue, r.Payload = variant.value, variant.payload
	r.Metadata = s.mergedMetadata(si, v)
	r.Segment, r.Outcome = int(si-int32(f.segs.start)), int(seg.outcome+v)
}

// evaluator is the scratch space of one evaluation, pooled per Snapshot so
// that a warm evaluation allocates nothing but its results. Cached values
// and results are valid only while their gen equals the evaluator's.
type evaluator struct {
	snap    *Snapshot
	gen     uint32
	values  []normValue
	groups  []groupSlot
	buckets []bucketValue
	res     []resultSlot
	emitted []uint32
	order   []int32
	elems   []elem
	strs    []string
	text    arena
	scratch normValue
	// the user's groups as JSON, which selectors of group types the user
	// is not in read, made once per evaluation
	groupsText string
	groupsGen  uint32
}

func newEvaluator(s *Snapshot) any {
	return &evaluator{
		snap:    s,
		values:  make([]normValue, len(s.selectors)),
		groups:  make([]groupSlot, len(s.groupTypes)),
		buckets: make([]bucketValue, len(s.selectors)),
		res:     make([]resultSlot, len(s.flags)),
		emitted: make([]uint32, len(s.flags)),
	}
}

// begin starts an evaluation. The context is passed down the calls rather
// than kept here, so that it stays on the caller's stack. What the scratch
// space still references of the previous caller's context is not cleared,
// which would cost as much as a small evaluation: it is overwritten as this
// evaluation goes, or dropped with the evaluator when the pool is emptied
// at the second garbage collection.
func (e *evaluator) begin() {
	e.gen++
	if e.gen == 0 { // wrapped: stale stamps could look current
		clear(e.values)
		clear(e.groups)
		clear(e.buckets)
		clear(e.res)
		clear(e.emitted)
		e.gen = 1
	}
	e.elems, e.strs, e.text.buf, e.text.vers = e.elems[:0], e.strs[:0], e.text.buf[:0], e.text.vers[:0]
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
		if c := e.snap.flagCold[i].cyclic; c != nil {
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
	for _, d := range e.snap.depsOf(i) {
		e.visit(d)
	}
	e.order = append(e.order, i)
}

// evaluateFlag returns the variant index (among the flag's) and the
// segment (an index into Snapshot.segments) that decide the flag, or -1
// when no segment yields a variant.
func (e *evaluator) evaluateFlag(ctx *Context, f *flagRec) (int32, int32) {
	for si := f.segs.start; si < f.segs.end; si++ {
		seg := &e.snap.segments[si]
		if !e.segmentMatches(ctx, seg) {
			continue
		}
		if v := e.bucket(ctx, seg); v >= 0 {
			return v, int32(si)
		}
	}
	return -1, -1
}

// segmentMatches evaluates the OR of AND-groups: conditions in order, a
// group holding when all of its conditions do. After a failed condition the
// rest of its group is skipped.
func (e *evaluator) segmentMatches(ctx *Context, seg *segRec) bool {
	if seg.matchAll {
		return true
	}
	conds := e.snap.conds[seg.conds.start:seg.conds.end]
	holds := true
	for i := range conds {
		c := &conds[i]
		if holds && !e.matches(ctx, c) {
			holds = false
		}
		if c.bits&condGroupEnd != 0 {
			if holds {
				return true
			}
			holds = true
		}
	}
	return false
}

// matches is Snapshot.match on the condition's value, with the calls of the
// common case (a value already selected, null or a scalar) unfolded: this
// runs for every condition evaluated.
func (e *evaluator) matches(ctx *Context, c *condRec) bool {
	if c.bits&condCohortAny != 0 {
		if hit, ok := e.cohortHit(ctx, c); ok {
			return hit == (c.op == opSetContainsAny)
		}
	}
	v := &e.values[c.sel]
	if v.gen != e.gen { // not selected yet, or read from flag results
		v = e.value(ctx, c.sel)
	}
	if v.null {
		return c.bits&condNullMatches != 0
	}
	if c.op.isSet() {
		return v.isList && e.snap.matchSet(c, v.list)
	}
	for i := range v.elems {
		if e.snap.matchElem(c, &v.elems[i], &e.text) {
			return true
		}
	}
	return false
}

// cohortHit decides "set (does not) contain any" on a lazily enriched
// cohort list by looking up only the condition's values, stopping at the
// first membership: with a list of thousands of members per cohort, each
// lookup is a likely cache miss, and the full list is not needed. ok is
// false when the list is not lazy or is already materialized.
func (e *evaluator) cohortHit(ctx *Context, c *condRec) (hit, ok bool) {
	if e.values[c.sel].gen == e.gen {
		return false, false
	}
	sel := &e.snap.selectors[c.sel]
	groupType, member := UserCohorts, ""
	if sel.kind == selUserCohorts {
		member, _, ok = ctx.lazyUserCohorts()
	} else {
		groupType = sel.groupType
		member, _, ok = ctx.lazyGroupCohorts(groupType)
	}
	if !ok {
		return false, false
	}
	return ctx.Cohorts.MemberOfAny(groupType, member, e.snap.values(c)), true
}

// bucket picks the variant of a matched segment: by hash when it has a
// bucket and a bucketing value, otherwise the segment's own variant.
func (e *evaluator) bucket(ctx *Context, seg *segRec) int32 {
	if seg.bucket < 0 {
		return seg.variant
	}
	s := e.snap
	b := &s.buckets[seg.bucket]
	value, ok := e.bucketValue(ctx, b.selector)
	if !ok || value == "" {
		return seg.variant
	}
	if b.constant {
		return b.variant
	}
	h := b.hash.sum(value)
	allocation, distribution := h%100, h/100
	for _, a := range s.allocs[b.allocs.start:b.allocs.end] {
		if allocation < a.start || allocation >= a.end {
			continue
		}
		for _, d := range s.dists[a.dists.start:a.dists.end] {
			if distribution >= d.start && distribution < d.end {
				return d.variant
			}
		}
	}
	return seg.variant
}

// HashBucket exposes the bucketing hash and its two derived numbers for
// tracing tools: allocation = hash % 100, distribution = hash / 100.
func HashBucket(salt, value string) (hash uint32, allocation, distribution uint64) {
	h := hashBucket(salt, value)
	return h, uint64(h % 100), uint64(h / 100)
}

// value returns the normalized value of a selector, computed at most once per
// evaluation unless it reads flag results.
func (e *evaluator) value(ctx *Context, id int32) *normValue {
	sel := &e.snap.selectors[id]
	if sel.dependsOnResults() {
		e.scratch = normValue{}
		e.normalize(&e.scratch, sel.selectResult(e))
		return &e.scratch
	}
	v := &e.values[id]
	if v.gen != e.gen {
		*v = normValue{gen: e.gen}
		e.load(v, ctx, sel)
	}
	return v
}

// load selects and normalizes a value of the context: user fields and
// properties, most of what conditions read, without the generic detour.
func (e *evaluator) load(v *normValue, ctx *Context, sel *selector) {
	switch sel.kind {
	case selUserField:
		if s := ctx.userField(sel.field); s != "" {
			e.normalizeString(v, s)
		} else {
			v.null = true
		}
	case selUserProps:
		if len(ctx.UserProperties) == 0 {
			v.null = true
			return
		}
		if len(sel.path) == 1 {
			e.normalizeAny(v, ctx.UserProperties[sel.path[0]])
		} else {
			e.normalizeAny(v, walk(ctx.UserProperties, sel.path))
		}
	case selGroupName:
		if g := e.group(ctx, sel); g.ok {
			e.normalizeString(v, g.name)
		} else {
			v.null = true
		}
	case selGroupProps:
		e.normalizeAny(v, walk(e.group(ctx, sel).props, sel.path))
	default:
		e.normalize(v, sel.selectContext(ctx))
	}
}

// normalizeAny normalizes a decoded JSON value (or one built in Go).
func (e *evaluator) normalizeAny(v *normValue, x any) {
	switch t := x.(type) {
	case nil:
		v.null = true
	case string:
		e.normalizeString(v, t)
	case float64, bool: // neither a list nor a container: no reflection
		e.setScalar(v, e.scalarString(t))
	default:
		e.normalize(v, rawValue{kind: rawAny, a: x})
	}
}

// groupSlot is what the context holds for one group type: found once per
// evaluation for all the selectors of the type, as each would otherwise
// look up the groups and their properties again.
type groupSlot struct {
	gen   uint32
	ok    bool   // the user is in a group of the type
	name  string // its first name
	props any    // its properties, nil when none
}

func (e *evaluator) group(ctx *Context, sel *selector) *groupSlot {
	g := &e.groups[sel.group]
	if g.gen != e.gen {
		*g = groupSlot{gen: e.gen}
		if g.name, g.ok = ctx.group(sel.groupType); g.ok {
			g.props = ctx.GroupProperties[sel.groupType][g.name]
		}
	}
	return g
}

type bucketValue struct {
	gen uint32
	ok  bool
	s   string
}

func (e *evaluator) bucketValue(ctx *Context, id int32) (string, bool) {
	sel := &e.snap.selectors[id]
	if sel.dependsOnResults() {
		return e.bucketString(sel.selectResult(e))
	}
	if sel.kind == selUserField { // the usual user_id or device_id
		v := ctx.userField(sel.field)
		return v, v != ""
	}
	b := &e.buckets[id]
	if b.gen != e.gen {
		s, ok := e.bucketString(sel.selectContext(ctx))
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
	case rawGroups:
		return e.groupsJSON(r.a.(map[string][]string)), true
	case rawList:
		return e.listJSON(r.list), true
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
	ver       int32 // the parsed version, in the arena's versions
	lowerDone bool
	numState  int8 // 0 unknown, 1 number, -1 not a number
	verState  int8
}

func (x *elem) lowered(a *arena) string {
	if !x.lowerDone {
		x.lower, x.lowerDone = a.lower(x.s), true
	}
	return x.lower
}

func (x *elem) number() (float64, bool) {
	if x.numState == 0 {
		x.numState = -1
		if numberCandidate(x.s) {
			if f, err := strconv.ParseFloat(x.s, 64); err == nil {
				x.num, x.numState = f, 1
			}
		}
	}
	return x.num, x.numState == 1
}

// numberCandidate rejects most non-numbers (versions, ids, words) before
// ParseFloat, whose error allocates: every string ParseFloat accepts
// passes. Decimal forms are checked whole; hexadecimal ones, and digits
// separated by underscores as in Go, are left to ParseFloat.
func numberCandidate(s string) bool {
	if strings.IndexByte(s, '_') >= 0 {
		return true
	}
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if i == len(s) {
		return false
	}
	switch rest := s[i:]; rest[0] {
	case 'i', 'I', 'n', 'N':
		return strings.EqualFold(rest, "inf") || strings.EqualFold(rest, "infinity") || strings.EqualFold(rest, "nan")
	case '0':
		if len(rest) > 1 && (rest[1] == 'x' || rest[1] == 'X') {
			return true
		}
	}
	digits := 0
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) {
			return false
		}
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		}
	}
	return i == len(s)
}

// version parses the element as a version once; the parse is kept in the
// arena, so that elements stay small for the many values never compared so.
func (x *elem) version(a *arena) (*version, bool) {
	if x.verState == 0 {
		x.verState = -1
		if v, ok := parseVersion(x.s); ok {
			x.ver, x.verState = int32(len(a.vers)), 1
			a.vers = append(a.vers, v)
		}
	}
	if x.verState != 1 {
		return nil, false
	}
	return &a.vers[x.ver], true
}

// normalize applies the reference's coercions: arrays and JSON-array strings
// become lists, other values their string form.
func (e *evaluator) normalize(v *normValue, r rawValue) {
	switch r.kind {
	case rawNull:
		v.null = true
	case rawString:
		e.normalizeString(v, r.s)
	case rawText:
		e.setScalar(v, r.s)
	case rawGroups:
		e.setScalar(v, e.groupsJSON(r.a.(map[string][]string)))
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
		switch r.a.(type) {
		case float64, bool, map[string]any: // not lists: no reflection
		default:
			if list, ok := e.goTypedList(r.a); ok {
				e.setList(v, list)
				return
			}
		}
		e.setScalar(v, e.scalarString(r.a))
	}
}

// normalizeString makes a string a scalar, or a list when it holds a JSON
// array of strings.
func (e *evaluator) normalizeString(v *normValue, s string) {
	if list, ok := jsonStringList(s); ok {
		e.setList(v, list)
		return
	}
	e.setScalar(v, s)
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
		e.text.reserve(32)
		start := len(e.text.buf)
		e.text.buf = strconv.AppendFloat(e.text.buf, t, 'g', -1, 64)
		return unsafe.String(&e.text.buf[start], len(e.text.buf)-start)
	case []any:
		if s, ok := e.anyListJSON(t); ok {
			return s
		}
	}
	return coerceValue(x)
}

// anyListJSON is json.Marshal(list) for a list of plain strings and nulls,
// written in the arena; false for any other list.
func (e *evaluator) anyListJSON(list []any) (string, bool) {
	if list == nil {
		return "", false
	}
	size := 2
	for _, x := range list {
		switch t := x.(type) {
		case nil:
			size += 5
		case string:
			if !plainJSON(t) {
				return "", false
			}
			size += len(t) + 3
		default:
			return "", false
		}
	}
	e.text.reserve(size)
	at := len(e.text.buf)
	buf := append(e.text.buf, '[')
	for j, x := range list {
		if j > 0 {
			buf = append(buf, ',')
		}
		if x == nil {
			buf = append(buf, "null"...)
		} else {
			buf = append(append(append(buf, '"'), x.(string)...), '"')
		}
	}
	e.text.buf = append(buf, ']')
	return unsafe.String(&e.text.buf[at], len(e.text.buf)-at), true
}

// groupsJSON is json.Marshal(groups), made once per evaluation, in the
// evaluator's byte arena when every string is plain.
func (e *evaluator) groupsJSON(groups map[string][]string) string {
	if e.groupsGen == e.gen {
		return e.groupsText
	}
	e.groupsGen = e.gen
	start, size := len(e.strs), 2
	for k, names := range groups {
		e.strs = append(e.strs, k)
		size += len(k) + 6
		for _, n := range names {
			size += len(n) + 3
		}
	}
	keys := e.strs[start:]
	if len(keys) > 1 {
		slices.Sort(keys)
	}
	e.text.reserve(size)
	at := len(e.text.buf)
	buf, ok := appendGroupsJSON(e.text.buf, groups, keys)
	e.strs = e.strs[:start]
	if !ok {
		e.groupsText = jsonText(groups)
		return e.groupsText
	}
	e.text.buf = buf
	e.groupsText = unsafe.String(&buf[at], len(buf)-at)
	return e.groupsText
}

// arena holds the strings an evaluation makes (numbers formatted, values
// lowered, JSON text), so that they cost no allocation once it has grown.
// They are valid until the evaluator's next evaluation begins.
type arena struct {
	buf  []byte
	vers []version
}

// reserve makes room for n more bytes. Strings made from the arena so far
// keep its previous array alive.
func (a *arena) reserve(n int) {
	if len(a.buf)+n > cap(a.buf) {
		a.buf = make([]byte, 0, max(1024, 2*cap(a.buf), n))
	}
}

// lower is strings.ToLower, written in the arena for ASCII strings.
func (a *arena) lower(s string) string {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if !upper {
		return s
	}
	a.reserve(len(s))
	start := len(a.buf)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		a.buf = append(a.buf, c)
	}
	return unsafe.String(&a.buf[start], len(s))
}

// listJSON is json.Marshal(list), in the arena when every string is plain.
func (e *evaluator) listJSON(list []string) string {
	if list == nil {
		return "null"
	}
	size := 2
	for _, s := range list {
		size += len(s) + 3
	}
	e.text.reserve(size)
	at := len(e.text.buf)
	buf, ok := appendListJSON(e.text.buf, list)
	if !ok {
		return jsonText(list)
	}
	e.text.buf = buf
	return unsafe.String(&buf[at], len(buf)-at)
}

// appendListJSON writes list as encoding/json does; it reports false at a
// string that encoding/json would escape.
func appendListJSON(buf []byte, list []string) ([]byte, bool) {
	buf = append(buf, '[')
	for j, s := range list {
		if j > 0 {
			buf = append(buf, ',')
		}
		if !plainJSON(s) {
			return buf, false
		}
		buf = append(append(append(buf, '"'), s...), '"')
	}
	return append(buf, ']'), true
}

// appendGroupsJSON writes groups as encoding/json does, keys in order; it
// reports false at a string that encoding/json would escape.
func appendGroupsJSON(buf []byte, groups map[string][]string, keys []string) ([]byte, bool) {
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		if !plainJSON(k) {
			return buf, false
		}
		buf = append(append(append(buf, '"'), k...), '"', ':')
		names := groups[k]
		if names == nil {
			buf = append(buf, "null"...)
			continue
		}
		var ok bool
		if buf, ok = appendListJSON(buf, names); !ok {
			return buf, false
		}
	}
	return append(buf, '}'), true
}

// plainJSON reports whether encoding/json writes s between quotes as it is.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= utf8.RuneSelf, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
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
		if slot.gen == e.gen {
			f := &e.snap.flags[i]
			v := &e.snap.variants[f.variants+uint32(slot.variant)]
			all[f.key] = wireVariant{v.key, v.value, v.payload, e.snap.mergedMetadata(slot.segment, slot.variant)}
		}
	}
	return jsonText(all)
}
