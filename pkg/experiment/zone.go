package experiment

import (
	"cmp"
	"net/url"
	"strings"

	"github.com/flagkit/experiment/internal/httpx"
	"github.com/flagkit/experiment/internal/zone"
)

// ServerZone is the Amplitude data center a project lives in. It picks the
// default URL of every service; a URL configured explicitly always wins. The
// zero value is ServerZoneUS. Any case is accepted, with surrounding white
// space: ServerZone("eu") is ServerZoneEU everywhere a zone is used, as
// ParseServerZone("eu") is.
type ServerZone string

// The data centers.
const (
	ServerZoneUS ServerZone = zone.US
	ServerZoneEU ServerZone = zone.EU
)

// ParseServerZone accepts "us" or "eu" in any case; "" is US.
func ParseServerZone(s string) (ServerZone, error) {
	if err := zone.Check(s); err != nil {
		return "", err
	}
	return cmp.Or(ServerZone(s).canonical(), ServerZoneUS), nil
}

// canonical is the one spelling every comparison of zones uses
// (internal/zone); "" stays "" (US, by default).
func (z ServerZone) canonical() ServerZone { return ServerZone(zone.Canonical(string(z))) }

func (z ServerZone) valid() error { return zone.Check(string(z)) }

// zoneURLs are the default base URLs of each service.
var zoneURLs = map[ServerZone]struct{ remote, flags, stream, cohort string }{
	ServerZoneUS: {"https://api.lab.amplitude.com", "https://api.lab.amplitude.com", "https://stream.lab.amplitude.com", "https://cohort-v2.lab.amplitude.com"},
	ServerZoneEU: {"https://api.lab.eu.amplitude.com", "https://flag.lab.eu.amplitude.com", "https://stream.lab.eu.amplitude.com", "https://cohort-v2.lab.eu.amplitude.com"},
}

func (z ServerZone) urls() struct{ remote, flags, stream, cohort string } {
	if z.canonical() == ServerZoneEU {
		return zoneURLs[ServerZoneEU]
	}
	return zoneURLs[ServerZoneUS]
}

// RemoteServerURL is the zone's remote evaluation base URL.
func (z ServerZone) RemoteServerURL() string { return z.urls().remote }

// FlagsServerURL is the zone's flag config (local evaluation) base URL.
func (z ServerZone) FlagsServerURL() string { return z.urls().flags }

// StreamServerURL is the zone's flag streaming base URL.
func (z ServerZone) StreamServerURL() string { return z.urls().stream }

// CohortServerURL is the zone's cohort download base URL.
func (z ServerZone) CohortServerURL() string { return z.urls().cohort }

// endpointURL joins a service base URL and an endpoint path the way
// Amplitude's SDKs do it: the base URL's own path is kept and exactly one '/'
// separates the parts, so "http://h/prefix/" + "/sdk/v2/vardata" is
// "http://h/prefix/sdk/v2/vardata". The base URL's query and fragment are
// dropped; query is the endpoint's.
func endpointURL(base, endpoint, query string) (*url.URL, error) {
	u, err := httpx.ParseURL("server URL", base)
	if err != nil {
		return nil, err
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/" + strings.TrimLeft(endpoint, "/")
	u.RawPath = ""
	u.RawQuery = query
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}
