package redact

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// Keys shaped as Amplitude's: 32 hex digits for the analytics API and
// secret keys, "server-" and 31 base62 characters for a deployment key.
const (
	apiKey        = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	secretKey     = "f9e8d7c6b5a4938271605f4e3d2c1b0a"
	deploymentKey = "server-Zq8xK2mN4pL7wR9tYb3Vc6Hj1Df5Gs0"
)

// leakedPiece reports a piece of pieceLen bytes of some text in got.
func leakedPiece(got string, texts ...string) (string, bool) {
	for _, text := range texts {
		for i := 0; i+pieceLen <= len(text); i++ {
			if strings.Contains(got, text[i:i+pieceLen]) {
				return text[i : i+pieceLen], true
			}
		}
	}
	return "", false
}

func basic(a, b string) string { return base64.StdEncoding.EncodeToString([]byte(a + ":" + b)) }

// TestSnippetEchoAtEveryOffset is issue 14's finding: a server echoes the
// Authorization header after N spaces. Cut first, redacted second, the
// key straddling the cut was shown nearly whole (N=163 for the cohort
// API's Basic token, N=211 for a deployment key). Every N, for the whole
// body and for one that was cut short where it was read.
func TestSnippetEchoAtEveryOffset(t *testing.T) {
	cases := []struct {
		name    string
		header  string
		max     int
		secrets []string
		leaks   []string
	}{
		{"cohort", "Authorization: Basic " + basic(apiKey, secretKey), 120,
			[]string{basic(apiKey, secretKey), apiKey, secretKey}, []string{apiKey, secretKey, basic(apiKey, secretKey)}},
		{"cohort without the token", "Authorization: Basic " + basic(apiKey, secretKey), 120,
			[]string{apiKey, secretKey}, []string{apiKey, secretKey, basic(apiKey, secretKey)}},
		{"fetch", "Authorization: Api-Key " + deploymentKey, 256, []string{deploymentKey}, []string{deploymentKey}},
		{"bearer", "Authorization: Bearer " + deploymentKey, 256, []string{deploymentKey}, []string{deploymentKey}},
	}
	for _, c := range cases {
		for n := 0; n <= 400; n++ {
			for _, pad := range []string{" ", "x", "é"} {
				body := strings.Repeat(pad, n) + c.header + " and more text after it"
				for _, read := range []int{len(body), 256} {
					got := Snippet([]byte(body[:min(read, len(body))]), c.max, c.secrets...)
					if piece, ok := leakedPiece(got, c.leaks...); ok {
						t.Fatalf("%s: %d×%q, %d bytes read: %q shows %q", c.name, n, pad, read, got, piece)
					}
					if len(got) > c.max+len("…") {
						t.Fatalf("%s: %d×%q: %d bytes, want at most %d", c.name, n, pad, len(got), c.max)
					}
				}
			}
		}
	}
}

func TestSnippetForms(t *testing.T) {
	label := Key(deploymentKey)
	std := base64.StdEncoding.EncodeToString([]byte(deploymentKey))
	rawURL := base64.RawURLEncoding.EncodeToString([]byte(deploymentKey))
	for _, echo := range []string{
		deploymentKey,
		"Api-Key " + deploymentKey,
		"Bearer " + deploymentKey,
		url.QueryEscape("k=" + deploymentKey + "&"),
		std,
		rawURL,
	} {
		got := Snippet([]byte(`{"error":"bad key `+echo+`"}`), 256, deploymentKey)
		if piece, ok := leakedPiece(got, deploymentKey, std, rawURL); ok {
			t.Errorf("%q: %q shows %q", echo, got, piece)
		}
		if !strings.Contains(got, label) {
			t.Errorf("%q: %q does not name the key as %q", echo, got, label)
		}
	}

	got := Snippet([]byte("credentials "+basic(apiKey, secretKey)), 256, apiKey, secretKey)
	if want := "credentials " + Key(apiKey) + ":" + Key(secretKey); got != want {
		t.Errorf("Basic token: got %q, want %q", got, want)
	}

	// A key split by the server is not whole, but its pieces are.
	got = Snippet([]byte("key "+deploymentKey[:20]+"\x00"+deploymentKey[20:]+" end"), 256, deploymentKey)
	if piece, ok := leakedPiece(got, deploymentKey); ok {
		t.Errorf("split key: %q shows %q", got, piece)
	}
	if !strings.Contains(got, marker) || !strings.HasSuffix(got, " end") {
		t.Errorf("split key: got %q, want the pieces marked and the rest kept", got)
	}
}

