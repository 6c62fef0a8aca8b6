package eval

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Snapshot is a compiled, immutable set of flags. It is safe for concurrent
// use by any number of goroutines.
//
// Its layout is flat: the records of all flags (segments, conditions,
// values, variants, buckets) sit in a few contiguous slices and refer to
// each other by index, so that an evaluation walks memory in order instead
// of chasing a pointer per condition, and 10,000 flags cost ten times 1,000.
type Snapshot struct {
	flags        []flagRec
	flagCold     []flagCold
	segMeta      []span // each segment's own metadata, in pairs
	varMeta      []span // each variant's own metadata, in pairs
	segments     []segRec
	conds        []condRec
	vals         []string     // condition values as configured, then per condition its sorted distinct values
	bools        []uint8      // boolKind of each configured value, parallel to vals
	lower        []string     // contains: the values lowered
	nums         []float64    // comparisons: the values as numbers, NaN where not one
	vers         []version    // version comparisons: the values parsed, major -1 where not a version
	regexes      []*lazyRegex // regex matches: one per value, nil where it does not compile
	variants     []variantRec
	buckets      []bucketRec
	allocs       []allocRec
	dists        []distRec
	deps         []int32
	pairs        []metaPair // the flags', segments' and variants' own metadata
	meta         []metaSlot // merged metadata of each (segment, variant), made on first use
	selectors    []selector // shared by conditions and buckets, deduplicated
	groupTypes   []string   // the group types whose name or properties selectors read
	index        map[string]int
	order        []int32 // all flags, dependencies first, in config order otherwise
	cycle        *CycleError
	problems     []Problem
	unknownOps   map[int]string // the operators the engine does not know, by condition
	outcomes     int
	sources      []atomic.Pointer[Flag] // each flag as configured, for Flag and Explain
	raw          *rawSource             // set by Load: where sources not yet decoded come from
	keepsResults bool                   // some selector reads flag results: evaluations keep them
	pool         sync.Pool
}

// span is a range [start, end) of one of the Snapshot's slices.
type span struct{ start, end uint32 }

func (s span) len() int { return int(s.end - s.start) }

// flagRec holds what every evaluation of a flag reads; flagCold the rest,
// apart, so that evaluations walk less memory.
type flagRec struct {
	key      string
	segs     span // in segments
	variants uint32
	nvars    uint32 // variants[variants : variants+nvars], sorted by key
}

type flagCold struct {
	deps   span // known dependencies, in configured order
	meta   span // in pairs
	cyclic *CycleError
}

type segRec struct {
	flag     int32
	variant  int32 // the segment's own variant (an index into the flag's), -1 when it names none that exists
	bucket   int32 // in buckets, -1 for none
	outcome  int32 // Result.Outcome of the flag's first variant here
	metaSlot uint32
	conds    span // AND-groups one after another, each ending at a condition marked groupEnd
	matchAll bool // no conditions, or an empty AND-group: everyone matches
}

type bucketRec struct {
	selector int32
	constant bool     // every hash gets variant: there is no need to hash
	variant  int32    // when constant
	hash     saltHash // the bucketing hash with the salt already in
	allocs   span
}

// maxDistribution is the largest distribution value: hash / 100.
const maxDistribution = (1<<32 - 1) / 100

// constantBucket finds the buckets that send every hash to one variant:
// the first allocation takes every hash % 100 and its first distribution
// every hash / 100, as in a rollout to 100% of users.
func (s *Snapshot) constantBucket(br *bucketRec) {
	if br.allocs.len() == 0 {
		return
	}
	a := &s.allocs[br.allocs.start]
	if a.start > 0 || a.end < 100 || a.dists.len() == 0 {
		return
	}
	if d := &s.dists[a.dists.start]; d.start == 0 && d.end > maxDistribution {
		br.constant, br.variant = true, d.variant
	}
}

// allocRec and distRec hold their ranges as uint32, saturated: the hash %
// 100 and the hash / 100 they are compared with are below 1<<32 - 1, so
// every larger bound compares alike.
type allocRec struct {
	start, end uint32
	dists      span
}

type distRec struct {
	start, end uint32
	variant    int32 // -1 when the key is not among the flag's variants
}

func saturate(x uint64) uint32 { return uint32(min(x, 1<<32-1)) }

type variantRec struct {
	key         string
	valueString string
	value       any
	payload     any
}

type metaPair struct {
	key   string
	value any
}

