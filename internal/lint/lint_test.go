package lint

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flagkit/experiment/pkg/eval"
)

// A flag that every rule passes: a targeted segment, a 50% rollout split
// evenly, and everyone else.
const cleanFlag = `{"key":"f","metadata":{"deployed":true},"variants":{"on":{"key":"on"},"off":{"key":"off"},"b":{"key":"b"}},"segments":[
 {"metadata":{"segmentName":"Germany"},"conditions":[[{"selector":["context","user","country"],"op":"is","values":["DE"]}]],"variant":"on"},
 {"conditions":[[{"selector":["context","user","platform"],"op":"is","values":["web"]}]],"bucket":{"selector":["context","user","device_id"],"salt":"s","allocations":[{"range":[0,50],"distributions":[{"variant":"on","range":[0,21474837]},{"variant":"b","range":[21474837,42949673]}]}]},"variant":"off"},
 {"variant":"off"}]}`

// withBucket is a flag whose only segment buckets with these allocations.
func withBucket(allocations string) string {
	return `{"key":"f","variants":{"on":{"key":"on"},"off":{"key":"off"}},"segments":[{"bucket":{"selector":["context","user","device_id"],"salt":"s","allocations":` +
		allocations + `},"variant":"off"}]}`
}

// withCondition is a flag whose first segment has one condition.
func withCondition(selector, op, values string) string {
	return `{"key":"f","variants":{"on":{"key":"on"},"off":{"key":"off"}},"segments":[{"conditions":[[{"selector":` + selector +
		`,"op":"` + op + `","values":` + values + `}]],"variant":"on"},{"variant":"off"}]}`
}

type ruleCase struct {
	rule       string
	triggers   string // flags (JSON, without the array brackets) that trigger the rule
	passes     string // flags as close as possible that do not
	segment    int    // the segment the finding names, -1 for none
	hasCohorts []string
}

