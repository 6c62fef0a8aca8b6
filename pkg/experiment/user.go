package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode"

	"github.com/agnivade/levenshtein"
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
//
// DecodeUser is lenient: fields that are not user fields are ignored, so
// that objects from other systems, carrying more than a user, decode. For
// input a person wrote, use DecodeUserStrict. Errors are *UserError.
func DecodeUser(data []byte) (*User, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &UserError{Err: ErrNotObject}
	}
	var u User
	if err := json.Unmarshal(trimmed, &u); err != nil {
		return nil, describeUserJSONError(data, trimmed, err)
	}
	return &u, nil
}

// ErrUnknownField is wrapped by DecodeUserStrict for a field that is not a
// user field; the *UserError names it and the field probably meant.
var ErrUnknownField = errors.New("unknown field")

// ErrSeveralObjects is wrapped by DecodeUserStrict when a second JSON
// object follows the user: a file of users given where one is wanted.
var ErrSeveralObjects = errors.New("a second JSON object after the user, want one")

// DecodeUserStrict is DecodeUser for input a person wrote (a command line, a
// test file): a field that is not a user field ("userId", a property such as
// "plan" at the top level) is an error wrapping ErrUnknownField, never
// dropped, since dropping it evaluates someone else; anything after the
// object is an error too (ErrSeveralObjects for another object). Field names
// match as DecodeUser's do (encoding/json: case-insensitively). The common
// case costs one pass over the input; only a failure is looked at again.
func DecodeUserStrict(data []byte) (*User, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &UserError{Err: ErrNotObject}
	}
	var u User
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		// The decoder's error does not say where, nor which field is
		// unknown: find out from the lenient decoding, which fails only
		// where the input is malformed.
		var lenient User
		if lerr := json.Unmarshal(trimmed, &lenient); lerr != nil {
			return nil, describeUserJSONError(data, trimmed, lerr)
		}
		if ue := findUnknownField(data, trimmed); ue != nil {
			return nil, ue
		}
		return nil, &UserError{Err: err}
	}
	end := int(dec.InputOffset())
	rest := bytes.TrimLeft(trimmed[end:], " \t\r\n")
	if len(rest) > 0 {
		ue := at(data, trimmed, len(trimmed)-len(rest))
		ue.Err = errors.New("unexpected data after the user object")
		if rest[0] == '{' {
			ue.Err = ErrSeveralObjects
		}
		return nil, ue
	}
	return &u, nil
}

// UserError is why a user object did not decode.
type UserError struct {
	// Line and Col place the fault in the data given to the decoder,
	// 1-based (Col counts bytes); 0 when the fault has no one place.
	Line, Col int
	// Field is the top-level field at fault as spelled in the input, if any.
	Field string
	// Suggest is the field an unknown Field probably meant: a user field
	// ("user_id" for "userId") or a user property ("user_properties.plan").
	Suggest string
	Err     error
}

func (e *UserError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("user: %d:%d: %v", e.Line, e.Col, e.Err)
	}
	return "user: " + e.Err.Error()
}

func (e *UserError) Unwrap() error { return e.Err }

// at is a UserError placed at offset of trimmed, counted in data.
func at(data, trimmed []byte, offset int) *UserError {
	lead := len(data) - len(bytes.TrimLeft(data, " \t\r\n\v\f\u0085\u00a0"))
	if lead+len(trimmed) > len(data) { // TrimSpace trimmed differently: count in trimmed
		lead = 0
		data = trimmed
	}
	offset = max(0, min(lead+offset, len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte{'\n'}) + 1
	return &UserError{Line: line, Col: offset - bytes.LastIndexByte(before, '\n')}
}

// userFieldNames are the JSON names of User's fields.
var userFieldNames = func() []string {
	t := reflect.TypeFor[User]()
	names := make([]string, t.NumField())
	for i := range names {
		names[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	return names
}()

// findUnknownField is the first top-level field of a well-formed object that
// is not a user field, in input order, with where it is and what was meant.
func findUnknownField(data, trimmed []byte) *UserError {
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // the '{'
		return nil
	}
	for dec.More() {
		start := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		if !slices.ContainsFunc(userFieldNames, func(n string) bool { return strings.EqualFold(n, key) }) {
			for start < len(trimmed) && trimmed[start] != '"' { // past the comma
				start++
			}
			ue := at(data, trimmed, start)
			ue.Field, ue.Suggest = key, suggestUserField(key)
			ue.Err = fmt.Errorf("%w %q (did you mean %q?)", ErrUnknownField, key, ue.Suggest)
			return ue
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// userFieldAliases are names other tools give user fields.
var userFieldAliases = map[string]string{
	"appversion": "version", "osname": "os", "ip": "ip_address", "properties": "user_properties",
	"userprops": "user_properties", "cohorts": "cohort_ids", "groupprops": "group_properties",
}

// suggestUserField is the field an unknown top-level name probably meant:
// the user field it spells in another case convention (userId, DeviceID,
// device-id), an alias or near typo of one, else a user property of that
// name, which is what a top-level "plan" usually is.
func suggestUserField(name string) string {
	norm := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '_' || r == '-' || r == ' ' || r == '.' {
				return -1
			}
			return unicode.ToLower(r)
		}, s)
	}
	n := norm(name)
	if a, ok := userFieldAliases[n]; ok {
		return a
	}
	best, bestD := "", 3 // at most two edits away
	for _, f := range userFieldNames {
		if d := editDistance(n, norm(f)); d < bestD {
			best, bestD = f, d
		}
	}
	if best != "" && len(n) > 3 {
		return best
	}
	return "user_properties." + name
}

// editDistance counts the single-character edits (of runes, not bytes)
// between a and b; a well-used library rather than another copy of the
// algorithm.
func editDistance(a, b string) int { return levenshtein.ComputeDistance(a, b) }

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

// describeUserJSONError places a decoding error of trimmed (data without its
// surrounding space) at its line and column in data.
func describeUserJSONError(data, trimmed []byte, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		// The offset is just past the value: place the error at its field.
		ue := at(data, trimmed, fieldOffset(trimmed, te.Field, int(te.Offset)))
		ue.Field = te.Field
		ue.Err = fmt.Errorf("%s: want %s, got JSON %s", te.Field, jsonTypeName(te.Type), te.Value)
		return ue
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		ue := at(data, trimmed, max(int(se.Offset)-1, 0)) // Offset is just past the bad byte
		ue.Err = errors.New(se.Error())
		if se.Offset >= int64(len(trimmed)) {
			ue = at(data, trimmed, len(trimmed))
			ue.Err = errors.New("unexpected end of input")
		}
		return ue
	}
	return &UserError{Err: err}
}

// fieldOffset is where the top-level key of a field path ("groups.t") is
// in trimmed, or fallback when it cannot be found.
func fieldOffset(trimmed []byte, field string, fallback int) int {
	top, _, _ := strings.Cut(field, ".")
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil {
		return fallback
	}
	for dec.More() {
		start := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return fallback
		}
		if key, _ := tok.(string); strings.EqualFold(key, top) {
			for start < len(trimmed) && trimmed[start] != '"' {
				start++
			}
			return start
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fallback
		}
	}
	return fallback
}

// describeJSONError words a decoding error of a server's response.
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
