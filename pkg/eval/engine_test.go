package eval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/murmur3"

	"github.com/flagkit/experiment/internal/conformance"
)

// ---------------------------------------------------------------------------
// helpers

var propSel = []string{"context", "user", "user_properties", "p"}

func vals(v ...string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// oneCondFlag is flag "f" with a single segment: the condition (sel, op,
// values) gives variant "on"; otherwise the flag has no result.
func oneCondFlag(key string, sel []string, op string, values []string) *Flag {
	return &Flag{
		Key:      key,
		Variants: map[string]*Variant{"on": {Key: "on", Value: "on"}},
		Segments: []*Segment{{Conditions: [][]*Condition{{{Selector: sel, Op: op, Values: values}}}, Variant: "on"}},
	}
}

func compileFlags(t testing.TB, flags ...*Flag) *Snapshot {
	t.Helper()
	snap, err := Compile(flags)
	require.NoError(t, err)
	return snap
}

func compileJSON(t testing.TB, doc string) *Snapshot {
	t.Helper()
	flags, err := DecodeFlags([]byte(doc))
	require.NoError(t, err)
	return compileFlags(t, flags...)
}

// resultMap evaluates and indexes the results by flag key.
func resultMap(t testing.TB, snap *Snapshot, ctx *Context, keys ...string) map[string]Result {
	t.Helper()
	res, err := snap.Evaluate(ctx, keys, nil)
	require.NoError(t, err)
	m := map[string]Result{}
	for _, r := range res {
		_, dup := m[r.FlagKey]
		require.False(t, dup, "flag %q returned twice", r.FlagKey)
		m[r.FlagKey] = r
	}
	return m
}

func resultKeys(res []Result) []string {
	keys := make([]string, len(res))
	for i, r := range res {
		keys[i] = r.FlagKey
	}
	return keys
}

// matchOne reports whether the single condition matches ctx.
func matchOne(t testing.TB, sel []string, op string, values []string, ctx *Context) bool {
	t.Helper()
	snap := compileFlags(t, oneCondFlag("f", sel, op, values))
	res, err := snap.Evaluate(ctx, nil, nil)
	require.NoError(t, err)
	if len(res) == 0 {
		return false
	}
	require.Len(t, res, 1)
	require.Equal(t, "on", res[0].Key)
	return true
}

// propCtx is a context whose user property "p" holds the JSON value
// propJSON (decoded as the SDK decodes users: numbers are float64); an empty
// propJSON leaves "p" absent.
func propCtx(t testing.TB, propJSON string) *Context {
	t.Helper()
	props := map[string]any{"other": "x"}
	if propJSON != "" {
		var v any
		require.NoError(t, json.Unmarshal([]byte(propJSON), &v), propJSON)
		props["p"] = v
	}
	return &Context{UserID: "u", UserProperties: props}
}

// testUser is the JSON form of a user (experiment.User), decoded the way the
// reference SDK decodes users.
type testUser struct {
	UserID             string                    `json:"user_id"`
	DeviceID           string                    `json:"device_id"`
	Country            string                    `json:"country"`
	Region             string                    `json:"region"`
	DMA                string                    `json:"dma"`
	City               string                    `json:"city"`
	Language           string                    `json:"language"`
	Platform           string                    `json:"platform"`
	Version            string                    `json:"version"`
	OS                 string                    `json:"os"`
	DeviceManufacturer string                    `json:"device_manufacturer"`
	DeviceBrand        string                    `json:"device_brand"`
	DeviceModel        string                    `json:"device_model"`
	Carrier            string                    `json:"carrier"`
	Library            string                    `json:"library"`
	UserProperties     map[string]any            `json:"user_properties"`
	Groups             map[string][]string       `json:"groups"`
	GroupProperties    map[string]map[string]any `json:"group_properties"`
}

func contextFromJSON(t testing.TB, line []byte) *Context {
	t.Helper()
	var u testUser
	require.NoError(t, json.Unmarshal(line, &u), string(line))
	return &Context{
		UserID: u.UserID, DeviceID: u.DeviceID, Country: u.Country, Region: u.Region, DMA: u.DMA,
		City: u.City, Language: u.Language, Platform: u.Platform, Version: u.Version, OS: u.OS,
		DeviceManufacturer: u.DeviceManufacturer, DeviceBrand: u.DeviceBrand, DeviceModel: u.DeviceModel,
		Carrier: u.Carrier, Library: u.Library, UserProperties: u.UserProperties, Groups: u.Groups,
		GroupProperties: u.GroupProperties,
	}
}

// conformanceRoot is the repository's own copy of the set, for tests that
// name one of its cases.
const conformanceRoot = "../../testdata/conformance/cases"

// conformanceCases are the case directories of the conformance set, found
// as every module's tests find it (internal/conformance).
func conformanceCases(t testing.TB) []string {
	t.Helper()
	var dirs []string
	for _, c := range conformance.Cases(t) {
		dirs = append(dirs, c.Dir)
	}
	return dirs
}

func loadCaseSnapshot(t testing.TB, dir string) (*Snapshot, [][]byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "flags.json"))
	require.NoError(t, err)
	flags, err := DecodeFlags(data)
	require.NoError(t, err)
	return compileFlags(t, flags...), conformance.Open(dir).Users(t)
}

// ---------------------------------------------------------------------------
// null handling

var allOperators = []string{
	"is", "is not", "contains", "does not contain", "less", "less or equal", "greater", "greater or equal",
	"version less", "version less or equal", "version greater", "version greater or equal",
	"set is", "set is not", "set contains", "set does not contain", "set contains any", "set does not contain any",
	"regex match", "regex does not match",
}

var unknownOperators = []string{"IS", "equals", "starts with", "set equals", "", "Is Not", "is  not"}

func TestOperatorNames(t *testing.T) {
	assert.ElementsMatch(t, allOperators, OperatorNames())
}

// TestNullTable is the "on null" column of docs/protocol.md#operators for all
// 20 operators, with and without "(none)" among the filter values.
func TestNullTable(t *testing.T) {
	type want struct{ without, with bool }
	table := map[string]want{
		"is": {false, true}, "is not": {true, false},
		"contains": {false, true}, "does not contain": {true, false},
		"less": {false, true}, "less or equal": {false, true}, "greater": {false, true}, "greater or equal": {false, true},
		"version less": {false, true}, "version less or equal": {false, true},
		"version greater": {false, true}, "version greater or equal": {false, true},
		"set is": {false, true}, "set is not": {true, true},
		"set contains": {false, true}, "set does not contain": {true, false},
		"set contains any": {false, true}, "set does not contain any": {true, false},
		"regex match": {false, false}, "regex does not match": {true, true},
	}
	require.Len(t, table, 20)

	// Every way of reading null.
	nulls := []struct {
		name string
		sel  []string
		ctx  *Context
	}{
		{"absent property", propSel, &Context{UserProperties: map[string]any{"q": "x"}}},
		{"JSON null property", propSel, &Context{UserProperties: map[string]any{"p": nil}}},
		{"no user_properties", propSel, &Context{}},
		{"empty user_properties", propSel, &Context{UserProperties: map[string]any{}}},
		{"empty top-level string", []string{"context", "user", "country"}, &Context{Country: ""}},
		{"absent user field", []string{"context", "user", "device_id"}, &Context{UserID: "u"}},
		{"no cohorts", []string{"context", "user", "cohort_ids"}, &Context{CohortIDs: []string{}}},
		{"missing group type", []string{"context", "groups", "org", "group_name"}, &Context{Groups: map[string][]string{"team": {"a"}}}},
		{"group type with no names", []string{"context", "groups", "org", "group_name"}, &Context{Groups: map[string][]string{"org": {}}}},
		{"user groups absent", []string{"context", "user", "groups", "org"}, &Context{}},
		{"empty selector", []string{}, &Context{UserID: "u"}},
		{"nil selector", nil, &Context{UserID: "u"}},
		{"bad root", []string{"user", "user_id"}, &Context{UserID: "u"}},
		{"index into string", []string{"context", "user", "user_id", "x"}, &Context{UserID: "u"}},
		{"index into array", append(slices.Clone(propSel), "0"), &Context{UserProperties: map[string]any{"p": []any{"a"}}}},
		{"unknown context key", []string{"context", "nope"}, &Context{UserID: "u"}},
		{"value of a missing result", []string{"result", "nope", "value"}, &Context{}},
		{"payload of a missing result", []string{"result", "nope", "payload"}, &Context{}},
		{"metadata key of a missing result", []string{"result", "nope", "metadata", "k"}, &Context{}},
		{"unknown result part", []string{"result", "nope", "bogus"}, &Context{}},
	}
	for _, n := range nulls {
		for _, op := range allOperators {
			w := table[op]
			t.Run(n.name+"/"+op, func(t *testing.T) {
				assert.Equal(t, w.without, matchOne(t, n.sel, op, vals("x", "1", "1.0.0"), n.ctx), "values without (none)")
				assert.Equal(t, w.with, matchOne(t, n.sel, op, vals("x", "(none)"), n.ctx), "values with (none)")
			})
		}
	}
	// absent values on null
	for _, op := range allOperators {
		t.Run("no values/"+op, func(t *testing.T) {
			assert.Equal(t, table[op].without, matchOne(t, propSel, op, nil, &Context{}))
		})
	}
}

func TestUnknownOperatorsNeverMatch(t *testing.T) {
	ctxs := map[string]*Context{
		"null":   {},
		"string": propCtx(t, `"x"`),
		"list":   propCtx(t, `["x","(none)"]`),
		"none":   propCtx(t, `"(none)"`),
	}
	for _, op := range unknownOperators {
		for name, ctx := range ctxs {
			t.Run(fmt.Sprintf("%q/%s", op, name), func(t *testing.T) {
				assert.False(t, matchOne(t, propSel, op, vals("x", "(none)"), ctx))
				assert.False(t, matchOne(t, propSel, op, nil, ctx))
			})
		}
	}

	var flags []*Flag
	for i, op := range unknownOperators {
		flags = append(flags, oneCondFlag(fmt.Sprintf("f%d", i), propSel, op, vals("x")))
	}
	flags = append(flags, oneCondFlag("known", propSel, "is", vals("x")))
	snap := compileFlags(t, flags...)
	var got []string
	for _, p := range snap.Problems() {
		if p.Kind == ProblemUnknownOperator {
			got = append(got, p.Flag)
			assert.True(t, strings.HasSuffix(p.Path, ".op"), p.Path)
			assert.NotEmpty(t, p.Message)
		}
	}
	assert.Equal(t, []string{"f0", "f1", "f2", "f3", "f4", "f5", "f6"}, got)
}

// ---------------------------------------------------------------------------
// value normalisation

type propCase struct {
	name   string
	prop   string // JSON value of user property "p"; "" = absent
	op     string
	values []string
	want   bool
}

func runPropCases(t *testing.T, cases []propCase) {
	t.Helper()
	for _, c := range cases {
		name := c.name
		if name == "" {
			name = fmt.Sprintf("%s %s %q", c.prop, c.op, c.values)
		}
		t.Run(name, func(t *testing.T) {
			got := matchOne(t, propSel, c.op, c.values, propCtx(t, c.prop))
			assert.Equal(t, c.want, got, "p=%s %s %q", c.prop, c.op, c.values)
		})
	}
}