// metaSlot holds a merged metadata map once some evaluation needed it: a
// segment's metadata per variant it can yield would otherwise be built for
// every variant of every segment, most of them never served. An
// atomic.Value holds the map itself, where a pointer to it would cost
// evaluations a cache miss per flag.
type metaSlot struct{ v atomic.Value }

// Problem is something in the config that evaluation tolerates, as the
// reference engine does, but that a careful user wants to hear about.
type Problem struct {
	Flag    string
	Path    string
	Kind    ProblemKind
	Message string
}

// ProblemKind classifies a Problem so callers can choose which are fatal.
type ProblemKind int

const (
	ProblemUnknownOperator   ProblemKind = iota // never matches
	ProblemInvalidRegex                         // never matches
	ProblemMissingDependency                    // evaluated as if absent
	ProblemMissingVariant                       // the segment is skipped
	ProblemDuplicateFlag                        // the later definition wins
	ProblemCycle                                // evaluations that reach it fail
)

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s", p.Path, p.Message)
}

// CycleError is returned by Evaluate when the requested flags depend on a
// dependency cycle. The reference engine fails such evaluations whole, and so
// does this one: any variant it returned would depend on an arbitrary order.
type CycleError struct {
	Flags []string // the cycle, in dependency order
}

func (e *CycleError) Error() string {
	return fmt.Sprintf("detected a cycle between flags [%s]", strings.Join(e.Flags, " "))
}

// Compile turns decoded flag configs into a Snapshot. It fails only on what
// cannot be evaluated at all; everything the reference engine tolerates
// (unknown operators, bad regexes, missing dependencies or variants, cycles)
// compiles, and is listed by Problems. The Snapshot keeps the flags for
// Flag and Explain: callers must not modify them afterwards.
func Compile(flags []*Flag) (*Snapshot, error) {
	if err := validateFlags(flags); err != nil { // flags built in Go skip DecodeFlags
		return nil, err
	}
	s, kept, _ := compileValid(flags)
	for i, f := range kept {
		s.sources[i].Store(f)
	}
	return s, nil
}

// compileValid compiles validated flags, the last definition of each key
// kept; positions are the kept flags' indices in flags. The sources are
// left for the caller to store or to decode on demand.
func compileValid(flags []*Flag) (s *Snapshot, kept []*Flag, positions []int) {
	s = &Snapshot{}
	kept, positions = dedupeFlags(flags, s)
	s.compile(kept, positions)
	s.sources = make([]atomic.Pointer[Flag], len(kept))
	return s, kept, positions
}

// compile builds the records of the kept flags; positions are their
// indices in the document, for the paths of problems.
func (s *Snapshot) compile(kept []*Flag, positions []int) {
	s.index = make(map[string]int, len(kept))
	for i, f := range kept {
		s.index[f.Key] = i
	}
	c := newCompiler(s)
	s.allocate(kept)
	for i, f := range kept {
		c.flag(positions[i], f)
	}
	s.meta = make([]metaSlot, c.metaSlots)
	s.order, s.cycle = dependencyOrder(s)
	s.pool.New = func() any { return newEvaluator(s) }
}

// allocate gives the record slices the exact room the flags need: they are
// appended to without ever growing, and hold no spare capacity.
func (s *Snapshot) allocate(flags []*Flag) {
	n := countRecords(flags)
	s.flags = make([]flagRec, 0, len(flags))
	s.flagCold = make([]flagCold, 0, len(flags))
	s.segMeta = make([]span, 0, n.segs)
	s.varMeta = make([]span, 0, n.variants)
	s.segments = make([]segRec, 0, n.segs)
	s.conds = make([]condRec, 0, n.conds)
	s.vals = make([]string, 0, n.vals)
	s.bools = make([]uint8, 0, n.vals)
	s.lower = make([]string, 0, n.lower)
	s.nums = make([]float64, 0, n.nums)
	s.vers = make([]version, 0, n.vers)
	s.regexes = make([]*lazyRegex, 0, n.regexes)
	s.variants = make([]variantRec, 0, n.variants)
	s.buckets = make([]bucketRec, 0, n.buckets)
	s.allocs = make([]allocRec, 0, n.allocs)
	s.dists = make([]distRec, 0, n.dists)
	s.deps = make([]int32, 0, n.deps)
	s.pairs = make([]metaPair, 0, n.pairs)
}

// recordCounts is how many records of each kind the flags compile to.
type recordCounts struct {
	segs, conds, vals, lower, nums, vers, regexes, variants, buckets, allocs, dists, deps, pairs int
}

