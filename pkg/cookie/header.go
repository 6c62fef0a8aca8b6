package cookie

import (
	"fmt"
	"strings"
)

type pair struct{ name, value string }

// FromHeader picks the Amplitude identity cookie out of a Cookie header
// value ("a=1; AMP_0123456789=…"; a leading "Cookie:" is tolerated) and
// returns its value and format.
//
// With an API key, the Browser SDK 2.0 cookie of that project wins over its
// amplitude-js cookie, as the browser SDK itself migrates old to new.
// Without one, the cookie must be unambiguous: a single AMP_ cookie (plus,
// at most, amp_ cookies of the same project), or else a single amp_ cookie.
// Only names of exactly the right length count, so Browser SDK 2.0's other
// cookies (AMP_MKTG_…, AMP_TEST) are skipped. When a name repeats, the
// first wins, as browsers send the most specific path first.
func FromHeader(header, apiKey string) (string, Format, error) {
	pairs := splitHeader(header)
	if apiKey != "" {
		return pickByKey(pairs, apiKey)
	}
	return pickOnly(pairs)
}

func splitHeader(header string) []pair {
	header = trimCookiePrefix(header)
	var pairs []pair
	for _, part := range strings.Split(header, ";") {
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		pairs = append(pairs, pair{strings.TrimSpace(name), unquote(strings.TrimSpace(value))})
	}
	return pairs
}

func trimCookiePrefix(header string) string {
	header = strings.TrimSpace(header)
	if len(header) >= 7 && strings.EqualFold(header[:7], "cookie:") {
		return header[7:]
	}
	return header
}

// unquote strips the optional DQUOTEs RFC 6265 allows around a value.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

func lookup(pairs []pair, name string) (string, bool) {
	for _, p := range pairs {
		if p.name == name {
			return p.value, true
		}
	}
	return "", false
}

func pickByKey(pairs []pair, apiKey string) (string, Format, error) {
	// The legacy name needs the shorter key prefix, so if it cannot be
	// built, neither can the new one.
	oldName, err := Name(apiKey, Legacy)
	if err != nil {
		return "", Legacy, err
	}
	if newName, err := Name(apiKey, BrowserSDK2); err == nil {
		if v, ok := lookup(pairs, newName); ok {
			return v, BrowserSDK2, nil
		}
	}
	if v, ok := lookup(pairs, oldName); ok {
		return v, Legacy, nil
	}
	return "", Legacy, fmt.Errorf("cookie: %w for the given api key in the header", ErrNoCookie)
}

func pickOnly(pairs []pair) (string, Format, error) {
	news, olds := candidates(pairs)
	switch {
	case len(news) == 1 && sameProject(news[0].name, olds):
		return news[0].value, BrowserSDK2, nil
	case len(news) == 0 && len(olds) == 1:
		return olds[0].value, Legacy, nil
	case len(news) == 0 && len(olds) == 0:
		return "", Legacy, fmt.Errorf("cookie: %w in the header", ErrNoCookie)
	}
	return "", Legacy, fmt.Errorf("cookie: %w in the header (%d); give the api key to choose",
		ErrAmbiguous, len(news)+len(olds))
}

// candidates returns the distinct Amplitude identity cookies, new-format
// and legacy, in header order.
func candidates(pairs []pair) (news, olds []pair) {
	seen := map[string]bool{}
	for _, p := range pairs {
		if seen[p.name] {
			continue
		}
		seen[p.name] = true
		switch {
		case isAmpName(p.name, BrowserSDK2):
			news = append(news, p)
		case isAmpName(p.name, Legacy):
			olds = append(olds, p)
		}
	}
	return news, olds
}

func isAmpName(name string, f Format) bool {
	prefix, n, _ := f.namePrefix()
	return len(name) == len(prefix)+n && strings.HasPrefix(name, prefix) && isToken(name[len(prefix):])
}

// sameProject reports whether every legacy cookie belongs to the project
// of the new-format cookie, i.e. is its not yet deleted predecessor.
func sameProject(newName string, olds []pair) bool {
	for _, o := range olds {
		if o.name[4:] != newName[4:10] {
			return false
		}
	}
	return true
}

// looksLikeHeader tells ParseAuto that it was handed a Cookie header rather
// than a bare value. Neither value format contains ';', and a bare value
// starting with an Amplitude cookie name and '=' would be a strange id.
func looksLikeHeader(s string) bool {
	s = trimCookiePrefix(s)
	if strings.Contains(s, ";") {
		return true
	}
	name, _, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	return ok && (isAmpName(name, BrowserSDK2) || isAmpName(name, Legacy))
}