func TestListNormalization(t *testing.T) {
	runPropCases(t, []propCase{
		// a JSON array property is a list
		{"array set is", `["a","b"]`, "set is", vals("b", "a", "a"), true},
		{"array set is subset", `["a","b"]`, "set is", vals("a"), false},
		{"array set is superset", `["a","b"]`, "set is", vals("a", "b", "c"), false},
		{"array set is not", `["a","b"]`, "set is not", vals("a"), true},
		{"array is any element", `["a","b"]`, "is", vals("b"), true},
		{"array is whole text", `["a","b"]`, "is", vals(`["a","b"]`), false},
		{"array is not A on [A,B]", `["A","B"]`, "is not", vals("A"), true},
		{"array is not both", `["A","B"]`, "is not", vals("A", "B"), false},
		{"array does not contain any elem", `["A","B"]`, "does not contain", vals("a"), true},
		{"array contains lowercased", `["A","B"]`, "contains", vals("b"), true},
		{"array regex any", `["abc","xyz"]`, "regex match", vals("^x"), true},
		{"array regex does not match any", `["abc","xyz"]`, "regex does not match", vals("^x"), true},
		{"array less any", `["1","20"]`, "greater", vals("10"), true},
		{"array version any", `["1.0","3.0"]`, "version greater", vals("2.0"), true},
		{"array nulls dropped", `[null,"a",null]`, "set is", vals("a"), true},
		{"array mixed types coerced", `["a",1,true,1000000]`, "set is", vals("a", "1", "true", "1e+06"), true},
		{"array nested elements as JSON", `[["x"],{"b":"<","a":1}]`, "set contains", vals(`["x"]`, `{"a":1,"b":"\u003c"}`), true},
		{"array bool rule in set contains", `[true]`, "set contains", vals("TRUE"), true},

		// JSON-array strings are lists
		{"json string set is", `"[\"a\",\"b\"]"`, "set is", vals("a", "b"), true},
		{"json string is element", `"[\"a\",\"b\"]"`, "is", vals("a"), true},
		{"json string is whole text", `"[\"a\",\"b\"]"`, "is", vals(`["a","b"]`), false},
		{"json string null element is empty string", `"[\"a\",null]"`, "set is", vals("a", ""), true},
		{"json string [null]", `"[null]"`, "set is", vals(""), true},
		{"json string [null] is empty", `"[null]"`, "is", vals(""), true},
		{"json string with space inside", `"[ \"a\" ]"`, "set is", vals("a"), true},
		{"json string leading space is no list", `" [\"a\"]"`, "set contains any", vals("a"), false},
		{"json string leading space is a string", `" [\"a\"]"`, "is", vals(` ["a"]`), true},
		{"json string mixed is plain string", `"[\"a\",1]"`, "is", vals(`["a",1]`), true},
		{"json string mixed set ops false", `"[\"a\",1]"`, "set contains any", vals("a"), false},
		{"json string mixed set is not false", `"[\"a\",1]"`, "set is not", vals("a"), false},
		{"json string numbers is plain string", `"[1,2]"`, "is", vals("[1,2]"), true},
		{"json string invalid", `"[\"a\""`, "is", vals(`["a"`), true},
		{"json string trailing garbage", `"[\"a\"]x"`, "set contains any", vals("a"), false},

		// [] array property: not a list
		{"[] set is []", `[]`, "set is", vals(), false},
		{"[] set is not", `[]`, "set is not", vals("a"), false},
		{"[] set does not contain", `[]`, "set does not contain", vals("a"), false},
		{"[] set does not contain any", `[]`, "set does not contain any", vals("a"), false},
		{"[] is \"[]\"", `[]`, "is", vals("[]"), true},
		{"[] is (none)", `[]`, "is", vals("(none)"), false},
		{"[] is not x", `[]`, "is not", vals("x"), true},
		{"[] contains [", `[]`, "contains", vals("["), true},
		{"[null] array is not a list", `[null]`, "set contains any", vals(""), false},
		{"[null] array is the string [null]", `[null]`, "is", vals("[null]"), true},
		{"[null,null] array string", `[null,null]`, "is", vals("[null,null]"), true},

		// the string "[]": an empty list
		{"\"[]\" set is []", `"[]"`, "set is", vals(), true},
		{"\"[]\" set is not a", `"[]"`, "set is not", vals("a"), true},
		{"\"[]\" set contains []", `"[]"`, "set contains", vals(), true},
		{"\"[]\" set contains a", `"[]"`, "set contains", vals("a"), false},
		{"\"[]\" set does not contain a", `"[]"`, "set does not contain", vals("a"), true},
		{"\"[]\" set contains any", `"[]"`, "set contains any", vals("a"), false},
		{"\"[]\" set does not contain any", `"[]"`, "set does not contain any", vals("a"), true},
		{"\"[]\" is \"[]\"", `"[]"`, "is", vals("[]"), false},
		{"\"[]\" is not x", `"[]"`, "is not", vals("x"), false},
		{"\"[]\" does not contain x", `"[]"`, "does not contain", vals("x"), false},
		{"\"[]\" contains empty", `"[]"`, "contains", vals(""), false},
		{"\"[]\" regex does not match", `"[]"`, "regex does not match", vals("x"), false},
		{"\"[]\" less", `"[]"`, "less", vals("z"), false},
		{"\"[ ]\" empty list", `"[ ]"`, "set is", vals(), true},
		{"\"[]\" is (none)", `"[]"`, "is", vals("(none)"), false},

		// scalars are never lists
		{"scalar set is", `"a"`, "set is", vals("a"), false},
		{"scalar set is not", `"a"`, "set is not", vals("b"), false},
		{"scalar set contains any", `"a"`, "set contains any", vals("a"), false},
		{"scalar set does not contain", `"a"`, "set does not contain", vals("b"), false},
		{"number set contains", `1`, "set contains", vals("1"), false},
		{"object set is", `{"a":1}`, "set is not", vals("a"), false},
	})
}

func TestScalarStrings(t *testing.T) {
	runPropCases(t, []propCase{
		// Go %v number strings
		{"1000000", `1000000`, "is", vals("1e+06"), true},
		{"1000000 not plain", `1000000`, "is", vals("1000000"), false},
		{"30", `30`, "is", vals("30"), true},
		{"30.0", `30.0`, "is", vals("30"), true},
		{"0.5", `0.5`, "is", vals("0.5"), true},
		{"0.0001", `0.0001`, "is", vals("0.0001"), true},
		{"1e-05", `0.00001`, "is", vals("1e-05"), true},
		{"123456", `123456`, "is", vals("123456"), true},
		{"1234567", `1234567`, "is", vals("1.234567e+06"), true},
		{"12345678", `12345678`, "is", vals("1.2345678e+07"), true},
		{"1e21", `1e21`, "is", vals("1e+21"), true},
		{"1e20", `100000000000000000000`, "is", vals("1e+20"), true},
		{"-0", `-0`, "is", vals("-0"), true},
		{"-1.5", `-1.5`, "is", vals("-1.5"), true},
		{"number contains", `1000000`, "contains", vals("e+"), true},
		{"number regex", `1000000`, "regex match", vals(`^1e\+06$`), true},
		{"number in array", `[1000000]`, "set is", vals("1e+06"), true},

		// booleans
		{"bool true", `true`, "is", vals("true"), true},
		{"bool false", `false`, "is", vals("false"), true},
		{"bool vs TRUE", `true`, "is", vals("TRUE"), true},
		{"bool vs True among others", `true`, "is", vals("x", "True"), true},
		{"bool not vs other bool", `true`, "is", vals("false"), false},
		{"bool vs yes", `true`, "is", vals("yes"), false},
		{"string tRuE vs True", `"tRuE"`, "is", vals("True"), true},
		{"string TRUE vs true", `"TRUE"`, "is", vals("true"), true},
		{"string FALSE vs false,x", `"FALSE"`, "is", vals("x", "false"), true},
		{"string TRUE vs false", `"TRUE"`, "is", vals("false"), false},
		{"string TRUE no bool filter", `"TRUE"`, "is", vals("yes"), false},
		{"string with space not bool", `"true "`, "is", vals("TRUE"), false},
		{"non-bool stays case-sensitive", `"ABC"`, "is", vals("true", "abc"), false},
		{"is not with bool rule", `"TRUE"`, "is not", vals("true"), false},
		{"bool rule not in set is", `["true"]`, "set is", vals("TRUE"), false},
		{"bool rule in set contains any", `["TRUE","x"]`, "set contains any", vals("true"), true},
		{"bool rule needs bool in list", `["yes"]`, "set contains any", vals("TRUE"), false},
		{"bool rule does not apply to regex", `"TRUE"`, "regex match", vals("^true$"), false},

		// contains: Unicode lower-casing
		{"école in ÉCOLE", `"ÉCOLE"`, "contains", vals("école"), true},
		{"ÉCOLE in école", `"une école"`, "contains", vals("ÉCOLE"), true},
		{"Kelvin sign lowers to k", `"\u212a"`, "contains", vals("k"), true},
		{"ß is not ss", `"STRASSE"`, "contains", vals("straße"), false},
		{"does not contain ignores case", `"Hello"`, "does not contain", vals("HELLO"), false},
		{"contains empty string", `"abc"`, "contains", vals(""), true},
		{"contains any value", `"abc"`, "contains", vals("x", "B"), true},
		{"is case-sensitive", `"École"`, "is", vals("école"), false},

		// objects: sorted compact JSON with HTML escaping
		{"object sorted escaped", `{"b":"<","a":1}`, "is", vals(`{"a":1,"b":"\u003c"}`), true},
		{"object not raw <", `{"b":"<","a":1}`, "is", vals(`{"a":1,"b":"<"}`), false},
		{"object nested", `{"z":{"d":1,"c":[1,"x",null]},"a":true}`, "is", vals(`{"a":true,"z":{"c":[1,"x",null],"d":1}}`), true},
		{"object & >", `{"a":"&>"}`, "is", vals(`{"a":"\u0026\u003e"}`), true},
		{"object numbers", `{"n":1000000}`, "is", vals(`{"n":1000000}`), true},
		{"empty object", `{}`, "is", vals(`{}`), true},
		{"object contains", `{"Key":"V"}`, "contains", vals(`"key"`), true},

		// empty string and "(none)" are values
		{"empty string is empty", `""`, "is", vals(""), true},
		{"empty string is not (none)", `""`, "is", vals("(none)"), false},
		{"empty string is not x", `""`, "is not", vals("x"), true},
		{"literal (none) is (none)", `"(none)"`, "is", vals("(none)"), true},
		{"literal (none) is not (none)", `"(none)"`, "is not", vals("(none)"), false},
	})
}

// ---------------------------------------------------------------------------
// numbers

