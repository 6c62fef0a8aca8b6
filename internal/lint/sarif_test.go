package lint

import (
	"encoding/json"
	"testing"
)

// TestSARIFShape checks the fields SARIF 2.1.0 requires, and those code
// scanning needs to show a result on a line, on the JSON as written.
func TestSARIFShape(t *testing.T) {
	doc := "[\n" + withCondition(`["context","user","version"]`, "version less", `["x"]`) + "\n]"
	findings := check(t, doc[2:len(doc)-2], nil)
	if len(findings) == 0 {
		t.Fatal("no findings to report")
	}
	out, err := json.Marshal(SARIF(findings, SARIFSource{URI: "flags/prod.json", Locator: Locate([]byte(doc))}, "1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(out, &log); err != nil {
		t.Fatal(err)
	}
	want := func(v any, path string) any {
		t.Helper()
		if v == nil {
			t.Fatalf("SARIF lacks %s: %s", path, out)
		}
		return v
	}
	obj := func(v any, key string) any { m, _ := v.(map[string]any); return m[key] }
	first := func(v any) any {
		if a, _ := v.([]any); len(a) > 0 {
			return a[0]
		}
		return nil
	}
	if log["version"] != "2.1.0" || want(log["$schema"], "$schema") == "" {
		t.Errorf("version %v, $schema %v", log["version"], log["$schema"])
	}
	run := want(first(log["runs"]), "runs[0]")
	driver := want(obj(obj(run, "tool"), "driver"), "runs[0].tool.driver")
	want(obj(driver, "name"), "driver.name")
	want(obj(driver, "informationUri"), "driver.informationUri")
	rules, _ := obj(driver, "rules").([]any)
	if len(rules) != len(Rules()) {
		t.Fatalf("%d rules in the driver, want %d", len(rules), len(Rules()))
	}
	for _, r := range rules {
		want(obj(r, "id"), "rule.id")
		want(obj(obj(r, "shortDescription"), "text"), "rule.shortDescription.text")
		if l := obj(obj(r, "defaultConfiguration"), "level"); l != "error" && l != "warning" && l != "note" {
			t.Errorf("rule %v level %v", obj(r, "id"), l)
		}
	}
	res := want(first(obj(run, "results")), "results[0]")
	if obj(res, "ruleId") != RuleInvalidVersion || obj(res, "level") != "error" || obj(obj(res, "message"), "text") == "" {
		t.Errorf("result %v", res)
	}
	if idx := obj(res, "ruleIndex").(float64); obj(rules[int(idx)], "id") != RuleInvalidVersion {
		t.Errorf("ruleIndex %v does not point at the rule", idx)
	}
	loc := want(first(obj(res, "locations")), "locations[0]")
	phys := want(obj(loc, "physicalLocation"), "physicalLocation")
	if obj(obj(phys, "artifactLocation"), "uri") != "flags/prod.json" {
		t.Errorf("artifact %v", obj(phys, "artifactLocation"))
	}
	region := want(obj(phys, "region"), "region")
	// the bad value: line 2, after the condition's opening
	if obj(region, "startLine") != 2.0 || obj(region, "startColumn").(float64) < 100 {
		t.Errorf("region %v", region)
	}
	logical := want(first(obj(loc, "logicalLocations")), "logicalLocations[0]")
	if obj(logical, "fullyQualifiedName") != "f.segments[0].conditions[0][0].values[0]" || obj(logical, "name") != "f segment 0" {
		t.Errorf("logical location %v", logical)
	}
}

func TestSARIFWithoutFile(t *testing.T) {
	findings := []Finding{{Rule: RuleDuplicateFlag, Severity: Error, Flag: "f", Path: "flags[1]", Message: "m"}}
	log := SARIF(findings, SARIFSource{}, "")
	loc := log.Runs[0].Results[0].Locations[0]
	if loc.PhysicalLocation != nil || loc.LogicalLocations[0].FullyQualifiedName != "f" {
		t.Errorf("location %+v", loc)
	}
	if SARIF(nil, SARIFSource{}, "").Runs[0].Results == nil {
		t.Error("results must be an array, also when empty")
	}
}
