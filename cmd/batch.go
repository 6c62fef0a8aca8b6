package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// The batch contract: one output line per input user, in input order,
// streaming with flat memory, all cores busy. Lines travel in chunks; a
// bounded number of chunks is in flight, so memory does not grow with the
// input, and an ordered writer puts them back in sequence.
//
// Output is bounded by bytes, not by chunks: with thousands of flags one
// user renders to hundreds of kilobytes, so a chunk's output can be a
// thousand times its input. A worker hands a chunk's output to the writer
// in parts of about partBytes, and takes each user's output bytes from one
// outputBudget shared by all workers, which the writer gives back once they
// are written. The budget does not grow with the core count; the part the
// writer waits for may always overdraw it, so a user bigger than the whole
// budget still goes through, alone.
const (
	chunkLines   = 64
	chunkBytes   = 1 << 20  // input bytes per chunk
	partBytes    = 1 << 20  // output bytes per part of a chunk
	outputBytes  = 32 << 20 // the output budget: rendered, not yet written
	maxLineBytes = 64 << 20
)

// chunk is a run of input lines on its way to the workers, then one part
// of their output on its way to the writer: a worker cuts a chunk whose
// output grows past partBytes into parts that cover consecutive lines.
type chunk struct {
	seq       int
	part      int      // the part's index in its chunk
	more      bool     // parts of the same chunk follow
	firstLine int      // 1-based line number of the first line covered
	lines     [][]byte // input; nil entries are blank lines
	out       []byte
	ends      []int // out offset after each line's output
	bad       []lineError
	exposures []pendingExposure // of the users covered, sent once written
	count     int               // lines covered
	held      int               // output budget held until written: cap(out)
}

type lineError struct {
	index int // into the lines covered
	err   error
}

// partKey is a part's place in the output.
type partKey struct{ seq, part int }

// outputBudget counts the output bytes that may be rendered and not yet
// written. The part the writer is waiting for can always take what it
// needs, even past the budget: it is the only one whose bytes the writer
// can give back, so refusing it would stop the batch. Buffers of written
// parts are kept for the next parts, still counted, and dropped when the
// budget is needed for something else: recycling them saves allocating and
// clearing a buffer per part, and memory the budget does not count.
type outputBudget struct {
	mu     sync.Mutex
	cond   *sync.Cond
	free   int
	head   partKey
	closed bool
	spare  [][]byte
}

