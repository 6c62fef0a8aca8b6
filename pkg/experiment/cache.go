package experiment

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// FlagCachePath is the file in which a LocalClient with LocalConfig.CacheDir
// set to cacheDir keeps the last good flag configs of deploymentKey. The name
// holds the key's fingerprint, never the key. It is public so that other
// tools can place or inspect that file: `experiment flags pull` writes it,
// so a service whose image is built with the file can start with
// LocalConfig{CacheDir: dir, Offline: true} and never reach the network.
func FlagCachePath(cacheDir, deploymentKey string) string {
	return filepath.Join(cacheDir, "flags", Secret(deploymentKey).Fingerprint()+".json")
}

// CohortCacheDir is the directory in which a LocalClient with
// LocalConfig.CacheDir set to cacheDir keeps the cohorts of the analytics
// project of apiKey (named by the key's fingerprint): one <cohortId>.json
// per cohort, in the download API's format, which cohort.LoadDir reads and
// `experiment cohorts sync` writes.
func CohortCacheDir(cacheDir, apiKey string) string {
	return filepath.Join(cacheDir, "cohorts", Secret(apiKey).Fingerprint())
}

// writeFlagCache writes a snapshot of fc, whose flags are the exact bytes
// the server sent, streamed: no copy of them is made.
func writeFlagCache(path string, fc *flagConfigs, serverURL string) error {
	if fc.raw == nil {
		return errors.New("flag configs without their bytes cannot be cached") // a bug, said rather than hidden
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	w.Write(envelopeHead(fc.fetchedAt, serverURL))
	fc.raw.WriteTo(w)
	w.WriteString(envelopeTail)
	if err := w.Flush(); err != nil { // bufio keeps the first write error
		f.Abort()
		return err
	}
	return f.Commit()
}

// envelopeHead is a snapshot up to its flags, which come last so that they
// can be streamed in, and found again without decoding them (splitEnvelope,
// openCachedFlags); envelopeTail closes it. Together they make the JSON
// that json.Marshal(cacheEnvelope) makes, minus the compaction of the flags.
func envelopeHead(fetchedAt time.Time, serverURL string) []byte {
	head, _ := json.Marshal(struct {
		Version   int       `json:"version"`
		FetchedAt time.Time `json:"fetched_at"`
		ServerURL string    `json:"server_url"`
	}{1, fetchedAt.UTC(), serverURL})
	return append(head[:len(head)-1], `,"flags":`...)
}

const envelopeTail = "}"

// rawBytes holds a flag list's exact bytes as they were received, for
// writeFlagCache.
type rawBytes []byte

func (b rawBytes) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
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
	Writing bool // the cache could not be written (PullFlagConfigs)
	Err     error
}

func (e *CacheError) Error() string {
	switch {
	case e.Writing:
		return fmt.Sprintf("writing flag cache %s: %v", e.Path, e.Err)
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
	// The flags are found in place, as written here, and the flag set
	// keeps them there, a slice of the file's bytes; a snapshot laid out
	// otherwise, or broken, is decoded whole, which also says what is
	// wrong with it.
	env, err := splitEnvelope(data)
	var fc *flagConfigs
	if err == nil && env.Version == 1 {
		// Its error is not kept: the whole decode below says what is
		// wrong, in terms of the whole document.
		fc, _ = loadFlagConfigs(env.Flags, env.FetchedAt)
	}
	if fc == nil {
		env = cacheEnvelope{}
		if err := json.Unmarshal(data, &env); err != nil {
			return nil, corrupt(fmt.Errorf("not a flag snapshot (%v)", strings.TrimPrefix(err.Error(), "json: ")))
		}
		if env.Version != 1 {
			return nil, corrupt(fmt.Errorf("snapshot version %d, want 1", env.Version))
		}
		if fc, err = loadFlagConfigs(env.Flags, env.FetchedAt); err != nil {
			return nil, corrupt(err)
		}
	}
	return fc, nil
}

// splitEnvelope decodes a snapshot's header and finds its flags, the last
// member, without copying them: env.Flags is a slice of data. It fails on
// anything not laid out so; json.Unmarshal may still make sense of it.
func splitEnvelope(data []byte) (cacheEnvelope, error) {
	var env cacheEnvelope
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return env, errors.New("not an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return env, err
		}
		switch tok {
		case "flags":
			rest := data[dec.InputOffset():]
			start, end := flagsSpan(rest, int64(len(rest)))
			if start < 0 || !bytes.HasSuffix(rest, []byte(envelopeTail)) {
				return env, errors.New("flags are not laid out as written")
			}
			env.Flags = rest[start:end]
			return env, nil
		case "version":
			err = dec.Decode(&env.Version)
		case "fetched_at":
			err = dec.Decode(&env.FetchedAt)
		case "server_url":
			err = dec.Decode(&env.ServerURL)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return env, err
		}
	}
	return env, errors.New("no flags")
}

// flagsSpan is where the flags value of a snapshot lies in what follows its
// key (head, the first bytes of it; n bytes in all): after the colon, up to
// the closing brace that ends the snapshot. The value keeps its own white
// space: the flags are exactly the bytes the server sent. -1 when the
// bytes after the key are not a colon.
func flagsSpan(head []byte, n int64) (int64, int64) {
	colon := bytes.IndexByte(head, ':')
	if colon < 0 || len(bytes.TrimLeft(head[:colon], " \t\r\n")) > 0 || n < int64(colon+1+len(envelopeTail)) {
		return -1, -1
	}
	return int64(colon + 1), n - int64(len(envelopeTail))
}
