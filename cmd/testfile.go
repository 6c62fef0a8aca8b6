package cmd

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decoding `experiment test` files from the YAML node tree rather than
// through Go structs: a scalar keeps the text it was written with (value:
// 250 is "250", variant: 1.10 is "1.10"), every error has the line and
// the case (index and name), a misspelt field is answered with the field
// meant, and no message shows a Go type name.

var (
	testFileFields = []string{"flags", "cohorts", "cases"}
	testCaseFields = []string{"name", "user", "flag", "variant", "value", "absent", "expect"}
)

// testFileForm says what a test file looks like, for a file that is not one.
const testFileForm = "a test file is YAML or JSON with cases: a list of {name, user, flag, variant} " +
	"(or value, absent, expect), and optionally flags: FILE and cohorts: DIR"

// decodeTestFile reads a parsed test file. Errors start with the line
// (":7: ..."), after which the caller puts the file name.
func decodeTestFile(doc *yaml.Node) (*testFile, error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, fmt.Errorf(" empty: %s", testFileForm)
	}
	root := unalias(doc.Content[0])
	cases := mappingValue(root, "cases")
	if root.Kind != yaml.MappingNode || cases == nil {
		what := "not a test file"
		if root.Kind == yaml.SequenceNode && len(root.Content) > 0 && mappingValue(unalias(root.Content[0]), "variants") != nil {
			what = "not a test file (flag configs? give those with --flags)"
		}
		return nil, fmt.Errorf("%d: %s: %s", root.Line, what, testFileForm)
	}
	tf := &testFile{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], unalias(root.Content[i+1])
		var err error
		switch k.Value {
		case "flags":
			tf.Flags, err = scalarText(v, "flags")
		case "cohorts":
			tf.Cohorts, err = scalarText(v, "cohorts")
		case "cases":
		default:
			err = fmt.Errorf("unknown field %q%s", k.Value, didYouMean(k.Value, testFileFields))
		}
		if err != nil {
			return nil, fmt.Errorf("%d: %w", k.Line, err)
		}
	}
	if cases.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%d: cases: want a list of cases: %s", cases.Line, testFileForm)
	}
	if len(cases.Content) == 0 {
		return nil, fmt.Errorf("%d: no cases", cases.Line)
	}
	for i, n := range cases.Content {
		c, err := decodeTestCase(unalias(n), i)
		if err != nil {
			return nil, err
		}
		tf.Cases = append(tf.Cases, c)
	}
	return tf, nil
}

func decodeTestCase(n *yaml.Node, i int) (testCase, error) {
	c := testCase{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		return c, fmt.Errorf("%d: %s: want a mapping of %s", n.Line, caseLabel(i, ""), strings.Join(testCaseFields, ", "))
	}
	if v := mappingValue(n, "name"); v != nil {
		c.Name, _ = scalarText(v, "name")
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], unalias(n.Content[j+1])
		var err error
		switch k.Value {
		case "name":
			c.Name, err = scalarText(v, "name")
		case "flag":
			c.Flag, err = scalarText(v, "flag")
		case "variant":
			c.Variant, err = optionalText(v, "variant")
		case "value":
			c.Value, err = optionalText(v, "value")
		case "absent":
			if v.Decode(&c.Absent) != nil {
				err = fmt.Errorf("absent: want true or false, not %q", v.Value)
			}
		case "user":
			c.User, err = nodeJSON(v)
		case "expect":
			c.Expect, err = expectMap(v)
		default:
			err = fmt.Errorf("unknown field %q%s", k.Value, didYouMean(k.Value, testCaseFields))
		}
		if err != nil {
			return c, fmt.Errorf("%d: %s: %w", k.Line, caseLabel(i, c.Name), err)
		}
	}
	return c, nil
}

// caseLabel names a case in errors: its index, and its name when it has one.
func caseLabel(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("cases[%d]", i)
	}
	return fmt.Sprintf("cases[%d] %q", i, name)
}

// unalias follows a YAML alias (*a) to the node it names.
func unalias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return unalias(n.Content[i+1])
		}
	}
	return nil
}

// scalarText is a scalar as it was written: 250, true and on are the text
// "250", "true" and "on"; null is empty.
func scalarText(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s: want a single value, not a %s", field, nodeKind(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

// optionalText is scalarText where null means not given.
func optionalText(n *yaml.Node, field string) (*string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	s, err := scalarText(n, field)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func expectMap(n *yaml.Node) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("expect: want a mapping of flag: variant, not a %s", nodeKind(n))
	}
	m := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := scalarText(unalias(n.Content[i]), "expect")
		if err != nil {
			return nil, err
		}
		v, err := scalarText(unalias(n.Content[i+1]), "expect: "+k)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// nodeJSON is the user as JSON, for the user decoder.
func nodeJSON(n *yaml.Node) (json.RawMessage, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("user: %w", yamlError(err))
	}
	data, err := json.Marshal(v)
	if err != nil {
		// A key that is not a string ({1: 2}) or a number JSON has not
		// (.nan): the Go error would name Go types.
		return nil, fmt.Errorf("user: not a JSON object: keys must be strings and numbers finite")
	}
	return data, nil
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// didYouMean is " (did you mean "x"?)" for the nearest of names, or "".
func didYouMean(got string, names []string) string {
	if near := closestKey(got, names); near != "" && near != got {
		return fmt.Sprintf(" (did you mean %q?)", near)
	}
	return ""
}
