package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// Flags is one flag set as served: compiled for evaluation, and rendered
// once for the endpoints that send it whole. It is immutable.
type Flags struct {
	// Set evaluates users (remote evaluation, OFREP).
	Set *experiment.FlagSet
	// Body is the JSON array of flag configs served by /sdk/v2/flags.
	Body []byte
	// ETag is a strong ETag (quoted) of Body.
	ETag string
	// Cohorts are served by /sdk/v1/cohort and the memberships endpoint;
	// they may be more than Set targets. Nil means none.
	Cohorts *cohort.Store
	// Origin says where the flags came from, for /status ("file flags.json").
	Origin string
	// Applied is when the flags were put in use.
	Applied time.Time

	gzBody    []byte   // Body gzipped, for clients that ask
	event     []byte   // Body as one server-sent event
	cohortIDs []string // Cohorts' ids, sorted, for the memberships endpoint
	render    *renderCache
}

// NewFlags decodes and compiles body, a JSON array of flag configs, with the
// cohorts the flags target taken from cohorts (nil: no members). The body is
// served compacted; errors name what is wrong and where (*eval.ParseError).
func NewFlags(body []byte, cohorts *cohort.Store, origin string, applied time.Time) (*Flags, error) {
	flags, err := eval.DecodeFlags(body)
	if err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		return nil, fmt.Errorf("flag configs: %w", err)
	}
	return newFlags(flags, compact.Bytes(), cohorts, origin, applied)
}

// NewFlagsExact is NewFlags serving body byte for byte as given, not
// compacted: a relay fleet serves exactly what Amplitude sent, and its
// ETag (a hash of Body) is then the same on every relay.
func NewFlagsExact(body []byte, cohorts *cohort.Store, origin string, applied time.Time) (*Flags, error) {
	flags, err := eval.DecodeFlags(body)
	if err != nil {
		return nil, err
	}
	return newFlags(flags, body, cohorts, origin, applied)
}

// FlagsOf is NewFlags for configs already decoded (after ApplyOverrides,
// say): they are encoded again to be served. flags must not be modified
// afterwards.
func FlagsOf(flags []*eval.Flag, cohorts *cohort.Store, origin string, applied time.Time) (*Flags, error) {
	if flags == nil {
		flags = []*eval.Flag{}
	}
	body, err := json.Marshal(flags)
	if err != nil {
		return nil, fmt.Errorf("encoding flag configs: %w", err)
	}
	return newFlags(flags, body, cohorts, origin, applied)
}

// FlagsOfSet serves a flag set already compiled, a LocalClient's, with
// its cohorts. The document it was loaded from is served byte for byte:
// the SDKs behind a relay get what Amplitude sent, fields this engine does
// not know included, and no update is encoded again. A set without one
// (compiled from decoded flags) has its configs encoded again, field for
// field.
func FlagsOfSet(set *experiment.FlagSet, origin string, applied time.Time) (*Flags, error) {
	if doc := set.Snapshot().Document(); doc != nil {
		return flagsOf(set, doc, set.Cohorts(), origin, applied), nil
	}
	flags := set.Flags()
	if flags == nil {
		flags = []*eval.Flag{}
	}
	body, err := json.Marshal(flags)
	if err != nil {
		return nil, fmt.Errorf("encoding flag configs: %w", err)
	}
	return flagsOf(set, body, set.Cohorts(), origin, applied), nil
}

func newFlags(flags []*eval.Flag, body []byte, cohorts *cohort.Store, origin string, applied time.Time) (*Flags, error) {
	set, err := experiment.NewFlagSet(flags, cohorts)
	if err != nil {
		return nil, fmt.Errorf("compiling flag configs: %w", err)
	}
	return flagsOf(set, body, cohorts, origin, applied), nil
}

// WithCohorts is f serving cohorts instead of its own, applied at
// applied: the same body, compiled flags and renders, nothing compiled or
// encoded again.
func (f *Flags) WithCohorts(cohorts *cohort.Store, applied time.Time) *Flags {
	g := *f
	g.Set, g.Cohorts, g.cohortIDs, g.Applied = f.Set.WithCohorts(cohorts), cohorts, cohorts.IDs(), applied
	return &g
}

func flagsOf(set *experiment.FlagSet, body []byte, cohorts *cohort.Store, origin string, applied time.Time) *Flags {
	sum := sha256.Sum256(body)
	f := &Flags{
		Set: set, Body: body, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`,
		Cohorts: cohorts, Origin: origin, Applied: applied,
		gzBody:    gzipBytes(body),
		event:     sseEvent(body),
		cohortIDs: cohorts.IDs(),
		render:    newRenderCache(set.Snapshot().Outcomes()),
	}
	return f
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the level is valid
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// State is what a Source holds at one moment. It is immutable: a change
// makes a new State and closes the old one's Changed.
type State struct {
	// Flags is nil until the first flag set is applied.
	Flags *Flags
	// Problem says why Flags are not the source's latest ("" when they
	// are): a broken edit of the file, a failed sync.
	Problem string
	// Changed is closed when the State is replaced.
	Changed <-chan struct{}

	closer chan struct{} // Changed, for the Store that closes it
}

// Source supplies the flags to serve. Current must be cheap and safe for
// concurrent use: it is called on every request.
type Source interface {
	Current() *State
}

// Store is a Source whose flags are set by hand: Set and SetProblem replace
// the State atomically, and readers never lock.
type Store struct {
	state atomic.Pointer[State]
}

// NewStore returns a Store holding no flags yet.
func NewStore() *Store {
	s := &Store{}
	ch := make(chan struct{})
	s.state.Store(&State{Changed: ch, closer: ch})
	return s
}

// Current implements Source.
func (s *Store) Current() *State { return s.state.Load() }

// Set puts f in use and clears the problem.
func (s *Store) Set(f *Flags) { s.swap(func(*State) State { return State{Flags: f} }) }

// SetKeepingProblem serves f and keeps the problem said: f is not more
// current than the flags it replaces (the same flags with cohorts
// refreshed), or the source will say whether it is.
func (s *Store) SetKeepingProblem(f *Flags) {
	s.swap(func(old *State) State { return State{Flags: f, Problem: old.Problem} })
}

// SetProblem keeps the flags in use and records why they are not the
// latest; "" clears it.
func (s *Store) SetProblem(problem string) {
	s.swap(func(old *State) State { return State{Flags: old.Flags, Problem: problem} })
}

// swap replaces the state. Writers are rare (a file edit, a sync); two at
// once are serialised by the compare-and-swap loop. A state with the same
// flags and problem is no change: every open stream waits on Changed, and
// would wake to find nothing new (a relay notes each failed poll).
func (s *Store) swap(next func(*State) State) {
	ch := make(chan struct{})
	for {
		old := s.state.Load()
		st := next(old)
		if st.Flags == old.Flags && st.Problem == old.Problem {
			return
		}
		st.Changed, st.closer = ch, ch
		if s.state.CompareAndSwap(old, &st) {
			close(old.closer)
			return
		}
	}
}
