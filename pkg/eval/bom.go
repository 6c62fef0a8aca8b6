package eval

import "strings"

// utf8BOM is the byte-order mark some Windows editors write at the start
// of a UTF-8 file. JSON parsers may ignore it (RFC 8259 section 8.1);
// encoding/json does not, which made a flag file saved by such an editor
// fail with "invalid character 'ï'".
const utf8BOM = "\xef\xbb\xbf"

func trimBOM(data []byte) []byte {
	if strings.HasPrefix(string(data), utf8BOM) { // no copy: the conversion is only compared
		return data[len(utf8BOM):]
	}
	return data
}