func countRecords(flags []*Flag) recordCounts {
	var n recordCounts
	for _, f := range flags {
		n.deps += len(f.Dependencies)
		n.pairs += len(f.Metadata)
		for _, v := range f.Variants {
			if v != nil {
				n.variants++
				n.pairs += len(v.Metadata)
			}
		}
		for _, seg := range f.Segments {
			n.segs++
			n.pairs += len(seg.Metadata)
			for _, group := range seg.Conditions {
				n.conds += len(group)
				for _, c := range group {
					k := len(c.Values)
					n.vals += k
					switch o := opNames[c.Op]; {
					case o == opContains || o == opDoesNotContain:
						n.lower += k
					case o.isCompare():
						n.nums += k
					case o.isVersion():
						n.vers += k
					case o == opRegexMatch || o == opRegexDoesNotMatch:
						n.regexes += k
					case o.isSet() || (o == opIs || o == opIsNot) && k > sortedLookup:
						n.vals += k // room for the distinct values
					}
				}
			}
			if b := seg.Bucket; b != nil {
				n.buckets++
				n.allocs += len(b.Allocations)
				for _, a := range b.Allocations {
					n.dists += len(a.Distributions)
				}
			}
		}
	}
	return n
}

// dedupeFlags keeps the last definition of each key, in the position of the
// first, matching the reference's map store without losing config order.
func dedupeFlags(flags []*Flag, s *Snapshot) (kept []*Flag, positions []int) {
	pos := make(map[string]int, len(flags))
	kept = make([]*Flag, 0, len(flags))
	positions = make([]int, 0, len(flags))
	for i, f := range flags {
		if f == nil {
			continue
		}
		if p, ok := pos[f.Key]; ok {
			kept[p], positions[p] = f, i
			s.problems = append(s.problems, Problem{Flag: f.Key, Path: fmt.Sprintf("flags[%d]", i), Kind: ProblemDuplicateFlag,
				Message: fmt.Sprintf("flag %q is defined again; the later definition wins", f.Key)})
			continue
		}
		pos[f.Key] = len(kept)
		kept = append(kept, f)
		positions = append(positions, i)
	}
	return kept, positions
}

// Problems lists what Compile found suspicious, in config order.
func (s *Snapshot) Problems() []Problem { return s.problems }

// Outcomes is the number of distinct (flag, segment, variant) outcomes;
// Result.Outcome is below it. Callers use it to size per-outcome caches
// (rendered JSON, counters) instead of hashing keys.
func (s *Snapshot) Outcomes() int { return s.outcomes }

// Outcome describes outcome i: the flag key, the deciding segment's index
// and the variant key.
func (s *Snapshot) Outcome(i int) (flagKey string, segment int, variantKey string) {
	// the last segment starting at or before i: segments without variants
	// start where the next one does, so it is never one of them
	si, _ := slices.BinarySearchFunc(s.segments, int32(i), func(seg segRec, target int32) int {
		if seg.outcome <= target {
			return -1
		}
		return 1
	})
	si--
	seg := &s.segments[si]
	f := &s.flags[seg.flag]
	return f.key, si - int(f.segs.start), s.variants[f.variants+uint32(i-int(seg.outcome))].key
}

// Len is the number of flags.
func (s *Snapshot) Len() int { return len(s.flags) }

// Keys returns the flag keys in config order.
func (s *Snapshot) Keys() []string {
	keys := make([]string, len(s.flags))
	for i, f := range s.flags {
		keys[i] = f.key
	}
	return keys
}

// Flag returns the flag config as decoded, or nil. Callers must not modify it.
func (s *Snapshot) Flag(key string) *Flag {
	if i, ok := s.index[key]; ok {
		return s.source(i)
	}
	return nil
}

// source returns flag i as configured.
func (s *Snapshot) source(i int) *Flag {
	if f := s.sources[i].Load(); f != nil {
		return f
	}
	s.sources[i].CompareAndSwap(nil, s.raw.flag(i))
	return s.sources[i].Load()
}

