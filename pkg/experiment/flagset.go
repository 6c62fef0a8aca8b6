package experiment

import (
	"sync"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
)

// FlagSet is a compiled flag set plus the cohort memberships it targets:
// everything local evaluation needs, immutable and safe for concurrent use.
// The local client swaps whole FlagSets when configs or cohorts change.
type FlagSet struct {
	snap *eval.Snapshot
	// flags are the decoded configs NewFlagSet was given; nil for a set
	// that keeps its document (LoadFlagSet, a LocalClient's), whose Flags
	// decodes them from it.
	flags   []*eval.Flag
	cohorts *cohort.Store
	refs    cohort.References
	index   *cohort.Index
	// results holds *[]eval.Result buffers for the map-returning
	// EvaluateV2, which needs the engine's results only until it has built
	// the map: a warm call then allocates the map alone. Owned by the set
	// so that a buffer sized for one flag set is not handed to another.
	results sync.Pool
}

// NewFlagSet compiles flags. cohorts may be nil: then nobody is a member of
// any cohort, as when cohort sync is not configured.
func NewFlagSet(flags []*eval.Flag, cohorts *cohort.Store) (*FlagSet, error) {
	snap, err := eval.Compile(flags)
	if err != nil {
		return nil, err
	}
	return newFlagSet(snap, flags, cohorts, cohort.Referenced(flags)), nil
}

// LoadFlagSet loads a flag document, the body of GET /sdk/v2/flags, with
// eval.Load: the set keeps the document (about 3.7 KB a flag) instead of
// the decoded flags as well (6.6 KB with NewFlagSet), as a LocalClient's
// sets do. Errors are Load's: an *eval.ParseError for what is not a valid
// flag list. cohorts may be nil; see WithCohorts for loading the cohorts
// the flags target.
func LoadFlagSet(data []byte, cohorts *cohort.Store) (*FlagSet, error) {
	snap, err := eval.Load(data)
	if err != nil {
		return nil, err
	}
	return newFlagSet(snap, nil, cohorts, snapshotReferences(snap)), nil
}

// WithCohorts returns the same flags with another cohort store; the
// compiled flags are shared, nothing is compiled again.
func (fs *FlagSet) WithCohorts(cohorts *cohort.Store) *FlagSet {
	return newFlagSet(fs.snap, fs.flags, cohorts, fs.refs)
}

func newFlagSet(snap *eval.Snapshot, flags []*eval.Flag, cohorts *cohort.Store, refs cohort.References) *FlagSet {
	return &FlagSet{snap: snap, flags: flags, cohorts: cohorts, refs: refs, index: cohort.NewIndex(cohorts, refs)}
}

// Snapshot is the compiled engine input.
func (fs *FlagSet) Snapshot() *eval.Snapshot { return fs.snap }

// Flags returns the decoded configs; callers must not modify them. A set
// from NewFlagSet returns those it was given. A set that keeps its
// document (from LoadFlagSet, or a LocalClient's) returns one per key (the
// last definition of a key defined twice), decoded on each call and kept
// by nobody but the caller, so that listing them once does not leave the
// set holding them decoded too: a caller that needs them again keeps the
// slice, and what only evaluates should not call it.
func (fs *FlagSet) Flags() []*eval.Flag {
	if fs.flags != nil {
		return fs.flags
	}
	return fs.snap.Flags()
}

// Cohorts returns the cohort store, possibly nil.
func (fs *FlagSet) Cohorts() *cohort.Store { return fs.cohorts }

// CohortReferences lists the cohorts the flags target, by group type.
func (fs *FlagSet) CohortReferences() cohort.References { return fs.refs }

// EvaluateV2 evaluates the named flags and their dependencies (every flag
// when none are named) for user and returns every variant produced, default
// variants included. The user is not modified.
//
// The map is the caller's, but each Variant's Metadata and Payload are the
// compiled set's, shared by every evaluation: read them, never modify them
// (copy first, e.g. with maps.Clone). Amplitude's SDKs hand out results that
// callers treat as read-only too; sharing spares a copy per variant, which
// cost three times the evaluation itself.
func (fs *FlagSet) EvaluateV2(user *User, flagKeys ...string) (map[string]Variant, error) {
	buf, _ := fs.results.Get().(*[]eval.Result)
	if buf == nil {
		buf = new([]eval.Result)
	}
	defer fs.results.Put(buf)
	results, err := fs.EvaluateResults(user, flagKeys, (*buf)[:0])
	*buf = results // keep the grown capacity; the results point into the set only
	if err != nil {
		return nil, err
	}
	out := make(map[string]Variant, len(results))
	for _, r := range results {
		out[r.FlagKey] = VariantOf(r)
	}
	return out, nil
}

// EvaluateResults is EvaluateV2 without building a map: results are
// appended to dst, and their Metadata is shared and must not be modified.
// Batch evaluation uses it to stay allocation-light.
func (fs *FlagSet) EvaluateResults(user *User, flagKeys []string, dst []eval.Result) ([]eval.Result, error) {
	ctx := fs.Context(user)
	return fs.snap.Evaluate(&ctx, flagKeys, dst)
}

// Explain evaluates like EvaluateV2 and records why each flag got its
// variant: segments, conditions with the user's values, bucketing.
func (fs *FlagSet) Explain(user *User, flagKeys ...string) (*eval.Trace, error) {
	ctx := fs.Context(user)
	return fs.snap.Explain(&ctx, flagKeys)
}

// VariantOf converts an engine result; its Metadata is shared with the engine.
func VariantOf(r eval.Result) Variant {
	return Variant{Key: r.Key, Value: r.Value, Payload: r.Payload, Metadata: r.Metadata}
}

// Context builds the engine's view of user, enriched with the memberships
// of the cohorts the flags target (user cohorts by user id, group cohorts by
// the first group name of each type, as the official SDKs do). Enrichment is lazy:
// a membership is looked up only when a condition reads it, which spares
// users the cache misses of cohorts of millions of members that their flags
// never reach.
func (fs *FlagSet) Context(user *User) eval.Context {
	if user == nil {
		user = &User{}
	}
	ctx := eval.Context{
		UserID: user.UserID, DeviceID: user.DeviceID, Country: user.Country, Region: user.Region,
		DMA: user.DMA, City: user.City, Language: user.Language, Platform: user.Platform,
		Version: user.Version, OS: user.OS, DeviceManufacturer: user.DeviceManufacturer,
		DeviceBrand: user.DeviceBrand, DeviceModel: user.DeviceModel, Carrier: user.Carrier,
		Library: user.Library, UserProperties: user.UserProperties, Groups: user.Groups,
		GroupProperties: user.GroupProperties, CohortIDs: user.CohortIDs, GroupCohortIDs: user.GroupCohortIDs,
	}
	if len(fs.refs) > 0 {
		ctx.Cohorts = fs.index
	}
	return ctx
}