func newOutputBudget(n int) *outputBudget {
	b := &outputBudget{free: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire takes n bytes for part k, waiting until they are free or k is
// the part the writer waits for; false once the batch is stopping.
func (b *outputBudget) acquire(k partKey, n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for n > b.free && len(b.spare) > 0 {
		last := len(b.spare) - 1
		b.free += cap(b.spare[last])
		b.spare[last] = nil
		b.spare = b.spare[:last]
	}
	for n > b.free && k != b.head && !b.closed {
		b.cond.Wait()
	}
	b.free -= n
	return !b.closed
}

// spareBuffer is the smallest buffer of a written part that holds at
// least size bytes, empty, or nil; its bytes are counted already and pass
// to whoever takes it. A smaller one would be copied as it grows.
func (b *outputBudget) spareBuffer(size int) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	best := -1
	for i, buf := range b.spare {
		if cap(buf) >= size && (best < 0 || cap(buf) < cap(b.spare[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	buf := b.spare[best]
	last := len(b.spare) - 1
	b.spare[best] = b.spare[last]
	b.spare[last] = nil
	b.spare = b.spare[:last]
	return buf[:0]
}

// recycle gives back the buffer of a written part and the held bytes it
// was counted for. The buffer is kept only within the budget: after the
// part the writer waited for overdrew it, what comes back pays that first.
// One outsized user's buffer is not kept either: reused for parts that
// need a fraction of it, it would hold budget they do not use.
func (b *outputBudget) recycle(buf []byte, held int) {
	b.mu.Lock()
	b.free += held
	if c := cap(buf); c > 0 && c <= 2*partBytes && c <= held && c <= b.free {
		b.spare = append(b.spare, buf)
		b.free -= c
	}
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (b *outputBudget) release(n int) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// waitFor says which part the writer needs next.
func (b *outputBudget) waitFor(k partKey) {
	b.mu.Lock()
	b.head = k
	b.mu.Unlock()
	b.cond.Broadcast()
}

// close wakes every worker waiting for budget: the batch is stopping.
func (b *outputBudget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

func runBatch(parent context.Context, opts *evaluateOptions, fs *experiment.FlagSet) error {
	// A dependency cycle fails every evaluation: say so once, up front.
	if _, err := fs.EvaluateResults(&experiment.User{}, opts.Keys, nil); err != nil {
		return evalError(opts.Source.name(), err)
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	in, err := openUsers(ctx, opts.IO, opts.UsersFile)
	if err != nil {
		return err
	}
	defer in.close()

	out := opts.IO.Out
	if opts.summaryOnly() {
		out = io.Discard // the summary is the output; users are still evaluated and counted
	}
	b := &batch{opts: opts, fs: fs, name: in.name, out: cli.NewJSONList(out, opts.Output == "json"),
		exposures: opts.exposures.in(ctx), // a wait for the event queue ends with the run
		counts:    make([]int, fs.Snapshot().Outcomes())}
	if opts.Progress {
		b.progress = opts.IO.NewProgress("evaluating", in.size, cli.Bytes)
		in.countReads(b.progress)
	}
	workers := runtime.GOMAXPROCS(0)
	tokens := make(chan struct{}, 2*workers)
	jobs := make(chan *chunk, workers)
	done := make(chan *chunk, 2*workers)
	readErr := make(chan error, 1)

	budget := newOutputBudget(outputBytes)
	defer context.AfterFunc(ctx, budget.close)()

	go func() { readErr <- b.read(ctx, in, jobs, tokens) }()
	var wg sync.WaitGroup
	pool := make([]*batchWorker, workers)
	for i := range pool {
		w := newBatchWorker(fs, opts.Keys)
		w.tracking = opts.exposures != nil
		w.budget = budget
		w.stop = ctx.Done()
		pool[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				w.process(c, done)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	werr := b.write(done, tokens, budget)
	cancel()
	for range done { // drain so workers can exit
	}
	// Counted per worker rather than per part: the counts are only shown
	// after a run that wrote every user, when the two are the same.
	for _, w := range pool {
		b.users += w.users
		for i, n := range w.counts {
			b.counts[i] += n
		}
	}
	rerr := <-readErr
	b.progress.Finish()
	if werr == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		werr = rerr
	}
	if werr == nil && parent.Err() != nil {
		werr = parent.Err() // interrupted: what was written is whole lines
	}
	// The JSON array is closed even after a failure: what was written
	// stays valid JSON, and the exit code says the run failed.
	if err := b.out.Close(); err != nil && werr == nil {
		werr = ioError(fmt.Errorf("writing output: %w", err))
	}
	if werr == nil && opts.Stats {
		werr = b.printStats()
	}
	return werr
}

type batch struct {
	opts      *evaluateOptions
	exposures *exposureSink // sent by the writer, for the users written
	out       *cli.JSONList // where user lines go: stdout, or nowhere when only the summary is shown
	fs        *experiment.FlagSet
	name      string
	counts    []int
	users     int
	progress  *cli.Progress
}

// read splits the input into chunks. A line longer than maxLineBytes is
// reported as soon as it passes the limit: without --skip-invalid it is the
// last line read, and with it the rest of the line is read but not kept.
func (b *batch) read(ctx context.Context, in *usersInput, jobs chan<- *chunk, tokens chan struct{}) error {
	defer close(jobs)
	seq, line := 0, 0
	c := &chunk{firstLine: 1}
	size := 0
	send := func() bool {
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		c.seq = seq
		seq++
		select {
		case jobs <- c:
		case <-ctx.Done():
			return false
		}
		c = &chunk{firstLine: line + 1}
		size = 0
		return true
	}
	for {
		n, data, err := in.next()
		line = n
		switch {
		case err == io.EOF:
			if len(c.lines) > 0 && !send() {
				return ctx.Err()
			}
			return nil
		case errors.Is(err, errLineTooLong):
			c.bad = append(c.bad, lineError{len(c.lines), err})
			c.lines = append(c.lines, nil)
			if !b.opts.SkipInvalid {
				// The run ends at this line: what came before it is
				// written, then the error; nothing after it is read.
				if !send() {
					return ctx.Err()
				}
				return nil
			}
		case err != nil:
			// The lines read before the failure are written first: the
			// error says "line N", so every line before it must be out.
			if len(c.lines) > 0 && !send() {
				return ctx.Err()
			}
			return err
		case len(bytes.TrimSpace(data)) == 0:
			c.lines = append(c.lines, nil)
		default:
			c.lines = append(c.lines, data)
			size += len(data)
		}
		if (len(c.lines) >= chunkLines || size >= chunkBytes) && !send() {
			return ctx.Err()
		}
	}
}

// write emits the parts of chunks in sequence, giving back their output
// budget as they are written. The first invalid line, unless skipped, ends
// the output after the lines before it.
func (b *batch) write(done <-chan *chunk, tokens <-chan struct{}, budget *outputBudget) error {
	pending := map[partKey]*chunk{}
	next := partKey{}
	for c := range done {
		pending[partKey{c.seq, c.part}] = c
		for {
			c, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			err := b.emit(c)
			budget.recycle(c.out, c.held)
			c.out = nil
			if err != nil {
				return err
			}
			if c.more {
				next.part++
			} else {
				<-tokens
				next = partKey{next.seq + 1, 0}
			}
			budget.waitFor(next)
		}
	}
	return nil
}

func (b *batch) emit(c *chunk) error {
	out := c.out
	limit := c.count
	var stop error
	for _, bad := range c.bad {
		where := fmt.Sprintf("%s:%d", b.name, c.firstLine+bad.index)
		hint, lineErr := userLineError(where, bad.err)
		if b.opts.SkipInvalid {
			fmt.Fprintf(b.opts.IO.ErrOut, "experiment: skipped %v\n", lineErr)
			continue
		}
		limit = bad.index
		stop = inputError(lineErr)
		if hint != "" {
			stop = withHint(stop, hint)
		}
		break
	}
	end := len(out)
	if limit < c.count {
		end = 0
		if limit > 0 {
			end = c.ends[limit-1]
		}
	}
	if err := b.writeUsers(out[:end]); err != nil {
		return err
	}
	for _, e := range c.exposures {
		if e.index < limit {
			b.exposures.send(e)
		}
	}
	return stop
}

// writeUsers writes complete user lines.
func (b *batch) writeUsers(out []byte) error {
	if err := b.out.Write(out); err != nil {
		return ioError(fmt.Errorf("writing output: %w", err))
	}
	return nil
}

// batchWorker evaluates chunks with reused buffers and a cache of each
// outcome's rendered JSON, so a user costs a decode, an evaluation and a copy.
// Output keys are sorted by placing each result in its flag's slot, by the
// flag's rank in key order, rather than sorting every user's results.
type batchWorker struct {
	fs       *experiment.FlagSet
	keys     []string
	results  []eval.Result
	rendered [][]byte
	rankOf   []int32  // per outcome: rank of its flag key
	slots    [][]byte // per rank: this user's rendered result, or nil
	tracking bool     // prepare each user's exposures for the writer
	counts   []int    // per eval outcome, of the users evaluated
	users    int

	budget *outputBudget
	stop   <-chan struct{} // closed when the batch stops
	credit int             // budget taken and not yet used
	guess  int             // output bytes of the last user: the next one's likely size
}

// budgetGrain is the least budget a worker takes at once, so that small
// outputs cost one lock per many users.
const budgetGrain = 64 << 10

func newBatchWorker(fs *experiment.FlagSet, keys []string) *batchWorker {
	snap := fs.Snapshot()
	sorted := slices.Sorted(slices.Values(snap.Keys()))
	rank := make(map[string]int32, len(sorted))
	for i, k := range sorted {
		rank[k] = int32(i)
	}
	w := &batchWorker{fs: fs, keys: keys, rendered: make([][]byte, snap.Outcomes()),
		rankOf: make([]int32, snap.Outcomes()), slots: make([][]byte, len(sorted)),
		counts: make([]int, snap.Outcomes())}
	for i := range w.rankOf {
		flag, _, _ := snap.Outcome(i)
		w.rankOf[i] = rank[flag]
	}
	return w
}

// newPart starts part number part of chunk c at its line first. Its
// buffer is sized for what the part will likely hold: users about the size
// of the last one, as many as the lines left or as reach partBytes. It is the
// buffer of a written part if one is that big, else a new one, taken from
// the budget before it is made.
func (w *batchWorker) newPart(c *chunk, part, first int) (*chunk, bool) {
	p := &chunk{seq: c.seq, part: part, firstLine: c.firstLine + first}
	// A part ends at the first user that takes it to partBytes. Sizes are
	// rounded up to a quarter part: room for users bigger than the last,
	// and full parts all ask for the same size, which the buffers of
	// written parts then have. A worker's first user has no last one.
	const grain = partBytes / 4
	size := grain
	if w.guess > 0 {
		users := min(len(c.lines)-first, (partBytes+w.guess-1)/w.guess)
		size = (users*w.guess + grain - 1) / grain * grain
	}
	if buf := w.budget.spareBuffer(size); buf != nil {
		p.out, p.held = buf, cap(buf)
		return p, true
	}
	if !w.take(p, size) {
		return p, false
	}
	p.out = make([]byte, 0, size)
	return p, w.charge(p)
}

// process evaluates a chunk's lines and sends its output to the writer in
// parts of about partBytes. It gives up, sending nothing more, when the
// batch stops.
func (w *batchWorker) process(c *chunk, done chan<- *chunk) {
	defer w.giveBack()
	readerBad := make(map[int]error, len(c.bad))
	for _, bad := range c.bad {
		readerBad[bad.index] = bad.err
	}
	p, ok := w.newPart(c, 0, 0)
	start := 0
	for i, line := range c.lines {
		select {
		case <-w.stop:
			ok = false
		default:
		}
		if ok && len(p.out) >= partBytes && i > start {
			p.more, p.count = true, i-start
			done <- p
			p, ok = w.newPart(c, p.part+1, i)
			start = i
		}
		if !ok {
			return
		}
		if err, bad := readerBad[i]; bad {
			p.bad = append(p.bad, lineError{i - start, err}) // an over-long line
		} else if line != nil { // nil: a blank line, no user, no output
			var err error
			if ok, err = w.user(p, line, i-start); err != nil {
				p.bad = append(p.bad, lineError{i - start, err})
			}
		}
		p.ends = append(p.ends, len(p.out))
	}
	if !ok {
		return
	}
	p.count = len(c.lines) - start
	done <- p
}

// giveBack returns the budget this worker took but did not use, so that an
// idle worker holds none.
func (w *batchWorker) giveBack() {
	if w.credit > 0 {
		w.budget.release(w.credit)
		w.credit = 0
	}
}

// take makes sure the worker holds at least n bytes of budget for part p,
// taking at least budgetGrain at once; false once the batch is stopping.
func (w *batchWorker) take(p *chunk, n int) bool {
	if n <= w.credit {
		return true
	}
	want := max(n, budgetGrain)
	if !w.budget.acquire(partKey{p.seq, p.part}, want-w.credit) {
		return false
	}
	w.credit = want
	return true
}

// charge accounts p's buffer, as it is now, to the budget. What it grew by
// comes from the credit taken for it, or is taken now: only a user bigger
// than the room made for it has grown the buffer before it is accounted.
func (w *batchWorker) charge(p *chunk) bool {
	n := cap(p.out) - p.held
	if !w.take(p, n) {
		return false
	}
	w.credit -= n
	p.held += n
	return true
}

// user evaluates one line, index index of the lines p covers, into p. ok
// is false when the batch stopped while waiting for output budget; err is
// the line's own problem.
func (w *batchWorker) user(p *chunk, line []byte, index int) (ok bool, err error) {
	user, err := decodeUsersLine(line)
	if err != nil {
		return true, err
	}
	w.results, err = w.fs.EvaluateResults(user, w.keys, w.results[:0])
	if err != nil {
		return true, err
	}
	// Make room for this user before rendering it, guessing its size from
	// the last one, and take the budget for that room first: a worker waits
	// for budget holding nothing it has not accounted. The buffer at least
	// doubles, up to a part, so that a part that began small is not copied
	// at every user.
	if room := cap(p.out) - len(p.out); room < w.guess {
		size := max(len(p.out)+w.guess+w.guess/8, min(2*cap(p.out), partBytes+w.guess))
		if !w.take(p, size-cap(p.out)) {
			return false, nil
		}
		p.out = append(make([]byte, 0, size), p.out...)
		if !w.charge(p) {
			return false, nil
		}
	}
	results := onlyRequested(w.results, w.keys)
	if w.tracking {
		p.exposures = append(p.exposures, pendingExposure{index: index, user: user, variants: variantsOf(results)})
	}
	before := len(p.out)
	for _, r := range results {
		w.slots[w.rankOf[r.Outcome]] = w.render(r)
		w.counts[r.Outcome]++
	}
	p.out = append(p.out, '{')
	first := true
	for i, b := range w.slots {
		if b == nil {
			continue
		}
		if !first {
			p.out = append(p.out, ',')
		}
		first = false
		p.out = append(p.out, b...)
		w.slots[i] = nil
	}
	p.out = append(p.out, "}\n"...)
	w.users++
	w.guess = len(p.out) - before
	return w.charge(p), nil
}

// render is `"flag":{"key":…,"value":…,"payload":…,"metadata":…}`, computed
// once per outcome: the same outcome always renders the same bytes.
func (w *batchWorker) render(r eval.Result) []byte {
	if b := w.rendered[r.Outcome]; b != nil {
		return b
	}
	var buf bytes.Buffer
	_ = writeJSON(&buf, r.FlagKey, false)
	buf.Truncate(buf.Len() - 1)
	buf.WriteByte(':')
	_ = writeJSON(&buf, experiment.VariantOf(r), false)
	buf.Truncate(buf.Len() - 1)
	w.rendered[r.Outcome] = buf.Bytes()
	return w.rendered[r.Outcome]
}