func TestSnippetShape(t *testing.T) {
	for _, c := range []struct {
		body string
		max  int
		want string
	}{
		{"", 10, ""},
		{"  line one\n\tline two\r\n", 100, "line one line two"},
		{"\x1b[31mred\x1b[0m", 100, "[31mred [0m"},
		{"\xff\xfe bad", 100, "\uFFFD bad"},
		{"abcdefghij", 4, "abcd…"},
		{"ééé", 3, "é…"}, // never half a character
		// The read stopped inside a key: its start is dropped.
		{"token: " + deploymentKey[:9], 100, "token:…"},
	} {
		if got := Snippet([]byte(c.body), c.max, deploymentKey); got != c.want {
			t.Errorf("Snippet(%q, %d) = %q, want %q", c.body, c.max, got, c.want)
		}
	}
}

// FuzzSnippet checks the promise for any keys and any padding: no piece of
// 12 characters of a key, of its base64 or of a Basic token made of two of
// them appears in a snippet, and a snippet is one line of valid UTF-8 of
// bounded length.
func FuzzSnippet(f *testing.F) {
	f.Add(apiKey, secretKey, deploymentKey, uint16(163), " ", "", "", uint16(120))
	f.Add(apiKey, secretKey, deploymentKey, uint16(211), " ", "", "", uint16(256))
	f.Add("k", "", "", uint16(0), "", "", "", uint16(0))
	f.Add("key with spaces  inside", "tab\tkey\x00 zero", "ünïcödé-kéy-1234567890", uint16(37), "\t\n", "{", "}", uint16(64))
	f.Add("[redacted][redacted]", "…(fp ", "server…(fp", uint16(3), "…", "…", "…", uint16(12))
	f.Fuzz(func(t *testing.T, a, b, c string, pad uint16, padding, before, after string, max uint16) {
		// Up to 2047 copies of up to 16 bytes: past the 256 bytes read by
		// the old snippet functions, within what a test should allocate.
		pad %= 2048
		padding = padding[:min(len(padding), 16)]
		max %= 1024
		body := before + strings.Repeat(padding, int(pad)) +
			"Authorization: Basic " + basic(a, b) + " Api-Key " + c + " Bearer " + a +
			" " + base64.StdEncoding.EncodeToString([]byte(b)) + " " + url.QueryEscape(c) + after
		got := Snippet([]byte(body), int(max), a, b, c)

		var leaks []string
		for _, k := range []string{a, b, c} {
			if k != "" {
				leaks = append(leaks, k, oneLine(k), base64.StdEncoding.EncodeToString([]byte(k)))
			}
		}
		if a != "" && b != "" {
			leaks = append(leaks, basic(a, b))
		}
		if piece, ok := leakedPiece(got, leaks...); ok {
			t.Fatalf("%q shows %q", got, piece)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("%q is not valid UTF-8", got)
		}
		for _, r := range got {
			if r != ' ' && (unicode.IsSpace(r) || !unicode.IsPrint(r)) {
				t.Fatalf("%q has %U", got, r)
			}
		}
		if len(got) > int(max)+len("…") {
			t.Fatalf("%d bytes, want at most %d", len(got), int(max)+len("…"))
		}
	})
}
