package cookie_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/cookie"
)

// Vectors from docs/protocol.md#identity-cookie (the Python SDK's
// tests/cookie_test.py).

func TestNameVectors(t *testing.T) {
	name, err := cookie.Name("1234567", cookie.Legacy)
	require.NoError(t, err)
	assert.Equal(t, "amp_123456", name)

	name, err = cookie.Name("12345678901", cookie.BrowserSDK2)
	require.NoError(t, err)
	assert.Equal(t, "AMP_1234567890", name)

	_, err = cookie.Name("12345678", cookie.BrowserSDK2)
	require.ErrorIs(t, err, cookie.ErrInvalidAPIKey)
}

func TestNameErrors(t *testing.T) {
	tests := []struct {
		key  string
		f    cookie.Format
		want string
	}{
		{"", cookie.Legacy, "cookie: invalid amplitude api key: empty"},
		{"", cookie.BrowserSDK2, "cookie: invalid amplitude api key: empty"},
		{"12345", cookie.Legacy, "cookie: invalid amplitude api key: 5 characters, the legacy cookie name needs at least 6"},
		{"123456789", cookie.BrowserSDK2, "cookie: invalid amplitude api key: 9 characters, the new-format cookie name needs at least 10"},
		{"abc;ef0123", cookie.Legacy, "cookie: invalid amplitude api key: its first 6 characters are not all allowed in a cookie name"},
		{"abcdéf0123", cookie.Legacy, "cookie: invalid amplitude api key: its first 6 characters are not all allowed in a cookie name"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := cookie.Name(tt.key, tt.f)
			require.ErrorIs(t, err, cookie.ErrInvalidAPIKey)
			assert.EqualError(t, err, tt.want)
		})
	}
}

func TestNameNeverLeaksKey(t *testing.T) {
	const secret = "s3cr3tK3y"
	for _, f := range []cookie.Format{cookie.BrowserSDK2} {
		_, err := cookie.Name(secret, f)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), secret)
	}
	_, _, err := cookie.FromHeader("a=b", "0123456789abcdef0123456789abcdef")
	require.ErrorIs(t, err, cookie.ErrNoCookie)
	assert.NotContains(t, err.Error(), "0123456789abcdef")
	assert.NotContains(t, err.Error(), "012345")
}

func TestNameUnknownFormat(t *testing.T) {
	_, err := cookie.Name("0123456789", cookie.Format(7))
	require.ErrorIs(t, err, cookie.ErrUnknownFormat)
	assert.EqualError(t, err, "cookie: unknown cookie format: 7")
}

