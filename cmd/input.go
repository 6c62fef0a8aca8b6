package cmd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/flagkit/experiment/internal/cli"
)

// Reading what the user gives (stdin, files, pipes) so that Ctrl-C and
// SIGTERM always end the command. A read from a terminal or a pipe blocks in
// the kernel until data comes, and nothing in Go interrupts it: a command
// blocked there would ignore the signal for as long as the producer stalls.
// So every such read goes through a cancelReader, which does the blocking
// read in a goroutine and stops waiting for it when the command's context
// ends. The abandoned goroutine stays blocked on the descriptor, which is
// harmless: the command returns and the process exits (130) at once.

// maxReadSize bounds one read of a cancelReader, and so its buffer.
const maxReadSize = 256 << 10

// cancelReader is an io.Reader whose Read returns the context's error as
// soon as the context ends, even while the underlying read is blocked.
// After an error (io.EOF included) it returns that error again without
// reading: a terminal is not read past the end the user typed.
type cancelReader struct {
	ctx     context.Context
	r       io.Reader
	buf     []byte // the reading goroutine's, while pending
	rest    []byte // read from r but not yet returned
	pending bool   // a read of r is in progress
	results chan readResult
	err     error
}

type readResult struct {
	n   int
	err error
}

func newCancelReader(ctx context.Context, r io.Reader) *cancelReader {
	return &cancelReader{ctx: ctx, r: r, results: make(chan readResult, 1)}
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if !c.pending {
		// The goroutine reads into a buffer of its own, never into p: after
		// a cancel the caller may reuse p while the read still completes.
		size := min(len(p), maxReadSize)
		if len(c.buf) < size {
			c.buf = make([]byte, size)
		}
		buf := c.buf[:size]
		c.pending = true
		go func() {
			n, err := c.r.Read(buf)
			c.results <- readResult{n, err}
		}()
	}
	select {
	case res := <-c.results:
		c.pending = false
		n := copy(p, c.buf[:res.n])
		c.rest = c.buf[n:res.n]
		c.err = res.err
		if len(c.rest) > 0 {
			return n, nil
		}
		return n, res.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}

// inputContext is the context that reads done for a command stop at: the
// one its stdin carries (Main wraps stdin in a cancelReader), so that the
// single-user flags, which get only stdin, read their @FILE the same way.
func inputContext(stdin io.Reader) context.Context {
	if c, ok := stdin.(*cancelReader); ok {
		return c.ctx
	}
	return context.Background()
}

// openInput opens a file the user named for reading. Opening can block too
// (a named pipe waits for its writer), so it is given up when ctx ends.
func openInput(ctx context.Context, path string) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		return o.f, o.err
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.f != nil {
				o.f.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// readInput reads a whole file the user named, refusing one larger than
// limit, and gives up when ctx ends.
func readInput(ctx context.Context, path string, limit int64) ([]byte, error) {
	f, err := openInput(ctx, path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// Missing or not, a file that cannot be opened is an I/O
		// failure (exit 6): its content was never seen.
		return nil, ioError(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, inputError(fmt.Errorf("%s: is a directory, want a file", path))
	}
	data, err := io.ReadAll(io.LimitReader(newCancelReader(ctx, f), limit+1))
	if err != nil {
		return nil, ioError(fmt.Errorf("%s: %w", path, err))
	}
	if int64(len(data)) > limit {
		return nil, inputError(fmt.Errorf("%s: larger than %d MiB", path, limit>>20))
	}
	return data, nil
}

// errLineTooLong is a line of JSON Lines input longer than maxLineBytes.
var errLineTooLong = fmt.Errorf("longer than %d MiB", maxLineBytes>>20)

// lineReader splits JSON Lines input (evaluate --users, fetch --users) into
// lines, the same way for every command: "\n" or "\r\n" ends a line, the
// last line may have no end, and a line longer than the limit is refused as
// soon as the limit is passed, without holding more of it.
type lineReader struct {
	r     *bufio.Reader
	limit int
	line  int  // number of the line last returned, 1-based
	skip  bool // the last line was too long: its rest is still to be read
	err   error
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, maxReadSize), limit: maxLineBytes}
}

// next returns the next line without its line end, as a copy the caller
// keeps; io.EOF after the last line. A line longer than the limit is
// errLineTooLong, returned as soon as the limit is passed: a caller that
// goes on calls next again, which first reads the rest of that line up to
// its newline, without keeping it.
func (lr *lineReader) next() ([]byte, error) {
	if lr.skip {
		lr.skip = false
		for lr.err == nil {
			_, err := lr.r.ReadSlice('\n')
			if err != bufio.ErrBufferFull {
				lr.err = err
				break
			}
		}
	}
	if lr.err != nil {
		return nil, lr.err
	}
	var buf []byte
	for {
		frag, err := lr.r.ReadSlice('\n')
		n := len(buf) + len(frag)
		if err == nil {
			// The line end is not part of the line.
			n--
			if len(frag) > 1 && frag[len(frag)-2] == '\r' {
				n--
			}
		}
		if n > lr.limit {
			lr.line++
			switch err {
			case bufio.ErrBufferFull:
				lr.skip = true
			case nil:
			default:
				lr.err = err
			}
			return nil, errLineTooLong
		}
		buf = append(buf, frag...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			lr.err = err
			if len(buf) == 0 {
				return nil, err
			}
		case err != nil:
			lr.err = err
			return nil, err
		}
		lr.line++
		line := bytes.TrimRight(buf, "\r\n")
		if line == nil {
			line = []byte{}
		}
		return line, nil
	}
}

// usersInput is the --users input of evaluate and fetch: JSON Lines from a
// file or stdin, read under the command's context, split by one lineReader
// so that both commands number lines, report over-long lines and read
// failures alike.
type usersInput struct {
	name  string // the file, or "stdin", for errors
	size  int64  // bytes, for a progress bar; 0 when unknown (stdin)
	r     io.Reader
	lines *lineReader
	close func()
}

// openUsers opens --users (path, or - for stdin): a read blocked on a
// stalled pipe or terminal ends with ctx. A missing or unreadable file is
// exit 6 naming the option; a directory is exit 3.
func openUsers(ctx context.Context, ios *cli.IOStreams, path string) (*usersInput, error) {
	if path == "-" {
		return &usersInput{name: "stdin", r: newCancelReader(ctx, ios.In), close: func() {}}, nil
	}
	f, err := openInput(ctx, path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, namedFileError("--users", path, err)
	}
	in := &usersInput{name: path, r: newCancelReader(ctx, f), close: func() { f.Close() }}
	if st, err := f.Stat(); err == nil {
		if st.IsDir() {
			f.Close()
			return nil, inputError(fmt.Errorf("--users %s: is a directory", path))
		}
		in.size = st.Size()
	}
	return in, nil
}

// countReads makes the input count what is read into a progress bar; it
// must come before the first line is read.
func (in *usersInput) countReads(p *cli.Progress) { in.r = p.CountReads(in.r) }

// next returns the next line, without its line end, and its number (from
// 1); io.EOF after the last. A line over maxLineBytes is errLineTooLong,
// an invalid line: reading may go on after it. Any other error is a read
// failure, exit 6 naming the line it stopped at.
func (in *usersInput) next() (int, []byte, error) {
	if in.lines == nil {
		in.lines = newLineReader(in.r)
	}
	data, err := in.lines.next()
	switch {
	case err == nil, err == io.EOF, errors.Is(err, errLineTooLong):
		return in.lines.line, data, err
	}
	return in.lines.line + 1, nil, ioError(fmt.Errorf("%s: line %d: %w", in.name, in.lines.line+1, err))
}
