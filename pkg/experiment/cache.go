package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/flagkit/experiment/internal/atomicfile"
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

// CachedFlags reads a cached snapshot: the flag array and when it was
// fetched.
func readFlagCache(path string) (*flagConfigs, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoCache
	}
	if err != nil {
		return nil, err
	}
	var env cacheEnvelope
	if err := json.Unmarshal(data, &env); err != nil || env.Version != 1 {
		return nil, fmt.Errorf("cache %s: not a flag snapshot", path)
	}
	fc, err := decodeFlagConfigs(env.Flags, env.FetchedAt)
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", path, err)
	}
	return fc, nil
}
