package redact

import (
	"strings"
	"testing"
)

func TestKeyNeverShowsTheKey(t *testing.T) {
	for _, key := range []string{"server-abcdefghijklmnop", "short", "ünïcödé-kéy-1234567890"} {
		got := Key(key)
		if strings.Contains(got, key) {
			t.Errorf("Key(%q) = %q shows the key", key, got)
		}
		if !strings.HasSuffix(got, "(fp "+Fingerprint(key)+")") {
			t.Errorf("Key(%q) = %q lacks the fingerprint", key, got)
		}
	}
	if got := Key("server-abcdefghijklmnop"); !strings.HasPrefix(got, "server…") {
		t.Errorf("got %q, want the 6-character prefix", got)
	}
	// sha256("abc") starts ba7816bf.
	if got := Fingerprint("abc"); got != "ba7816bf" {
		t.Errorf("Fingerprint(abc) = %q", got)
	}
	if Key("") != "(empty)" || Fingerprint("") != "" {
		t.Error("empty key")
	}
}

func TestLibrary(t *testing.T) {
	if !strings.HasPrefix(Library(), "experiment-go-cli/") {
		t.Errorf("Library() = %q", Library())
	}
}
