package openfeature

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/flagkit/experiment/pkg/experiment"
	of "github.com/open-feature/go-sdk/openfeature"
)

// userFields are the evaluation context attributes that fill a field of
// experiment.User, by the field's JSON name: the names Amplitude's user
// object uses, so a context built from an Amplitude user needs no renaming.
var userFields = map[string]func(*experiment.User) *string{
	"user_id":             func(u *experiment.User) *string { return &u.UserID },
	"device_id":           func(u *experiment.User) *string { return &u.DeviceID },
	"country":             func(u *experiment.User) *string { return &u.Country },
	"region":              func(u *experiment.User) *string { return &u.Region },
	"dma":                 func(u *experiment.User) *string { return &u.DMA },
	"city":                func(u *experiment.User) *string { return &u.City },
	"language":            func(u *experiment.User) *string { return &u.Language },
	"platform":            func(u *experiment.User) *string { return &u.Platform },
	"version":             func(u *experiment.User) *string { return &u.Version },
	"os":                  func(u *experiment.User) *string { return &u.OS },
	"device_manufacturer": func(u *experiment.User) *string { return &u.DeviceManufacturer },
	"device_brand":        func(u *experiment.User) *string { return &u.DeviceBrand },
	"device_model":        func(u *experiment.User) *string { return &u.DeviceModel },
	"carrier":             func(u *experiment.User) *string { return &u.Carrier },
	"library":             func(u *experiment.User) *string { return &u.Library },
	"ip_address":          func(u *experiment.User) *string { return &u.IPAddress },
}

// contextError is an attribute whose value cannot mean what its name says.
// It fails the evaluation (INVALID_CONTEXT) rather than being dropped: a
// user silently evaluated without their groups gets the wrong variant and
// nobody learns why.
type contextError struct {
	key  string
	want string
	got  any
}

func (e *contextError) Error() string {
	return fmt.Sprintf("evaluation context attribute %q: want %s, got %T", e.key, e.want, e.got)
}

// userFromContext maps a flattened evaluation context to the user flags
// are evaluated for; the package documentation has the table. It never
// keeps a reference to a map or slice of the caller's that it was not
// given to store as a property value, and it does not modify flat.
func userFromContext(flat of.FlattenedContext) (*experiment.User, error) {
	u := &experiment.User{}
	var props, explicit map[string]any
	for key, v := range flat {
		if v == nil {
			// An absent value and a nil one mean the same to the
			// engine; nil must not fail a reserved attribute's shape.
			if _, reserved := userFields[key]; reserved || isStructured(key) || key == of.TargetingKey {
				continue
			}
		}
		switch key {
		case of.TargetingKey:
			// Applied last, so it wins over a user_id attribute.
		case "user_properties":
			m, ok := stringKeyed(v)
			if !ok {
				return nil, &contextError{key, "an object", v}
			}
			explicit = m
		case "groups":
			m, ok := stringKeyed(v)
			if !ok {
				return nil, &contextError{key, "an object of group names (a string or a list of strings) by group type", v}
			}
			u.Groups = make(map[string][]string, len(m))
			for groupType, names := range m {
				list, ok := stringList(names)
				if !ok {
					return nil, &contextError{key + "." + groupType, "a string or a list of strings", names}
				}
				u.Groups[groupType] = list
			}
		case "group_properties":
			m, ok := stringKeyed(v)
			if !ok {
				return nil, &contextError{key, "an object of objects (group type -> group name -> properties)", v}
			}
			u.GroupProperties = make(map[string]map[string]any, len(m))
			for groupType, byName := range m {
				names, ok := stringKeyed(byName)
				if !ok {
					return nil, &contextError{key + "." + groupType, "an object", byName}
				}
				// group name -> that group's properties, as
				// Amplitude's user object holds them; the engine reads
				// a properties object only as map[string]any.
				byGroup := make(map[string]any, len(names))
				for name, props := range names {
					m, ok := stringKeyed(props)
					if !ok {
						return nil, &contextError{key + "." + groupType + "." + name, "an object", props}
					}
					byGroup[name] = m
				}
				u.GroupProperties[groupType] = byGroup
			}
		case "cohort_ids":
			list, ok := stringList(v)
			if !ok {
				return nil, &contextError{key, "a list of strings", v}
			}
			u.CohortIDs = list
		case "group_cohort_ids":
			m, ok := stringKeyed(v)
			if !ok {
				return nil, &contextError{key, "an object (group type -> group name -> cohort ids)", v}
			}
			u.GroupCohortIDs = make(map[string]map[string][]string, len(m))
			for groupType, byName := range m {
				names, ok := stringKeyed(byName)
				if !ok {
					return nil, &contextError{key + "." + groupType, "an object", byName}
				}
				ids := make(map[string][]string, len(names))
				for name, list := range names {
					if ids[name], ok = stringList(list); !ok {
						return nil, &contextError{key + "." + groupType + "." + name, "a list of strings", list}
					}
				}
				u.GroupCohortIDs[groupType] = ids
			}
		default:
			if field, ok := userFields[key]; ok {
				s, ok := scalarString(v)
				if !ok {
					return nil, &contextError{key, "a string, number or boolean", v}
				}
				*field(u) = s
				continue
			}
			if props == nil {
				props = make(map[string]any, len(flat))
			}
			// Passed as is: the engine reads any Go value the way the
			// reference SDK does (numbers, lists, %v for the rest).
			props[key] = v
		}
	}
	if tk, ok := flat[of.TargetingKey]; ok && tk != nil {
		s, ok := tk.(string)
		if !ok {
			return nil, &contextError{of.TargetingKey, "a string", tk}
		}
		if s != "" {
			u.UserID = s
		}
	}
	switch {
	case props == nil:
		u.UserProperties = explicit
	default:
		for k, v := range explicit {
			props[k] = v // the explicit object wins over a top-level attribute of the same name
		}
		u.UserProperties = props
	}
	return u, nil
}

func isStructured(key string) bool {
	switch key {
	case "user_properties", "groups", "group_properties", "cohort_ids", "group_cohort_ids":
		return true
	}
	return false
}

// stringKeyed accepts any map with string keys (map[string]any from JSON,
// map[string]string or map[string]int built in Go) as map[string]any. The
// result is a new map only when the input is not already map[string]any.
func stringKeyed(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case of.FlattenedContext:
		return m, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	out := make(map[string]any, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		out[iter.Key().String()] = iter.Value().Interface()
	}
	return out, true
}

// stringList accepts one scalar (a group type with a single group) or a
// slice or array of scalars.
func stringList(v any) ([]string, bool) {
	switch l := v.(type) {
	case []string:
		return append([]string(nil), l...), true
	case string:
		return []string{l}, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		s, ok := scalarString(v)
		if !ok {
			return nil, false
		}
		return []string{s}, true
	}
	out := make([]string, rv.Len())
	for i := range out {
		s, ok := scalarString(rv.Index(i).Interface())
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

// scalarString renders a string, boolean or number the way the engine
// renders the same value read from a user property, so a field and a
// property holding 3 both compare as "3".
func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case bool:
		return strconv.FormatBool(t), true
	case float64:
		return strconv.FormatFloat(t, 'g', -1, 64), true
	case fmt.Stringer:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return "", false
		}
		return t.String(), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), true
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool()), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(rv.Uint(), 10), true
	case reflect.Float32:
		return strconv.FormatFloat(rv.Float(), 'g', -1, 32), true
	case reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'g', -1, 64), true
	}
	return "", false
}
