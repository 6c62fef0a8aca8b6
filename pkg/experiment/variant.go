package experiment

import "reflect"

// Variant is what a flag gives a user. Value is always a string: a
// non-string configured value is rendered as compact JSON text, and a missing
// one is "". Its JSON form always has all four fields.
//
// A Variant from an evaluation shares Payload and Metadata with the flag
// set (and with every other evaluation): they are read-only. Copy them
// (maps.Clone) before changing them.
type Variant struct {
	Key      string         `json:"key"`
	Value    string         `json:"value"`
	Payload  any            `json:"payload"`
	Metadata map[string]any `json:"metadata"`
}

// IsDefault reports whether this is the flag's fallback variant
// (metadata.default is true), which is never exposed.
func (v Variant) IsDefault() bool {
	d, _ := v.Metadata["default"].(bool)
	return d
}

// IsDeployed reports metadata.deployed, true when missing.
func (v Variant) IsDeployed() bool {
	d, ok := v.Metadata["deployed"].(bool)
	return !ok || d
}

// Equal compares key, value and payload; metadata is informational, as in
// the Python SDK.
func (v Variant) Equal(o Variant) bool {
	return v.Key == o.Key && v.Value == o.Value && reflect.DeepEqual(v.Payload, o.Payload)
}

// filterDefaults drops default and undeployed variants, the legacy
// Evaluate/Fetch behaviour.
func filterDefaults(variants map[string]Variant) map[string]Variant {
	out := make(map[string]Variant, len(variants))
	for k, v := range variants {
		if !v.IsDefault() && v.IsDeployed() {
			out[k] = v
		}
	}
	return out
}
