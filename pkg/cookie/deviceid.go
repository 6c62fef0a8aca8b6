package cookie

import "crypto/rand"

// NewDeviceID returns a fresh random device id for a visitor who has none
// yet, to pass to [Generate] and to evaluate with. It is a version 4 UUID in
// lower-case hex (xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx, y one of 8, 9, a, b),
// the shape Browser SDK 2.0 gives the devices it identifies and the one the
// Python SDK's documentation makes with uuid.uuid4(). It contains no '.', so
// it suits both formats.
//
// The 122 random bits come from crypto/rand: device ids bucket users into
// variants, so they must not be predictable or repeat across processes.
// NewDeviceID is safe for concurrent use.
func NewDeviceID() string {
	var u [16]byte
	// crypto/rand.Read never returns an error since Go 1.24: on a broken
	// random source the program stops rather than hand out guessable ids.
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	const hex = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[c>>4], hex[c&15]
		j += 2
	}
	return string(b[:])
}
