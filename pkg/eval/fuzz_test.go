package eval

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/flagkit/experiment/internal/conformance"
)

// conformanceFlagDocs returns the flags.json of every conformance case.
func conformanceFlagDocs(tb testing.TB) [][]byte {
	tb.Helper()
	var docs [][]byte
	for _, c := range conformance.Cases(tb) {
		data, err := os.ReadFile(c.FlagsPath())
		if err != nil {
			tb.Fatal(err)
		}
		docs = append(docs, data)
	}
	return docs
}

// fuzzContexts are fixed users that exercise every kind of selector.
func fuzzContexts() []*Context {
	return []*Context{
		{},
		benchContext(),
		{
			UserID: "user-1", DeviceID: "d", Country: "", Version: "1.2.3-alpha.10", OS: "iOS",
			UserProperties: map[string]any{
				"plan": "pro", "age": 1000000.0, "tags": []any{"a", nil, 1.0, []any{"x"}}, "empty": []any{},
				"json": `["a","b"]`, "obj": map[string]any{"b": "<", "a": map[string]any{"c": true}}, "null": nil, "none": "(none)",
			},
			Groups:          map[string][]string{"org id": {"42", "7"}, "team": {}, "nil": nil},
			GroupProperties: map[string]map[string]any{"org id": {"42": map[string]any{"plan": "enterprise", "seats": 50.0}}},
			CohortIDs:       []string{"c1", "c2"},
			GroupCohortIDs:  map[string]map[string][]string{"org id": {"42": {"g1"}}, "team": {"x": nil}},
		},
	}
}

func FuzzDecodeFlags(f *testing.F) {
	for _, doc := range conformanceFlagDocs(f) {
		f.Add(doc)
	}
	for _, s := range []string{
		``, `[]`, `[{}]`, `[null]`, `{}`, `[1]`, `[] x`, `[{"key":"a","dependencies":["a"]}]`,
		`[{"key":"a","dependencies":["b"]},{"key":"b","dependencies":["a"]},{"key":"c"}]`,
		`[{"key":"a","segments":[{"bucket":{"allocations":[{"range":[1]}]}}]}]`,
		`[{"key":"a","segments":[{"conditions":[null,[]]},{"conditions":[]}],"variants":{"x":null}}]`,
		`[{"key":"a","variants":{"on":{"key":"on","value":[1,{"a":"<"}]}},"segments":[{"bucket":{"selector":["context","user","user_properties","tags"],"salt":"s",` +
			`"allocations":[{"range":[0,100],"distributions":[{"variant":"on","range":[0,42949673]}]}]},"variant":"off"}]}]`,
		`[{"key":"r","variants":{"on":{"key":"on"}},"segments":[{"conditions":[[{"selector":["result"],"op":"contains","values":["a"]},` +
			`{"selector":["result","r"],"op":"regex match","values":["("]},{"selector":["context"],"op":"is not","values":[]}]],"variant":"on"}]}]`,
	} {
		f.Add([]byte(s))
	}
	contexts := fuzzContexts()
	f.Fuzz(func(t *testing.T, data []byte) {
		flags, err := DecodeFlags(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, not *ParseError: %v", err, err)
			}
			if flags != nil {
				t.Fatal("flags returned with an error")
			}
			if pe.Error() == "" || pe.Line < 0 || pe.Col < 0 {
				t.Fatalf("bad ParseError %#v", pe)
			}
			return
		}
		snap, err := Compile(flags)
		if err != nil {
			t.Fatalf("decoded config does not compile: %v", err)
		}
		for _, p := range snap.Problems() {
			_ = p.String()
		}
		keys := snap.Keys()
		for _, ctx := range contexts {
			checkEvaluate(t, snap, ctx, nil)
			for i := 0; i < len(keys) && i < 3; i++ {
				checkEvaluate(t, snap, ctx, keys[i:i+1])
			}
		}
	})
}