func TestNumericCompare(t *testing.T) {
	runPropCases(t, []propCase{
		{"numeric not string order", `"10"`, "greater", vals("9"), true},
		{"numeric less", `"10"`, "less", vals("9"), false},
		{"equal le", `"5"`, "less or equal", vals("5"), true},
		{"equal ge", `"5"`, "greater or equal", vals("5.0"), true},
		{"equal lt", `"5"`, "less", vals("5"), false},
		{"equal gt", `"5"`, "greater", vals("5"), false},
		{"number property", `30`, "greater", vals("29.5"), true},
		{"number property 1e+06", `1000000`, "greater", vals("999999"), true},
		{"underscore", `"1_000"`, "greater", vals("999"), true},
		{"underscore filter", `"1000"`, "less or equal", vals("1_000"), true},
		{"plus sign", `"+7"`, "greater or equal", vals("7"), true},
		{"plus sign lt", `"+7"`, "less", vals("7.5"), true},
		{"leading dot", `".5"`, "less", vals("1"), true},
		{"leading dot gt", `".5"`, "greater", vals("0.4"), true},
		{"exponent", `"1e3"`, "greater or equal", vals("1000"), true},
		{"exponent le", `"1e3"`, "less or equal", vals("1000"), true},
		{"leading zeros", `"007"`, "greater", vals("6"), true},
		{"Infinity", `"Infinity"`, "greater", vals("1e308"), true},
		{"-inf", `"-inf"`, "less", vals("-1e308"), true},
		{"hex float", `"0x1p4"`, "greater", vals("9"), true}, // 16 > 9; as strings "0" < "9"
		{"NaN gt", `"NaN"`, "greater", vals("0"), false},
		{"NaN lt", `"NaN"`, "less", vals("0"), false},
		{"NaN le NaN", `"NaN"`, "less or equal", vals("NaN"), false},
		{"NaN ge NaN", `"NaN"`, "greater or equal", vals("NaN"), false},
		{"NaN vs string-only filter", `"NaN"`, "greater", vals("A"), true}, // no filter parses: "NaN" > "A"
		{"filter NaN", `"5"`, "less", vals("NaN"), false},
		// not numbers: string comparison
		{"0x10 is not a number", `"0x10"`, "less", vals("9"), true},        // "0x10" < "9" as strings; 16 < 9 is false
		{"0x10 is not a number gt", `"0x10"`, "greater", vals("9"), false}, // 16 > 9 would be true
		{"leading space", `" 7"`, "greater", vals("6"), false},             // " " < "6"
		{"trailing e", `"7e"`, "less", vals("10"), false},                  // "7e" > "10" as strings
		{"comma", `"1,000"`, "greater", vals("999"), false},
		{"plain string", `"abc"`, "greater", vals("10"), true},
		{"empty string", `""`, "less", vals("a"), true},
		// filter values that do not parse are ignored when one parses
		{"non-numeric filters ignored", `"5"`, "less", vals("a", "1"), false}, // "5" < "a" as strings
		{"any numeric filter", `"5"`, "less", vals("a", "1", "10"), true},
		{"no numeric filter: strings", `"5"`, "less", vals("a"), true},
		{"no numeric filter: all values", `"5"`, "greater", vals("z", "4x"), true},
		{"(none) is a string on values", `"5"`, "less", vals("(none)"), false},
		{"bool property", `true`, "greater", vals("s"), true},
		{"no values", `"5"`, "less", nil, false},
	})
}

// ---------------------------------------------------------------------------
// versions

func TestVersionCompare(t *testing.T) {
	runPropCases(t, []propCase{
		{"major.minor < patch", `"1.2"`, "version less", vals("1.2.1"), true},
		{"missing patch is 0", `"1.2"`, "version greater or equal", vals("1.2.0"), true},
		{"missing patch is 0 le", `"1.2"`, "version less or equal", vals("1.2.0"), true},
		{"numeric minor", `"1.10.0"`, "version greater", vals("1.9.0"), true},
		{"numeric major", `"10.0"`, "version greater", vals("9.99.99"), true},
		{"pre-release as strings", `"1.2.3-alpha.10"`, "version less", vals("1.2.3-alpha.9"), true},
		{"pre-release as strings ge", `"1.2.3-alpha.9"`, "version greater", vals("1.2.3-alpha.10"), true},
		{"pre-release before release", `"1.2.3-alpha"`, "version less", vals("1.2.3"), true},
		{"release after pre-release", `"1.2.3"`, "version greater", vals("1.2.3-rc.1"), true},
		{"equal pre-release", `"1.2.3-rc.1"`, "version greater or equal", vals("1.2.3-rc.1"), true},
		{"equal pre-release lt", `"1.2.3-rc.1"`, "version less", vals("1.2.3-rc.1"), false},
		{"empty pre-release dash", `"1.2.3-"`, "version less", vals("1.2.3"), true},
		{"pre-release with dashes", `"1.2.3--x-"`, "version less", vals("1.2.3"), true},
		{"pre-release trailing dot", `"1.2.3-a.b."`, "version less", vals("1.2.3"), true},
		{"patch beats pre-release", `"1.2.4-alpha"`, "version greater", vals("1.2.3"), true},
		{"leading zeros", `"01.02.03"`, "version greater or equal", vals("1.2.3"), true},
		{"leading zeros le", `"01.02.03"`, "version less or equal", vals("1.2.3"), true},
		{"number property", `1.5`, "version greater", vals("1.4"), true},
		{"any filter", `"1.2.3"`, "version less", vals("1.0.0", "2.0.0"), true},
		{"non-version filter ignored", `"1.2.3"`, "version less", vals("abc", "2.0.0"), true},
		{"non-version filter ignored 2", `"1.2.3"`, "version greater", vals("zzz", "2.0.0"), false},
		// not versions: false, never a string comparison
		{"v prefix", `"v1.2.3"`, "version greater", vals("1.0.0"), false},
		{"v prefix lt", `"v1.2.3"`, "version less", vals("2.0.0"), false},
		{"four parts", `"1.2.3.4"`, "version greater", vals("1.0.0"), false},
		{"four parts lt", `"1.2.3.4"`, "version less", vals("2.0.0"), false},
		{"single number", `"1"`, "version less", vals("2.0"), false},
		{"single number ge", `"1"`, "version greater or equal", vals("0.1"), false},
		{"pre-release needs patch", `"1.2-alpha"`, "version less", vals("2.0"), false},
		{"double dot pre-release", `"1.2.3-a..b"`, "version less", vals("2.0"), false},
		{"leading dot pre-release", `"1.2.3-.a"`, "version less", vals("2.0"), false},
		{"non-ASCII pre-release", `"1.2.3-ä"`, "version less", vals("2.0"), false},
		{"non-ASCII digits", `"١.٢"`, "version less", vals("2.0"), false},
		{"trailing newline", "\"1.2.3\\n\"", "version less", vals("2.0"), false},
		{"empty", `""`, "version less", vals("2.0"), false},
		{"build metadata", `"1.2.3+build"`, "version less", vals("2.0"), false},
		{"no filter is a version", `"1.2.3"`, "version greater", vals("v1"), false},
		{"no filter is a version lt", `"1.2.3"`, "version less", vals("z"), false}, // "1.2.3" < "z" as strings
		{"no values", `"1.2.3"`, "version less", nil, false},
		{"major overflow", `"99999999999999999999.1"`, "version greater", vals("1.0"), false},
		{"major overflow lt", `"99999999999999999999.1"`, "version less", vals("1.0"), false},
		{"minor overflow", `"1.99999999999999999999"`, "version greater", vals("1.0"), false},
		{"filter overflow ignored", `"1.0"`, "version less", vals("99999999999999999999.0"), false},
		// the reference ignores Atoi's error on the patch: it clamps
		{"patch overflow clamps", `"1.2.99999999999999999999"`, "version greater", vals("1.2.3"), true},
		{"patch overflow equals max", `"1.2.99999999999999999999"`, "version greater or equal", vals("1.2.9223372036854775807"), true},
		{"patch overflow le max", `"1.2.99999999999999999999"`, "version less or equal", vals("1.2.9223372036854775807"), true},
	})
}

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		in   string
		ok   bool
		want version
	}{
		{"1.2", true, version{1, 2, 0, ""}},
		{"1.2.3", true, version{1, 2, 3, ""}},
		{"1.2.3-alpha.1", true, version{1, 2, 3, "-alpha.1"}},
		{"1.2.3-", true, version{1, 2, 3, "-"}},
		{"007.0.010", true, version{7, 0, 10, ""}},
		{"0.0", true, version{}},
		{"1.2.3-a_b-c.d", true, version{1, 2, 3, "-a_b-c.d"}},
		{"1", false, version{}},
		{"1.", false, version{}},
		{".1", false, version{}},
		{"1.2.", false, version{}},
		{"1.2.3.", false, version{}},
		{"1.2.3.4", false, version{}},
		{"v1.2", false, version{}},
		{"1.2-a", false, version{}},
		{"1.2.3-a b", false, version{}},
		{"1.2.3-a+b", false, version{}},
		{" 1.2", false, version{}},
		{"1.2 ", false, version{}},
		{"+1.2", false, version{}},
		{"-1.2", false, version{}},
		{"", false, version{}},
	} {
		v, ok := parseVersion(c.in)
		assert.Equal(t, c.ok, ok, "%q", c.in)
		if c.ok {
			assert.Equal(t, c.want, v, "%q", c.in)
		}
	}
}

// ---------------------------------------------------------------------------
// regex

func TestRegex(t *testing.T) {
	runPropCases(t, []propCase{
		{"unanchored", `"hello world"`, "regex match", vals("world"), true},
		{"anchored start", `"hello world"`, "regex match", vals("^world"), false},
		{"anchored ok", `"hello world"`, "regex match", vals("^hel"), true},
		{"any value", `"hello"`, "regex match", vals("^x", "l+"), true},
		{"flags", `"HELLO"`, "regex match", vals("(?i)hello"), true},
		{"does not match", `"hello"`, "regex does not match", vals("^x"), true},
		{"does not match false", `"hello"`, "regex does not match", vals("ell"), false},
		{"invalid never matches", `"["`, "regex match", vals("["), false},
		{"invalid: does not match is true", `"["`, "regex does not match", vals("["), true},
		{"invalid among valid", `"hello"`, "regex match", vals("[", "h"), true},
		{"RE2 no backreferences", `"aa"`, "regex match", vals(`(a)\1`), false},
		{"RE2 ASCII \\d", `"١"`, "regex match", vals(`\d`), false},
		{"no values", `"x"`, "regex match", nil, false},
		{"no values does not match", `"x"`, "regex does not match", nil, true},
		{"empty pattern", `"x"`, "regex match", vals(""), true},
		{"number string", `1000000`, "regex match", vals(`^1e`), true},
		{"object JSON", `{"a":"<"}`, "regex match", vals(`\\u003c`), true},
	})

	snap := compileFlags(t,
		oneCondFlag("bad", propSel, "regex match", vals("ok", "(", "[a-")),
		oneCondFlag("bad-not", propSel, "regex does not match", vals("*")),
		oneCondFlag("not-regex", propSel, "is", vals("(")),
	)
	var paths []string
	for _, p := range snap.Problems() {
		if p.Kind == ProblemInvalidRegex {
			paths = append(paths, p.Flag+" "+p.Path)
		}
	}
	assert.Equal(t, []string{
		"bad flags[0].segments[0].conditions[0][0].values[1]",
		"bad flags[0].segments[0].conditions[0][0].values[2]",
		"bad-not flags[1].segments[0].conditions[0][0].values[0]",
	}, paths)
}

// ---------------------------------------------------------------------------
// sets

