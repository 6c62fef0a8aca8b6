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

	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// The batch contract: one output line per input user, in input order,
// streaming with flat memory, all cores busy. Lines travel in chunks; a
// bounded number of chunks is in flight, so memory does not grow with the
// input, and an ordered writer puts them back in sequence.
const (
	chunkLines   = 64
	chunkBytes   = 1 << 20
	maxLineBytes = 64 << 20
)

type chunk struct {
	seq       int
	firstLine int      // 1-based line number of lines[0]
	lines     [][]byte // nil entries are blank lines
	out       *bytes.Buffer
	ends      []int // out offset after each line's output
	bad       []lineError
	counts    []int // per eval outcome
	users     int
	count     int // len(lines), kept after lines are freed
}

type lineError struct {
	index int // into lines
	err   error
}

func runBatch(parent context.Context, opts *evaluateOptions, fs *experiment.FlagSet) error {
	// A dependency cycle fails every evaluation: say so once, up front.
	if _, err := fs.EvaluateResults(&experiment.User{}, opts.Keys, nil); err != nil {
		return evalError(opts.Source.name(), err)
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	in, name, size, closeIn, err := openUsers(ctx, opts)
	if err != nil {
		return err
	}
	defer closeIn()

	b := &batch{opts: opts, fs: fs, name: name, json: opts.output() == "json",
		counts: make([]int, fs.Snapshot().Outcomes())}
	if opts.Progress && opts.IO.ProgressErr() {
		b.progress = newProgress(opts.IO.ErrOut, size, opts.IO.ColorErr())
	}
	workers := runtime.GOMAXPROCS(0)
	tokens := make(chan struct{}, 2*workers)
	jobs := make(chan *chunk, workers)
	done := make(chan *chunk, 2*workers)
	readErr := make(chan error, 1)

	go func() { readErr <- b.read(ctx, in, jobs, tokens) }()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newBatchWorker(fs, opts.Keys)
			w.exposures = opts.exposures.in(ctx) // a wait for the event queue ends with the run
			for c := range jobs {
				w.process(c)
				done <- c
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	werr := b.write(done, tokens)
	cancel()
	for range done { // drain so workers can exit
	}
	rerr := <-readErr
	b.progress.finish()
	if werr == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		werr = rerr
	}
	if werr == nil && parent.Err() != nil {
		werr = parent.Err() // interrupted: what was written is whole lines
	}
	if err := b.finishOutput(werr); err != nil && werr == nil {
		werr = err
	}
	if werr == nil && opts.Stats {
		werr = b.printStats()
	}
	return werr
}

// openUsers opens --users for reading under ctx: a read blocked on a
// stalled pipe or terminal ends with the batch.
func openUsers(ctx context.Context, opts *evaluateOptions) (r io.Reader, name string, size int64, closeFn func(), err error) {
	if opts.UsersFile == "-" {
		return newCancelReader(ctx, opts.IO.In), "stdin", 0, func() {}, nil
	}
	f, err := openInput(ctx, opts.UsersFile)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", 0, nil, err
		}
		return nil, "", 0, nil, fileError(err)
	}
	if st, err := f.Stat(); err == nil {
		if st.IsDir() {
			f.Close()
			return nil, "", 0, nil, inputError(fmt.Errorf("--users %s: is a directory", opts.UsersFile))
		}
		size = st.Size()
	}
	return newCancelReader(ctx, f), opts.UsersFile, size, func() { f.Close() }, nil
}

type batch struct {
	opts     *evaluateOptions
	fs       *experiment.FlagSet
	name     string
	json     bool // a JSON array rather than JSON Lines
	written  int  // users written so far
	counts   []int
	users    int
	progress *progress
}