// checkEvaluate evaluates twice: it may only fail with a *CycleError, must
// give identical results both times and must leave ctx alone.
func checkEvaluate(t *testing.T, snap *Snapshot, ctx *Context, keys []string) []Result {
	t.Helper()
	before := cloneContext(ctx)
	res, err := snap.Evaluate(ctx, keys, nil)
	if err != nil {
		var ce *CycleError
		if !errors.As(err, &ce) {
			t.Fatalf("Evaluate failed with %T: %v", err, err)
		}
		if len(ce.Flags) == 0 {
			t.Fatal("empty cycle")
		}
	}
	again, err2 := snap.Evaluate(ctx, keys, make([]Result, 0, 1))
	if (err == nil) != (err2 == nil) || !reflect.DeepEqual(res, again) && (len(res) != 0 || len(again) != 0) {
		t.Fatalf("two evaluations differ:\n%v %v\n%v %v", res, err, again, err2)
	}
	if !reflect.DeepEqual(before, ctx) {
		t.Fatalf("Evaluate modified the context:\nbefore %#v\nafter  %#v", before, ctx)
	}
	seen := map[string]bool{}
	for _, r := range res {
		if seen[r.FlagKey] {
			t.Fatalf("flag %q returned twice", r.FlagKey)
		}
		seen[r.FlagKey] = true
		if r.Outcome < 0 || r.Outcome >= snap.Outcomes() {
			t.Fatalf("outcome %d out of range", r.Outcome)
		}
		if fk, seg, vk := snap.Outcome(r.Outcome); fk != r.FlagKey || seg != r.Segment || vk != r.Key {
			t.Fatalf("outcome %d is %s/%d/%s, result is %s/%d/%s", r.Outcome, fk, seg, vk, r.FlagKey, r.Segment, r.Key)
		}
	}
	checkExplain(t, snap, ctx, keys, res, err)
	return res
}

// checkExplain: Explain picks what Evaluate picks, and fails alike.
func checkExplain(t *testing.T, snap *Snapshot, ctx *Context, keys []string, res []Result, err error) {
	t.Helper()
	trace, terr := snap.Explain(ctx, keys)
	if (terr == nil) != (err == nil) {
		t.Fatalf("Explain fails with %v, Evaluate with %v", terr, err)
	}
	if terr != nil {
		return
	}
	var picked []Result
	for _, ft := range trace.Flags {
		if ft.Result != nil {
			picked = append(picked, *ft.Result)
		}
	}
	if !reflect.DeepEqual(picked, res) && (len(picked) != 0 || len(res) != 0) {
		t.Fatalf("Explain picks\n%v\nEvaluate picks\n%v", picked, res)
	}
}

type fuzzCase struct {
	flags []*Flag
	keys  []string
}

var (
	fuzzCasesOnce sync.Once
	fuzzCasesList []fuzzCase
)

func loadFuzzCases(tb testing.TB) []fuzzCase {
	fuzzCasesOnce.Do(func() {
		for _, doc := range conformanceFlagDocs(tb) {
			flags, err := DecodeFlags(doc)
			if err != nil {
				tb.Fatal(err)
			}
			c := fuzzCase{flags: flags}
			for _, fl := range flags {
				c.keys = append(c.keys, fl.Key)
			}
			fuzzCasesList = append(fuzzCasesList, c)
		}
	})
	return fuzzCasesList
}

// fuzzUser turns fuzzed JSON into a user: an object becomes the user
// properties, any other JSON value the property "p", anything else the
// string "p"; the raw bytes are also the device id (the bucketing value).
func fuzzUser(props []byte) *Context {
	ctx := fuzzContexts()[2]
	ctx.DeviceID = string(props)
	var v any
	if err := json.Unmarshal(props, &v); err != nil {
		v = string(props)
	}
	if m, ok := v.(map[string]any); ok {
		ctx.UserProperties = m
	} else {
		ctx.UserProperties = map[string]any{"p": v}
	}
	return ctx
}

func splitFuzz(s, sep string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, sep)
}

