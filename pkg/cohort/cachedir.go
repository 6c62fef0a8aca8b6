package cohort

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/flagkit/experiment/internal/atomicfile"
)

// A cache directory holds one file per cohort, <dir>/<cohortId>.json, each
// exactly a body of GET /sdk/v1/cohort/<cohortId>, so the directory can be
// passed to `experiment evaluate --cohorts DIR` or served by a fake server.

// ErrBadID is wrapped by errors about a cohort id that cannot name a file
// (empty, a path, starting with '.', or with a control character, which
// would break the one-line error naming the file).
var ErrBadID = errors.New("cohort id cannot name a file")

// SaveDir writes c to <dir>/<c.ID>.json in the download API's format,
// atomically: a reader, a crash or a full disk never sees half a file, and
// no temporary file is left behind. dir is created if needed (mode 0700;
// files are 0600, since cohorts list user ids).
func SaveDir(dir string, c *Cohort) error {
	path, err := cohortPath(dir, c.ID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, c.AppendJSON(nil), 0o600)
}

// FileError is an error of LoadDir about one cohort's file, so that a
// caller can say which cohort lost its copy. Its text is Err's.
type FileError struct {
	ID  string // the cohort id the file is named by
	Err error
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// LoadDir reads <dir>/<id>.json for each of ids, or with nil ids every
// <id>.json in dir (files whose names start with '.' are skipped). It
// returns the cohorts it could read, and an error for each it could not:
// one satisfying errors.Is(err, fs.ErrNotExist) for a missing file (or
// directory), ErrMalformed for a file that is not a cohort or holds another
// cohort than its name says. Errors about one file are *FileError.
func LoadDir(dir string, ids []string) (*Store, []error) {
	if ids == nil {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return NewStore(), []error{err}
		}
		for _, e := range entries {
			name := e.Name()
			if id, ok := strings.CutSuffix(name, ".json"); ok && id != "" && name[0] != '.' && e.Type().IsRegular() {
				ids = append(ids, id)
			}
		}
	}
	var cohorts []*Cohort
	var errs []error
	for _, id := range unique(ids) {
		c, err := loadFile(dir, id)
		if err != nil {
			errs = append(errs, &FileError{ID: id, Err: err})
			continue
		}
		cohorts = append(cohorts, c)
	}
	return NewStore(cohorts...), errs
}

// FileTime is when <dir>/<id>.json was written, or marked current by
// Touch: how old the copy is, as far as anyone knows.
func FileTime(dir, id string) (time.Time, error) {
	path, err := cohortPath(dir, id)
	if err != nil {
		return time.Time{}, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	return st.ModTime(), nil
}

// Touch marks <dir>/<id>.json as current at t, for a copy the server has
// just said is unchanged (204): its age then counts from t, not from when
// it was downloaded.
func Touch(dir, id string, t time.Time) error {
	path, err := cohortPath(dir, id)
	if err != nil {
		return err
	}
	return os.Chtimes(path, time.Time{}, t)
}

func loadFile(dir, id string) (*Cohort, error) {
	path, err := cohortPath(dir, id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > MaxBodyBytes {
		return nil, fmt.Errorf("%s: %w: larger than %d MiB", path, ErrMalformed, MaxBodyBytes>>20)
	}
	buf := make([]byte, st.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	c, err := decodeOwned(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.ID != id {
		return nil, fmt.Errorf("%s: %w: holds cohort %q", path, ErrMalformed, c.ID)
	}
	return c, nil
}

// cohortPath is <dir>/<id>.json for an id that is a plain file name.
func cohortPath(dir, id string) (string, error) {
	if id == "" || id[0] == '.' || strings.ContainsAny(id, `/\:`+"\x00") || !filepath.IsLocal(id+".json") ||
		strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("%w: %q", ErrBadID, id)
	}
	return filepath.Join(dir, id+".json"), nil
}