func TestSetOperators(t *testing.T) {
	ab := `["a","b"]`
	runPropCases(t, []propCase{
		{"set is same", ab, "set is", vals("b", "a"), true},
		{"set is duplicates", ab, "set is", vals("a", "b", "b"), true},
		{"set is list duplicates", `["a","a","b"]`, "set is", vals("a", "b"), true},
		{"set is fewer", ab, "set is", vals("a"), false},
		{"set is more", ab, "set is", vals("a", "b", "c"), false},
		{"set is case-sensitive", ab, "set is", vals("A", "B"), false},
		{"set is no values", ab, "set is", nil, false},
		{"set is empty values", ab, "set is", vals(), false},
		{"set is not", ab, "set is not", vals("a"), true},
		{"set is not equal", ab, "set is not", vals("a", "b"), false},
		{"set is not no values", ab, "set is not", nil, true},
		{"set contains one", ab, "set contains", vals("a"), true},
		{"set contains all", ab, "set contains", vals("b", "a"), true},
		{"set contains missing", ab, "set contains", vals("a", "c"), false},
		{"set contains no size check", `["a"]`, "set contains", vals("a", "a"), true},
		{"set contains no values", ab, "set contains", nil, true},
		{"set contains empty values", ab, "set contains", vals(), true},
		{"set contains case", ab, "set contains", vals("A"), false},
		{"set contains bool rule", `["true","x"]`, "set contains", vals("True", "x"), true},
		{"set contains bool rule upper list", `["TRUE"]`, "set contains", vals("true"), true},
		{"set contains bool rule other kind", `["TRUE"]`, "set contains", vals("false"), false},
		{"set does not contain", ab, "set does not contain", vals("c"), true},
		{"set does not contain partial", ab, "set does not contain", vals("a", "c"), true},
		{"set does not contain all", ab, "set does not contain", vals("a"), false},
		{"set does not contain no values", ab, "set does not contain", nil, false},
		{"set contains any", ab, "set contains any", vals("c", "a"), true},
		{"set contains any none", ab, "set contains any", vals("c"), false},
		{"set contains any no values", ab, "set contains any", nil, false},
		{"set contains any bool", `["false"]`, "set contains any", vals("x", "FALSE"), true},
		{"set contains any bool from json string", `"[\"True\"]"`, "set contains any", vals("TRUE"), true},
		{"set does not contain any", ab, "set does not contain any", vals("c"), true},
		{"set does not contain any hit", ab, "set does not contain any", vals("c", "b"), false},
		{"set does not contain any no values", ab, "set does not contain any", nil, true},
		{"set is many values", `["a","b"]`, "set is", vals("a", "b", "a", "b", "a", "b", "a", "b", "a", "b"), true},
		{"is many values", `"k"`, "is", vals("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"), true},
		{"is many values bool", `"TRUE"`, "is", vals("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "true"), true},
		{"is many values miss", `"z"`, "is", vals("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"), false},
	})

	cohorts := &Context{CohortIDs: []string{"c1", "c2"}}
	sel := []string{"context", "user", "cohort_ids"}
	assert.True(t, matchOne(t, sel, "set contains any", vals("c2", "c9"), cohorts))
	assert.False(t, matchOne(t, sel, "set contains any", vals("c9"), cohorts))
	assert.True(t, matchOne(t, sel, "set does not contain any", vals("c9"), cohorts))
	assert.True(t, matchOne(t, sel, "is not", vals("c1"), cohorts))
	assert.True(t, matchOne(t, sel, "set is", vals("c2", "c1"), cohorts))
}

// ---------------------------------------------------------------------------
// selectors

func TestSelectors(t *testing.T) {
	groups := func() *Context {
		return &Context{
			UserID: "u", Country: "FR",
			Groups: map[string][]string{"org": {"a", "b"}, "team": {}},
			GroupProperties: map[string]map[string]any{
				"org":  {"a": map[string]any{"plan": "ent", "n": 1000000.0, "deep": map[string]any{"k": "v"}}, "b": map[string]any{"plan": "free"}},
				"team": {"x": map[string]any{"plan": "team"}},
			},
			GroupCohortIDs: map[string]map[string][]string{"org": {"a": {"g1", "g2"}, "b": {"g3"}}},
		}
	}
	type c struct {
		name   string
		ctx    *Context
		sel    []string
		op     string
		values []string
		want   bool
	}
	userGroups := func(typ ...string) []string {
		return append([]string{"context", "user", "groups"}, typ...)
	}
	cases := []c{
		// context.user.groups.<missing type>: the whole groups object
		{"missing type reads groups object", groups(), userGroups("missing"), "is", vals(`{"org":["a","b"],"team":[]}`), true},
		{"missing type is not null", groups(), userGroups("missing"), "is", vals("(none)"), false},
		{"missing type is not a list", groups(), userGroups("missing"), "set contains any", vals("a"), false},
		{"missing type set is not", groups(), userGroups("missing"), "set is not", vals("a"), false},
		{"missing type is not x", groups(), userGroups("missing"), "is not", vals("x"), true},
		{"missing type contains", groups(), userGroups("missing"), "contains", vals(`"org"`), true},
		{"groups itself", groups(), userGroups(), "is", vals(`{"org":["a","b"],"team":[]}`), true},
		{"walk stays then finds", groups(), userGroups("missing", "org"), "set is", vals("a", "b"), true},
		{"no groups: missing type is null", &Context{UserID: "u"}, userGroups("missing"), "is", vals("(none)"), true},
		{"empty groups: null", &Context{Groups: map[string][]string{}}, userGroups("org"), "is", vals("(none)"), true},
		// present type
		{"present type whole list", groups(), userGroups("org"), "set is", vals("a", "b"), true},
		{"present type any element", groups(), userGroups("org"), "is", vals("b"), true},
		{"below a list is null", groups(), userGroups("org", "x"), "is", vals("(none)"), true},
		{"empty list set is []", groups(), userGroups("team"), "set is", vals(), true},
		{"empty list is not null", groups(), userGroups("team"), "is", vals("(none)"), false},
		{"empty list set contains any", groups(), userGroups("team"), "set contains any", vals("a"), false},
		{"empty list set does not contain any", groups(), userGroups("team"), "set does not contain any", vals("a"), true},
		{"empty list is not", groups(), userGroups("team"), "is not", vals("x"), false},
		{"nil list reads the string null", &Context{Groups: map[string][]string{"org": nil}}, userGroups("org"), "is", vals("null"), true},
		{"nil list is not a list", &Context{Groups: map[string][]string{"org": nil}}, userGroups("org"), "set is", vals(), false},
		// context.groups.<type>: the first name only
		{"group_name first", groups(), []string{"context", "groups", "org", "group_name"}, "is", vals("a"), true},
		{"group_name not second", groups(), []string{"context", "groups", "org", "group_name"}, "is", vals("b"), false},
		{"group_name empty list is null", groups(), []string{"context", "groups", "team", "group_name"}, "is", vals("(none)"), true},
		{"group_name empty string is present", &Context{Groups: map[string][]string{"org": {"", "b"}}}, []string{"context", "groups", "org", "group_name"}, "is", vals(""), true},
		{"group_name empty string not null", &Context{Groups: map[string][]string{"org": {"", "b"}}}, []string{"context", "groups", "org", "group_name"}, "is", vals("(none)"), false},
		{"group_properties of first name", groups(), []string{"context", "groups", "org", "group_properties", "plan"}, "is", vals("ent"), true},
		{"group_properties deep", groups(), []string{"context", "groups", "org", "group_properties", "deep", "k"}, "is", vals("v"), true},
		{"group_properties number", groups(), []string{"context", "groups", "org", "group_properties", "n"}, "is", vals("1e+06"), true},
		{"group_properties object", groups(), []string{"context", "groups", "org", "group_properties", "deep"}, "is", vals(`{"k":"v"}`), true},
		{"group_properties of another name are not read", &Context{Groups: map[string][]string{"org": {"a", "b"}},
			GroupProperties: map[string]map[string]any{"org": {"b": map[string]any{"plan": "x"}}}},
			[]string{"context", "groups", "org", "group_properties", "plan"}, "is", vals("(none)"), true},
		{"group_properties for empty name list", groups(), []string{"context", "groups", "team", "group_properties", "plan"}, "is", vals("(none)"), true},
		{"group cohort ids of first name", groups(), []string{"context", "groups", "org", "cohort_ids"}, "set is", vals("g1", "g2"), true},
		{"group cohort ids not of second name", groups(), []string{"context", "groups", "org", "cohort_ids"}, "set contains any", vals("g3"), false},
		{"group cohort ids empty list", &Context{Groups: map[string][]string{"org": {"a"}}, GroupCohortIDs: map[string]map[string][]string{"org": {"a": nil}}},
			[]string{"context", "groups", "org", "cohort_ids"}, "set is", vals(), true},
		{"group cohort ids empty list not null", &Context{Groups: map[string][]string{"org": {"a"}}, GroupCohortIDs: map[string]map[string][]string{"org": {"a": {}}}},
			[]string{"context", "groups", "org", "cohort_ids"}, "is", vals("(none)"), false},
		{"group cohort ids absent name is null", &Context{Groups: map[string][]string{"org": {"a"}}, GroupCohortIDs: map[string]map[string][]string{"org": {"b": {"x"}}}},
			[]string{"context", "groups", "org", "cohort_ids"}, "is", vals("(none)"), true},
		{"context.groups.<missing type>", groups(), []string{"context", "groups", "missing"}, "is", vals("(none)"), true},
		{"context.groups.<type>", groups(), []string{"context", "groups", "org"}, "is",
			vals(`{"cohort_ids":["g1","g2"],"group_name":"a","group_properties":{"deep":{"k":"v"},"n":1000000,"plan":"ent"}}`), true},
		{"context.groups.<type> unknown part", groups(), []string{"context", "groups", "org", "nope"}, "is", vals("(none)"), true},
		// user fields
		{"user field", groups(), []string{"context", "user", "country"}, "is", vals("FR"), true},
		{"empty user field is null", &Context{Country: ""}, []string{"context", "user", "country"}, "is", vals("(none)"), true},
		{"empty user field is not empty string", &Context{Country: ""}, []string{"context", "user", "country"}, "is", vals(""), false},
		{"user cohort ids", &Context{CohortIDs: []string{"c1"}}, []string{"context", "user", "cohort_ids"}, "set is", vals("c1"), true},
		{"context.user", &Context{UserID: "u", Country: "FR", CohortIDs: []string{"c"}}, []string{"context", "user"}, "is",
			vals(`{"cohort_ids":["c"],"country":"FR","user_id":"u"}`), true},
		{"context.user.user_properties", propCtx(t, `"<"`), []string{"context", "user", "user_properties"}, "is",
			vals(`{"other":"x","p":"\u003c"}`), true},
		{"deep user property", &Context{UserProperties: map[string]any{"a": map[string]any{"b": map[string]any{"c": "x"}}}},
			[]string{"context", "user", "user_properties", "a", "b", "c"}, "is", vals("x"), true},
		{"all user fields", &Context{UserID: "1", DeviceID: "2", Country: "3", Region: "4", DMA: "5", City: "6", Language: "7", Platform: "8",
			Version: "9", OS: "10", DeviceManufacturer: "11", DeviceBrand: "12", DeviceModel: "13", Carrier: "14", Library: "15"},
			[]string{"context", "user"}, "is", vals(`{"carrier":"14","city":"6","country":"3","device_brand":"12","device_id":"2",` +
				`"device_manufacturer":"11","device_model":"13","dma":"5","language":"7","library":"15","os":"10","platform":"8",` +
				`"region":"4","user_id":"1","version":"9"}`), true},
		{"context", &Context{UserID: "u"}, []string{"context"}, "is", vals(`{"user":{"user_id":"u"}}`), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, matchOne(t, c.sel, c.op, c.values, c.ctx))
		})
	}
}