func TestParseLegacyVectors(t *testing.T) {
	tests := []struct {
		value string
		want  cookie.Identity
	}{
		{"deviceId...1f1gkeib1.1f1gkeib1.dv.1ir.20q", cookie.Identity{DeviceID: "deviceId"}},
		{"deviceId.dGVzdEBhbXBsaXR1ZGUuY29t..1f1gkeib1.1f1gkeib1.dv.1ir.20q",
			cookie.Identity{DeviceID: "deviceId", UserID: "test@amplitude.com"}},
		{"deviceId.Y8O3Pg==..1f1gkeib1.1f1gkeib1.dv.1ir.20q",
			cookie.Identity{DeviceID: "deviceId", UserID: "c÷>"}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got, err := cookie.Parse(tt.value, cookie.Legacy)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)

			got, f, err := cookie.ParseAuto(tt.value)
			require.NoError(t, err)
			assert.Equal(t, cookie.Legacy, f)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseNewVectors(t *testing.T) {
	tests := []struct {
		value string
		want  cookie.Identity
	}{
		{"JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjJzb21lRGV2aWNlSWQlMjIlN0Q=", cookie.Identity{DeviceID: "someDeviceId"}},
		{"JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjJzb21lRGV2aWNlSWQlMjIlMkMlMjJ1c2VySWQlMjIlM0ElMjJleGFtcGxlJTQwYW1wbGl0dWRlLmNvbSUyMiU3RA==",
			cookie.Identity{DeviceID: "someDeviceId", UserID: "example@amplitude.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got, err := cookie.Parse(tt.value, cookie.BrowserSDK2)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)

			got, f, err := cookie.ParseAuto(tt.value)
			require.NoError(t, err)
			assert.Equal(t, cookie.BrowserSDK2, f)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestGenerateVectors(t *testing.T) {
	got, err := cookie.Generate("deviceId", cookie.Legacy)
	require.NoError(t, err)
	assert.Equal(t, "deviceId..........", got)

	got, err = cookie.Generate("someDeviceId", cookie.BrowserSDK2)
	require.NoError(t, err)
	assert.Equal(t, "JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjAlMjJzb21lRGV2aWNlSWQlMjIlN0Q=", got)
	assert.Equal(t, "%7B%22deviceId%22%3A%20%22someDeviceId%22%7D", b64(t, got))
}

// TestGeneratePythonBytes pins outputs of CPython 3's
// quote(json.dumps({"deviceId": id})) for the escaping corner cases.
func TestGeneratePythonBytes(t *testing.T) {
	tests := []struct{ id, quoted string }{
		{"a/b~c_d-e", "%7B%22deviceId%22%3A%20%22a/b~c_d-e%22%7D"},
		{`q"b\`, "%7B%22deviceId%22%3A%20%22q%5C%22b%5C%5C%22%7D"},
		{"\n\r\t\b\f\x01\x7f", "%7B%22deviceId%22%3A%20%22%5Cn%5Cr%5Ct%5Cb%5Cf%5Cu0001%5Cu007f%22%7D"},
		{"é中", "%7B%22deviceId%22%3A%20%22%5Cu00e9%5Cu4e2d%22%7D"},
		{"😀", "%7B%22deviceId%22%3A%20%22%5Cud83d%5Cude00%22%7D"},
		{"a b+c%d", "%7B%22deviceId%22%3A%20%22a%20b%2Bc%25d%22%7D"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := cookie.Generate(tt.id, cookie.BrowserSDK2)
			require.NoError(t, err)
			assert.Equal(t, tt.quoted, b64(t, got))
			assert.Equal(t, base64.StdEncoding.EncodeToString([]byte(tt.quoted)), got)
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		id   string
		f    cookie.Format
		want string
	}{
		{"", cookie.Legacy, "cookie: invalid device id: empty"},
		{"", cookie.BrowserSDK2, "cookie: invalid device id: empty"},
		{"a\xffb", cookie.BrowserSDK2, "cookie: invalid device id: not valid utf-8"},
		{"a\xffb", cookie.Legacy, "cookie: invalid device id: not valid utf-8"},
		{"a.b", cookie.Legacy, "cookie: invalid device id: contains '.', the legacy field separator, so it cannot round-trip; use the new format"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := cookie.Generate(tt.id, tt.f)
			require.ErrorIs(t, err, cookie.ErrInvalidDeviceID)
			assert.EqualError(t, err, tt.want)
		})
	}
	got, err := cookie.Generate("a.b", cookie.BrowserSDK2)
	require.NoError(t, err, "only the legacy format reserves '.'")
	assert.NotEmpty(t, got)

	_, err = cookie.Generate("x", cookie.Format(-1))
	require.ErrorIs(t, err, cookie.ErrUnknownFormat)
}

func TestParseErrors(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name  string
		value string
		f     cookie.Format
		part  string
		want  string
	}{
		{"empty legacy", "", cookie.Legacy, "value", "legacy cookie: value: empty"},
		{"empty new", "", cookie.BrowserSDK2, "value", "new-format cookie: value: empty"},
		{"bad base64", "JTdC*TIy", cookie.BrowserSDK2, "base64",
			"new-format cookie: base64: illegal base64 data at input byte 4"},
		{"padding inside", "JTdC==JTdC", cookie.BrowserSDK2, "base64",
			"new-format cookie: base64: illegal base64 data at input byte 4"},
		{"bad url escape", enc("%7B%zz"), cookie.BrowserSDK2, "url",
			`new-format cookie: url: invalid URL escape "%zz"`},
		{"truncated escape", enc("%7B%2"), cookie.BrowserSDK2, "url",
			`new-format cookie: url: invalid URL escape "%2"`},
		{"bad utf-8", enc("%7B%22deviceId%22:%22%FF%22%7D"), cookie.BrowserSDK2, "utf-8",
			"new-format cookie: utf-8: not valid utf-8"},
		{"bad json", enc(`{"deviceId":`), cookie.BrowserSDK2, "json",
			"new-format cookie: json: unexpected end of JSON input"},
		{"json syntax", enc(`{"deviceId" 1}`), cookie.BrowserSDK2, "json",
			"new-format cookie: json: invalid character '1' after object key"},
		{"json array", enc(`["deviceId"]`), cookie.BrowserSDK2, "json",
			"new-format cookie: json: not a json object"},
		{"missing device", enc(`{"userId":"u"}`), cookie.BrowserSDK2, "json",
			"new-format cookie: json: missing deviceId"},
		{"empty device", enc(`{"deviceId":""}`), cookie.BrowserSDK2, "json",
			"new-format cookie: json: missing deviceId"},
		{"null device", enc(`{"deviceId":null}`), cookie.BrowserSDK2, "json",
			"new-format cookie: json: missing deviceId"},
		{"case of key matters", enc(`{"deviceid":"d"}`), cookie.BrowserSDK2, "json",
			"new-format cookie: json: missing deviceId"},
		{"numeric device", enc(`{"deviceId":12}`), cookie.BrowserSDK2, "json",
			"new-format cookie: json: deviceId is not a string"},
		{"object user", enc(`{"deviceId":"d","userId":{}}`), cookie.BrowserSDK2, "json",
			"new-format cookie: json: userId is not a string"},
		{"legacy bad user base64", "dev.a*b=..", cookie.Legacy, "user id",
			"legacy cookie: user id: base64: illegal base64 data at input byte 1"},
		{"legacy user not utf-8", "dev." + enc("\xff\xfe") + "..", cookie.Legacy, "user id",
			"legacy cookie: user id: not valid utf-8"},
		{"legacy empty device", ".dGVzdA==..", cookie.Legacy, "device id",
			"legacy cookie: device id: empty"},
		{"legacy device not utf-8", "d\xffv...", cookie.Legacy, "device id",
			"legacy cookie: device id: not valid utf-8"},
		{"legacy no dot with space", "dev ice", cookie.Legacy, "value",
			"legacy cookie: value: has no '.' and is not a plausible device id"},
		{"legacy no dot pair", "a=b", cookie.Legacy, "value",
			"legacy cookie: value: has no '.' and is not a plausible device id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cookie.Parse(tt.value, tt.f)
			require.ErrorIs(t, err, cookie.ErrMalformed)
			assert.EqualError(t, err, tt.want)
			var pe *cookie.ParseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.f, pe.Format)
			assert.Equal(t, tt.part, pe.Part)
		})
	}
}

func TestParseErrorUnwrapsCause(t *testing.T) {
	_, err := cookie.Parse("JTdC*TIy", cookie.BrowserSDK2)
	var corrupt base64.CorruptInputError
	require.ErrorAs(t, err, &corrupt)
	assert.EqualValues(t, 4, corrupt)
}

func TestParseLenient(t *testing.T) {
	const padded = "JTdCJTIyZGV2aWNlSWQlMjIlM0ElMjJzb21lRGV2aWNlSWQlMjIlN0Q="
	want := cookie.Identity{DeviceID: "someDeviceId"}
	urlSafe := func(s string) string {
		return strings.NewReplacer("+", "-", "/", "_").Replace(s)
	}
	// "{"deviceId":"a?>b","userId":"~~~"}" without URL encoding has '+'
	// and '/' in its base64, so the URL-safe alphabet is exercised.
	rawJSON := base64.StdEncoding.EncodeToString([]byte(`{"deviceId":"a?>b","userId":"~~~?"}`))
	require.True(t, strings.ContainsAny(rawJSON, "+/"), rawJSON)

	tests := []struct {
		name, value string
		f           cookie.Format
		want        cookie.Identity
	}{
		{"unpadded", strings.TrimRight(padded, "="), cookie.BrowserSDK2, want},
		{"url-safe", urlSafe(rawJSON), cookie.BrowserSDK2, cookie.Identity{DeviceID: "a?>b", UserID: "~~~?"}},
		{"url-safe unpadded", strings.TrimRight(urlSafe(rawJSON), "="), cookie.BrowserSDK2,
			cookie.Identity{DeviceID: "a?>b", UserID: "~~~?"}},
		{"node bytes", base64.StdEncoding.EncodeToString([]byte(`%7B%22deviceId%22%3A%22someDeviceId%22%7D`)),
			cookie.BrowserSDK2, want},
		{"plus is space", base64.StdEncoding.EncodeToString([]byte(`{"deviceId":"a+b"}`)),
			cookie.BrowserSDK2, cookie.Identity{DeviceID: "a b"}},
		{"extra keys", base64.StdEncoding.EncodeToString([]byte(`{"deviceId":"d","sessionId":17,"optOut":false,"userId":null}`)),
			cookie.BrowserSDK2, cookie.Identity{DeviceID: "d"}},
		{"legacy unpadded user", "deviceId.Y8O3Pg..1f1", cookie.Legacy, cookie.Identity{DeviceID: "deviceId", UserID: "c÷>"}},
		{"legacy bare device id", "7c2f3b1e-4a5d-4e8f-9b0a-1c2d3e4f5a6bR", cookie.Legacy,
			cookie.Identity{DeviceID: "7c2f3b1e-4a5d-4e8f-9b0a-1c2d3e4f5a6bR"}},
		{"legacy no user, one dot", "dev.", cookie.Legacy, cookie.Identity{DeviceID: "dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cookie.Parse(tt.value, tt.f)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseLegacyURLSafeUser(t *testing.T) {
	// "~~~?" is fn5-Pw in URL-safe base64 and fn5+Pw== in standard.
	for _, part := range []string{"fn5+Pw==", "fn5+Pw", "fn5-Pw", "fn5-Pw=="} {
		got, err := cookie.Parse("dev."+part+"..", cookie.Legacy)
		require.NoError(t, err, part)
		assert.Equal(t, cookie.Identity{DeviceID: "dev", UserID: "~~~?"}, got, part)
	}
}

func TestParseUnknownFormat(t *testing.T) {
	_, err := cookie.Parse("dev...", cookie.Format(2))
	require.ErrorIs(t, err, cookie.ErrUnknownFormat)
}

func TestParseAutoDetection(t *testing.T) {
	tests := []struct {
		value   string
		wantF   cookie.Format
		wantID  cookie.Identity
		wantErr error
	}{
		{"", cookie.Legacy, cookie.Identity{}, cookie.ErrMalformed},
		{"dev..........", cookie.Legacy, cookie.Identity{DeviceID: "dev"}, nil},
		// No dot: only the new format is possible, and this is not one.
		{"bare-device-id", cookie.BrowserSDK2, cookie.Identity{}, cookie.ErrMalformed},
		{"not an id", cookie.BrowserSDK2, cookie.Identity{}, cookie.ErrMalformed},
		// Decodes to "%7B%zz": recognised as new-format, then rejected.
		{"JTdCJXp6", cookie.BrowserSDK2, cookie.Identity{}, cookie.ErrMalformed},
		{"a=b; c=d", cookie.Legacy, cookie.Identity{}, cookie.ErrNoCookie},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			id, f, err := cookie.ParseAuto(tt.value)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "\n")
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantF, f)
			assert.Equal(t, tt.wantID, id)
		})
	}
}

func b64(t *testing.T, s string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(s)
	require.NoError(t, err)
	return string(raw)
}
