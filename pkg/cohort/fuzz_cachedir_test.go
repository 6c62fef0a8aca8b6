package cohort

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzLoadDir reads a cohort cache directory holding one fuzzed file under a
// fuzzed id, asked for by id and by listing the directory: one-line errors,
// and a cohort that loads saves and loads again the same.
func FuzzLoadDir(f *testing.F) {
	for _, id := range []string{"k3v9qa", "x7m2pd"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "cohorts", id+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(id, data)
		f.Add(id+"x", data) // holds another cohort than its name says
	}
	for _, s := range [][2]string{
		{"a", `{"cohortId":"a","memberIds":[]}`}, {"a", `{"cohortId":"a","groupType":"org id","memberIds":["acme-corp",null]}`},
		{"a", ``}, {"a", `{}`}, {"a", `[]`}, {"a", `{"cohortId":"a","memberIds":"x"}`}, {".hidden", `{"cohortId":".hidden"}`},
		{"../up", `{"cohortId":"../up"}`}, {"a\nb", `{"cohortId":"a\nb"}`}, {"a b", `{"cohortId":"a b","memberIds":["\u00e9"]}`},
		{"", `{"cohortId":""}`}, {"nul\x00", `{}`}, {"c:d", `{}`}, {"\xff", "{\"cohortId\":\"\xff\"}"},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, id string, data []byte) {
		dir := t.TempDir()
		if path, err := cohortPath(dir, id); err == nil {
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Skip("the file system refuses the name:", err)
			}
		}
		for _, ids := range [][]string{{id}, nil} {
			store, errs := LoadDir(dir, ids)
			for _, err := range errs {
				if msg := err.Error(); strings.TrimSpace(msg) == "" || strings.ContainsAny(msg, "\r\n") {
					t.Fatalf("LoadDir(%q): error %q", ids, msg)
				}
			}
			if len(errs)+store.Len() != 1 && ids != nil {
				t.Fatalf("LoadDir(%q): %d cohorts and %d errors", ids, store.Len(), len(errs))
			}
			for _, c := range store.Cohorts() {
				if c.ID != id {
					t.Fatalf("file %q loaded as cohort %q", id, c.ID)
				}
				again := t.TempDir()
				if err := SaveDir(again, c); err != nil {
					t.Fatalf("SaveDir of a loaded cohort: %v", err)
				}
				back, errs := LoadDir(again, nil)
				if len(errs) > 0 || back.Len() != 1 {
					t.Fatalf("saved cohort does not load: %v", errs)
				}
				d := back.Get(id)
				if d == nil || d.GroupType != c.GroupType || d.GroupTypeID != c.GroupTypeID || d.LastModified != c.LastModified ||
					d.Size != c.Size || !slices.Equal(slices.Collect(d.Members()), slices.Collect(c.Members())) {
					t.Fatalf("cohort %q changed in a save and load", id)
				}
			}
		}
	})
}