// mergedMetadata returns the flag, segment and variant metadata overlaid,
// later wins; nil when all are empty, as the reference returns it.
func (s *Snapshot) mergedMetadata(si int32, v int32) map[string]any {
	seg := &s.segments[si]
	slot := &s.meta[seg.metaSlot+uint32(v)]
	if m, ok := slot.v.Load().(map[string]any); ok {
		return m
	}
	f := &s.flags[seg.flag]
	parts := [3]span{s.flagCold[seg.flag].meta, s.segMeta[si], s.varMeta[f.variants+uint32(v)]}
	n := parts[0].len() + parts[1].len() + parts[2].len()
	var merged map[string]any
	if n > 0 {
		merged = make(map[string]any, n)
		for _, p := range parts {
			for _, kv := range s.pairs[p.start:p.end] {
				merged[kv.key] = kv.value
			}
		}
	}
	slot.v.CompareAndSwap(nil, merged)
	return slot.v.Load().(map[string]any)
}

// compiler holds what compiling needs besides the Snapshot, reused from
// flag to flag.
type compiler struct {
	snap        *Snapshot
	selectorIDs map[string]int32
	regexes     map[string]*lazyRegex
	variantIDs  map[string]int32
	keys        []string
	metaSlots   uint32
	distinct    map[string]bool
	key         []byte // a selector's parts joined by NUL, its key in selectorIDs
}

func newCompiler(s *Snapshot) *compiler {
	return &compiler{snap: s, selectorIDs: map[string]int32{}, regexes: map[string]*lazyRegex{},
		variantIDs: map[string]int32{}, distinct: map[string]bool{}}
}

// where locates a field of the flag being compiled, formatted only when a
// problem is reported.
type where struct {
	flag            string
	pos, seg        int
	group, cond     int
	alloc, dist     int
	suffix          string
	inSeg, inBucket bool
}

func (w where) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flags[%d]", w.pos)
	if w.inSeg {
		fmt.Fprintf(&b, ".segments[%d]", w.seg)
	}
	switch {
	case w.inBucket:
		fmt.Fprintf(&b, ".bucket.allocations[%d].distributions[%d]", w.alloc, w.dist)
	case w.group >= 0:
		fmt.Fprintf(&b, ".conditions[%d][%d]", w.group, w.cond)
	}
	b.WriteString(w.suffix)
	return b.String()
}

func (c *compiler) problem(w where, kind ProblemKind, format string, args ...any) {
	c.snap.problems = append(c.snap.problems, Problem{Flag: w.flag, Path: w.String(), Kind: kind, Message: fmt.Sprintf(format, args...)})
}

func (c *compiler) selector(sel []string) int32 {
	c.key = c.key[:0]
	for i, part := range sel {
		if i > 0 {
			c.key = append(c.key, 0)
		}
		c.key = append(c.key, part...)
	}
	if id, ok := c.selectorIDs[string(c.key)]; ok {
		return id
	}
	k := string(c.key)
	id := int32(len(c.snap.selectors))
	compiled := compileSelector(sel, c.snap.index)
	if compiled.kind == selGroupName || compiled.kind == selGroupProps {
		compiled.group = c.groupType(compiled.groupType)
	}
	c.snap.selectors = append(c.snap.selectors, compiled)
	c.snap.keepsResults = c.snap.keepsResults || compiled.dependsOnResults()
	c.selectorIDs[k] = id
	return id
}

// groupType returns the index of a group type among those selectors read.
func (c *compiler) groupType(t string) int32 {
	if i := slices.Index(c.snap.groupTypes, t); i >= 0 {
		return int32(i)
	}
	c.snap.groupTypes = append(c.snap.groupTypes, t)
	return int32(len(c.snap.groupTypes) - 1)
}

func (c *compiler) pairs(m map[string]any) span {
	start := uint32(len(c.snap.pairs))
	for k, v := range m {
		c.snap.pairs = append(c.snap.pairs, metaPair{k, v})
	}
	return span{start, uint32(len(c.snap.pairs))}
}

func (c *compiler) flag(pos int, f *Flag) {
	s := c.snap
	fr := flagRec{key: f.Key, variants: uint32(len(s.variants))}
	var cold flagCold
	w := where{flag: f.Key, pos: pos, group: -1}
	cold.deps.start = uint32(len(s.deps))
	for _, d := range f.Dependencies {
		if i, ok := s.index[d]; ok {
			s.deps = append(s.deps, int32(i))
		} else {
			c.problem(where{flag: f.Key, pos: pos, group: -1, suffix: ".dependencies"}, ProblemMissingDependency,
				"dependency %q is not in the config; it is evaluated as absent", d)
		}
	}
	cold.deps.end = uint32(len(s.deps))
	cold.meta = c.pairs(f.Metadata)
	c.variants(f)
	fr.nvars = uint32(len(s.variants)) - fr.variants
	fr.segs.start = uint32(len(s.segments))
	for si, seg := range f.Segments {
		w.seg, w.inSeg = si, true
		c.segment(&fr, seg, w)
	}
	fr.segs.end = uint32(len(s.segments))
	s.flags = append(s.flags, fr)
	s.flagCold = append(s.flagCold, cold)
}

