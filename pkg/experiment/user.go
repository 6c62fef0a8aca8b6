package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// User is who flags are evaluated for. Its JSON form is Amplitude's
// snake_case user object; every field is optional.
type User struct {
	UserID             string `json:"user_id,omitempty"`
	DeviceID           string `json:"device_id,omitempty"`
	Country            string `json:"country,omitempty"`
	Region             string `json:"region,omitempty"`
	DMA                string `json:"dma,omitempty"`
	City               string `json:"city,omitempty"`
	Language           string `json:"language,omitempty"`
	Platform           string `json:"platform,omitempty"`
	Version            string `json:"version,omitempty"`
	OS                 string `json:"os,omitempty"`
	DeviceManufacturer string `json:"device_manufacturer,omitempty"`
	DeviceBrand        string `json:"device_brand,omitempty"`
	DeviceModel        string `json:"device_model,omitempty"`
	Carrier            string `json:"carrier,omitempty"`
	Library            string `json:"library,omitempty"`
	// IPAddress is sent to remote evaluation; local evaluation ignores it,
	// as Amplitude's engine does.
	IPAddress string `json:"ip_address,omitempty"`

	UserProperties  map[string]any            `json:"user_properties,omitempty"`
	Groups          map[string][]string       `json:"groups,omitempty"`
	GroupProperties map[string]map[string]any `json:"group_properties,omitempty"`
	// CohortIDs and GroupCohortIDs are normally filled by cohort
	// enrichment during local evaluation; values set here are used for
	// cohorts that no flag targets.
	CohortIDs      []string                       `json:"cohort_ids,omitempty"`
	GroupCohortIDs map[string]map[string][]string `json:"group_cohort_ids,omitempty"`
}

// ErrNotObject is wrapped by DecodeUser when the input is not a JSON object.
var ErrNotObject = errors.New("want a JSON object")

// DecodeUser parses one user object. Numbers decode as float64, as in the
// reference engine, so 1000000 is matched as the string "1e+06".
func DecodeUser(data []byte) (*User, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("user: %w", ErrNotObject)
	}
	var u User
	if err := json.Unmarshal(trimmed, &u); err != nil {
		return nil, fmt.Errorf("user: %w", describeJSONError(err))
	}
	return &u, nil
}

// jsonTypeName names a Go type the way a JSON user knows it.
func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "JSON object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "JSON array of strings"
		}
		return "JSON array"
	case reflect.String:
		return "JSON string"
	case reflect.Bool:
		return "JSON boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "JSON number"
	}
	return "JSON " + t.String()
}

func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("%s: want %s, got JSON %s", te.Field, jsonTypeName(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("offset %d: %s", se.Offset, se.Error())
	}
	return err
}
