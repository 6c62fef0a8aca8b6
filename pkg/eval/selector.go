package eval

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// selKind says where a selector points. Compile classifies every selector
// once so that evaluation never walks generic maps for the common paths.
type selKind uint8

const (
	selNull          selKind = iota // can never hold a value
	selUserField                    // context.user.<string field>
	selUserProps                    // context.user.user_properties[.path...]
	selUserGroups                   // context.user.groups[.rest...]
	selUserCohorts                  // context.user.cohort_ids
	selGroupName                    // context.groups.<type>.group_name
	selGroupProps                   // context.groups.<type>.group_properties[.path...]
	selGroupCohorts                 // context.groups.<type>.cohort_ids
	selContextTree                  // a container under context: context, context.user, context.groups[.<type>]
	selResultKey                    // result.<flag>.key
	selResultValue                  // result.<flag>.value
	selResultPayload                // result.<flag>.payload
	selResultMeta                   // result.<flag>.metadata[.path...]
	selResultFlag                   // result.<flag>
	selResultAll                    // result
)

type selector struct {
	kind      selKind
	field     int      // selUserField
	groupType string   // selGroup*
	group     int32    // selGroupName, selGroupProps: an index into Snapshot.groupTypes
	path      []string // remaining keys to walk
	flag      int      // result selectors: flag index, -1 when unknown
	raw       []string // the selector as configured, for the generic walk
}

// dependsOnResults reports whether the value can change while one context
// is evaluated; only those selectors are not cached per evaluation.
func (s *selector) dependsOnResults() bool { return s.kind >= selResultKey }

func compileSelector(sel []string, flagIndex map[string]int) selector {
	sel = slices.Clone(sel) // not the decoder's slab, which it would keep whole
	s := selector{kind: selNull, raw: sel, flag: -1}
	if len(sel) == 0 {
		return s
	}
	switch sel[0] {
	case "context":
		compileContextSelector(&s, sel[1:])
	case "result":
		compileResultSelector(&s, sel[1:], flagIndex)
	}
	return s
}

func compileContextSelector(s *selector, sel []string) {
	if len(sel) == 0 {
		s.kind = selContextTree
		return
	}
	switch sel[0] {
	case "user":
		compileUserSelector(s, sel[1:])
	case "groups":
		compileGroupSelector(s, sel[1:])
	}
}

func compileUserSelector(s *selector, sel []string) {
	if len(sel) == 0 {
		s.kind = selContextTree
		return
	}
	if i := userFieldIndex(sel[0]); i >= 0 {
		if len(sel) == 1 { // a string has no keys to walk into
			s.kind, s.field = selUserField, i
		}
		return
	}
	switch sel[0] {
	case "user_properties":
		s.kind, s.path = selUserProps, sel[1:]
	case "groups":
		s.kind, s.path = selUserGroups, sel[1:]
	case "cohort_ids":
		if len(sel) == 1 {
			s.kind = selUserCohorts
		}
	}
}

func compileGroupSelector(s *selector, sel []string) {
	if len(sel) <= 1 {
		s.kind = selContextTree
		if len(sel) == 1 {
			s.groupType = sel[0]
		}
		return
	}
	s.groupType = sel[0]
	switch sel[1] {
	case "group_name":
		if len(sel) == 2 {
			s.kind = selGroupName
		}
	case "group_properties":
		s.kind, s.path = selGroupProps, sel[2:]
	case "cohort_ids":
		if len(sel) == 2 {
			s.kind = selGroupCohorts
		}
	}
}

func compileResultSelector(s *selector, sel []string, flagIndex map[string]int) {
	if len(sel) == 0 {
		s.kind = selResultAll
		return
	}
	if i, ok := flagIndex[sel[0]]; ok {
		s.flag = i
	}
	if len(sel) == 1 {
		s.kind = selResultFlag
		return
	}
	rest := sel[2:]
	switch sel[1] {
	case "key":
		if len(rest) == 0 {
			s.kind = selResultKey
		}
	case "value":
		s.kind, s.path = selResultValue, rest
	case "payload":
		s.kind, s.path = selResultPayload, rest
	case "metadata":
		s.kind, s.path = selResultMeta, rest
	}
}

// rawKind is the shape of a selected value before coercion.
type rawKind uint8

const (
	rawNull rawKind = iota
	rawString
	rawAny    // a decoded JSON value: string, float64, bool, map[string]any, []any
	rawList   // a typed string list (groups, cohort ids): a list even when empty
	rawText   // a non-null, non-list value whose string form is fixed (a container as JSON)
	rawGroups // the whole groups map of the user, a, read as its JSON text
)

type rawValue struct {
	kind rawKind
	s    string
	a    any
	list []string
}

func textValue(s string) rawValue { return rawValue{kind: rawText, s: s} }

func anyValue(v any) rawValue {
	switch t := v.(type) {
	case nil:
		return rawValue{}
	case string:
		return rawValue{kind: rawString, s: t}
	}
	return rawValue{kind: rawAny, a: v}
}

