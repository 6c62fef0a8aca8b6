package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flagkit/experiment/internal/atomicfile"
	"github.com/flagkit/experiment/pkg/eval"
)

// The on-disk snapshot: the last good flag configs of a deployment, named by
// the key's fingerprint (never the key), written atomically so that a crash,
// a full disk or Ctrl-C leaves the previous file whole.

type cacheEnvelope struct {
	Version   int             `json:"version"`
	FetchedAt time.Time       `json:"fetched_at"`
	ServerURL string          `json:"server_url"`
	Flags     json.RawMessage `json:"flags"`
}

// FlagCachePath is where flag configs of a deployment key are cached.
func FlagCachePath(cacheDir, deploymentKey string) string {
	return filepath.Join(cacheDir, "flags", Secret(deploymentKey).Fingerprint()+".json")
}

// CohortCacheDir is where cohorts of an analytics project are cached, one
// <cohortId>.json per cohort, in the download API's format.
func CohortCacheDir(cacheDir, apiKey string) string {
	return filepath.Join(cacheDir, "cohorts", Secret(apiKey).Fingerprint())
}

func writeFlagCache(path string, fc *flagConfigs, serverURL string) error {
	data, err := json.Marshal(cacheEnvelope{Version: 1, FetchedAt: fc.fetchedAt.UTC(), ServerURL: serverURL, Flags: fc.body})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

// ErrNoCache is returned when there is no cached snapshot to use.
var ErrNoCache = errors.New("no cached flag configs")

// ErrCorruptCache is returned when a cached snapshot is there but its
// content is not a snapshot of flag configs (cut short, overwritten, from
// another program): only replacing it, with a fetch, helps.
var ErrCorruptCache = errors.New("corrupt flag cache")

// CacheError is a cached snapshot that could not be used, and where it is:
// errors.Is(err, ErrNoCache) when there is none, errors.Is(err,
// ErrCorruptCache) when it is corrupt; otherwise the file could not be read.
type CacheError struct {
	Path    string
	Corrupt bool
	Err     error
}

func (e *CacheError) Error() string {
	switch {
	case errors.Is(e.Err, ErrNoCache):
		return fmt.Sprintf("%v at %s", e.Err, e.Path)
	case e.Corrupt:
		return fmt.Sprintf("flag cache %s is corrupt: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("flag cache %s: %v", e.Path, e.Err)
}

func (e *CacheError) Unwrap() error { return e.Err }

// Is reports ErrCorruptCache for a corrupt snapshot.
func (e *CacheError) Is(target error) bool { return target == ErrCorruptCache && e.Corrupt }

// readFlagCache reads a cached snapshot: the flag array and when it was
// fetched. Errors are *CacheError.
func readFlagCache(path string) (*flagConfigs, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &CacheError{Path: path, Err: ErrNoCache}
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // it would repeat the path
		}
		return nil, &CacheError{Path: path, Err: err}
	}
	corrupt := func(err error) error { return &CacheError{Path: path, Corrupt: true, Err: err} }
	var env cacheEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, corrupt(fmt.Errorf("not a flag snapshot (%v)", strings.TrimPrefix(err.Error(), "json: ")))
	}
	if env.Version != 1 {
		return nil, corrupt(fmt.Errorf("snapshot version %d, want 1", env.Version))
	}
	fc, err := decodeFlagConfigs(env.Flags, env.FetchedAt)
	if err != nil {
		var pe *eval.ParseError
		if errors.As(err, &pe) {
			// Its line and column count from the start of the flags, not
			// of the file: the JSON path alone does not mislead.
			p := *pe
			p.Line, p.Col = 0, 0
			err = &p
		}
		return nil, corrupt(err)
	}
	return fc, nil
}
