package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// configLockWait bounds how long config set and unset wait for another
// process writing the same config file: a writer holds the lock for a
// read, a marshal and an atomic write, milliseconds.
const configLockWait = 10 * time.Second

// lockConfig serialises the read-modify-write of the config file at path
// across processes, so that concurrent `config set`s each keep the
// others' settings. The lock is on a file of its own beside the config,
// path + ".lock": the config itself is replaced by a rename on every
// write, and a lock on the file being replaced would not be seen by a
// process that opens the new one. The lock file is left in place;
// removing it could let two processes lock two different files. Readers
// take no lock: the rename gives them the old file or the new, whole.
func lockConfig(ctx context.Context, path string) (unlock func(), err error) {
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, ioError(fmt.Errorf("config lock %s: %w", lockPath, err))
	}
	deadline := time.Now().Add(configLockWait)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		locked, err := tryLockFile(f)
		switch {
		case err != nil:
			f.Close()
			return nil, ioError(fmt.Errorf("config lock %s: %w", lockPath, err))
		case locked:
			return func() {
				unlockFile(f)
				f.Close()
			}, nil
		case time.Now().After(deadline):
			f.Close()
			return nil, ioError(fmt.Errorf("config lock %s: %w", lockPath, errLockBusy))
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

var errLockBusy = errors.New("held by another process for " + configLockWait.String() + "; is another experiment config command stuck?")
