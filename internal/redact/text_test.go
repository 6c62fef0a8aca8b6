package redact

import (
	"strings"
	"testing"
)

func TestTextRedactsWhatLooksLikeAKey(t *testing.T) {
	for _, key := range []string{
		apiKey, secretKey, deploymentKey,
		"client-AbCdEfGh12345678", "server-abcdefgh",
		"Zq8xK2mN4pL7wR9tYb3Vc6Hj1Df5Gs0", // a deployment key without its prefix
		"abcdefghijklmnop1",
		"AbcdefghijklmnoP",
	} {
		for _, in := range []string{key, "  " + key + "\n", "https://x.example/?k=" + key, `"` + key + `"`} {
			got := Text(in)
			if strings.Contains(got, key) {
				t.Errorf("Text(%q) = %q shows the key", in, got)
			}
			if !strings.Contains(got, "(fp "+Fingerprint(key)+")") {
				t.Errorf("Text(%q) = %q does not name the key by its fingerprint", in, got)
			}
		}
	}
}

func TestTextKeepsWhatIsNoKey(t *testing.T) {
	for _, s := range []string{
		"", "us", "eu", "mars", "xml", "jsonl", "staging", "prod-eu-2", "dark-mode",
		"https://api.lab.amplitude.com", "ftp://x", "::bad", "/home/me/.cache/experiment",
		"internationalization", "INTERNATIONALIZATION", "123e4567-e89b-12d3-a456-426614174000",
		"user@company.com", "1.10", "server-abc", "server-side-rendering", "abcdefghijklmn1", "10s",
	} {
		if got := Text(s); got != s {
			t.Errorf("Text(%q) = %q, want it kept", s, got)
		}
	}
}
