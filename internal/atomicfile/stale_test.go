package atomicfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// When run as a child by TestWriteRemovesTempOfKilledWriter, the test binary
// plays a writer killed mid-write: it creates its temporary file exactly as
// Write does, says so, and waits to be killed.
func TestMain(m *testing.M) {
	if target := os.Getenv("ATOMICFILE_KILLED_WRITER"); target != "" {
		f, err := os.CreateTemp(filepath.Dir(target), tempPattern(filepath.Base(target)))
		if err != nil {
			os.Exit(3)
		}
		f.WriteString("half a write")
		os.Stdout.WriteString(f.Name() + "\n")
		time.Sleep(time.Minute)
		os.Exit(4)
	}
	os.Exit(m.Run())
}

func TestWriteRemovesTempOfKilledWriter(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("liveness of a process id is not checked on Windows; only age removes leftovers")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	var leftovers []string
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ATOMICFILE_KILLED_WRITER="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, _ := out.Read(buf)
		cmd.Process.Kill()
		cmd.Wait()
		name := strings.TrimSpace(string(buf[:n]))
		if _, err := os.Stat(name); err != nil {
			t.Fatalf("the killed writer left no temporary file (%q): %v", name, err)
		}
		leftovers = append(leftovers, name)
	}
	if err := Write(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range leftovers {
		if _, err := os.Stat(name); !os.IsNotExist(err) {
			t.Errorf("leftover %s of a killed writer is still there", filepath.Base(name))
		}
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "flags.json" {
		t.Fatalf("directory holds %v, want only flags.json", names)
	}
}

// A temporary file whose process is alive is a concurrent writer's: removing
// it would make that writer's rename fail. So is a fresh one of another host
// sharing the directory. Files of other names are not ours.
func TestWriteKeepsOthersFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	alive := filepath.Join(dir, ".flags.json.tmp-"+hostTag+"-"+itoa(os.Getppid())+"-123")
	otherHost := filepath.Join(dir, ".flags.json.tmp-h00000000-999999999-1")
	legacyFresh := filepath.Join(dir, ".flags.json.tmp-456")
	otherTarget := filepath.Join(dir, ".cohort.json.tmp-"+hostTag+"-999999999-1")
	unrelated := filepath.Join(dir, "notes.txt")
	for _, f := range []string{alive, otherHost, legacyFresh, otherTarget, unrelated} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Write(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{alive, otherHost, legacyFresh, otherTarget, unrelated} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(f), err)
		}
	}
}

func TestLeftover(t *testing.T) {
	now := time.Now()
	fresh, old := now.Add(-time.Second), now.Add(-2*staleAge)
	here := hostTag + "-"
	cases := []struct {
		rest     string
		modified time.Time
		want     bool
	}{
		{here + "999999999-1", fresh, true},              // no such process here
		{here + itoa(os.Getpid()) + "-1", fresh, false},  // our own write in flight
		{here + itoa(os.Getppid()) + "-1", fresh, false}, // a live process
		{here + itoa(os.Getppid()) + "-1", old, false},   // live, idle for hours: still live
		{"h00000000-999999999-1", fresh, false},          // another host: its process is not ours to see
		{"h00000000-999999999-1", old, true},             // too old for any write
		{"123456", fresh, false},                         // an older version's name: age only
		{"123456", old, true},                            //
		{here + "x-1", fresh, false},                     // not a process id
		{here + "x-1", old, true},                        //
	}
	for _, c := range cases {
		if strings.HasPrefix(c.rest, here+"999999999") && runtime.GOOS == "windows" {
			continue
		}
		if got := leftover(c.rest, c.modified, now); got != c.want {
			t.Errorf("leftover(%q, %v old) = %v, want %v", c.rest, now.Sub(c.modified).Round(time.Second), got, c.want)
		}
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func itoa(n int) string { return strconv.Itoa(n) }
