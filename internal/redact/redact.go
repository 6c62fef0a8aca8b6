// Package redact is how the project prints credentials and names the SDK:
// one implementation shared by pkg/experiment and pkg/cohort, which cannot
// import each other.
package redact

import (
	"crypto/sha256"
	"encoding/hex"
	"runtime/debug"
	"sync"
	"unicode/utf8"
)

// Fingerprint identifies a key without revealing it: the first 8 hex digits
// of its SHA-256. It is stable, so it names cache files too. An empty key
// has none.
func Fingerprint(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:4])
}

// Key is a key as it may be printed: at most its first six characters (and
// never more than a third of it, so short keys stay hidden) and its
// fingerprint, e.g. "server…(fp 1a2b3c4d)".
func Key(key string) string {
	if key == "" {
		return "(empty)"
	}
	n := min(6, utf8.RuneCountInString(key)/3)
	prefix := key
	for i := range key {
		if n == 0 {
			prefix = key[:i]
			break
		}
		n--
	}
	return prefix + "…(fp " + Fingerprint(key) + ")"
}

// Library is "experiment-go-cli/<version>" (see ModuleVersion): what the
// CLI, and only the CLI, calls itself to every service.
var Library = sync.OnceValue(func() string { return "experiment-go-cli/" + ModuleVersion() })

// ModuleVersion is this module's version as the binary's build info records
// it, as the main module or as a dependency; "dev" when unknown, as in tests
// and in a build of this repository itself.
var ModuleVersion = sync.OnceValue(func() string {
	v := "dev"
	if info, ok := debug.ReadBuildInfo(); ok {
		const module = "github.com/flagkit/experiment"
		if info.Main.Path == module && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, d := range info.Deps {
			if d.Path == module && d.Version != "" {
				v = d.Version
			}
		}
	}
	return v
})
