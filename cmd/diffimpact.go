package cmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/flagkit/experiment/internal/flagdiff"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// diffImpact is what a diff does to a sample of users: per flag whose
// config changed, or whose users moved because a flag it depends on did,
// how many users change variant, and from which to which.
type diffImpact struct {
	Users int           `json:"users"`
	Flags []*flagImpact `json:"flags"`
}

type flagImpact struct {
	Key string `json:"key"`
	// UsersChanged counts the users whose variant differs ("" being no
	// variant); Share is their percentage of all users.
	UsersChanged int     `json:"users_changed"`
	Share        float64 `json:"share_changed"`
	// UsersNewValue counts the users who keep their variant while its
	// value or payload changed: they see something else all the same.
	UsersNewValue int `json:"users_new_value"`
	// Reasons say why the flag's users may move: "config changed",
	// "added", "removed", or "depends on X, which changed".
	Reasons []string `json:"reasons"`
	// Matrix is every (from, to) pair of variants seen, users who kept
	// their variant included (from == to); examples only for moves.
	Matrix []*transition `json:"matrix"`
	// Shares are each variant's share of all users before and after.
	Shares []*flagdiff.Share `json:"shares"`
}

type transition struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Users    int      `json:"users"`
	Examples []string `json:"examples,omitempty"`
}

// impactCell is a flag's (from, to) pair; flag indexes the keys, from and
// to the variant names of an impactSides (0 for no variant): integers,
// which the count per user and flag hashes faster than strings.
type impactCell struct {
	flag     int
	from, to int32
}

// impactSides maps each side's Result.Outcome to its flag's place in the
// keys and its variant's name id, once for all workers: a result is then
// counted without looking up its strings.
type impactSides struct {
	before, after outcomeCells
	names         []string // variant names by id; names[0] is "", no variant
}

// outcomeCells is one side's map from Result.Outcome to flag and variant.
type outcomeCells struct {
	fs      *experiment.FlagSet
	flag    []int32 // -1: a flag not among the keys
	variant []int32
}

func newImpactSides(before, after *experiment.FlagSet, keys []string) *impactSides {
	index := make(map[string]int32, len(keys))
	for i, k := range keys {
		index[k] = int32(i)
	}
	s := &impactSides{names: []string{""}}
	ids := map[string]int32{"": 0}
	side := func(fs *experiment.FlagSet) outcomeCells {
		snap := fs.Snapshot()
		c := outcomeCells{fs: fs, flag: make([]int32, snap.Outcomes()), variant: make([]int32, snap.Outcomes())}
		for o := range c.flag {
			key, _, variant := snap.Outcome(o)
			i, ok := index[key]
			if !ok {
				i = -1
			}
			id, ok := ids[variant]
			if !ok {
				id = int32(len(s.names))
				ids[variant] = id
				s.names = append(s.names, variant)
			}
			c.flag[o], c.variant[o] = i, id
		}
		return c
	}
	s.before, s.after = side(before), side(after)
	return s
}

// impactExample is a user that made a move, by line, for the examples:
// the lowest lines are kept, so the examples do not depend on which
// worker got which chunk.
type impactExample struct {
	line int
	id   string
}

// impactTally is what one worker counted; tallies are merged at the end.
type impactTally struct {
	users    int
	cells    map[impactCell]int
	examples map[impactCell][]impactExample
	bad      *lineError // the first invalid line, by line number (index holds it)
}

func newImpactTally() *impactTally {
	return &impactTally{cells: map[impactCell]int{}, examples: map[impactCell][]impactExample{}}
}