func TestUserFieldSelectors(t *testing.T) {
	names := []string{"user_id", "device_id", "country", "region", "dma", "city", "language", "platform", "version", "os",
		"device_manufacturer", "device_brand", "device_model", "carrier", "library"}
	ctx := &Context{UserID: "user_id", DeviceID: "device_id", Country: "country", Region: "region", DMA: "dma", City: "city",
		Language: "language", Platform: "platform", Version: "version", OS: "os", DeviceManufacturer: "device_manufacturer",
		DeviceBrand: "device_brand", DeviceModel: "device_model", Carrier: "carrier", Library: "library"}
	for _, n := range names {
		assert.True(t, matchOne(t, []string{"context", "user", n}, "is", vals(n), ctx), n)
		assert.True(t, matchOne(t, []string{"context", "user", n}, "is", vals("(none)"), &Context{}), n)
	}
	// not user fields
	for _, n := range []string{"ip_address", "group_properties", "group_cohort_ids", "User_Id"} {
		assert.True(t, matchOne(t, []string{"context", "user", n}, "is", vals("(none)"), ctx), n)
	}
}

// resultFlags is a flag "dep" and a flag "f" that depends on it and matches
// when its condition on result.<depKey>.<part...> does.
func resultFlags(dep *Flag, depKey string, part []string, op string, values []string) []*Flag {
	f := oneCondFlag("f", append([]string{"result", depKey}, part...), op, values)
	f.Dependencies = []string{"dep"}
	return []*Flag{dep, f}
}

func TestResultSelectors(t *testing.T) {
	noResult := &Flag{Key: "dep", Variants: map[string]*Variant{"on": {Key: "on"}},
		Segments: []*Segment{{Conditions: [][]*Condition{}, Variant: "on"}}}
	emptyMeta := &Flag{Key: "dep", Variants: map[string]*Variant{"off": {Key: "off"}}, Segments: []*Segment{{Variant: "off"}}}
	withValue := func(value any, meta map[string]any) *Flag {
		return &Flag{Key: "dep", Metadata: meta,
			Variants: map[string]*Variant{"v": {Key: "v", Value: value, Payload: map[string]any{"p": "<"}, Metadata: map[string]any{"m": 1.0}}},
			Segments: []*Segment{{Variant: "v", Metadata: map[string]any{"segmentName": "s"}}}}
	}
	cases := []struct {
		name   string
		dep    *Flag
		depKey string
		part   []string
		op     string
		values []string
		want   bool
	}{
		{"no result: key is empty string", noResult, "dep", []string{"key"}, "is", vals(""), true},
		{"no result: key is not null", noResult, "dep", []string{"key"}, "is", vals("(none)"), false},
		{"no result: key is not on", noResult, "dep", []string{"key"}, "is not", vals("on"), true},
		{"no result: value is null", noResult, "dep", []string{"value"}, "is", vals("(none)"), true},
		{"no result: payload is null", noResult, "dep", []string{"payload"}, "is", vals("(none)"), true},
		{"no result: metadata is the string null", noResult, "dep", []string{"metadata"}, "is", vals("null"), true},
		{"no result: metadata is not null", noResult, "dep", []string{"metadata"}, "is", vals("(none)"), false},
		{"no result: metadata key is null", noResult, "dep", []string{"metadata", "k"}, "is", vals("(none)"), true},
		{"missing flag: key", noResult, "missing", []string{"key"}, "is", vals(""), true},
		{"missing flag: metadata is null string", noResult, "missing", []string{"metadata"}, "is", vals("null"), true},
		{"missing flag: metadata not (none)", noResult, "missing", []string{"metadata"}, "is", vals("(none)"), false},
		{"missing flag: metadata regex does not match", noResult, "missing", []string{"metadata"}, "regex does not match", vals("^null$"), false},
		{"empty merged metadata is null string", emptyMeta, "dep", []string{"metadata"}, "is", vals("null"), true},
		{"absent value is null", emptyMeta, "dep", []string{"value"}, "is", vals("(none)"), true},
		{"key of result", emptyMeta, "dep", []string{"key"}, "is", vals("off"), true},
		{"raw number value", withValue(1000000.0, nil), "dep", []string{"value"}, "is", vals("1e+06"), true},
		{"raw bool value", withValue(true, nil), "dep", []string{"value"}, "is", vals("TRUE"), true},
		{"raw array value is a list", withValue([]any{"a", "b"}, nil), "dep", []string{"value"}, "set is", vals("a", "b"), true},
		{"raw object value", withValue(map[string]any{"b": 1.0, "a": "<"}, nil), "dep", []string{"value"}, "is", vals(`{"a":"\u003c","b":1}`), true},
		{"value path", withValue(map[string]any{"b": 1.0, "a": "<"}, nil), "dep", []string{"value", "a"}, "is", vals("<"), true},
		{"payload", withValue("x", nil), "dep", []string{"payload", "p"}, "is", vals("<"), true},
		{"payload object", withValue("x", nil), "dep", []string{"payload"}, "is", vals(`{"p":"\u003c"}`), true},
		{"merged metadata", withValue("x", map[string]any{"z": "flag"}), "dep", []string{"metadata"}, "is", vals(`{"m":1,"segmentName":"s","z":"flag"}`), true},
		{"merged metadata key", withValue("x", map[string]any{"z": "flag"}), "dep", []string{"metadata", "segmentName"}, "is", vals("s"), true},
		{"key below key is null", withValue("x", nil), "dep", []string{"key", "x"}, "is", vals("(none)"), true},
		{"unknown part", withValue("x", nil), "dep", []string{"variant"}, "is", vals("(none)"), true},
		{"whole variant (Go %v)", noResult, "dep", nil, "is", vals("{ <nil> <nil> map[]}"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := compileFlags(t, resultFlags(c.dep, c.depKey, c.part, c.op, c.values)...)
			_, got := resultMap(t, snap, &Context{UserID: "u"})["f"]
			assert.Equal(t, c.want, got)
			// asking for the dependent only must give the same answer
			_, got = resultMap(t, snap, &Context{UserID: "u"}, "f")["f"]
			assert.Equal(t, c.want, got, "subset evaluation")
		})
	}

	// a result selector naming a flag that comes later and is not a
	// dependency reads no result (config order, as documented)
	later := oneCondFlag("first", []string{"result", "second", "key"}, "is", vals(""))
	second := &Flag{Key: "second", Variants: map[string]*Variant{"on": {Key: "on"}}, Segments: []*Segment{{Variant: "on"}}}
	snap := compileFlags(t, later, second)
	m := resultMap(t, snap, &Context{})
	assert.Contains(t, m, "first")
	assert.Contains(t, m, "second")
}

// ---------------------------------------------------------------------------
// bucketing

func TestHashBucketVectors(t *testing.T) {
	for _, v := range []struct {
		salt, value string
		hash        uint32
		alloc, dist uint64
	}{
		{"abc", "user-1", 1740102177, 77, 17401021},
		{"x1y2z3w4", "0f8fad5b-d9cb-469f-a165-70867728950e", 166784310, 10, 1667843},
		{"", "user@example.com", 3074500424, 24, 30745004},
		{"salt", "José", 2324016486, 86, 23240164},
	} {
		h, a, d := HashBucket(v.salt, v.value)
		assert.Equal(t, v.hash, h, "%s/%s", v.salt, v.value)
		assert.Equal(t, v.alloc, a)
		assert.Equal(t, v.dist, d)
	}
	// the two vectors that are not salt/value pairs, on the hash itself
	assert.Equal(t, uint32(0), murmur3.Sum32([]byte("")))
	assert.Equal(t, uint32(1009084850), murmur3.Sum32([]byte("a")))

	// values past the stack buffer hash the same as the plain concatenation
	for _, n := range []int{200, 254, 255, 256, 257, 1000, 5000} {
		salt, value := strings.Repeat("s", n/3), strings.Repeat("é", n)
		h, _, _ := HashBucket(salt, value)
		assert.Equal(t, murmur3.Sum32([]byte(salt+"/"+value)), h, n)
	}
}

// bucketFlag has one segment that buckets by sel with salt: the allocation
// and distribution ranges hold exactly the hash of want, giving "hit";
// anything else gives the segment variant "miss".
func bucketFlag(sel []string, salt, want string) *Flag {
	_, a, d := HashBucket(salt, want)
	return &Flag{Key: "f",
		Variants: map[string]*Variant{"hit": {Key: "hit"}, "miss": {Key: "miss"}},
		Segments: []*Segment{{
			Bucket: &Bucket{Selector: sel, Salt: salt, Allocations: []*Allocation{
				{Range: []uint64{a, a + 1}, Distributions: []*Distribution{{Variant: "hit", Range: []uint64{d, d + 1}}}},
			}},
			Variant: "miss",
		}}}
}

func TestBucketingValue(t *testing.T) {
	cases := []struct {
		name   string
		ctx    *Context
		sel    []string
		hashed string // "" = not hashed: the segment variant
	}{
		{"string", propCtx(t, `"user-1"`), propSel, "user-1"},
		{"device id", &Context{DeviceID: "0f8fad5b-d9cb-469f-a165-70867728950e"}, []string{"context", "user", "device_id"}, "0f8fad5b-d9cb-469f-a165-70867728950e"},
		{"number %v", propCtx(t, `1000000`), propSel, "1e+06"},
		{"small number", propCtx(t, `30`), propSel, "30"},
		{"bool", propCtx(t, `true`), propSel, "true"},
		{"array as JSON text", propCtx(t, `["a","b"]`), propSel, `["a","b"]`},
		{"array with null as JSON text", propCtx(t, `["a",null,1]`), propSel, `["a",null,1]`},
		{"empty array", propCtx(t, `[]`), propSel, `[]`},
		{"object as sorted JSON", propCtx(t, `{"b":"<","a":1}`), propSel, `{"a":1,"b":"\u003c"}`},
		{"JSON-array string as is", propCtx(t, `"[\"a\", \"b\"]"`), propSel, `["a", "b"]`},
		{"group list as JSON", &Context{Groups: map[string][]string{"org": {"a", "b"}}}, []string{"context", "user", "groups", "org"}, `["a","b"]`},
		{"empty group list as JSON", &Context{Groups: map[string][]string{"org": {}}}, []string{"context", "user", "groups", "org"}, `[]`},
		{"groups object", &Context{Groups: map[string][]string{"org": {"a"}}}, []string{"context", "user", "groups", "x"}, `{"org":["a"]}`},
		{"cohort ids", &Context{CohortIDs: []string{"c1", "c2"}}, []string{"context", "user", "cohort_ids"}, `["c1","c2"]`},
		{"group cohort ids", &Context{Groups: map[string][]string{"org": {"a"}}, GroupCohortIDs: map[string]map[string][]string{"org": {"a": nil}}},
			[]string{"context", "groups", "org", "cohort_ids"}, `[]`},
		{"missing result metadata", &Context{}, []string{"result", "nope", "metadata"}, "null"},
		{"unicode", propCtx(t, `"José"`), propSel, "José"},
		// not hashed
		{"empty string", propCtx(t, `""`), propSel, ""},
		{"null", propCtx(t, `null`), propSel, ""},
		{"absent", propCtx(t, ``), propSel, ""},
		{"empty user id", &Context{UserID: ""}, []string{"context", "user", "user_id"}, ""},
		{"missing result key", &Context{}, []string{"result", "nope", "key"}, ""},
		{"nil selector", &Context{UserID: "u"}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			salt := "s4lt"
			probe := c.hashed
			if probe == "" {
				probe = "never-selected"
			}
			snap := compileFlags(t, bucketFlag(c.sel, salt, probe))
			r, ok := resultMap(t, snap, c.ctx)["f"]
			require.True(t, ok)
			if c.hashed == "" {
				assert.Equal(t, "miss", r.Key, "an unhashable value gets the segment variant")
			} else {
				assert.Equal(t, "hit", r.Key, "value should hash as %q", c.hashed)
			}
		})
	}
}

