package cookie_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cookie"
)

// A version 4, RFC 9562 variant UUID in lower case: what Browser SDK 2.0
// generates and uuid.uuid4() prints.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewDeviceIDShape(t *testing.T) {
	seen := make(map[string]bool)
	for range 2000 {
		id := cookie.NewDeviceID()
		require.Regexp(t, uuidV4, id)
		require.False(t, seen[id], "repeated id %s", id)
		seen[id] = true
	}
}

// Every random nibble takes every value: a generator that fixed or biased
// a position (a hex table slip, a shift by the wrong amount) would not.
func TestNewDeviceIDUsesEveryDigit(t *testing.T) {
	var digits [36]map[byte]bool
	for i := range digits {
		digits[i] = make(map[byte]bool)
	}
	for range 2000 {
		id := cookie.NewDeviceID()
		for i := range len(id) {
			digits[i][id[i]] = true
		}
	}
	for i, d := range digits {
		switch i {
		case 8, 13, 18, 23:
			assert.Len(t, d, 1, "position %d is a dash", i)
		case 14:
			assert.Len(t, d, 1, "position %d is the version", i)
		case 19:
			assert.Len(t, d, 4, "position %d is the variant: 8, 9, a or b", i)
		default:
			assert.Len(t, d, 16, "position %d", i)
		}
	}
}

// A fresh id goes into a cookie of either format and comes back unchanged.
func TestNewDeviceIDRoundTrip(t *testing.T) {
	id := cookie.NewDeviceID()
	for _, f := range []cookie.Format{cookie.Legacy, cookie.BrowserSDK2} {
		v, err := cookie.Generate(id, f)
		require.NoError(t, err, f)
		got, err := cookie.Parse(v, f)
		require.NoError(t, err, f)
		assert.Equal(t, cookie.Identity{DeviceID: id}, got, f)
	}
}