func FuzzEvaluate(f *testing.F) {
	cases := loadFuzzCases(f)
	// seeds: real conditions of every case, with a real user of the case
	for ci, dir := range conformanceCases(f) {
		users := conformance.Open(dir).Users(f)
		n := 0
		for _, fl := range cases[ci].flags {
			for _, seg := range fl.Segments {
				for _, group := range seg.Conditions {
					for _, c := range group {
						if n >= 12 {
							break
						}
						var u testUser
						if err := json.Unmarshal(users[(n*7)%len(users)], &u); err != nil {
							f.Fatal(err)
						}
						props, _ := json.Marshal(u.UserProperties)
						f.Add(uint8(ci), props, strings.Join(c.Selector, "/"), c.Op, strings.Join(c.Values, "|"))
						n++
					}
				}
			}
		}
	}
	for _, s := range []struct{ props, sel, op, values string }{
		{`{"p":["a","b"]}`, "context/user/user_properties/p", "set contains", "a|a"},
		{`"[]"`, "context/user/user_properties/p", "set is", ""},
		{`[null]`, "context/user/user_properties/p", "is", "[null]"},
		{`1000000`, "context/user/user_properties/p", "greater", "1_000|x"},
		{`"1.2.3-alpha.10"`, "context/user/user_properties/p", "version less", "1.2.3-alpha.9"},
		{`"ÉCOLE"`, "context/user/user_properties/p", "contains", "école"},
		{`{"b":"<"}`, "context/user/user_properties/b", "regex match", "(|<"},
		{`null`, "context/user/groups/missing", "is not", "x"},
		{`true`, "result/nope/metadata", "is", "null"},
		{`"x"`, "context/groups/org id/group_properties/plan", "IS", "(none)"},
	} {
		f.Add(uint8(0), []byte(s.props), s.sel, s.op, s.values)
	}
	f.Fuzz(func(t *testing.T, caseIdx uint8, props []byte, sel, op, values string) {
		c := cases[int(caseIdx)%len(cases)]
		selector := splitFuzz(sel, "/")
		extra := &Flag{
			Key:          "fuzz-extra",
			Dependencies: []string{c.keys[0], "fuzz-missing"},
			Metadata:     map[string]any{"flagType": "fuzz"},
			Variants: map[string]*Variant{
				"on": {Key: "on", Value: "on"}, "a": {Key: "a", Value: 1.0}, "b": {Key: "b", Payload: []any{"x"}}, "off": {Key: "off"},
			},
			Segments: []*Segment{
				{Conditions: [][]*Condition{{{Selector: selector, Op: op, Values: splitFuzz(values, "|")}}}, Variant: "on"},
				{
					Conditions: [][]*Condition{{{Selector: []string{"result", c.keys[0], "key"}, Op: op, Values: splitFuzz(values, "|")}}, {}},
					Bucket: &Bucket{Selector: selector, Salt: values, Allocations: []*Allocation{
						{Range: []uint64{0, 50}, Distributions: []*Distribution{{Variant: "a", Range: []uint64{0, 21474836}}}},
						{Range: []uint64{0, 100}, Distributions: []*Distribution{{Variant: "b", Range: []uint64{0, 42949673}}}},
					}},
					Variant: "off",
				},
			},
		}
		flags := append(append([]*Flag{}, c.flags...), extra)
		snap, err := Compile(flags)
		if err != nil {
			t.Fatal(err)
		}
		ctx := fuzzUser(props)
		all := checkEvaluate(t, snap, ctx, nil)
		if len(all) == 0 || all[len(all)-1].FlagKey != "fuzz-extra" {
			t.Fatalf("fuzz-extra must come last and always produce a variant: %v", resultKeys(all))
		}
		sub := checkEvaluate(t, snap, ctx, []string{"fuzz-extra", "nope"})
		if len(sub) == 0 || sub[len(sub)-1].FlagKey != "fuzz-extra" {
			t.Fatalf("subset evaluation: %v", resultKeys(sub))
		}
		// the single-condition flag alone, on every fixed context
		one := compileFlagsNoT(oneCondFlag("f", selector, op, splitFuzz(values, "|")))
		for _, fc := range fuzzContexts() {
			checkEvaluate(t, one, fc, nil)
		}
		checkEvaluate(t, one, ctx, nil)
	})
}

func compileFlagsNoT(flags ...*Flag) *Snapshot {
	snap, err := Compile(flags)
	if err != nil {
		panic(err)
	}
	return snap
}

// versionPattern is the reference engine's version regexp.
var versionPattern = regexp.MustCompile(`^(\d+)\.(\d+)(\.(\d+)(-(([-\w]+\.?)*))?)?$`)

func FuzzVersion(f *testing.F) {
	for _, s := range []string{
		"1.2", "1.2.3", "1.2.3-alpha.10", "1.2.3-", "1.2.3--", "1.2.3-a..b", "1.2.3-a.b.", "v1.2.3", "1.2.3.4", "1", "01.02.03",
		"99999999999999999999.1", "1.99999999999999999999", "1.2.99999999999999999999", "1.2.3-ä", "١.٢", "1.2.3\n", "", ".", "1.", "1.2.",
		"1.2.3-_", "1.2-a", "9223372036854775807.9223372036854775808.0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseVersion(s)
		m := versionPattern.FindStringSubmatch(s)
		want := m != nil
		var major, minor, patch int
		if want {
			// the reference rejects a major or minor that overflows int, and
			// keeps Atoi's clamped value for an overflowing patch
			var err1, err2 error
			major, err1 = strconv.Atoi(m[1])
			minor, err2 = strconv.Atoi(m[2])
			patch, _ = strconv.Atoi(m[4])
			want = err1 == nil && err2 == nil
		}
		if ok != want {
			t.Fatalf("parseVersion(%q) ok=%v, the reference pattern says %v", s, ok, want)
		}
		if !ok {
			return
		}
		if got := (version{major, minor, patch, m[5]}); got != v {
			t.Fatalf("parseVersion(%q) = %+v, want %+v", s, v, got)
		}
		if compareVersions(v, v) != 0 {
			t.Fatalf("%q does not equal itself", s)
		}
		// a release sorts after its own pre-releases
		rel := version{v.major, v.minor, v.patch, ""}
		if v.preRelease != "" && compareVersions(v, rel) >= 0 {
			t.Fatalf("%q does not sort before its release", s)
		}
	})
}
