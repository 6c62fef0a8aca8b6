package experiment

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
)

// FetchOptions tune one remote fetch, as the Python SDK's FetchOptions do.
// The zero value (and nil) asks for every flag and leaves tracking to the
// server's defaults.
type FetchOptions struct {
	// TracksAssignment, when set, tells the server whether to track an
	// assignment event (X-Amp-Exp-Track: track or no-track). Unset (nil)
	// sends no header: the server then tracks assignments.
	TracksAssignment *bool
	// TracksExposure, when set, tells the server whether to track an
	// exposure event (X-Amp-Exp-Exposure-Track). Unset sends no header: the
	// server then tracks no exposure.
	TracksExposure *bool
	// FlagKeys limits the evaluation to these flags; empty means all.
	FlagKeys []string
}

// The request headers that carry FetchOptions, as the official SDKs send them.
const (
	headerFlagKeys      = "X-Amp-Exp-Flag-Keys"
	headerTrack         = "X-Amp-Exp-Track"
	headerExposureTrack = "X-Amp-Exp-Exposure-Track"
)

// encodedFlagKeys is the X-Amp-Exp-Flag-Keys value: URL-safe base64 without
// padding of the compact JSON array of keys; "" when there are none.
func (o *FetchOptions) encodedFlagKeys() (string, error) {
	if o == nil || len(o.FlagKeys) == 0 {
		return "", nil
	}
	b, err := json.Marshal(o.FlagKeys)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// setHeaders adds the option headers; the tracking ones only when set.
func (o *FetchOptions) setHeaders(h http.Header, flagKeys string) {
	if flagKeys != "" {
		h.Set(headerFlagKeys, flagKeys)
	}
	if o == nil {
		return
	}
	if o.TracksAssignment != nil {
		h.Set(headerTrack, trackValue(*o.TracksAssignment))
	}
	if o.TracksExposure != nil {
		h.Set(headerExposureTrack, trackValue(*o.TracksExposure))
	}
}

func trackValue(track bool) string {
	if track {
		return "track"
	}
	return "no-track"
}
