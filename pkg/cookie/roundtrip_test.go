package cookie_test

import (
	"strings"
	"testing"
	"testing/quick"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cookie"
)

var roundTripIDs = []string{
	"someDeviceId",
	"7c2f3b1e-4a5d-4e8f-9b0a-1c2d3e4f5a6bR",
	"😀🚀",              // astral plane: surrogate pairs in JSON
	"设备标识",            // CJK
	"é",               // Latin-1 supplement
	`say "hi"`,        // quotes and a space
	`back\slash`,      // backslash
	"line\nbreak\r\t", // control characters
	"100%",            // a literal percent must not be decoded twice
	"a+b",             // '+' must not turn into a space
	"  spaced  out  ",
	"/slash/",
	"\x00\x1f\x7f",
	"\u2028\u2029\ufeff",
	"%7B%22",
	"{}",
	"=;,",
	"\U0010FFFF",
}

func TestRoundTripTable(t *testing.T) {
	for _, id := range roundTripIDs {
		for _, f := range []cookie.Format{cookie.Legacy, cookie.BrowserSDK2} {
			assertRoundTrip(t, id, f)
		}
	}
	assertRoundTrip(t, "a.b.c", cookie.BrowserSDK2)
}

func TestRoundTripQuick(t *testing.T) {
	prop := func(id string, newFormat bool) bool {
		f := cookie.Legacy
		if newFormat {
			f = cookie.BrowserSDK2
		}
		v, err := cookie.Generate(id, f)
		if err != nil {
			return id == "" || !utf8.ValidString(id) || f == cookie.Legacy && strings.Contains(id, ".")
		}
		got, err := cookie.Parse(v, f)
		return err == nil && got == cookie.Identity{DeviceID: id}
	}
	require.NoError(t, quick.Check(prop, &quick.Config{MaxCount: 5000}))
}

func assertRoundTrip(t *testing.T, id string, f cookie.Format) {
	t.Helper()
	v, err := cookie.Generate(id, f)
	require.NoError(t, err, "%q %s", id, f)
	got, err := cookie.Parse(v, f)
	require.NoError(t, err, "%q %s", id, f)
	assert.Equal(t, cookie.Identity{DeviceID: id}, got, "%q %s", id, f)
}