// impact evaluates every user of --users against both sides with the
// batch reader: chunks of lines spread over all cores, a bounded number
// in flight, so memory stays flat however many users.
func (opts *diffOptions) impact(parent context.Context, old, next *diffSide, report *flagdiff.Report) (*diffImpact, error) {
	sets, err := opts.loadSets(old, next)
	if err != nil {
		return nil, err
	}
	before, after := sets[0], sets[1]
	for _, s := range []struct {
		fs   *experiment.FlagSet
		name string
	}{{before, old.name}, {after, next.name}} {
		if _, err := s.fs.EvaluateResults(&experiment.User{}, nil, nil); err != nil {
			if errors.As(err, new(*eval.CycleError)) {
				// evaluate's hint names flag keys, which diff does not take.
				lint := "experiment lint " + s.name
				if s.name == "stdin" || s.name == liveSide {
					lint = "experiment lint"
				}
				return nil, withHint(inputError(fmt.Errorf("%s: %w", s.name, err)),
					"--users evaluates every flag: fix their dependencies ("+lint+" shows them)")
			}
			return nil, err
		}
	}
	keys := unionFlagKeys(old.flags, next.flags)
	sides := newImpactSides(before, after, keys)
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	in, err := openUsers(ctx, opts.IO, opts.UsersFile)
	if err != nil {
		return nil, err
	}
	defer in.close()
	workers := runtime.GOMAXPROCS(0)
	tokens := make(chan struct{}, 2*workers)
	jobs := make(chan *chunk, workers)
	readErr := make(chan error, 1)
	reader := &batch{opts: &evaluateOptions{}}
	go func() { readErr <- reader.read(ctx, in, jobs, tokens) }()
	tallies := make([]*impactTally, workers)
	var wg sync.WaitGroup
	for i := range tallies {
		w := &impactWorker{sides: sides, examples: opts.Examples, tally: newImpactTally(), stop: cancel,
			was: make([]int32, len(keys)), is: make([]int32, len(keys))}
		tallies[i] = w.tally
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				w.process(c)
				<-tokens
			}
		}()
	}
	wg.Wait()
	rerr := <-readErr
	total := mergeTallies(tallies, opts.Examples)
	if total.bad != nil {
		hint, lineErr := userLineError(fmt.Sprintf("%s:%d", in.name, total.bad.index), total.bad.err)
		err := inputError(lineErr)
		if hint != "" {
			err = withHint(err, hint)
		}
		return nil, err
	}
	if parent.Err() != nil {
		return nil, parent.Err()
	}
	if rerr != nil && !errors.Is(rerr, context.Canceled) {
		return nil, rerr
	}
	return buildImpact(total, keys, sides.names, old.flags, next.flags, report), nil
}