func TestAllocations(t *testing.T) {
	const salt = "abc"
	ctx := &Context{UserID: "user-1"} // hash 1740102177: allocation 77, distribution 17401021
	sel := []string{"context", "user", "user_id"}
	const a, d = 77, 17401021
	full := []uint64{0, 42949673}
	flag := func(allocs ...*Allocation) *Flag {
		return &Flag{Key: "f",
			Variants: map[string]*Variant{"control": {Key: "control"}, "treatment": {Key: "treatment"}, "off": {Key: "off"}, "x": {Key: "x"}},
			Segments: []*Segment{{Bucket: &Bucket{Selector: sel, Salt: salt, Allocations: allocs}, Variant: "off"}},
		}
	}
	alloc := func(start, end uint64, dists ...*Distribution) *Allocation {
		return &Allocation{Range: []uint64{start, end}, Distributions: dists}
	}
	dist := func(v string, start, end uint64) *Distribution {
		return &Distribution{Variant: v, Range: []uint64{start, end}}
	}
	cases := []struct {
		name string
		flag *Flag
		want string
	}{
		{"full", flag(alloc(0, 100, dist("control", full[0], full[1]))), "control"},
		{"no allocations", flag(), "off"},
		{"allocation start inclusive", flag(alloc(a, a+1, dist("control", 0, 42949673))), "control"},
		{"allocation end exclusive", flag(alloc(0, a, dist("control", 0, 42949673))), "off"},
		{"allocation after", flag(alloc(a+1, 100, dist("control", 0, 42949673))), "off"},
		{"empty allocation", flag(alloc(a, a, dist("control", 0, 42949673))), "off"},
		{"distribution start inclusive", flag(alloc(0, 100, dist("control", 0, d), dist("treatment", d, d+1))), "treatment"},
		{"distribution end exclusive", flag(alloc(0, 100, dist("control", 0, d), dist("treatment", d+1, 42949673))), "off"},
		{"first distribution wins", flag(alloc(0, 100, dist("control", 0, 42949673), dist("treatment", 0, 42949673))), "control"},
		{"first allocation wins", flag(alloc(0, 100, dist("control", full[0], full[1])), alloc(0, 100, dist("treatment", full[0], full[1]))), "control"},
		{"fall through: no distribution hit", flag(
			alloc(0, 100, dist("control", 0, d)),
			alloc(a, a+1, dist("treatment", 0, 42949673))), "treatment"},
		{"fall through: no distributions", flag(alloc(0, 100), alloc(0, 100, dist("treatment", full[0], full[1]))), "treatment"},
		{"fall through to segment variant", flag(alloc(0, 100, dist("control", 0, d)), alloc(0, a)), "off"},
		{"huge ranges", flag(alloc(0, 1<<63, dist("x", 0, 1<<63))), "x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := compileFlags(t, c.flag)
			r, ok := resultMap(t, snap, ctx)["f"]
			require.True(t, ok)
			assert.Equal(t, c.want, r.Key)
		})
	}
}

func TestMissingVariantSkipsSegment(t *testing.T) {
	doc := `[{"key":"f","variants":{"on":{"key":"on"},"fallback":{"key":"fallback"},"nil":null},
	  "segments":[
	    {"variant":"ghost"},
	    {"variant":""},
	    {"variant":"nil"},
	    {"conditions":[[{"selector":["context","user","user_id"],"op":"is","values":["u"]}]],
	     "bucket":{"selector":["context","user","user_id"],"salt":"abc","allocations":[{"range":[0,100],"distributions":[{"variant":"ghost","range":[0,42949673]}]}]},
	     "variant":"on"},
	    {"variant":"fallback"}]}]`
	snap := compileJSON(t, doc)
	r := resultMap(t, snap, &Context{UserID: "u"})["f"]
	assert.Equal(t, "fallback", r.Key, "a bucket hit on a missing variant skips the segment, it does not fall back to the segment variant")
	assert.Equal(t, 4, r.Segment)

	var kinds []string
	for _, p := range snap.Problems() {
		if p.Kind == ProblemMissingVariant {
			kinds = append(kinds, p.Path)
		}
	}
	assert.Equal(t, []string{
		"flags[0].segments[0].variant",
		"flags[0].segments[2].variant",
		"flags[0].segments[3].bucket.allocations[0].distributions[0].variant",
	}, kinds)

	// no segment yields a variant: no result at all
	snap = compileJSON(t, `[{"key":"f","variants":{"on":{"key":"on"}},"segments":[{"variant":"ghost"},{"conditions":[],"variant":"on"}]},
	                        {"key":"g","variants":{"on":{"key":"on"}}},
	                        {"key":"h","segments":[{"variant":"on"}]}]`)
	res, err := snap.Evaluate(&Context{}, nil, nil)
	require.NoError(t, err)
	assert.Empty(t, res)
}

// ---------------------------------------------------------------------------
// segments and conditions

