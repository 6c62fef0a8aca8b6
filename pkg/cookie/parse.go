package cookie

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/flagkit/experiment/internal/httpx"
)

// Parse reads the identity from a cookie value in the given format.
//
// Unlike the Python SDK, which drops an undecodable user id and returns an
// empty user for a broken new-format value, Parse reports every problem with
// the value as a *ParseError, because a silently anonymous user evaluates to different
// variants. A device id is always required.
func Parse(value string, f Format) (Identity, error) {
	switch f {
	case Legacy:
		return parseLegacy(value)
	case BrowserSDK2:
		return parseNew(value)
	}
	_, _, err := f.namePrefix()
	return Identity{}, err
}

// ParseAuto detects the format of value and parses it.
//
// A value containing '.' is legacy; any other is new-format. Parse with
// Legacy accepts a bare device id without dots; ParseAuto does not, since
// every real legacy cookie has them.
//
// ParseAuto also accepts a whole Cookie header ("a=1; AMP_0123456789=…"):
// when value contains ';' or starts with "amp_xxxxxx=" or
// "AMP_xxxxxxxxxx=", the single Amplitude cookie is picked as FromHeader
// does without an API key, and its format follows from its name. A header
// without exactly one fails with ErrNoCookie or ErrAmbiguous, not
// ErrMalformed. So a legacy value whose device id contains ';', or begins
// like such a cookie pair, is read as a header; use Parse with an explicit
// format for those.
func ParseAuto(value string) (Identity, Format, error) {
	value, f, err := locate(value)
	if err != nil {
		return Identity{}, f, err
	}
	id, err := Parse(value, f)
	return id, f, err
}

// locate finds the cookie value to parse and its format.
func locate(value string) (string, Format, error) {
	if looksLikeHeader(value) {
		return FromHeader(value, "")
	}
	f, err := detect(value)
	return value, f, err
}

func detect(value string) (Format, error) {
	switch {
	case value == "":
		return Legacy, fmt.Errorf("cookie: %w: empty value", ErrMalformed)
	case strings.Contains(value, "."):
		return Legacy, nil
	}
	// Every legacy cookie has dots (Generate writes ten), so a value without
	// one can only be a new-format value; parsing it as one names what is
	// wrong with it rather than taking garbage for a device id.
	return BrowserSDK2, nil
}

func parseLegacy(value string) (Identity, error) {
	if value == "" {
		return Identity{}, malformed(Legacy, "value", errEmpty)
	}
	device, rest, dotted := strings.Cut(value, ".")
	if !dotted {
		return bareLegacy(value)
	}
	if err := checkParsedID(device); err != nil {
		return Identity{}, malformed(Legacy, "device id", err)
	}
	userPart, _, _ := strings.Cut(rest, ".")
	user, err := decodeLegacyUser(userPart)
	if err != nil {
		return Identity{}, malformed(Legacy, "user id", err)
	}
	return Identity{DeviceID: device, UserID: user}, nil
}

// bareLegacy accepts a value without any '.' as a device id alone, which
// Python cannot (it raises IndexError), but only when it could plausibly be
// an id rather than a pasted fragment of something else.
func bareLegacy(value string) (Identity, error) {
	if !looksLikeID(value) {
		return Identity{}, malformed(Legacy, "value",
			errors.New("has no '.' and is not a plausible device id"))
	}
	return Identity{DeviceID: value}, nil
}

// looksLikeID rejects whitespace, control characters and the characters
// RFC 6265 forbids in cookie values, plus '=', which in a value without
// '.' almost always means a name=value pair was pasted.
func looksLikeID(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`;,"\=`, r) {
			return false
		}
	}
	return true
}

func checkParsedID(id string) error {
	if id == "" {
		return errEmpty
	}
	if !utf8.ValidString(id) {
		return errInvalidUTF8
	}
	return nil
}

func decodeLegacyUser(part string) (string, error) {
	if part == "" {
		return "", nil
	}
	raw, err := httpx.DecodeBase64(part)
	if err != nil {
		return "", fmt.Errorf("base64: %w", err)
	}
	if !utf8.Valid(raw) {
		return "", errInvalidUTF8
	}
	return string(raw), nil
}

func parseNew(value string) (Identity, error) {
	if value == "" {
		return Identity{}, malformed(BrowserSDK2, "value", errEmpty)
	}
	raw, err := httpx.DecodeBase64(value)
	if err != nil {
		return Identity{}, malformed(BrowserSDK2, "base64", err)
	}
	// QueryUnescape is Python's unquote_plus ('+' is a space), except
	// that it rejects a bad %XX instead of keeping it literally.
	text, err := url.QueryUnescape(string(raw))
	if err != nil {
		return Identity{}, malformed(BrowserSDK2, "url", err)
	}
	// encoding/json would silently turn invalid UTF-8 into U+FFFD,
	// changing the id; Python would raise.
	if !utf8.ValidString(text) {
		return Identity{}, malformed(BrowserSDK2, "utf-8", errInvalidUTF8)
	}
	id, err := identityFromJSON(text)
	if err != nil {
		return Identity{}, malformed(BrowserSDK2, "json", err)
	}
	return id, nil
}

// identityFromJSON decodes into a map rather than a struct because
// encoding/json matches struct fields case-insensitively, and "deviceid"
// is not the key Browser SDK 2.0 writes.
func identityFromJSON(text string) (Identity, error) {
	if !strings.HasPrefix(strings.TrimLeft(text, " \t\r\n"), "{") {
		return Identity{}, errors.New("not a json object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &fields); err != nil {
		return Identity{}, err
	}
	device, err := stringField(fields, "deviceId")
	if err != nil {
		return Identity{}, err
	}
	if device == "" {
		return Identity{}, errors.New("missing deviceId")
	}
	user, err := stringField(fields, "userId")
	if err != nil {
		return Identity{}, err
	}
	return Identity{DeviceID: device, UserID: user}, nil
}

// stringField treats null like an absent key, as Python's None would be.
func stringField(fields map[string]json.RawMessage, key string) (string, error) {
	raw, ok := fields[key]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s is not a string", key)
	}
	return s, nil
}
