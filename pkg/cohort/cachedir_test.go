package cohort_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cohort"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache", "cohorts")
	var want []*cohort.Cohort
	for _, f := range conformanceFiles(t) {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		c, err := cohort.Decode(body)
		require.NoError(t, err)
		require.NoError(t, cohort.SaveDir(dir, c))
		want = append(want, c)

		// The file is the download API body: the same document as the
		// original, plus groupTypeId.
		saved, err := os.ReadFile(filepath.Join(dir, c.ID+".json"))
		require.NoError(t, err)
		var orig, got map[string]any
		require.NoError(t, json.Unmarshal(body, &orig))
		require.NoError(t, json.Unmarshal(saved, &got))
		orig["groupTypeId"] = float64(0)
		assert.Equal(t, orig, got, c.ID)
	}
	ids := make([]string, len(want))
	for i, c := range want {
		ids[i] = c.ID
	}

	store, errs := cohort.LoadDir(dir, ids)
	require.Empty(t, errs)
	all, errs := cohort.LoadDir(dir, nil)
	require.Empty(t, errs)
	assert.Equal(t, store.IDs(), all.IDs())
	for _, w := range want {
		for _, s := range []*cohort.Store{store, all} {
			got := s.Get(w.ID)
			require.NotNil(t, got, w.ID)
			assert.Equal(t, w.GroupType, got.GroupType)
			assert.Equal(t, w.LastModified, got.LastModified)
			assert.Equal(t, w.Size, got.Size)
			assert.Equal(t, slices.Collect(w.Members()), slices.Collect(got.Members()))
		}
	}

	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	st, err = os.Stat(filepath.Join(dir, ids[0]+".json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestSaveDirAtomic(t *testing.T) {
	dir := t.TempDir()
	for i := range 5 {
		members := make([]string, 1000*(i+1))
		for j := range members {
			members[j] = strings.Repeat("x", j%7) + string(rune('a'+j%26))
		}
		require.NoError(t, cohort.SaveDir(dir, mustNew(t, "c1", "", int64(i), members)))
	}
	require.NoError(t, cohort.SaveDir(dir, mustNew(t, "c2", "", 1, []string{"a"})))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"c1.json", "c2.json"}, names, "no temporary files left")
	store, errs := cohort.LoadDir(dir, nil)
	require.Empty(t, errs)
	assert.Equal(t, int64(4), store.Get("c1").LastModified)

	// A failed write leaves the old file whole and nothing else.
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	require.NoError(t, os.Chmod(dir, 0o500))
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	err = cohort.SaveDir(dir, mustNew(t, "c2", "", 2, []string{"b"}))
	require.ErrorIs(t, err, fs.ErrPermission)
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2)
	store, errs = cohort.LoadDir(dir, []string{"c2"})
	require.Empty(t, errs)
	assert.True(t, store.Get("c2").Has("a"))
}

func TestLoadDirErrors(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, cohort.SaveDir(dir, mustNew(t, "good", "", 1, []string{"u"})))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{"cohortId":"broken","memberIds":[`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "renamed.json"), []byte(`{"cohortId":"other","memberIds":[]}`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".good.json.tmp-123"), []byte(`junk`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte(`junk`), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub.json"), 0o700))

	store, errs := cohort.LoadDir(dir, []string{"good", "missing", "broken", "renamed", "../good", "", ".good", "good"})
	assert.Equal(t, []string{"good"}, store.IDs())
	require.Len(t, errs, 6)
	assert.ErrorIs(t, errs[0], fs.ErrNotExist)
	assert.ErrorContains(t, errs[0], filepath.Join(dir, "missing.json"))
	assert.ErrorIs(t, errs[1], cohort.ErrMalformed)
	assert.ErrorContains(t, errs[1], filepath.Join(dir, "broken.json")+": malformed cohort: offset 34: unexpected end of JSON input")
	assert.ErrorIs(t, errs[2], cohort.ErrMalformed)
	assert.ErrorContains(t, errs[2], `holds cohort "other"`)
	for _, err := range errs[3:] {
		assert.ErrorIs(t, err, cohort.ErrBadID)
	}
	// Each error says which cohort lost its copy.
	for i, id := range []string{"missing", "broken", "renamed", "../good", "", ".good"} {
		var fe *cohort.FileError
		require.ErrorAs(t, errs[i], &fe)
		assert.Equal(t, id, fe.ID)
	}

	store, errs = cohort.LoadDir(dir, nil)
	assert.Equal(t, []string{"good"}, store.IDs())
	assert.Len(t, errs, 2, "broken and renamed; dot files, other files and directories are skipped")

	_, errs = cohort.LoadDir(filepath.Join(dir, "nope"), nil)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], fs.ErrNotExist)

	for _, id := range []string{"", ".", "..", "../x", "a/b", `a\b`, ".hidden", "c:x"} {
		err := cohort.SaveDir(dir, &cohort.Cohort{ID: id})
		assert.ErrorIs(t, err, cohort.ErrBadID, id)
	}
}

// TestFileTimeAndTouch: a file's time is its copy's age, and Touch moves it
// to when the server last confirmed the copy.
func TestFileTimeAndTouch(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, cohort.SaveDir(dir, mustNew(t, "c1", "", 1, []string{"u"})))
	at, err := cohort.FileTime(dir, "c1")
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), at, time.Minute)

	then := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	require.NoError(t, cohort.Touch(dir, "c1", then))
	at, err = cohort.FileTime(dir, "c1")
	require.NoError(t, err)
	assert.True(t, then.Equal(at), "%v, want %v", at, then)

	_, err = cohort.FileTime(dir, "missing")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorIs(t, cohort.Touch(dir, "missing", then), fs.ErrNotExist)
	assert.ErrorIs(t, cohort.Touch(dir, "../c1", then), cohort.ErrBadID)
}