func TestConditionShapes(t *testing.T) {
	is := func(v string) string {
		return fmt.Sprintf(`{"selector":["context","user","user_id"],"op":"is","values":[%q]}`, v)
	}
	cases := []struct {
		name       string
		conditions string // JSON; "" = absent
		want       bool
	}{
		{"absent always matches", "", true},
		{"null always matches", "null", true},
		{"[] never matches", "[]", false},
		{"[[]] always matches", "[[]]", true},
		{"[null] is an empty AND group", "[null]", true},
		{"AND true", "[[" + is("u") + "," + is("u") + "]]", true},
		{"AND false", "[[" + is("u") + "," + is("x") + "]]", false},
		{"OR true", "[[" + is("x") + "],[" + is("u") + "]]", true},
		{"OR false", "[[" + is("x") + "],[" + is("y") + "]]", false},
		{"OR with empty group", "[[" + is("x") + "],[]]", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seg := `{"variant":"on"}`
			if c.conditions != "" {
				seg = `{"variant":"on","conditions":` + c.conditions + `}`
			}
			snap := compileJSON(t, `[{"key":"f","variants":{"on":{"key":"on"},"off":{"key":"off"}},"segments":[`+seg+`,{"variant":"off"}]}]`)
			r := resultMap(t, snap, &Context{UserID: "u"})["f"]
			if c.want {
				assert.Equal(t, "on", r.Key)
				assert.Equal(t, 0, r.Segment)
			} else {
				assert.Equal(t, "off", r.Key, "the next segment decides")
				assert.Equal(t, 1, r.Segment)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// results: metadata and values

func TestMetadataOverlay(t *testing.T) {
	snap := compileJSON(t, `[
	 {"key":"all","metadata":{"a":"flag","b":"flag","c":"flag","n":1},
	  "variants":{"v":{"key":"v","metadata":{"c":"variant"}}},
	  "segments":[{"conditions":[],"metadata":{"x":"other segment"},"variant":"v"},
	              {"metadata":{"b":"segment","c":"segment"},"variant":"v"}]},
	 {"key":"none","variants":{"v":{"key":"v"}},"segments":[{"variant":"v"}]},
	 {"key":"empty","metadata":{},"variants":{"v":{"key":"v","metadata":{}}},"segments":[{"metadata":{},"variant":"v"}]},
	 {"key":"variant-only","variants":{"v":{"key":"v","metadata":{"default":true}}},"segments":[{"variant":"v"}]},
	 {"key":"segment-only","variants":{"v":{"key":"v"}},"segments":[{"metadata":{"segmentName":"All"},"variant":"v"}]},
	 {"key":"bucketed","metadata":{"f":1},
	  "variants":{"a":{"key":"a","metadata":{"va":1}},"b":{"key":"b","metadata":{"vb":1}}},
	  "segments":[{"metadata":{"s":1},"variant":"a",
	    "bucket":{"selector":["context","user","user_id"],"salt":"abc","allocations":[{"range":[0,100],"distributions":[{"variant":"b","range":[0,42949673]}]}]}}]}
	]`)
	m := resultMap(t, snap, &Context{UserID: "user-1"})
	assert.Equal(t, map[string]any{"a": "flag", "b": "segment", "c": "variant", "n": 1.0}, m["all"].Metadata)
	assert.Equal(t, 1, m["all"].Segment)
	assert.Nil(t, m["none"].Metadata)
	assert.Nil(t, m["empty"].Metadata)
	assert.Equal(t, map[string]any{"default": true}, m["variant-only"].Metadata)
	assert.Equal(t, map[string]any{"segmentName": "All"}, m["segment-only"].Metadata)
	assert.Equal(t, map[string]any{"f": 1.0, "s": 1.0, "vb": 1.0}, m["bucketed"].Metadata)
	// the segment variant of the bucketed segment, when nothing is hashed
	m = resultMap(t, snap, &Context{})
	assert.Equal(t, map[string]any{"f": 1.0, "s": 1.0, "va": 1.0}, m["bucketed"].Metadata)
}

func TestValueCoercion(t *testing.T) {
	cases := []struct {
		value string // JSON; "" = absent
		want  string
	}{
		{"", ""},
		{`null`, ""},
		{`"on"`, "on"},
		{`""`, ""},
		{`42`, "42"},
		{`3.5`, "3.5"},
		{`1e21`, "1e+21"},
		{`12345678901`, "1.2345678901e+10"},
		{`1000000`, "1e+06"},
		{`-0.0001`, "-0.0001"},
		{`true`, "true"},
		{`false`, "false"},
		{`{"b":1,"a":"<"}`, `{"a":"\u003c","b":1}`},
		{`[1,"a",null,{"z":[]}]`, `[1,"a",null,{"z":[]}]`},
		{`[]`, `[]`},
		{`{}`, `{}`},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			variant := `{"key":"k","payload":{"b":[1,2],"a":"<"}}`
			if c.value != "" {
				variant = `{"key":"k","value":` + c.value + `,"payload":{"b":[1,2],"a":"<"}}`
			}
			snap := compileJSON(t, `[{"key":"f","variants":{"v":`+variant+`},"segments":[{"variant":"v"}]}]`)
			r := resultMap(t, snap, &Context{})["f"]
			assert.Equal(t, c.want, r.Value)
			assert.Equal(t, "k", r.Key, "the key is the variant's key field")
			assert.Equal(t, map[string]any{"a": "<", "b": []any{1.0, 2.0}}, r.Payload)
			var raw any
			if c.value != "" {
				require.NoError(t, json.Unmarshal([]byte(c.value), &raw))
			}
			assert.Equal(t, raw, r.RawValue)
		})
	}
	// payload absent -> nil; key field differs from the map key
	snap := compileJSON(t, `[{"key":"f","variants":{"mapkey":{"key":"fieldkey"}},"segments":[{"variant":"mapkey"}]},
	                        {"key":"g","variants":{"v":{}},"segments":[{"variant":"v"}]}]`)
	m := resultMap(t, snap, &Context{})
	assert.Nil(t, m["f"].Payload)
	assert.Equal(t, "fieldkey", m["f"].Key)
	assert.Equal(t, "", m["g"].Key)
	// result.<flag>.key reads the field too
	snap = compileJSON(t, `[{"key":"f","variants":{"mapkey":{"key":"fieldkey"}},"segments":[{"variant":"mapkey"}]},
	  {"key":"g","dependencies":["f"],"variants":{"v":{"key":"v"}},"segments":[{"variant":"v","conditions":[[{"selector":["result","f","key"],"op":"is","values":["fieldkey"]}]]}]}]`)
	assert.Contains(t, resultMap(t, snap, &Context{}), "g")
}

func TestOutcomes(t *testing.T) {
	snap := compileJSON(t, `[
	 {"key":"a","variants":{"x":{"key":"x"},"y":{"key":"y"}},"segments":[{"conditions":[],"variant":"x"},{"variant":"y"}]},
	 {"key":"b","variants":{"z":{"key":"z"}},"segments":[{"variant":"z"}]}]`)
	res, err := snap.Evaluate(&Context{}, nil, nil)
	require.NoError(t, err)
	require.Len(t, res, 2)
	seen := map[int]bool{}
	for _, r := range res {
		require.GreaterOrEqual(t, r.Outcome, 0)
		require.Less(t, r.Outcome, snap.Outcomes())
		assert.False(t, seen[r.Outcome])
		seen[r.Outcome] = true
		flag, seg, variant := snap.Outcome(r.Outcome)
		assert.Equal(t, r.FlagKey, flag)
		assert.Equal(t, r.Segment, seg)
		assert.Equal(t, r.Key, variant)
	}
	assert.Equal(t, []string{"a", "b"}, snap.Keys())
	assert.Equal(t, 2, snap.Len())
	assert.Equal(t, "a", snap.Flag("a").Key)
	assert.Nil(t, snap.Flag("nope"))
}

// ---------------------------------------------------------------------------
// dependencies

func onFlag(key string, deps ...string) *Flag {
	return &Flag{Key: key, Dependencies: deps, Variants: map[string]*Variant{"on": {Key: "on", Value: "on"}}, Segments: []*Segment{{Variant: "on"}}}
}

func TestDependencies(t *testing.T) {
	t.Run("subset pulls dependencies first", func(t *testing.T) {
		snap := compileFlags(t, onFlag("a"), onFlag("b", "a"), onFlag("c"))
		res, err := snap.Evaluate(&Context{}, []string{"b", "nope"}, nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b"}, resultKeys(res))
	})
	t.Run("chain", func(t *testing.T) {
		snap := compileFlags(t, onFlag("c", "b"), onFlag("b", "a"), onFlag("a"), onFlag("z"))
		res, err := snap.Evaluate(&Context{}, []string{"c"}, nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b", "c"}, resultKeys(res))
		res, err = snap.Evaluate(&Context{}, nil, nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b", "c", "z"}, resultKeys(res), "dependencies first, otherwise config order")
	})
	t.Run("diamond and repeated keys", func(t *testing.T) {
		snap := compileFlags(t, onFlag("d", "b", "c"), onFlag("b", "a"), onFlag("c", "a"), onFlag("a"))
		res, err := snap.Evaluate(&Context{}, []string{"d", "a", "d", "c"}, nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b", "c", "d"}, resultKeys(res))
		res, err = snap.Evaluate(&Context{}, []string{"c", "b"}, nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "c", "b"}, resultKeys(res), "requested order, each after its dependencies")
	})
	t.Run("unknown keys only", func(t *testing.T) {
		snap := compileFlags(t, onFlag("a"))
		res, err := snap.Evaluate(&Context{}, []string{"nope", ""}, nil)
		require.NoError(t, err)
		assert.Empty(t, res)
	})
	t.Run("nil and empty keys mean all", func(t *testing.T) {
		snap := compileFlags(t, onFlag("a"), onFlag("b"))
		for _, keys := range [][]string{nil, {}} {
			res, err := snap.Evaluate(&Context{}, keys, nil)
			require.NoError(t, err)
			assert.Equal(t, []string{"a", "b"}, resultKeys(res))
		}
	})
	t.Run("dependent reads the dependency", func(t *testing.T) {
		dep := &Flag{Key: "dep", Variants: map[string]*Variant{"on": {Key: "on"}, "off": {Key: "off"}},
			Segments: []*Segment{{Conditions: [][]*Condition{{{Selector: []string{"context", "user", "user_id"}, Op: "is", Values: []string{"vip"}}}}, Variant: "on"}, {Variant: "off"}}}
		f := oneCondFlag("f", []string{"result", "dep", "key"}, "is", vals("on"))
		f.Dependencies = []string{"dep"}
		snap := compileFlags(t, f, dep) // dependent first in config
		assert.Equal(t, []string{"dep", "f"}, resultKeys(mustEval(t, snap, &Context{UserID: "vip"}, nil)))
		assert.Equal(t, []string{"dep"}, resultKeys(mustEval(t, snap, &Context{UserID: "x"}, nil)))
		assert.Equal(t, []string{"dep", "f"}, resultKeys(mustEval(t, snap, &Context{UserID: "vip"}, []string{"f"})))
	})
	t.Run("missing dependency", func(t *testing.T) {
		f := oneCondFlag("f", []string{"result", "ghost", "key"}, "is", vals(""))
		f.Dependencies = []string{"ghost"}
		snap := compileFlags(t, f)
		require.Len(t, snap.Problems(), 1)
		p := snap.Problems()[0]
		assert.Equal(t, ProblemMissingDependency, p.Kind)
		assert.Equal(t, "f", p.Flag)
		assert.Contains(t, p.Message, "ghost")
		assert.Equal(t, []string{"f"}, resultKeys(mustEval(t, snap, &Context{}, nil)))
		assert.Equal(t, []string{"f"}, resultKeys(mustEval(t, snap, &Context{}, []string{"f"})))
	})
	t.Run("duplicate keys: the later definition wins", func(t *testing.T) {
		first := onFlag("a")
		second := &Flag{Key: "a", Variants: map[string]*Variant{"two": {Key: "two"}}, Segments: []*Segment{{Variant: "two"}}}
		snap := compileFlags(t, first, onFlag("b"), second)
		res := mustEval(t, snap, &Context{}, nil)
		assert.Equal(t, []string{"a", "b"}, resultKeys(res))
		assert.Equal(t, "two", res[0].Key)
		require.NotEmpty(t, snap.Problems())
		assert.Equal(t, ProblemDuplicateFlag, snap.Problems()[0].Kind)
	})
	t.Run("dst is appended to", func(t *testing.T) {
		snap := compileFlags(t, onFlag("a"), onFlag("b"))
		dst := []Result{{FlagKey: "keep"}}
		res, err := snap.Evaluate(&Context{}, nil, dst)
		require.NoError(t, err)
		assert.Equal(t, []string{"keep", "a", "b"}, resultKeys(res))
	})
	t.Run("deterministic order", func(t *testing.T) {
		var flags []*Flag
		for i := 0; i < 50; i++ {
			var deps []string
			if i%3 == 0 && i > 0 {
				deps = []string{fmt.Sprintf("f%d", i+1), fmt.Sprintf("f%d", i/2)}
			}
			if i == 49 {
				deps = nil
			}
			flags = append(flags, onFlag(fmt.Sprintf("f%d", i), deps...))
		}
		snap := compileFlags(t, flags...)
		first := resultKeys(mustEval(t, snap, &Context{}, nil))
		require.Len(t, first, 50)
		pos := map[string]int{}
		for i, k := range first {
			pos[k] = i
		}
		for _, f := range flags {
			for _, d := range f.Dependencies {
				assert.Less(t, pos[d], pos[f.Key], "%s before %s", d, f.Key)
			}
		}
		for i := 0; i < 20; i++ {
			assert.Equal(t, first, resultKeys(mustEval(t, snap, &Context{}, nil)))
		}
	})
}

func mustEval(t testing.TB, snap *Snapshot, ctx *Context, keys []string) []Result {
	t.Helper()
	res, err := snap.Evaluate(ctx, keys, nil)
	require.NoError(t, err)
	return res
}

func TestCycles(t *testing.T) {
	snap := compileFlags(t,
		onFlag("free"),
		onFlag("a", "b"), onFlag("b", "a"),
		onFlag("x", "a"), // depends on the cycle
		onFlag("y", "free"),
		onFlag("self", "self"),
	)
	var cycles int
	for _, p := range snap.Problems() {
		if p.Kind == ProblemCycle {
			cycles++
			assert.Contains(t, p.Message, "detected a cycle between flags")
		}
	}
	assert.Equal(t, 2, cycles, "%v", snap.Problems())

	for _, keys := range [][]string{nil, {}, {"a"}, {"b"}, {"x"}, {"free", "x"}, {"self"}, {"nope", "b"}} {
		res, err := snap.Evaluate(&Context{}, keys, []Result{})
		var ce *CycleError
		require.ErrorAs(t, err, &ce, "keys %q", keys)
		assert.NotEmpty(t, ce.Flags)
		assert.Contains(t, ce.Error(), "detected a cycle between flags [")
		assert.Empty(t, res, "keys %q", keys)
	}
	for _, keys := range [][]string{{"free"}, {"y"}, {"y", "nope"}} {
		res, err := snap.Evaluate(&Context{}, keys, nil)
		require.NoError(t, err, "keys %q", keys)
		assert.NotEmpty(t, res)
	}
	res, err := snap.Evaluate(&Context{}, []string{"y"}, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"free", "y"}, resultKeys(res))

	// the snapshot still works after failed evaluations
	for i := 0; i < 3; i++ {
		_, err = snap.Evaluate(&Context{UserID: "u"}, []string{"a"}, nil)
		require.Error(t, err)
		res, err = snap.Evaluate(&Context{UserID: "u"}, []string{"free"}, nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"free"}, resultKeys(res))
	}

	// cycle through three flags, not including the requested one
	snap = compileFlags(t, onFlag("top", "p"), onFlag("p", "q"), onFlag("q", "r"), onFlag("r", "p"))
	_, err = snap.Evaluate(&Context{}, []string{"top"}, nil)
	var ce *CycleError
	require.ErrorAs(t, err, &ce)
	for _, k := range []string{"p", "q", "r"} {
		assert.Contains(t, ce.Flags, k)
	}
	assert.NotContains(t, ce.Flags, "top")
}

// TestCycleErrorMessage compares the message with the reference's, which
// lists the traversal path once: "detected a cycle between flags [a b]".
func TestCycleErrorMessage(t *testing.T) {
	snap := compileFlags(t, onFlag("a", "b"), onFlag("b", "a"), onFlag("self", "self"))
	_, err := snap.Evaluate(&Context{}, []string{"a"}, nil)
	require.Error(t, err)
	_, errSelf := snap.Evaluate(&Context{}, []string{"self"}, nil)
	require.Error(t, errSelf)
	if err.Error() != "detected a cycle between flags [a b]" || errSelf.Error() != "detected a cycle between flags [self]" {
		regression(t, fmt.Sprintf("cycle message %q / %q: the reference (sort.go parentTraversal) prints the path without repeating its start: "+
			"[a b] and [self]; deps.go cyclePath appends the start again", err, errSelf))
	}
	assert.Equal(t, "detected a cycle between flags [a b]", err.Error())
	assert.Equal(t, "detected a cycle between flags [self]", errSelf.Error())
}

// ---------------------------------------------------------------------------
// conformance, immutability, concurrency

// TestConformanceWithoutCohorts checks the engine alone against the expected
// results of the cases that need no cohort enrichment.
func TestConformanceWithoutCohorts(t *testing.T) {
	for _, dir := range conformanceCases(t) {
		if strings.Contains(filepath.Base(dir), "cohorts") {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			snap, users := loadCaseSnapshot(t, dir)
			expected := conformance.Open(dir).Expected(t)
			require.Len(t, expected, len(users))
			var dst []Result
			for i, line := range users {
				var err error
				dst, err = snap.Evaluate(contextFromJSON(t, line), nil, dst[:0])
				require.NoError(t, err)
				got := map[string]any{}
				for _, r := range dst {
					got[r.FlagKey] = map[string]any{"key": r.Key, "value": r.Value, "payload": r.Payload, "metadata": r.Metadata}
				}
				var gotGeneric, want any
				b, err := json.Marshal(got)
				require.NoError(t, err)
				require.NoError(t, json.Unmarshal(b, &gotGeneric))
				require.NoError(t, json.Unmarshal(expected[i], &want))
				require.Equal(t, want, gotGeneric, "user line %d: %s", i+1, line)
			}
		})
	}
}

func TestEvaluateDoesNotMutate(t *testing.T) {
	for _, dir := range conformanceCases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			snap, users := loadCaseSnapshot(t, dir)
			data, err := os.ReadFile(filepath.Join(dir, "flags.json"))
			require.NoError(t, err)
			pristine, err := DecodeFlags(data)
			require.NoError(t, err)
			keys := snap.Keys()
			for i, line := range users {
				ctx := contextFromJSON(t, line)
				// add what a cohort-enriched context holds
				ctx.CohortIDs = []string{"c1", "c2"}
				for typ, names := range ctx.Groups {
					if len(names) > 0 {
						if ctx.GroupCohortIDs == nil {
							ctx.GroupCohortIDs = map[string]map[string][]string{}
						}
						ctx.GroupCohortIDs[typ] = map[string][]string{names[0]: {"g1"}}
					}
				}
				before := cloneContext(ctx)
				mustEval(t, snap, ctx, nil)
				mustEval(t, snap, ctx, keys[i%len(keys):i%len(keys)+1])
				require.Equal(t, before, ctx, "user line %d", i+1)
			}
			for i, f := range pristine {
				require.Equal(t, f, snap.Flag(f.Key), "flag %d", i)
			}
		})
	}
}

