package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// renderVariants prints one user's results in the chosen form (see
// renderVariantMap).
func renderVariants(ios *cli.IOStreams, format string, results []eval.Result) error {
	variants := make(map[string]experiment.Variant, len(results))
	for _, r := range results {
		variants[r.FlagKey] = experiment.VariantOf(r)
	}
	return renderVariantMap(ios, format, variants)
}

// renderVariantMap prints one user's variants: the JSON contract (flag key
// to {key, value, payload, metadata}; identical bytes on a terminal and in
// a pipe), YAML, or the table with columns FLAG, VARIANT, VALUE, SEGMENT,
// PAYLOAD, flags sorted by key and default variants dimmed. evaluate and
// fetch share it.
func renderVariantMap(ios *cli.IOStreams, format string, variants map[string]experiment.Variant) error {
	var err error
	switch format {
	case "json":
		err = writeJSON(ios.Out, variants, true)
	case "jsonl":
		err = writeJSON(ios.Out, variants, false)
	case "yaml":
		err = writeYAML(ios.Out, variants)
	default:
		err = variantTable(ios, variants).Render(ios.Out)
	}
	if err != nil {
		return ioError(fmt.Errorf("writing output: %w", err))
	}
	return nil
}

// writeData prints v in a form for scripts: indented JSON, JSON Lines (a
// list one element a line, anything else on one line), or YAML with the
// JSON field names. Every command's machine output goes through here, so
// each has the same forms and the same bytes on a terminal and in a pipe.
func writeData(w io.Writer, format string, v any) error {
	switch format {
	case "jsonl":
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice {
			return writeJSON(w, v, false)
		}
		for i := range rv.Len() {
			if err := writeJSON(w, rv.Index(i).Interface(), false); err != nil {
				return err
			}
		}
		return nil
	case "yaml":
		return writeYAML(w, v)
	}
	return writeJSON(w, v, true)
}

// writeJSON encodes v with sorted keys, no HTML escaping and a trailing
// newline; indented unless compact.
func writeJSON(w io.Writer, v any, indent bool) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

// writeYAML goes through JSON so that field names are the JSON contract's.
func writeYAML(w io.Writer, v any) error {
	var buf bytes.Buffer
	if err := writeJSON(&buf, v, false); err != nil {
		return err
	}
	var generic any
	if err := json.Unmarshal(buf.Bytes(), &generic); err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return err
	}
	return enc.Close()
}

// variantTable is one user's variants. Default variants are dimmed; where
// there is no colour to dim them they are marked instead: "(default)"
// after the variant in the aligned table, and a last column true/false in
// tab-separated values, so that scripts and NO_COLOR users can tell them
// apart. Flag and variant keys are never cut to fit.
func variantTable(ios *cli.IOStreams, variants map[string]experiment.Variant) *cli.Table {
	t := ios.OutTable("FLAG", "VARIANT", "VALUE", "SEGMENT", "PAYLOAD")
	t.KeyColumns(2)
	for _, flag := range slices.Sorted(maps.Keys(variants)) {
		v := variants[flag]
		segment, _ := v.Metadata["segmentName"].(string)
		payload := ""
		if v.Payload != nil {
			payload = jsonText(v.Payload)
		}
		variant := v.Key
		if v.IsDefault() && t.Aligned() && !t.Colored() {
			variant += " (default)"
		}
		cells := []string{flag, variant, v.Value, segment, payload}
		if !t.Aligned() {
			cells = append(cells, strconv.FormatBool(v.IsDefault()))
		}
		t.AddRow(cells...)
		if v.IsDefault() {
			t.StyleRow(cli.Dimmed)
		} else {
			t.StyleCell(1, cli.Matched)
		}
	}
	return t
}

// textReport is a report for people (explain, flags show): indented
// lines, painted with stdout's scheme, the same text in a pipe without
// colour.
type textReport struct {
	scheme *cli.Scheme
	b      strings.Builder
}

func newTextReport(ios *cli.IOStreams) *textReport { return &textReport{scheme: ios.OutScheme()} }

// line adds a line indented by indent levels of two spaces.
func (r *textReport) line(indent int, format string, args ...any) {
	r.b.WriteString(strings.Repeat("  ", indent))
	fmt.Fprintf(&r.b, format, args...)
	r.b.WriteByte('\n')
}

// blank adds an empty line, between parts of a report.
func (r *textReport) blank() { r.b.WriteByte('\n') }

// writeTo writes the report to w, at once.
func (r *textReport) writeTo(w io.Writer) error {
	_, err := io.WriteString(w, r.b.String())
	return err
}

// jsonText is compact JSON for display, without HTML escaping.
func jsonText(v any) string {
	var buf bytes.Buffer
	if err := writeJSON(&buf, v, false); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