// walk indexes JSON objects by key; anything that is not an object has no
// keys, so the walk ends in null, as in the reference selector.
func walk(v any, path []string) any {
	for _, key := range path {
		switch m := v.(type) {
		case map[string]any:
			v = m[key]
		case nil:
			return nil
		default:
			var ok bool
			if v, ok = walkTyped(v, key); !ok {
				return nil
			}
		}
	}
	return v
}

// walkTyped indexes a map built in Go (map[string]string, ...) as the
// reference's reflection does: a missing key leaves the walk where it is.
func walkTyped(v any, key string) (any, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	if x := rv.MapIndex(reflect.ValueOf(key).Convert(rv.Type().Key())); x.IsValid() {
		return x.Interface(), true
	}
	return v, true
}

// selectContext resolves a selector that does not depend on flag results.
func (s *selector) selectContext(c *Context) rawValue {
	switch s.kind {
	case selUserField:
		if v := c.userField(s.field); v != "" {
			return rawValue{kind: rawString, s: v}
		}
	case selUserProps:
		if len(c.UserProperties) == 0 {
			return rawValue{}
		}
		return anyValue(walk(c.UserProperties, s.path))
	case selUserGroups:
		return selectUserGroups(c.Groups, s.path)
	case selUserCohorts:
		if ids := c.userCohorts(); len(ids) > 0 {
			return rawValue{kind: rawList, list: ids}
		}
	case selGroupName:
		if name, ok := c.group(s.groupType); ok {
			return rawValue{kind: rawString, s: name}
		}
	case selGroupProps:
		props, _ := c.groupProperties(s.groupType)
		return anyValue(walk(props, s.path))
	case selGroupCohorts:
		if ids, ok := c.groupCohorts(s.groupType); ok {
			return rawValue{kind: rawList, list: ids}
		}
	case selContextTree:
		return selectTree(c, s.raw)
	}
	return rawValue{}
}

// selectUserGroups reproduces the reference engine's walk of the typed
// groups map: a key that is not a group type leaves the walk where it is, so
// context.user.groups.<missing type> reads the whole groups object.
func selectUserGroups(groups map[string][]string, path []string) rawValue {
	if len(groups) == 0 {
		return rawValue{}
	}
	var list []string
	inMap := true
	for _, key := range path {
		if !inMap {
			return rawValue{} // a list has no keys
		}
		if l, ok := groups[key]; ok {
			list, inMap = l, false
		}
	}
	if inMap {
		return rawValue{kind: rawGroups, a: groups}
	}
	if list == nil { // a JSON null name list: present, but not a list
		return textValue("null")
	}
	return rawValue{kind: rawList, list: list}
}

// selectTree serves selectors that stop at a container of the context.
func selectTree(c *Context, sel []string) rawValue {
	var v any = c.asMap()
	for _, key := range sel[1:] {
		m, ok := v.(map[string]any)
		if !ok {
			return rawValue{}
		}
		if v, ok = m[key]; !ok {
			return rawValue{}
		}
	}
	switch v.(type) {
	case nil:
		return rawValue{}
	case map[string]any:
		return textValue(jsonText(v))
	}
	return anyValue(v)
}

// resultSlot is what the evaluator knows of a flag evaluated earlier in the
// same evaluation: its variant (an index among the flag's) and deciding
// segment; valid while gen is the evaluator's.
type resultSlot struct {
	gen     uint32
	variant int32
	segment int32
}

// selectResult resolves result.<flag>... against the flags evaluated so far.
// A flag without a result reads as an empty variant, as in the reference:
// key "", value and payload null, metadata a typed nil map ("null").
func (s *selector) selectResult(e *evaluator) rawValue {
	if s.kind == selResultAll {
		return textValue(e.resultsJSON())
	}
	var v *variantRec
	var meta map[string]any
	if s.flag >= 0 && e.res[s.flag].gen == e.gen {
		slot := e.res[s.flag]
		f := &e.snap.flags[s.flag]
		v = &e.snap.variants[f.variants+uint32(slot.variant)]
		meta = e.snap.mergedMetadata(slot.segment, slot.variant)
	}
	switch s.kind {
	case selResultKey:
		if v == nil {
			return rawValue{kind: rawString}
		}
		return rawValue{kind: rawString, s: v.key}
	case selResultValue:
		if v == nil {
			return rawValue{}
		}
		return anyValue(walk(v.value, s.path))
	case selResultPayload:
		if v == nil {
			return rawValue{}
		}
		return anyValue(walk(v.payload, s.path))
	case selResultMeta:
		if len(s.path) > 0 {
			return anyValue(walk(meta, s.path))
		}
		if meta == nil {
			return textValue("null")
		}
		return textValue(jsonText(meta))
	case selResultFlag:
		return textValue(variantText(v, meta))
	}
	return rawValue{}
}

// variantText is how the reference engine prints a variant struct (%v).
func variantText(v *variantRec, meta map[string]any) string {
	type goVariant struct {
		Key      string
		Value    any
		Payload  any
		Metadata map[string]any
	}
	if v == nil {
		return fmt.Sprintf("%v", goVariant{})
	}
	return fmt.Sprintf("%v", goVariant{v.key, v.value, v.payload, meta})
}

// jsonText is encoding/json's compact form, which is how the reference engine
// turns objects and arrays into strings (sorted keys, HTML-escaped).
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