// read splits the input into chunks. A line longer than maxLineBytes is
// reported as soon as it passes the limit: without --skip-invalid it is the
// last line read, and with it the rest of the line is read but not kept.
func (b *batch) read(ctx context.Context, in io.Reader, jobs chan<- *chunk, tokens chan struct{}) error {
	defer close(jobs)
	if b.progress != nil {
		in = progressReader{in, b.progress}
	}
	lines := newLineReader(in)
	seq := 0
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
		c = &chunk{firstLine: lines.line + 1}
		size = 0
		return true
	}
	for {
		data, err := lines.next()
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
			return ioError(fmt.Errorf("%s: line %d: %w", b.name, lines.line+1, err))
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

// progressReader counts the bytes read for the progress bar.
type progressReader struct {
	r io.Reader
	p *progress
}

func (r progressReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.p.add(n)
	return n, err
}

// write emits chunks in sequence. The first invalid line, unless skipped,
// ends the output after the lines before it.
func (b *batch) write(done <-chan *chunk, tokens <-chan struct{}) error {
	pending := map[int]*chunk{}
	next := 0
	if b.json {
		if _, err := io.WriteString(b.opts.IO.Out, "["); err != nil {
			return ioError(err)
		}
	}
	for c := range done {
		pending[c.seq] = c
		for {
			c, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-tokens
			err := b.emit(c)
			outBuffers.Put(c.out)
			c.out = nil
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *batch) emit(c *chunk) error {
	out := c.out.Bytes()
	limit := c.count
	var stop error
	for _, bad := range c.bad {
		where := fmt.Sprintf("%s:%d", b.name, c.firstLine+bad.index)
		if b.opts.SkipInvalid {
			fmt.Fprintf(b.opts.IO.ErrOut, "experiment: skipped %s: %v\n", where, bad.err)
			continue
		}
		limit = bad.index
		stop = inputError(fmt.Errorf("%s: %w", where, bad.err))
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
	if stop != nil {
		return stop
	}
	b.users += c.users
	for i, n := range c.counts {
		b.counts[i] += n
	}
	return nil
}

// writeUsers writes complete user lines; in JSON array form they are
// separated by commas.
func (b *batch) writeUsers(out []byte) error {
	if len(out) == 0 {
		return nil
	}
	var err error
	if b.json {
		for _, line := range bytes.SplitAfter(out, []byte{'\n'}) {
			if len(line) == 0 {
				continue
			}
			sep := ",\n"
			if b.written == 0 {
				sep = "\n"
			}
			b.written++
			if _, err = io.WriteString(b.opts.IO.Out, sep); err == nil {
				_, err = b.opts.IO.Out.Write(bytes.TrimSuffix(line, []byte{'\n'}))
			}
			if err != nil {
				break
			}
		}
	} else {
		_, err = b.opts.IO.Out.Write(out)
	}
	if err != nil {
		return ioError(fmt.Errorf("writing output: %w", err))
	}
	return nil
}

// finishOutput closes the JSON array, even after a failure: what was
// written stays valid JSON, and the exit code says the run failed.
func (b *batch) finishOutput(_ error) error {
	if !b.json {
		return nil
	}
	tail := "]\n"
	if b.written > 0 {
		tail = "\n]\n"
	}
	if _, err := io.WriteString(b.opts.IO.Out, tail); err != nil {
		return ioError(fmt.Errorf("writing output: %w", err))
	}
	return nil
}

// batchWorker evaluates chunks with reused buffers and a cache of each
// outcome's rendered JSON, so a user costs a decode, an evaluation and a copy.
// Output keys are sorted by placing each result in its flag's slot, by the
// flag's rank in key order, rather than sorting every user's results.
type batchWorker struct {
	fs        *experiment.FlagSet
	keys      []string
	results   []eval.Result
	rendered  [][]byte
	rankOf    []int32  // per outcome: rank of its flag key
	slots     [][]byte // per rank: this user's rendered result, or nil
	exposures *exposureSink
}

func newBatchWorker(fs *experiment.FlagSet, keys []string) *batchWorker {
	snap := fs.Snapshot()
	sorted := slices.Sorted(slices.Values(snap.Keys()))
	rank := make(map[string]int32, len(sorted))
	for i, k := range sorted {
		rank[k] = int32(i)
	}
	w := &batchWorker{fs: fs, keys: keys, rendered: make([][]byte, snap.Outcomes()),
		rankOf: make([]int32, snap.Outcomes()), slots: make([][]byte, len(sorted))}
	for i := range w.rankOf {
		flag, _, _ := snap.Outcome(i)
		w.rankOf[i] = rank[flag]
	}
	return w
}

// outBuffers recycles chunk output buffers: a user's output can be tens of
// kilobytes, and growing fresh buffers for every chunk dominated the profile.
var outBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (w *batchWorker) process(c *chunk) {
	c.out = outBuffers.Get().(*bytes.Buffer)
	c.out.Reset()
	c.counts = make([]int, len(w.rendered))
	c.ends = make([]int, len(c.lines))
	skip := make([]bool, len(c.lines))
	for _, bad := range c.bad {
		skip[bad.index] = true
	}
	for i, line := range c.lines {
		switch {
		case skip[i]:
			// already reported: over-long line
		case line == nil:
			// blank line: no user, no output
		default:
			if err := w.user(c, line); err != nil {
				c.bad = append(c.bad, lineError{i, err})
			}
		}
		c.ends[i] = c.out.Len()
	}
	slices.SortFunc(c.bad, func(a, b lineError) int { return a.index - b.index })
	c.count = len(c.lines)
	c.lines = nil // the input is no longer needed; free it before the writer runs
}

func (w *batchWorker) user(c *chunk, line []byte) error {
	user, err := experiment.DecodeUser(line)
	if err != nil {
		if errors.Is(err, experiment.ErrNotObject) {
			return errors.New("not a JSON object")
		}
		return err
	}
	w.results, err = w.fs.EvaluateResults(user, w.keys, w.results[:0])
	if err != nil {
		return err
	}
	results := onlyRequested(w.results, w.keys)
	w.exposures.track(user, results)
	for _, r := range results {
		w.slots[w.rankOf[r.Outcome]] = w.render(r)
		c.counts[r.Outcome]++
	}
	c.out.WriteByte('{')
	first := true
	for i, b := range w.slots {
		if b == nil {
			continue
		}
		if !first {
			c.out.WriteByte(',')
		}
		first = false
		c.out.Write(b)
		w.slots[i] = nil
	}
	c.out.WriteString("}\n")
	c.users++
	return nil
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
