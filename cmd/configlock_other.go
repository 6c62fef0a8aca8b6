//go:build !unix && !windows

package cmd

import "os"

// tryLockFile does not lock where the system has no file locks this
// package knows (Plan 9, WebAssembly): there, config set and unset run at
// the same time may lose one another's settings.
func tryLockFile(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) {}