var ruleCases = []ruleCase{
	{rule: RuleUnreachableSegment, segment: 1,
		triggers: `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"variant":"off"},{"variant":"on"}]}`,
		passes:   `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"conditions":[[{"selector":["context","user","country"],"op":"is","values":["DE"]}]],"variant":"on"},{"variant":"off"}]}`},
	{rule: RuleUnreachableSegment, segment: 1, // an empty AND-group holds for everybody too
		triggers: `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"conditions":[[]],"variant":"off"},{"variant":"on"}]}`,
		// a catch-all whose variant does not exist falls through
		passes: `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"variant":"gone"},{"variant":"on"}]}`},
	{rule: RuleEmptyConditions, segment: 0,
		triggers: `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"conditions":[],"variant":"on"},{"variant":"off"}]}`,
		passes:   `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"variant":"on"}]}`},
	{rule: RuleAllocationRange, segment: 0,
		triggers: withBucket(`[{"range":[0,120],"distributions":[{"variant":"on","range":[0,42949673]}]}]`),
		passes:   withBucket(`[{"range":[0,100],"distributions":[{"variant":"on","range":[0,42949673]}]}]`)},
	{rule: RuleAllocationRange, segment: 0,
		triggers: withBucket(`[{"range":[60,40],"distributions":[{"variant":"on","range":[0,42949673]}]}]`),
		passes:   withBucket(`[{"range":[40,40],"distributions":[{"variant":"on","range":[0,42949673]}]}]`)},
	{rule: RuleAllocationOverlap, segment: 0,
		triggers: withBucket(`[{"range":[0,60],"distributions":[{"variant":"on","range":[0,42949673]}]},{"range":[50,100],"distributions":[{"variant":"off","range":[0,42949673]}]}]`),
		passes:   withBucket(`[{"range":[0,50],"distributions":[{"variant":"on","range":[0,42949673]}]},{"range":[50,100],"distributions":[{"variant":"off","range":[0,42949673]}]}]`)},
	{rule: RuleDistributionRange, segment: 0,
		triggers: withBucket(`[{"range":[0,100],"distributions":[{"variant":"on","range":[0,50000000]}]}]`),
		passes:   withBucket(`[{"range":[0,100],"distributions":[{"variant":"on","range":[0,42949673]}]}]`)},
	{rule: RuleDistributionOverlap, segment: 0,
		triggers: withBucket(`[{"range":[0,100],"distributions":[{"variant":"on","range":[0,30000000]},{"variant":"off","range":[20000000,42949673]}]}]`),
		passes:   withBucket(`[{"range":[0,100],"distributions":[{"variant":"on","range":[0,20000000]},{"variant":"off","range":[20000000,42949673]}]}]`)},
	{rule: RuleDistributionGap, segment: 0, // the classic off-by-one: the last distribution value is left out
		triggers: withBucket(`[{"range":[0,100],"distributions":[{"variant":"on","range":[0,42949672]}]}]`),
		passes:   withBucket(`[{"range":[0,100],"distributions":[{"variant":"on","range":[0,42949673]}]}]`)},
	{rule: RuleRolloutFallsThrough, segment: 0,
		triggers: `{"key":"f","variants":{"on":{}},"segments":[{"bucket":{"selector":["context","user","device_id"],"salt":"s","allocations":[{"range":[0,25],"distributions":[{"variant":"on","range":[0,42949673]}]}]}}]}`,
		passes:   `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"bucket":{"selector":["context","user","device_id"],"salt":"s","allocations":[{"range":[0,25],"distributions":[{"variant":"on","range":[0,42949673]}]}]},"variant":"off"}]}`},
	{rule: RuleUnusedVariant, segment: -1,
		triggers: `{"key":"f","variants":{"on":{},"off":{},"extra":{}},"segments":[{"variant":"on"},{"variant":"off"}]}`,
		passes:   `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"conditions":[[{"selector":["context","user","country"],"op":"is","values":["DE"]}]],"variant":"on"},{"variant":"off"}]}`},
	{rule: RuleUnusedVariant, segment: -1, // a distribution over an empty allocation serves nobody
		triggers: withBucket(`[{"range":[0,0],"distributions":[{"variant":"on","range":[0,42949673]}]}]`),
		passes:   withBucket(`[{"range":[0,1],"distributions":[{"variant":"on","range":[0,42949673]}]}]`)},
	{rule: RuleUnusedVariant, segment: -1, // a segment whose conditions are [] matches nobody, so serves nobody
		triggers: `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"conditions":[],"variant":"on"},{"variant":"off"}]}`,
		passes:   `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"conditions":[[{"selector":["context","user","country"],"op":"is","values":["DE"]}]],"variant":"on"},{"variant":"off"}]}`},
	{rule: RuleUnusedVariant, segment: -1, // nor does its bucket
		triggers: `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"conditions":[],"bucket":{"selector":["context","user","device_id"],"salt":"s","allocations":[{"range":[0,100],"distributions":[{"variant":"on","range":[0,42949673]}]}]}},{"variant":"off"}]}`,
		passes:   `{"key":"f","variants":{"on":{},"off":{}},"segments":[{"bucket":{"selector":["context","user","device_id"],"salt":"s","allocations":[{"range":[0,100],"distributions":[{"variant":"on","range":[0,42949673]}]}]}},{"variant":"off"}]}`},
	{rule: RuleMissingVariant, segment: 0,
		triggers: `{"key":"f","variants":{"on":{}},"segments":[{"variant":"onn"},{"variant":"on"}]}`,
		passes:   `{"key":"f","variants":{"on":{}},"segments":[{"variant":"on"}]}`},
	{rule: RuleInvalidRegex, segment: 0,
		triggers: withCondition(`["context","user","email"]`, "regex match", `["(@acme"]`),
		passes:   withCondition(`["context","user","email"]`, "regex match", `["@acme\\.com$"]`)},
	{rule: RuleNonNumericComparison, segment: 0,
		triggers: withCondition(`["context","user","user_properties","age"]`, "less", `["twenty"]`),
		passes:   withCondition(`["context","user","user_properties","age"]`, "less", `["20"]`)},
	{rule: RuleNonNumericComparison, segment: 0, // "NaN" parses, but compares false with every number
		triggers: withCondition(`["context","user","user_properties","age"]`, "greater", `["NaN"]`),
		passes:   withCondition(`["context","user","user_properties","age"]`, "greater", `["1e3"]`)},
	{rule: RuleInvalidVersion, segment: 0,
		triggers: withCondition(`["context","user","version"]`, "version greater or equal", `["v4.2"]`),
		passes:   withCondition(`["context","user","version"]`, "version greater or equal", `["4.2"]`)},
	{rule: RuleUnknownOperator, segment: 0,
		triggers: withCondition(`["context","user","country"]`, "starts with", `["D"]`),
		passes:   withCondition(`["context","user","country"]`, "is", `["DE"]`)},
	{rule: RuleMissingDependency, segment: -1,
		triggers: `{"key":"f","dependencies":["g"],"variants":{"on":{}},"segments":[{"variant":"on"}]}`,
		passes:   `{"key":"g","variants":{"on":{}},"segments":[{"variant":"on"}]},{"key":"f","dependencies":["g"],"variants":{"on":{}},"segments":[{"variant":"on"}]}`},
	{rule: RuleDependencyCycle, segment: -1,
		triggers: `{"key":"g","dependencies":["f"],"variants":{"on":{}},"segments":[{"variant":"on"}]},{"key":"f","dependencies":["g"],"variants":{"on":{}},"segments":[{"variant":"on"}]}`,
		passes:   `{"key":"g","variants":{"on":{}},"segments":[{"variant":"on"}]},{"key":"f","dependencies":["g"],"variants":{"on":{}},"segments":[{"variant":"on"}]}`},
	{rule: RuleUndeployedDependency, segment: -1,
		triggers: `{"key":"g","metadata":{"deployed":false},"variants":{"on":{}},"segments":[{"variant":"on"}]},{"key":"f","dependencies":["g"],"variants":{"on":{}},"segments":[{"variant":"on"}]}`,
		passes:   `{"key":"g","metadata":{"deployed":true},"variants":{"on":{}},"segments":[{"variant":"on"}]},{"key":"f","dependencies":["g"],"variants":{"on":{}},"segments":[{"variant":"on"}]}`},
	{rule: RuleDuplicateFlag, segment: -1,
		triggers: `{"key":"f","variants":{"on":{}},"segments":[{"variant":"on"}]},{"key":"f","variants":{"on":{}},"segments":[{"variant":"on"}]}`,
		passes:   `{"key":"f","variants":{"on":{}},"segments":[{"variant":"on"}]},{"key":"g","variants":{"on":{}},"segments":[{"variant":"on"}]}`},
	{rule: RuleMissingKey, segment: -1,
		triggers: `{"variants":{"on":{}},"segments":[{"variant":"on"}]}`,
		passes:   `{"key":"f","variants":{"on":{}},"segments":[{"variant":"on"}]}`},
	{rule: RuleMissingCohort, segment: 0, hasCohorts: []string{"present"},
		triggers: withCondition(`["context","user","cohort_ids"]`, "set contains any", `["absent"]`),
		passes:   withCondition(`["context","user","cohort_ids"]`, "set contains any", `["present"]`)},
}