// cloneContext deep-copies a context through JSON-shaped values.
func cloneContext(c *Context) *Context {
	out := *c
	out.UserProperties = cloneAny(c.UserProperties).(map[string]any)
	if c.Groups != nil {
		out.Groups = map[string][]string{}
		for k, v := range c.Groups {
			out.Groups[k] = slices.Clone(v)
		}
	}
	if c.GroupProperties != nil {
		out.GroupProperties = map[string]map[string]any{}
		for k, v := range c.GroupProperties {
			out.GroupProperties[k] = cloneAny(v).(map[string]any)
		}
	}
	out.CohortIDs = slices.Clone(c.CohortIDs)
	if c.GroupCohortIDs != nil {
		out.GroupCohortIDs = map[string]map[string][]string{}
		for k, v := range c.GroupCohortIDs {
			m := map[string][]string{}
			for n, ids := range v {
				m[n] = slices.Clone(ids)
			}
			out.GroupCohortIDs[k] = m
		}
	}
	return &out
}

func cloneAny(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if t == nil {
			return map[string]any(nil)
		}
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = cloneAny(x)
		}
		return m
	case []any:
		if t == nil {
			return []any(nil)
		}
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = cloneAny(x)
		}
		return s
	}
	return v
}

func TestConcurrentEvaluate(t *testing.T) {
	snap, users := loadCaseSnapshot(t, filepath.Join(conformanceRoot, "02-mixed"))
	keys := snap.Keys()
	ctxs := make([]*Context, len(users))
	want := make([][]Result, len(users))
	wantSubset := make([][]Result, len(users))
	for i, line := range users {
		ctxs[i] = contextFromJSON(t, line)
		want[i] = mustEval(t, snap, ctxs[i], nil)
		wantSubset[i] = mustEval(t, snap, ctxs[i], keys[i%len(keys):])
	}
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var dst []Result
			for r := 0; r < rounds; r++ {
				for j := range ctxs {
					i := (j + g*17) % len(ctxs)
					var err error
					if dst, err = snap.Evaluate(ctxs[i], nil, dst[:0]); err != nil {
						errs <- err
						return
					}
					if !reflect.DeepEqual(want[i], dst) {
						errs <- fmt.Errorf("goroutine %d user %d: results differ", g, i)
						return
					}
					sub, err := snap.Evaluate(ctxs[i], keys[i%len(keys):], nil)
					if err != nil {
						errs <- err
						return
					}
					if !reflect.DeepEqual(wantSubset[i], sub) {
						errs <- fmt.Errorf("goroutine %d user %d: subset results differ", g, i)
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// ---------------------------------------------------------------------------
// allocations

func TestEvaluateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	snap := loadBenchSnapshot(t, 100)
	ctx := benchContext()
	dst := make([]Result, 0, 100)
	var err error
	for i := 0; i < 3; i++ { // warm the pool and the scratch buffers
		dst, err = snap.Evaluate(ctx, nil, dst[:0])
		require.NoError(t, err)
	}
	n := len(dst)
	require.NotZero(t, n)
	allocs := testing.AllocsPerRun(200, func() {
		dst, _ = snap.Evaluate(ctx, nil, dst[:0])
	})
	t.Logf("warm Evaluate of flags-100.json (%d results): %.1f allocs/op", n, allocs)
	assert.LessOrEqual(t, allocs, 2.0) // 0 since the JSON text of lists is written in the arena
	assert.Len(t, dst, n)
}

// ---------------------------------------------------------------------------
// robustness beyond the reference

// TestGoTypedProperties uses user properties built in Go rather than decoded
// from JSON. The reference engine handles any slice or map by reflection:
// []string is a list, maps and slices coerce to JSON text, and selectors walk
// any map type.
func TestGoTypedProperties(t *testing.T) {
	ctx := func(v any) *Context { return &Context{UserProperties: map[string]any{"p": v}} }
	type c struct {
		name   string
		v      any
		sel    []string
		op     string
		values []string
	}
	cases := []c{
		{"[]string is a list", []string{"a", "b"}, propSel, "set is", vals("a", "b")},
		{"empty []string is a list", []string{}, propSel, "set is", vals()},
		{"map[string]string as JSON", map[string]string{"a": "<"}, propSel, "is", vals(`{"a":"\u003c"}`)},
		{"[]any with map[string]string element", []any{map[string]string{"a": "b"}}, propSel, "set is", vals(`{"a":"b"}`)},
		{"[]int is a list", []int{1, 2}, propSel, "set is", vals("1", "2")},
		{"walk map[string]string", map[string]string{"k": "v"}, append(slices.Clone(propSel), "k"), "is", vals("v")},
	}
	// the int/float32/string kinds already agree
	assert.True(t, matchOne(t, propSel, "is", vals("30"), ctx(30)))
	assert.True(t, matchOne(t, propSel, "greater", vals("29"), ctx(int64(30))))
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			if !matchOne(t, cs.sel, cs.op, cs.values, ctx(cs.v)) {
				regression(t, fmt.Sprintf("%T user property %v: the reference matches %s %q (reflection in coerceStringList/coerceString/selectEach); "+
					"the engine only knows []any and map[string]any (evaluate.go normalize, compile.go coerceValue %%v fallback, selector.go walk)",
					cs.v, cs.v, cs.op, cs.values))
			}
			assert.True(t, matchOne(t, cs.sel, cs.op, cs.values, ctx(cs.v)))
		})
	}
}

// TestNilContext: a nil *Context is an empty user (the reference treats a
// nil context map as having no values).
func TestNilContext(t *testing.T) {
	snap := compileFlags(t, oneCondFlag("f", propSel, "is", vals("(none)")), onFlag("g"))
	var res []Result
	var err error
	panicked := func() (p any) {
		defer func() { p = recover() }()
		res, err = snap.Evaluate(nil, nil, nil)
		return nil
	}()
	if panicked != nil {
	}
	require.NoError(t, err)
	assert.Equal(t, []string{"f", "g"}, resultKeys(res))
}

// TestCompileInvalidFlags: flags built in Go (or decoded without
// DecodeFlags) skip DecodeFlags' validation. Compile "fails only on what
// cannot be evaluated at all": these shapes cannot, so it must return an
// error, not panic.
func TestCompileInvalidFlags(t *testing.T) {
	cases := map[string]*Flag{
		"nil segment":        {Key: "a", Segments: []*Segment{nil}},
		"nil condition":      {Key: "a", Segments: []*Segment{{Conditions: [][]*Condition{{nil}}}}},
		"nil allocation":     {Key: "a", Segments: []*Segment{{Bucket: &Bucket{Allocations: []*Allocation{nil}}}}},
		"short range":        {Key: "a", Segments: []*Segment{{Bucket: &Bucket{Allocations: []*Allocation{{Range: []uint64{1}}}}}}},
		"nil distribution":   {Key: "a", Segments: []*Segment{{Bucket: &Bucket{Allocations: []*Allocation{{Range: []uint64{0, 100}, Distributions: []*Distribution{nil}}}}}}},
		"short distribution": {Key: "a", Segments: []*Segment{{Bucket: &Bucket{Allocations: []*Allocation{{Range: []uint64{0, 100}, Distributions: []*Distribution{{Variant: "x"}}}}}}}},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			var err error
			panicked := func() (p any) {
				defer func() { p = recover() }()
				_, err = Compile([]*Flag{f})
				return nil
			}()
			if panicked != nil {
				regression(t, fmt.Sprintf("Compile panics on %s: %v (compile.go compiler.segment/condition index Range[0..1] and "+
					"dereference segments, conditions, allocations and distributions that only DecodeFlags' validateFlag checks)", name, panicked))
			}
			require.Error(t, err)
		})
	}
	// nil flags are skipped
	snap, err := Compile([]*Flag{nil, onFlag("a"), nil})
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, snap.Keys())
}

func TestIndirectCycle(t *testing.T) {
	snap := compileFlags(t, onFlag("x", "y"), onFlag("y", "z"), onFlag("z", "a"), onFlag("a", "b"), onFlag("b", "c"), onFlag("c", "a"), onFlag("ok", "z2"), onFlag("z2"))
	for _, k := range []string{"x", "y", "z", "a", "b", "c"} {
		_, err := snap.Evaluate(&Context{}, []string{k}, nil)
		var ce *CycleError
		require.ErrorAs(t, err, &ce, k)
		assert.ElementsMatch(t, []string{"a", "b", "c"}, slices.Compact(slices.Sorted(slices.Values(ce.Flags))), k)
	}
	res, err := snap.Evaluate(&Context{}, []string{"ok"}, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"z2", "ok"}, resultKeys(res))
}

// regression fails a test that pins down a bug once found in the engine,
// with the description of that bug.
func regression(t *testing.T, msg string) {
	t.Helper()
	t.Fatal("regression: " + msg)
}
