// Package atomicfile writes files so that readers, crashes, a full disk or
// Ctrl-C never see half of one: the data goes to a temporary file in the
// same directory, is synced, then renamed over the target.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data, atomically, with mode perm. A symbolic
// link to a regular file is followed, so that file is replaced and the
// link kept. Anything else that is not a regular file (/dev/stdout,
// /dev/null, a FIFO, a link into /proc/self/fd) is written in place:
// renaming over it would replace the device, pipe or link with a file.
// After a successful write, temporary files of path left by killed writes
// are removed (see removeStale).
func Write(path string, data []byte, perm os.FileMode) (err error) {
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		target, ok := regularTarget(path, st)
		if !ok {
			return writeInPlace(path, data, perm)
		}
		path = target
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPattern(filepath.Base(path)))
	if err != nil {
		// Name the file asked for, not the temporary one nobody knows of:
		// "writing x.json: ... no such file or directory".
		if pe, ok := err.(*os.PathError); ok {
			return fmt.Errorf("writing %s: %w", path, pe.Err)
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		if le, ok := err.(*os.LinkError); ok {
			return fmt.Errorf("writing %s: %w", path, le.Err)
		}
		return err
	}
	// Sync the directory so the rename itself survives a crash.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	removeStale(dir, filepath.Base(path))
	return nil
}

// regularTarget is the regular file a symbolic link leads to.
func regularTarget(path string, st os.FileInfo) (string, bool) {
	if st.Mode()&os.ModeSymlink == 0 {
		return "", false
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", false
	}
	tst, err := os.Stat(target)
	return target, err == nil && tst.Mode().IsRegular()
}

func writeInPlace(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