func check(t *testing.T, doc string, cohorts []string) []Finding {
	t.Helper()
	flags, err := eval.DecodeFlags([]byte("[" + doc + "]"))
	if err != nil {
		t.Fatalf("decoding the test flags: %v", err)
	}
	var opts Options
	if cohorts != nil {
		opts.HasCohort = func(id string) bool { return slices.Contains(cohorts, id) }
	}
	findings, err := Check(flags, opts)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return findings
}

func TestRules(t *testing.T) {
	for _, rc := range ruleCases {
		t.Run(rc.rule, func(t *testing.T) {
			got := check(t, rc.triggers, rc.hasCohorts)
			i := slices.IndexFunc(got, func(f Finding) bool { return f.Rule == rc.rule })
			if i < 0 {
				t.Fatalf("no %s finding in %v", rc.rule, got)
			}
			fd := got[i]
			named := fd.Flag != "" && strings.Contains(fd.Message, fd.Flag)
			if rc.rule == RuleMissingKey { // no key to name: the flag's position instead
				named = strings.Contains(fd.Message, "flag 0 ")
			}
			if fd.Severity != ruleSeverity(rc.rule) || !named || !strings.HasPrefix(fd.Path, "flags[") {
				t.Errorf("finding %+v: want the rule's severity, the flag named in the message, a JSON path", fd)
			}
			if seg := -1; fd.Segment != nil {
				seg = *fd.Segment
				if seg != rc.segment {
					t.Errorf("segment %d, want %d", seg, rc.segment)
				}
			} else if rc.segment >= 0 {
				t.Errorf("no segment, want %d", rc.segment)
			}
			if bad := slices.ContainsFunc(check(t, rc.passes, rc.hasCohorts), func(f Finding) bool { return f.Rule == rc.rule }); bad {
				t.Errorf("%s on flags that should pass: %s", rc.rule, rc.passes)
			}
		})
	}
}

