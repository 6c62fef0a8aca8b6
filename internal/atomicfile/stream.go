package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File is a file written as a stream that replaces its target only when
// Commit succeeds: the writes go to a temporary file in the target's
// directory, which Commit syncs and renames over the target and Abort
// removes. Until Commit, an existing target is untouched, so a full disk,
// an interrupted run or a killed process never leaves it empty or half
// written. Like Write, it writes a target that is not a regular file (a
// device such as /dev/stderr or /dev/full, a FIFO) in place, and follows a
// symbolic link to a regular file. A File is not safe for concurrent use.
type File struct {
	f       *os.File
	path    string // the target, the name errors give
	inPlace bool
	perm    os.FileMode
	done    bool
}

// Create starts writing path with mode perm. It fails, naming path, when
// the temporary file cannot be created (a missing or read-only directory).
func Create(path string, perm os.FileMode) (*File, error) {
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		target, ok := regularTarget(path, st)
		if !ok {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
			if err != nil {
				return nil, err
			}
			return &File{f: f, path: path, inPlace: true, perm: perm}, nil
		}
		path = target
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPattern(filepath.Base(path)))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("writing %s: %w", path, pe.Err)
		}
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &File{f: tmp, path: path, perm: perm}, nil
}

// Write writes to the temporary file; an error names the target.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	if err != nil {
		err = fmt.Errorf("writing %s: %w", f.path, unwrapPath(err))
	}
	return n, err
}

// Commit makes what was written the target's content: the temporary file
// is synced, closed and renamed over the target, then leftovers of killed
// writes are removed. On failure the temporary file is removed and the
// target left as it was. Commit after Commit or Abort does nothing.
func (f *File) Commit() (err error) {
	if f.done {
		return nil
	}
	f.done = true
	if f.inPlace {
		if err := f.f.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, unwrapPath(err))
		}
		return nil
	}
	defer func() {
		if err != nil {
			f.f.Close()
			os.Remove(f.f.Name())
		}
	}()
	if err = f.f.Chmod(f.perm); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, unwrapPath(err))
	}
	if err = f.f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, unwrapPath(err))
	}
	if err = f.f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, unwrapPath(err))
	}
	if err = os.Rename(f.f.Name(), f.path); err != nil {
		var le *os.LinkError
		if errors.As(err, &le) {
			return fmt.Errorf("writing %s: %w", f.path, le.Err)
		}
		return err
	}
	dir := filepath.Dir(f.path)
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // so the rename itself survives a crash
		d.Close()
	}
	removeStale(dir, filepath.Base(f.path))
	return nil
}

// Abort discards what was written: the temporary file is removed and the
// target left as it was (a target written in place keeps what reached
// it). Abort after Commit or Abort does nothing.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.f.Close()
	if !f.inPlace {
		os.Remove(f.f.Name())
	}
}

// unwrapPath strips an *os.PathError, whose path would be the temporary
// file's name: errors name the target instead.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
