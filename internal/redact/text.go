package redact

import (
	"regexp"
	"strings"
)

// keyCandidate finds the runs of text that LooksLikeKey judges: a run of
// letters and digits, with the deployment key prefix when there is one.
var keyCandidate = regexp.MustCompile(`(?:server-|client-)?[A-Za-z0-9]+`)

// LooksLikeKey reports whether a run of letters and digits may be a
// credential, for text a user gave that is no key setting (a key pasted
// into the wrong setting, flag or variable):
//
//   - "server-" or "client-" and at least 8 letters or digits: a
//     deployment key, or most of one;
//   - at least 16 letters or digits with a digit among them, or with both
//     upper- and lower-case letters: an analytics API or secret key (32
//     hex digits), a deployment key without its prefix, any random token.
//
// Words, names, hosts, zones and output forms are shorter, or all one case
// without digits ("internationalization"); ids with hyphens (UUIDs) are
// runs of at most 12.
func LooksLikeKey(run string) bool {
	for _, prefix := range []string{"server-", "client-"} {
		if rest, ok := strings.CutPrefix(run, prefix); ok && len(rest) >= 8 && isAlnum(rest) {
			return true
		}
	}
	if len(run) < 16 || !isAlnum(run) {
		return false
	}
	digit := strings.ContainsAny(run, "0123456789")
	upper := strings.ContainsAny(run, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	lower := strings.ContainsAny(run, "abcdefghijklmnopqrstuvwxyz")
	return digit || upper && lower
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Text is text a user gave, fit to echo in an error: every run in it that
// LooksLikeKey is shown as Key shows a key, at most a prefix and a
// fingerprint; the rest is kept, so the user still sees what was wrong.
func Text(s string) string {
	return keyCandidate.ReplaceAllStringFunc(s, func(run string) string {
		if LooksLikeKey(run) {
			return Key(run)
		}
		return run
	})
}
