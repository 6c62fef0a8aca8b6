// Package zone spells Amplitude's data centers one way for every SDK
// package that takes one (pkg/experiment, pkg/analytics): each keeps its
// own ServerZone type, since analytics cannot import experiment, and both
// read and check it here so that "eu", " EU" and "EU" mean the same
// everywhere.
package zone

import (
	"fmt"
	"strings"
)

// The data centers, as the SDKs' constants spell them.
const (
	US = "US"
	EU = "EU"
)

// Canonical is z upper-cased without surrounding white space; "" stays ""
// (the default, US).
func Canonical(z string) string { return strings.ToUpper(strings.TrimSpace(z)) }

// Check accepts "", US and EU in any case.
func Check(z string) error {
	switch Canonical(z) {
	case "", US, EU:
		return nil
	}
	return fmt.Errorf("server zone %q: want %q or %q", z, US, EU)
}
