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

	"github.com/fatih/color"
	"github.com/mattn/go-runewidth"
	"go.yaml.in/yaml/v3"

	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// renderVariants prints one user's results in the chosen form (see
// renderVariantMap).
func renderVariants(ios *IOStreams, format string, results []eval.Result) error {
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
func renderVariantMap(ios *IOStreams, format string, variants map[string]experiment.Variant) error {
	var err error
	switch format {
	case "json":
		err = writeJSON(ios.Out, variants, true)
	case "jsonl":
		err = writeJSON(ios.Out, variants, false)
	case "yaml":
		err = writeYAML(ios.Out, variants)
	default:
		err = variantTable(ios, variants).render(ios.Out)
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
// apart. Flag and variant keys are never cut to fit (keys).
func variantTable(ios *IOStreams, variants map[string]experiment.Variant) *table {
	t := newTable(ios, "FLAG", "VARIANT", "VALUE", "SEGMENT", "PAYLOAD")
	t.keys = 2
	for _, flag := range slices.Sorted(maps.Keys(variants)) {
		v := variants[flag]
		segment, _ := v.Metadata["segmentName"].(string)
		style := styleHighlight
		if v.IsDefault() {
			style = styleDim
		}
		payload := ""
		if v.Payload != nil {
			payload = jsonText(v.Payload)
		}
		variant := v.Key
		if v.IsDefault() && t.tty && !t.color {
			variant += " (default)"
		}
		cells := []string{flag, variant, v.Value, segment, payload}
		if !t.tty {
			cells = append(cells, strconv.FormatBool(v.IsDefault()))
		}
		t.addRow(style, cells...)
	}
	return t
}

type rowStyle int

const (
	styleNone rowStyle = iota
	styleDim
	styleHighlight
	styleBad
)

// table prints aligned, width-fitted columns with a header and colour on a
// terminal, and tab-separated values without header, truncation or colour
// otherwise, like gh. Forced colour (CLICOLOR_FORCE, for `| less -R`)
// keeps the aligned, coloured table in a pipe too.
type table struct {
	tty    bool
	color  bool
	width  int
	keys   int // leading columns that name the row: never cut to fit
	header []string
	rows   [][]string
	styles []rowStyle
}

func newTable(ios *IOStreams, header ...string) *table {
	color := ios.ColorOut() // off a terminal, only when forced
	return &table{tty: ios.OutTTY || color, color: color, width: ios.Width, keys: 1, header: header}
}

func (t *table) addRow(style rowStyle, cells ...string) {
	for i, c := range cells {
		cells[i] = strings.Map(func(r rune) rune {
			if r == '\n' || r == '\t' || r == '\r' {
				return ' '
			}
			return r
		}, c)
	}
	t.rows = append(t.rows, cells)
	t.styles = append(t.styles, style)
}

func (t *table) render(w io.Writer) error {
	var b strings.Builder
	if !t.tty {
		for _, r := range t.rows {
			b.WriteString(strings.Join(r, "\t"))
			b.WriteByte('\n')
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	widths := t.columnWidths()
	t.writeRow(&b, t.header, widths, styleNone, true)
	for i, r := range t.rows {
		t.writeRow(&b, r, widths, t.styles[i], false)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// columnWidths fits the columns to the terminal by shrinking the widest
// value column, first down to 8 characters, then down to 4. Key columns
// are never cut: a cut flag key cannot be read or copied, a cut value
// still says what it is. A table whose keys alone are wider than the
// terminal wraps.
func (t *table) columnWidths() []int {
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = runewidth.StringWidth(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], runewidth.StringWidth(c))
		}
	}
	if t.width <= 0 {
		return widths
	}
	total := func() int {
		n := 2 * (len(widths) - 1)
		for _, w := range widths {
			n += w
		}
		return n
	}
	for _, floor := range []int{8, 4} {
		for total() > t.width {
			shrink := -1
			for i := t.keys; i < len(widths); i++ {
				if widths[i] > floor && (shrink < 0 || widths[i] > widths[shrink]) {
					shrink = i
				}
			}
			if shrink < 0 {
				break
			}
			widths[shrink]--
		}
	}
	return widths
}

func (t *table) writeRow(b *strings.Builder, cells []string, widths []int, style rowStyle, header bool) {
	for i, c := range cells {
		c = runewidth.Truncate(c, widths[i], "…")
		pad := widths[i] - runewidth.StringWidth(c)
		if i == len(cells)-1 {
			pad = 0
		}
		b.WriteString(t.paint(c, style, header, i))
		if i < len(cells)-1 {
			b.WriteString(strings.Repeat(" ", pad+2))
		}
	}
	b.WriteByte('\n')
}

func (t *table) paint(s string, style rowStyle, header bool, col int) string {
	if !t.color || s == "" {
		return s
	}
	var c *color.Color
	switch {
	case header:
		c = color.New(color.Bold)
	case style == styleDim:
		c = color.New(color.Faint)
	case style == styleHighlight && col == 1:
		c = color.New(color.FgGreen)
	case style == styleBad && col == 1:
		c = color.New(color.FgRed)
	default:
		return s
	}
	c.EnableColor()
	return c.Sprint(s)
}

// jsonText is compact JSON for display, without HTML escaping.
func jsonText(v any) string {
	var buf bytes.Buffer
	if err := writeJSON(&buf, v, false); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
