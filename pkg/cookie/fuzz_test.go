package cookie

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var fuzzSeeds = []string{
	"",
	".",
	"deviceId..........",
	"deviceId...1f1gkeib1.1f1gkeib1.dv.1ir.20q",
	"deviceId.dGVzdEBhbXBsaXR1ZGUuY29t..1f1gkeib1.1f1gkeib1.dv.1ir.20q",
	"deviceId.Y8O3Pg==..1f1gkeib1.1f1gkeib1.dv.1ir.20q",
	"JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjJzb21lRGV2aWNlSWQlMjIlN0Q=",
	"JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjAlMjJzb21lRGV2aWNlSWQlMjIlN0Q=",
	"JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjJzb21lRGV2aWNlSWQlMjIlMkMlMjJ1c2VySWQlMjIlM0ElMjJleGFtcGxlJTQwYW1wbGl0dWRlLmNvbSUyMiU3RA==",
	"eyJkZXZpY2VJZCI6MX0",
	"JTdCJXp6",
	"_ga=GA1.2.3; AMP_0123456789=JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjJzb21lRGV2aWNlSWQlMjIlN0Q=",
	"amp_012345=dev.......",
	"Cookie: amp_012345=x; AMP_0123456789=y",
	"😀\n%+\"\\",
}

// FuzzParse checks that no input panics, that every failure is one typed
// line, and that Generate's output parses back wherever ParseAuto accepts it.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, format := range []Format{Legacy, BrowserSDK2} {
			_, err := Parse(s, format)
			checkErr(t, err, ErrMalformed)
		}
		_, _, err := ParseAuto(s)
		checkErr(t, err, ErrMalformed, ErrNoCookie, ErrAmbiguous)
		_, _, err = FromHeader(s, "")
		checkErr(t, err, ErrNoCookie, ErrAmbiguous)
		_, _, err = FromHeader(s, "0123456789abcdef")
		checkErr(t, err, ErrNoCookie)

		for _, format := range []Format{Legacy, BrowserSDK2} {
			checkAutoRoundTrip(t, s, format)
		}
	})
}

// checkAutoRoundTrip treats s as a device id. A generated legacy value that
// looks like a Cookie header is documented as ambiguous and skipped.
func checkAutoRoundTrip(t *testing.T, id string, format Format) {
	v, err := Generate(id, format)
	if err != nil || looksLikeHeader(v) {
		return
	}
	got, gotF, err := ParseAuto(v)
	if err != nil {
		return
	}
	assert.Equal(t, format, gotF, "%q", v)
	assert.Equal(t, Identity{DeviceID: id}, got, "%q", v)
}

// FuzzRoundTrip checks that Generate refuses only what it documents and that
// Parse always returns the generated id.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, id string, newFormat bool) {
		format := Legacy
		if newFormat {
			format = BrowserSDK2
		}
		v, err := Generate(id, format)
		if id == "" || !utf8.ValidString(id) || format == Legacy && strings.Contains(id, ".") {
			require.ErrorIs(t, err, ErrInvalidDeviceID)
			return
		}
		require.NoError(t, err)
		got, err := Parse(v, format)
		require.NoError(t, err, "%q", v)
		require.Equal(t, Identity{DeviceID: id}, got, "%q", v)
	})
}

func checkErr(t *testing.T, err error, allowed ...error) {
	t.Helper()
	if err == nil {
		return
	}
	assert.NotContains(t, err.Error(), "\n", "one line")
	for _, a := range allowed {
		if errors.Is(err, a) {
			return
		}
	}
	t.Errorf("untyped error: %v", err)
}
