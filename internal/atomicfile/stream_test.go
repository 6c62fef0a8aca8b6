package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// entries lists dir's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCreateReplacesTheTargetOnlyOnCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(path, []byte("old contents\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"one\n", "two\n"} {
		if _, err := f.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	// Mid-stream, the target is whole and the old one.
	if got, _ := os.ReadFile(path); string(got) != "old contents\n" {
		t.Fatalf("target before Commit: %q", got)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "one\ntwo\n" {
		t.Fatalf("target after Commit: %q", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", st.Mode())
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Fatalf("temporary files left: %v", names)
	}
	if err := f.Commit(); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	f.Abort() // after Commit: nothing
	if got, _ := os.ReadFile(path); string(got) != "one\ntwo\n" {
		t.Fatalf("Abort after Commit changed the target: %q", got)
	}
}

func TestCreateAbortLeavesTheTargetAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("partial"))
	f.Abort()
	if got, _ := os.ReadFile(path); string(got) != "keep" {
		t.Fatalf("target: %q", got)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Fatalf("temporary files left: %v", names)
	}

	// A new file that is aborted is never created.
	fresh := filepath.Join(dir, "new.jsonl")
	if f, err = Create(fresh, 0o644); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	f.Abort()
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("aborted new file exists: %v", err)
	}
}

func TestCreateNamesTheTarget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "events.jsonl")
	_, err := Create(path, 0o644)
	if want := "writing " + path + ": no such file or directory"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

// TestCreateDeviceIsWrittenInPlace: /dev/full stands for a full disk; a
// device is written, never replaced, and the write error names it.
func TestCreateDeviceIsWrittenInPlace(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	f, err := Create("/dev/full", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write([]byte("event\n"))
	if !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "writing /dev/full: ") {
		t.Fatalf("write error %v, want ENOSPC naming /dev/full", err)
	}
	f.Abort()
	if st, err := os.Stat("/dev/full"); err != nil || st.Mode().IsRegular() {
		t.Fatalf("/dev/full was replaced: %v %v", st, err)
	}
}

// TestCreateFollowsALinkToAFile: the file the link names is replaced on
// Commit, and the link kept.
func TestCreateFollowsALinkToAFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.jsonl")
	link := filepath.Join(dir, "link.jsonl")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	f, err := Create(link, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("new"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", st, err)
	}
	if got, _ := os.ReadFile(target); string(got) != "new" {
		t.Fatalf("target holds %q", got)
	}
}