// variants appends the flag's variants in key order and indexes them.
func (c *compiler) variants(f *Flag) {
	s := c.snap
	clear(c.variantIDs)
	c.keys = c.keys[:0]
	for k := range f.Variants {
		c.keys = append(c.keys, k)
	}
	slices.Sort(c.keys)
	base := len(s.variants)
	for _, k := range c.keys {
		v := f.Variants[k]
		if v == nil {
			continue
		}
		c.variantIDs[k] = int32(len(s.variants) - base)
		s.variants = append(s.variants, variantRec{key: v.Key, value: v.Value, valueString: coerceValue(v.Value),
			payload: v.Payload})
		s.varMeta = append(s.varMeta, c.pairs(v.Metadata))
	}
}

// lookup returns the index of a variant key among the flag's, -1 when it
// is not there (a problem unless the key is empty).
func (c *compiler) lookup(key string, w where) int32 {
	if i, ok := c.variantIDs[key]; ok {
		return i
	}
	if key != "" {
		c.problem(w, ProblemMissingVariant, "variant %q is not among the flag's variants", key)
	}
	return -1
}

func (c *compiler) segment(fr *flagRec, seg *Segment, w where) {
	s := c.snap
	variantWhere := w
	variantWhere.suffix = ".variant"
	sr := segRec{flag: int32(len(s.flags)), variant: c.lookup(seg.Variant, variantWhere), bucket: -1,
		outcome: int32(s.outcomes), metaSlot: c.metaSlots, matchAll: seg.Conditions == nil}
	nvars := uint32(len(s.variants)) - fr.variants
	s.outcomes += int(nvars)
	c.metaSlots += nvars
	sr.conds.start = uint32(len(s.conds))
	for gi, group := range seg.Conditions {
		if len(group) == 0 {
			sr.matchAll = true // an AND of nothing holds
		}
		for ci, cond := range group {
			w.group, w.cond = gi, ci
			c.condition(cond, w, ci == len(group)-1)
		}
	}
	sr.conds.end = uint32(len(s.conds))
	if b := seg.Bucket; b != nil {
		sr.bucket = int32(len(s.buckets))
		c.bucket(b, w)
	}
	s.segMeta = append(s.segMeta, c.pairs(seg.Metadata))
	s.segments = append(s.segments, sr)
}

func (c *compiler) bucket(b *Bucket, w where) {
	s := c.snap
	br := bucketRec{selector: c.selector(b.Selector), hash: newSaltHash(b.Salt)}
	br.allocs.start = uint32(len(s.allocs))
	w.inBucket, w.suffix = true, ".variant"
	for ai, a := range b.Allocations {
		ar := allocRec{start: saturate(a.Range[0]), end: saturate(a.Range[1])}
		ar.dists.start = uint32(len(s.dists))
		for di, d := range a.Distributions {
			w.alloc, w.dist = ai, di
			s.dists = append(s.dists, distRec{start: saturate(d.Range[0]), end: saturate(d.Range[1]), variant: c.lookup(d.Variant, w)})
		}
		ar.dists.end = uint32(len(s.dists))
		s.allocs = append(s.allocs, ar)
	}
	br.allocs.end = uint32(len(s.allocs))
	s.constantBucket(&br)
	s.buckets = append(s.buckets, br)
}

// coerceValue turns a variant value into the string EvaluateV2 returns:
// null is "", objects and arrays are compact JSON, scalars print as %v.
func coerceValue(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case float64:
		return formatNumber(t)
	case map[string]any, []any:
		return jsonText(t)
	}
	switch reflect.ValueOf(v).Kind() { // Go-typed values, as the reference's reflection sees them
	case reflect.Map, reflect.Slice, reflect.Array:
		return jsonText(v)
	}
	return fmt.Sprintf("%v", v)
}

// formatNumber is Go's %v for a float64.
func formatNumber(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Sprintf("%v", f)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// regex returns the shared pattern, nil when it does not compile.
func (c *compiler) regex(pattern string) *lazyRegex {
	if re, ok := c.regexes[pattern]; ok {
		return re
	}
	re := newLazyRegex(pattern)
	c.regexes[pattern] = re
	return re
}
