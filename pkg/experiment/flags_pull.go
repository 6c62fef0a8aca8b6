package experiment

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/flagkit/experiment/internal/atomicfile"
	"github.com/flagkit/experiment/pkg/eval"
)

// PullFlagConfigs downloads the deployment's flag configs into the cache
// directory, checking each flag as the response streams to disk: however
// large the configs, they are never held in memory, and the cache file is
// replaced only by a complete, valid flag list. Failures are retried as
// FetchFlagConfigs retries them. When out is not nil it then receives the
// flag list exactly as the server sent it (the body of GET /sdk/v2/flags).
// It returns the number of flags. A cache that cannot be written is a
// *CacheError; a failed download a *FlagsError.
func (c *LocalClient) PullFlagConfigs(ctx context.Context, out io.Writer) (int, error) {
	if c.s.cacheDir == "" {
		return 0, errors.New("pull: no cache directory configured")
	}
	path := FlagCachePath(c.s.cacheDir, string(c.key))
	// A pull is a one-off command's: nothing listening is final at once.
	policy := c.flagFetchPolicy()
	policy.final = refused
	n, f, attempts, _ := retry(ctx, policy, func(ctx context.Context, _ int) (int, *attemptFailure) {
		return c.attemptPull(ctx, path)
	})
	if f != nil {
		if ce := (*CacheError)(nil); errors.As(f.err, &ce) {
			return 0, ce // not the server's doing: no URL, no attempts
		}
		return 0, c.flagsError(f, attempts)
	}
	if out == nil {
		return n, nil
	}
	r, err := openCachedFlags(path)
	if err != nil {
		return n, err
	}
	defer r.Close()
	// A write error is out's, as it is; a read error the cache's.
	if _, err := io.Copy(out, cacheReader{r, path}); err != nil {
		return n, err
	}
	return n, nil
}

type cacheReader struct {
	r    io.Reader
	path string
}

func (r cacheReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = &CacheError{Path: r.path, Err: unwrapPath(err)}
	}
	return n, err
}

// attemptPull is one download streamed into a new cache file: the flags
// are checked on the way and discarded once checked.
func (c *LocalClient) attemptPull(ctx context.Context, path string) (int, *attemptFailure) {
	n := 0
	f := c.getFlagConfigs(ctx, func(body io.Reader, _ int64) error {
		// Made only now: a pull that gets no flags leaves nothing behind.
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return &CacheError{Path: path, Writing: true, Err: unwrapPath(err)}
		}
		file, err := atomicfile.Create(path, 0o600)
		if err != nil {
			return &CacheError{Path: path, Writing: true, Err: unwrapWriting(err)}
		}
		w := bufio.NewWriterSize(cacheWriter{file, path}, 64<<10)
		w.Write(envelopeHead(time.Now(), c.s.redactedFlagsURL))
		// A write error reaches the decoder as a read error of the tee,
		// and comes back from it as it is: a *CacheError.
		n, err = eval.DecodeFlagsStream(io.TeeReader(body, w), func(*eval.Flag) error { return nil })
		if err == nil {
			w.WriteString(envelopeTail)
			err = w.Flush()
		}
		if err == nil {
			if err = file.Commit(); err != nil {
				err = &CacheError{Path: path, Writing: true, Err: unwrapWriting(err)}
			}
		}
		if err != nil {
			file.Abort()
		}
		return err
	})
	return n, f
}

// cacheWriter makes the errors of writing a cache file *CacheError.
type cacheWriter struct {
	f    *atomicfile.File
	path string
}

func (w cacheWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = &CacheError{Path: w.path, Writing: true, Err: unwrapWriting(err)}
	}
	return n, err
}

// unwrapWriting drops the "writing PATH: " of atomicfile's errors: a
// CacheError names the path itself.
func unwrapWriting(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		return inner
	}
	return err
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// openCachedFlags reads the flags of a snapshot exactly as they were
// written, from the file, without holding them in memory.
func openCachedFlags(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &CacheError{Path: path, Err: unwrapPath(err)}
	}
	start, end, err := cachedFlagsSpan(f)
	if err != nil {
		f.Close()
		return nil, &CacheError{Path: path, Corrupt: true, Err: err}
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, start, end-start), f}, nil
}

// cachedFlagsSpan finds the flags value of a snapshot file: its header is
// read token by token, the flags' end found from the end of the file.
func cachedFlagsSpan(f *os.File) (int64, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size := st.Size()
	dec := json.NewDecoder(io.NewSectionReader(f, 0, size))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, 0, errors.New("not a flag snapshot")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, err
		}
		if tok != "flags" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return 0, 0, err
			}
			continue
		}
		// The flags are exactly the bytes from the colon after the key to
		// the closing brace, which ends the file: the writer's layout.
		const window = 256
		afterKey := dec.InputOffset()
		head := make([]byte, min(window, size-afterKey))
		if _, err := f.ReadAt(head, afterKey); err != nil {
			return 0, 0, err
		}
		start, end := flagsSpan(head, size-afterKey)
		if start < 0 {
			return 0, 0, errors.New("flags are not laid out as written")
		}
		last := make([]byte, len(envelopeTail))
		if _, err := f.ReadAt(last, size-int64(len(last))); err != nil || string(last) != envelopeTail {
			return 0, 0, errors.New("flags are not the last member")
		}
		return afterKey + start, afterKey + end, nil
	}
	return 0, 0, errors.New("no flags")
}
