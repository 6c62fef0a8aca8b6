package eval

import "strconv"

// version is a parsed major.minor[.patch[-prerelease]]. preRelease keeps its
// leading '-', as the reference does; only its emptiness and its string order
// matter.
type version struct {
	major, minor, patch int
	preRelease          string
}

// parseVersion accepts what the reference's pattern
// ^(\d+)\.(\d+)(\.(\d+)(-(([-\w]+\.?)*))?)?$ accepts, without a regex: this
// runs for every version condition.
func parseVersion(s string) (version, bool) {
	var v version
	major, rest, ok := leadingDigits(s)
	if !ok || len(rest) == 0 || rest[0] != '.' {
		return v, false
	}
	minor, rest, ok := leadingDigits(rest[1:])
	if !ok {
		return v, false
	}
	var err error
	if v.major, err = strconv.Atoi(major); err != nil {
		return v, false
	}
	if v.minor, err = strconv.Atoi(minor); err != nil {
		return v, false
	}
	if len(rest) == 0 {
		return v, true
	}
	if rest[0] != '.' {
		return v, false
	}
	patch, rest, ok := leadingDigits(rest[1:])
	if !ok {
		return v, false
	}
	// The reference ignores a patch overflow: Atoi's clamped value stands.
	v.patch, _ = strconv.Atoi(patch)
	if len(rest) == 0 {
		return v, true
	}
	if rest[0] != '-' || !validPreRelease(rest[1:]) {
		return v, false
	}
	v.preRelease = rest
	return v, true
}

func leadingDigits(s string) (digits, rest string, ok bool) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:], i > 0
}

// validPreRelease matches ([-\w]+\.?)*: runs of word characters or '-',
// each optionally followed by one dot.
func validPreRelease(s string) bool {
	afterWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
			afterWord = true
		case c == '.' && afterWord:
			afterWord = false
		default:
			return false
		}
	}
	return true
}

func compareVersions(a, b version) int {
	switch {
	case a.major != b.major:
		return cmpInt(a.major, b.major)
	case a.minor != b.minor:
		return cmpInt(a.minor, b.minor)
	case a.patch != b.patch:
		return cmpInt(a.patch, b.patch)
	}
	switch {
	case a.preRelease != "" && b.preRelease == "":
		return -1
	case a.preRelease == "" && b.preRelease != "":
		return 1
	case a.preRelease < b.preRelease:
		return -1
	case a.preRelease > b.preRelease:
		return 1
	}
	return 0
}

func cmpInt(a, b int) int {
	if a < b {
		return -1
	}
	return 1
}
