package atomicfile

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A write killed between creating its temporary file and renaming it
// (kill -9, power loss, OOM) leaves the temporary file behind, and repeated
// kills pile them up next to caches and outputs. Each temporary file names
// the process that made it, so the next write can tell a leftover (its
// process is gone) from a concurrent writer's file (its process is alive)
// and remove only leftovers.

// staleAge is when a temporary file is a leftover whatever its name says:
// its process id may have been reused, or it may come from another host
// sharing the directory. No single write takes this long.
const staleAge = time.Hour

// tempPattern is the os.CreateTemp pattern for a temporary file of base
// made by this process: ".base.tmp-PID-RANDOM".
func tempPattern(base string) string {
	return tempPrefix(base) + strconv.Itoa(os.Getpid()) + "-*"
}

func tempPrefix(base string) string { return "." + base + ".tmp-" }

// removeStale deletes leftover temporary files of path's own naming in dir.
// It is best effort: a failure to list or remove must not fail the write
// that just succeeded, so errors are ignored.
func removeStale(dir, base string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	prefix := tempPrefix(base)
	now := time.Now()
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		full := filepath.Join(dir, name)
		st, err := os.Lstat(full)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if leftover(rest, st.ModTime(), now) {
			os.Remove(full)
		}
	}
}

// leftover tells whether a temporary file whose name ends in rest ("PID-RANDOM",
// or "RANDOM" from versions that did not record the process) was abandoned.
func leftover(rest string, modified, now time.Time) bool {
	if now.Sub(modified) > staleAge {
		return true
	}
	pidText, _, ok := strings.Cut(rest, "-")
	if !ok {
		return false // no owner recorded: only age can tell
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return false // another write of ours, in flight
	}
	return !processAlive(pid)
}