func unionFlagKeys(a, b []*eval.Flag) []string {
	seen := map[string]bool{}
	for _, fl := range [][]*eval.Flag{a, b} {
		for _, f := range fl {
			if f != nil {
				seen[f.Key] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// impactWorker evaluates users against both sides with reused buffers.
type impactWorker struct {
	sides    *impactSides
	examples int
	results  []eval.Result
	was, is  []int32 // per key: the variant's name id before and after, 0 for none
	tally    *impactTally
	stop     context.CancelFunc // ends reading at an invalid line
}

func (w *impactWorker) process(c *chunk) {
	bad := map[int]error{}
	for _, b := range c.bad {
		bad[b.index] = b.err
	}
	for i, line := range c.lines {
		n := c.firstLine + i
		err := bad[i]
		if err == nil && line != nil {
			err = w.user(line, n)
		}
		if err != nil {
			if w.tally.bad == nil || n < w.tally.bad.index {
				w.tally.bad = &lineError{index: n, err: err}
			}
			w.stop()
			return
		}
	}
}

// user evaluates one line against both sides and counts each flag's pair.
func (w *impactWorker) user(line []byte, n int) error {
	user, err := decodeUsersLine(line)
	if err != nil {
		return err
	}
	if err := w.evaluate(&w.sides.before, user, w.was); err != nil {
		return err
	}
	if err := w.evaluate(&w.sides.after, user, w.is); err != nil {
		return err
	}
	w.tally.users++
	for i := range w.was {
		cell := impactCell{flag: i, from: w.was[i], to: w.is[i]}
		w.tally.cells[cell]++
		if cell.from != cell.to && w.examples > 0 {
			ex := w.tally.examples[cell]
			if len(ex) < w.examples {
				w.tally.examples[cell] = append(ex, impactExample{line: n, id: userLabel(user, n)})
			}
		}
	}
	return nil
}

func (w *impactWorker) evaluate(side *outcomeCells, user *experiment.User, into []int32) error {
	clear(into)
	var err error
	w.results, err = side.fs.EvaluateResults(user, nil, w.results[:0])
	if err != nil {
		return err
	}
	for _, r := range w.results {
		if i := side.flag[r.Outcome]; i >= 0 {
			into[i] = side.variant[r.Outcome]
		}
	}
	return nil
}

// userLabel names a user in the examples: its user id, else its device
// id, else its line.
func userLabel(u *experiment.User, line int) string {
	return cmp.Or(u.UserID, u.DeviceID, "line "+strconv.Itoa(line))
}

// mergeTallies adds up the workers' counts and keeps, per move, the
// examples of the lowest lines.
func mergeTallies(tallies []*impactTally, examples int) *impactTally {
	total := newImpactTally()
	for _, t := range tallies {
		total.users += t.users
		for c, n := range t.cells {
			total.cells[c] += n
		}
		for c, ex := range t.examples {
			total.examples[c] = append(total.examples[c], ex...)
		}
		if t.bad != nil && (total.bad == nil || t.bad.index < total.bad.index) {
			total.bad = t.bad
		}
	}
	for c, ex := range total.examples {
		slices.SortFunc(ex, func(a, b impactExample) int { return a.line - b.line })
		total.examples[c] = ex[:min(len(ex), examples)]
	}
	return total
}

// buildImpact turns the counts into the report: the flags of the diff,
// and every other flag whose users moved, with the reason.
func buildImpact(t *impactTally, keys, names []string, old, next []*eval.Flag, report *flagdiff.Report) *diffImpact {
	changed := map[string]flagdiff.Change{}
	newValue := map[string]map[string]bool{} // flag -> variants whose value or payload changed
	for _, f := range report.Flags {
		changed[f.Key] = f.Change
		for _, v := range f.Variants {
			if v.Change == flagdiff.Changed && (v.Value != nil || v.Payload != nil) {
				if newValue[f.Key] == nil {
					newValue[f.Key] = map[string]bool{}
				}
				newValue[f.Key][v.Key] = true
			}
		}
	}
	deps := dependencyGraph(old, next)
	perFlag := make([][]*transition, len(keys))
	for c, n := range t.cells {
		tr := &transition{From: names[c.from], To: names[c.to], Users: n}
		for _, ex := range t.examples[c] {
			tr.Examples = append(tr.Examples, ex.id)
		}
		perFlag[c.flag] = append(perFlag[c.flag], tr)
	}
	out := &diffImpact{Users: t.users, Flags: []*flagImpact{}}
	for i, key := range keys {
		// Never null in JSON, even with no users: scripts iterate the matrix.
		matrix := append([]*transition{}, perFlag[i]...)
		fi := &flagImpact{Key: key, Matrix: matrix, Reasons: impactReasons(key, changed, deps)}
		slices.SortFunc(fi.Matrix, func(a, b *transition) int {
			return cmp.Or(b.Users-a.Users, cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
		})
		before, after := map[string]int{}, map[string]int{}
		for _, tr := range fi.Matrix {
			if tr.From != tr.To {
				fi.UsersChanged += tr.Users
			} else if newValue[key][tr.From] {
				fi.UsersNewValue += tr.Users
			}
			before[tr.From] += tr.Users
			after[tr.To] += tr.Users
		}
		if _, ok := changed[key]; !ok && fi.UsersChanged == 0 {
			continue
		}
		fi.Shares = observedShares(before, after, t.users)
		if t.users > 0 {
			fi.Share = flagdiff.Percent(float64(fi.UsersChanged) / float64(t.users))
		}
		out.Flags = append(out.Flags, fi)
	}
	return out
}

// dependencyGraph is each flag's dependencies, on either side: a flag
// moves when what it depended on before, or depends on now, changed.
func dependencyGraph(old, next []*eval.Flag) map[string][]string {
	g := map[string][]string{}
	for _, fl := range [][]*eval.Flag{old, next} {
		for _, f := range fl {
			if f == nil {
				continue
			}
			for _, d := range f.Dependencies {
				if !slices.Contains(g[f.Key], d) {
					g[f.Key] = append(g[f.Key], d)
				}
			}
		}
	}
	return g
}

// impactReasons says why a flag's users may move: its own change, and
// each changed flag it depends on, directly or through others.
func impactReasons(key string, changed map[string]flagdiff.Change, deps map[string][]string) []string {
	reasons := []string{}
	switch changed[key] {
	case flagdiff.Added:
		reasons = append(reasons, "added")
	case flagdiff.Removed:
		reasons = append(reasons, "removed")
	case flagdiff.Changed:
		reasons = append(reasons, "config changed")
	}
	seen := map[string]bool{key: true}
	queue := slices.Clone(deps[key])
	var found []string
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d] {
			continue
		}
		seen[d] = true
		if _, ok := changed[d]; ok {
			found = append(found, d)
		}
		queue = append(queue, deps[d]...)
	}
	slices.Sort(found)
	for _, d := range found {
		reasons = append(reasons, "depends on "+d+", which changed")
	}
	return reasons
}

func observedShares(before, after map[string]int, users int) []*flagdiff.Share {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	out := []*flagdiff.Share{} // [] rather than null when nobody was evaluated
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		s := &flagdiff.Share{Variant: k}
		if users > 0 {
			s.From = flagdiff.Percent(float64(before[k]) / float64(users))
			s.To = flagdiff.Percent(float64(after[k]) / float64(users))
			s.Delta = flagdiff.Percent(float64(after[k]-before[k]) / float64(users))
		}
		out = append(out, s)
	}
	return out
}
