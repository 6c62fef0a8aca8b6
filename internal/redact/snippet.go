package redact

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SnippetRead is how much of an error body a caller reads for Snippet.
// Whitespace is collapsed before the cut, so text far into the body can
// reach the snippet: all of it must be seen by the redaction, and what is
// not read is never shown.
const SnippetRead = 64 << 10

// pieceLen is the length of the shortest piece of a secret that may never
// appear in a snippet, wherever the body or the cut falls.
const pieceLen = 12

// minTrailing is the shortest trailing partial match Snippet drops: a tail
// that starts a secret and was cut before its end could not be matched in
// full, and Key already shows up to 6 characters of a key.
const minTrailing = 4

// marker stands for a piece of a secret that was not whole enough to be
// named by its fingerprint.
const marker = "[redacted]"

// Snippet is server-supplied text (an error body, a field of an error
// reply) made fit to quote in an error line or a log record: valid UTF-8,
// one line of printable characters, at most max bytes (and "…" when cut),
// and without the secrets.
//
// Redaction comes first, over the whole body, and the cut second: a secret
// that straddles the cut is then replaced whole instead of being left half
// shown. A secret is replaced wherever it appears raw, in base64 (any
// alphabet, with or without padding: a Basic or Bearer token), URL-escaped,
// and, for every pair of secrets (the same one twice too), as the base64
// of "a:b" (HTTP Basic credentials: the cohort API's API key and secret
// key). The "Api-Key"
// and "Bearer" headers quote the raw form and are covered by it. Then any
// 12-character piece of those forms that survived (a key split by the
// server, or cut short where the body was read) is replaced, and a tail
// that starts a form is dropped.
func Snippet(body []byte, max int, secrets ...string) string {
	s := oneLine(strings.ToValidUTF8(string(body), "\uFFFD"))
	forms := secretForms(secrets)
	// One pass: a label put in is not searched again for a shorter form.
	// At each place the first form that matches wins: the longest.
	replace := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		replace = append(replace, f.text, f.label)
	}
	s = strings.NewReplacer(replace...).Replace(s)
	pieces := piecesOf(forms)
	s = scrubPieces(s, pieces)
	cut := false
	if len(s) > max {
		end := max
		for end > 0 && !utf8.RuneStart(s[end]) {
			end--
		}
		s, cut = s[:end], true
	}
	// A body read only up to SnippetRead, or a cut, may end inside a form
	// where no whole form and no 12-character piece is left to match.
	if n := trailingMatch(s, forms); n > 0 {
		s, cut = strings.TrimRight(s[:len(s)-n], " "), true
	}
	if cut {
		s += "…"
	}
	// The ellipsis joins the text before it: once more, for a secret
	// that has one in it.
	return scrubPieces(s, pieces)
}

// oneLine makes every space or unprintable character a single space.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// form is one way a secret can appear in a body, and what replaces it.
type form struct {
	text, label string
}

// secretForms lists the forms of the secrets, longest first, so that a
// form is replaced before a shorter one it contains.
func secretForms(secrets []string) []form {
	var keys []string
	for _, k := range secrets {
		if k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var forms []form
	// Each form goes in as oneLine leaves it in a body, and as it is
	// (valid UTF-8, as the body is made): a piece of a key with a space at
	// its edge can appear both ways.
	add := func(text, label string) {
		label = oneLine(label) // a key's prefix may have a tab in it
		for _, t := range []string{oneLine(text), strings.ToValidUTF8(text, "\uFFFD")} {
			if t != "" && !slices.ContainsFunc(forms, func(f form) bool { return f.text == t }) {
				forms = append(forms, form{t, label})
			}
		}
	}
	encodings := []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}
	// Pairs first: a caller that passes a Basic token as a secret of its
	// own gets it named by the two keys it is made of.
	for _, a := range keys {
		for _, b := range keys {
			for _, enc := range encodings {
				add(enc.EncodeToString([]byte(a+":"+b)), Key(a)+":"+Key(b))
			}
		}
	}
	for _, k := range keys {
		label := Key(k)
		add(k, label)
		add(url.QueryEscape(k), label)
		add(url.PathEscape(k), label)
		for _, enc := range encodings {
			add(enc.EncodeToString([]byte(k)), label)
		}
	}
	slices.SortStableFunc(forms, func(x, y form) int { return len(y.text) - len(x.text) })
	return forms
}

// piecesOf is every pieceLen-byte piece of the forms. Bytes, not runes: a
// piece of 12 characters holds one of 12 bytes, so none of those left
// means none of these either.
func piecesOf(forms []form) map[string]bool {
	pieces := map[string]bool{}
	for _, f := range forms {
		for i := 0; i+pieceLen <= len(f.text); i++ {
			pieces[f.text[i:i+pieceLen]] = true
		}
	}
	return pieces
}

// scrubPieces replaces each run of text covered by pieces of secrets with
// the marker. Should that make a new piece (a secret with the marker in
// it), the text ends before it: one more scan, however the secrets look.
func scrubPieces(s string, pieces map[string]bool) string {
	if len(pieces) == 0 {
		return s
	}
	for round := 0; ; round++ {
		covered := make([]bool, len(s))
		first := -1
		for i := 0; i+pieceLen <= len(s); i++ {
			if !pieces[s[i:i+pieceLen]] {
				continue
			}
			// Whole characters go, so the text stays valid UTF-8.
			lo, hi := i, i+pieceLen
			for lo > 0 && !utf8.RuneStart(s[lo]) {
				lo--
			}
			for hi < len(s) && !utf8.RuneStart(s[hi]) {
				hi++
			}
			if first < 0 {
				first = lo
			}
			for j := lo; j < hi; j++ {
				covered[j] = true
			}
		}
		switch {
		case first < 0:
			return s
		case round > 0:
			// No piece starts before first, and none can end after it.
			return s[:first]
		}
		var b strings.Builder
		for i := 0; i < len(s); {
			if !covered[i] {
				b.WriteByte(s[i])
				i++
				continue
			}
			for i < len(s) && covered[i] {
				i++
			}
			b.WriteString(marker)
		}
		s = b.String()
	}
}

// trailingMatch is the length of the longest tail of s, at least
// minTrailing bytes, that is how a form begins. Forms are valid UTF-8, so
// such a tail starts a character.
func trailingMatch(s string, forms []form) int {
	longest := 0
	for _, f := range forms {
		for n := min(len(f.text)-1, len(s)); n >= minTrailing && n > longest; n-- {
			if s[len(s)-n] == f.text[0] && strings.HasSuffix(s, f.text[:n]) {
				longest = n
				break
			}
		}
	}
	return longest
}
