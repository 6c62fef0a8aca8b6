package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	if err := os.WriteFile(path, []byte("old contents that are longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "new" {
		t.Fatalf("got %q", got)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestWriteFailureLeavesTargetAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing-dir", "f.json")
	err := Write(path, []byte("x"), 0o600)
	if err == nil {
		t.Fatal("want an error for a missing directory")
	}
	// The error names the file asked for, never the temporary file.
	if want := "writing " + path + ": no such file or directory"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	target := filepath.Join(dir, "f.json")
	os.WriteFile(target, []byte("keep"), 0o644)
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if os.Geteuid() != 0 { // root ignores directory permissions
		if err := Write(target, []byte("x"), 0o600); err == nil {
			t.Fatal("want an error for a read-only directory")
		}
		if got, _ := os.ReadFile(target); string(got) != "keep" {
			t.Fatalf("target changed: %q", got)
		}
	}
}

func TestWriteKeepsDevicesAndLinks(t *testing.T) {
	if err := Write(os.DevNull, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(os.DevNull); err != nil || st.Mode().IsRegular() {
		t.Fatalf("%s was replaced: %v %v", os.DevNull, st, err)
	}

	dir := t.TempDir()
	target := filepath.Join(dir, "target.json")
	link := filepath.Join(dir, "link.json")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if err := Write(link, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", st, err)
	}
	if got, _ := os.ReadFile(target); string(got) != "new" {
		t.Fatalf("target holds %q", got)
	}
}

// A link that does not lead to a regular file (like /dev/stdout's link to
// a pipe in /proc/self/fd) is written through, never replaced.
func TestWriteThroughLinkToNonRegular(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "stdout")
	if err := os.Symlink(os.DevNull, link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if err := Write(link, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", st, err)
	}
	if err := Write(dir, []byte("x"), 0o600); err == nil {
		t.Fatal("writing over a directory: want an error")
	}
}
