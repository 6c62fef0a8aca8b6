package cookie

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// legacyTail is what amplitude-js would read as "no user id, no session":
// Python writes exactly these ten dots, and so must we to match its bytes.
const legacyTail = ".........."

// Generate returns a cookie value that makes a browser SDK adopt deviceID,
// byte for byte what the Python SDK's generate writes.
//
// The id must be non-empty valid UTF-8. A legacy id must not contain '.',
// the legacy field separator, since Parse could not give it back.
func Generate(deviceID string, f Format) (string, error) {
	if err := checkGenerateID(deviceID, f); err != nil {
		return "", err
	}
	if f == Legacy {
		return deviceID + legacyTail, nil
	}
	quoted := pyQuote(pyJSONObject("deviceId", deviceID))
	return base64.StdEncoding.EncodeToString([]byte(quoted)), nil
}

func checkGenerateID(id string, f Format) error {
	if _, _, err := f.namePrefix(); err != nil {
		return err
	}
	switch {
	case id == "":
		return fmt.Errorf("cookie: %w: empty", ErrInvalidDeviceID)
	case !utf8.ValidString(id):
		return fmt.Errorf("cookie: %w: not valid utf-8", ErrInvalidDeviceID)
	case f == Legacy && strings.Contains(id, "."):
		return fmt.Errorf("cookie: %w: contains '.', the legacy field separator, so it cannot round-trip; use the new format",
			ErrInvalidDeviceID)
	}
	return nil
}

// pyJSONObject writes a one-key object as Python's json.dumps does by
// default: ": " after the key and every non-ASCII character escaped.
func pyJSONObject(key, value string) string {
	var b strings.Builder
	b.WriteByte('{')
	pyJSONString(&b, key)
	b.WriteString(": ")
	pyJSONString(&b, value)
	b.WriteByte('}')
	return b.String()
}

// pyJSONString follows CPython's ensure_ascii encoder: printable ASCII
// as is, the five short escapes, and \uXXXX in lower-case hex (a UTF-16
// surrogate pair beyond the BMP) for everything else, DEL included.
func pyJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			writeJSONRune(b, r)
		}
	}
	b.WriteByte('"')
}

func writeJSONRune(b *strings.Builder, r rune) {
	switch {
	case r >= 0x20 && r <= 0x7e:
		b.WriteRune(r)
	case r < 0x10000:
		fmt.Fprintf(b, `\u%04x`, r)
	default:
		hi, lo := utf16.EncodeRune(r)
		fmt.Fprintf(b, `\u%04x\u%04x`, hi, lo)
	}
}

// pyQuote is urllib.parse.quote with its default safe="/": unreserved
// characters and '/' stay, every other byte becomes upper-case %XX.
// (Node's encodeURIComponent would also encode '/', giving other bytes.)
func pyQuote(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '_' || c == '.' || c == '-' || c == '~'
}
