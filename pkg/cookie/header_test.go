package cookie_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cookie"
)

const (
	apiKey   = "0123456789abcdef0123456789abcdef"
	newName  = "AMP_0123456789"
	oldName  = "amp_012345"
	newValue = "JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjJzb21lRGV2aWNlSWQlMjIlN0Q="
	oldValue = "deviceId.dGVzdEBhbXBsaXR1ZGUuY29t..1f1gkeib1.1f1gkeib1.dv.1ir.20q"
)

func TestFromHeaderWithKey(t *testing.T) {
	tests := []struct {
		name, header string
		wantValue    string
		wantF        cookie.Format
	}{
		{"new preferred", oldName + "=" + oldValue + "; " + newName + "=" + newValue, newValue, cookie.BrowserSDK2},
		{"legacy only", "_ga=GA1.2.3; " + oldName + "=" + oldValue, oldValue, cookie.Legacy},
		{"cookie: prefix, no spaces", "Cookie: x=1;" + newName + "=" + newValue, newValue, cookie.BrowserSDK2},
		{"quoted value", newName + `="` + newValue + `"`, newValue, cookie.BrowserSDK2},
		{"first of repeated name", newName + "=first; " + newName + "=second", "first", cookie.BrowserSDK2},
		{"other project ignored", "AMP_ffffffffff=zzz; " + oldName + "=" + oldValue, oldValue, cookie.Legacy},
		{"marketing cookie ignored", "AMP_MKTG_0123456789=x; " + newName + "=" + newValue, newValue, cookie.BrowserSDK2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, f, err := cookie.FromHeader(tt.header, apiKey)
			require.NoError(t, err)
			assert.Equal(t, tt.wantValue, v)
			assert.Equal(t, tt.wantF, f)
		})
	}
}

func TestFromHeaderShortKeyFindsLegacy(t *testing.T) {
	v, f, err := cookie.FromHeader(oldName+"="+oldValue, "0123456")
	require.NoError(t, err)
	assert.Equal(t, oldValue, v)
	assert.Equal(t, cookie.Legacy, f)

	_, _, err = cookie.FromHeader(oldName+"="+oldValue, "01234")
	require.ErrorIs(t, err, cookie.ErrInvalidAPIKey)
}

func TestFromHeaderWithKeyNotFound(t *testing.T) {
	_, _, err := cookie.FromHeader("AMP_ffffffffff="+newValue, apiKey)
	require.ErrorIs(t, err, cookie.ErrNoCookie)
	assert.EqualError(t, err, "cookie: no amplitude cookie for the given api key in the header")
}

func TestFromHeaderWithoutKey(t *testing.T) {
	tests := []struct {
		name, header string
		wantValue    string
		wantF        cookie.Format
		wantErr      error
	}{
		{"single new", "a=1; " + newName + "=" + newValue + "; b=2", newValue, cookie.BrowserSDK2, nil},
		{"single legacy", oldName + "=" + oldValue, oldValue, cookie.Legacy, nil},
		{"new with its own legacy", oldName + "=" + oldValue + "; " + newName + "=" + newValue, newValue, cookie.BrowserSDK2, nil},
		{"AMP_TEST ignored", "AMP_TEST=1; AMP_TLDTEST=1; " + oldName + "=" + oldValue, oldValue, cookie.Legacy, nil},
		{"repeated name is one cookie", newName + "=a; " + newName + "=b", "a", cookie.BrowserSDK2, nil},
		{"none", "a=1; b=2", "", cookie.Legacy, cookie.ErrNoCookie},
		{"empty", "", "", cookie.Legacy, cookie.ErrNoCookie},
		{"garbage", ";;;=;=", "", cookie.Legacy, cookie.ErrNoCookie},
		{"two projects new", newName + "=a; AMP_ffffffffff=b", "", cookie.Legacy, cookie.ErrAmbiguous},
		{"two projects legacy", oldName + "=a; amp_ffffff=b", "", cookie.Legacy, cookie.ErrAmbiguous},
		{"new and other legacy", newName + "=a; amp_ffffff=b", "", cookie.Legacy, cookie.ErrAmbiguous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, f, err := cookie.FromHeader(tt.header, "")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantValue, v)
			assert.Equal(t, tt.wantF, f)
		})
	}
}

func TestFromHeaderAmbiguousMessage(t *testing.T) {
	_, _, err := cookie.FromHeader(newName+"=a; AMP_ffffffffff=b", "")
	assert.EqualError(t, err, "cookie: more than one amplitude cookie in the header (2); give the api key to choose")
}

func TestParseAutoHeader(t *testing.T) {
	tests := []struct {
		header string
		want   cookie.Identity
		wantF  cookie.Format
	}{
		{"_ga=GA1.2.3; " + newName + "=" + newValue, cookie.Identity{DeviceID: "someDeviceId"}, cookie.BrowserSDK2},
		{newName + "=" + newValue, cookie.Identity{DeviceID: "someDeviceId"}, cookie.BrowserSDK2},
		{oldName + "=" + oldValue, cookie.Identity{DeviceID: "deviceId", UserID: "test@amplitude.com"}, cookie.Legacy},
		{"Cookie: " + oldName + "=" + oldValue + "; x=y", cookie.Identity{DeviceID: "deviceId", UserID: "test@amplitude.com"}, cookie.Legacy},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			id, f, err := cookie.ParseAuto(tt.header)
			require.NoError(t, err)
			assert.Equal(t, tt.want, id)
			assert.Equal(t, tt.wantF, f)
		})
	}
}

func TestParseAutoHeaderErrors(t *testing.T) {
	_, _, err := cookie.ParseAuto("a=1; b=2")
	require.ErrorIs(t, err, cookie.ErrNoCookie)

	_, _, err = cookie.ParseAuto(newName + "=; x=1")
	require.ErrorIs(t, err, cookie.ErrMalformed)
	assert.EqualError(t, err, "new-format cookie: value: empty")

	_, f, err := cookie.ParseAuto(newName + "=bm90IGpzb24")
	require.ErrorIs(t, err, cookie.ErrMalformed)
	assert.Equal(t, cookie.BrowserSDK2, f, "the cookie name decides the format")
}
