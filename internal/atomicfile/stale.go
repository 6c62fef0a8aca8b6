package atomicfile

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A write killed between creating its temporary file and renaming it
// (kill -9, power loss, OOM) leaves the temporary file behind, and repeated
// kills pile them up next to caches and outputs. Each temporary file names
// the host and the process that made it, so the next write can tell a
// leftover (made here, by a process that is gone) from a live writer's file
// (its process is alive, or it was made on another host sharing the
// directory, where this host cannot see its process) and remove only
// leftovers.

// staleAge is when a temporary file of another host, or of an unknown
// maker, is a leftover: no single write takes this long.
const staleAge = time.Hour

// tempPattern is the os.CreateTemp pattern for a temporary file of base
// made by this process: ".base.tmp-HOST-PID-RANDOM".
func tempPattern(base string) string {
	return tempPrefix(base) + hostTag + "-" + strconv.Itoa(os.Getpid()) + "-*"
}

func tempPrefix(base string) string { return "." + base + ".tmp-" }

// hostTag names this host in temporary file names, short and safe for a
// file name whatever the host name holds.
var hostTag = func() string {
	name, err := os.Hostname()
	if err != nil {
		name = ""
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("h%08x", h.Sum32())
}()

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

// leftover tells whether a temporary file whose name ends in rest
// ("HOST-PID-RANDOM", or an older form without them) was abandoned. On this
// host the process decides, whatever the age: a live writer may sit idle on
// a quiet input for hours. Elsewhere, or when the name says nothing, only
// age can tell.
func leftover(rest string, modified, now time.Time) bool {
	host, rest, ok := strings.Cut(rest, "-")
	pidText, _, ok2 := strings.Cut(rest, "-")
	if !ok || !ok2 || host != hostTag {
		return now.Sub(modified) > staleAge
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return now.Sub(modified) > staleAge
	}
	if pid == os.Getpid() {
		return false // another write of ours, in flight
	}
	return !processAlive(pid)
}