// Every rule has a case that triggers it and one that does not.
func TestEveryRuleTested(t *testing.T) {
	for _, r := range Rules() {
		if !slices.ContainsFunc(ruleCases, func(rc ruleCase) bool { return rc.rule == r.ID }) {
			t.Errorf("rule %s has no test case", r.ID)
		}
	}
}

func TestCleanFlag(t *testing.T) {
	if got := check(t, cleanFlag, []string{}); len(got) > 0 {
		t.Fatalf("findings on a clean flag: %+v", got)
	}
}

func TestFindingsInDocumentOrder(t *testing.T) {
	var flags []string
	for i := range 12 {
		flags = append(flags, strings.Replace(withCondition(`["context","user","version"]`, "version less", `["x"]`), `"key":"f"`, `"key":"f`+string(rune('a'+i))+`"`, 1))
	}
	got := check(t, strings.Join(flags, ","), nil)
	if len(got) != 12 {
		t.Fatalf("%d findings, want 12: %+v", len(got), got)
	}
	for i, fd := range got {
		if want := "f" + string(rune('a'+i)); fd.Flag != want {
			t.Fatalf("finding %d is about %s, want %s (paths sorted as text?)", i, fd.Flag, want)
		}
	}
}

func TestSeverities(t *testing.T) {
	for _, name := range []string{"note", "warning", "error"} {
		s, err := ParseSeverity(name)
		if err != nil || s.String() != name {
			t.Errorf("ParseSeverity(%q) = %v, %v", name, s, err)
		}
	}
	if _, err := ParseSeverity("fatal"); err == nil {
		t.Error("ParseSeverity accepted fatal")
	}
	fs := []Finding{{Severity: Warning}}
	if !Failing(fs, Warning) || Failing(fs, Error) || !Failing(fs, Note) {
		t.Error("Failing does not compare at or above the threshold")
	}
	if c := Counts(fs); c["warning"] != 1 || c["error"] != 0 || len(c) != 3 {
		t.Errorf("Counts = %v", c)
	}
}

func TestParseSegmentPath(t *testing.T) {
	for path, want := range map[string][2]int{
		"flags[3].segments[12].variant": {3, 12}, "flags[0].segments[0]": {0, 0},
	} {
		f, s, ok := parseSegmentPath(path)
		if !ok || f != want[0] || s != want[1] {
			t.Errorf("parseSegmentPath(%q) = %d, %d, %v", path, f, s, ok)
		}
	}
	for _, path := range []string{"flags", "flags[1].dependencies", "flags[x].segments[0]", "flags[1].segments[]", "flags[１].segments[0]"} {
		if _, _, ok := parseSegmentPath(path); ok {
			t.Errorf("parseSegmentPath(%q) ok", path)
		}
	}
}

func FuzzParseSegmentPath(f *testing.F) {
	f.Add("flags[3].segments[1].bucket.allocations[0].range")
	f.Add("flags[0]")
	f.Add("flags[99999999999].segments[1]")
	f.Fuzz(func(t *testing.T, path string) {
		flag, seg, ok := parseSegmentPath(path)
		if ok && !strings.HasPrefix(path, "flags["+strconv.Itoa(flag)+"].segments["+strconv.Itoa(seg)+"]") && flag >= 0 {
			// leading zeros are the only other way to spell an index
			if !strings.Contains(path, "[0") {
				t.Fatalf("parseSegmentPath(%q) = %d, %d", path, flag, seg)
			}
		}
	})
}
