package cli

import (
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
)

// Table prints rows for people or for scripts, like gh: on a terminal,
// aligned columns under a header, fitted to the terminal's width, in
// colour; in a pipe, tab-separated values without header, cuts or colour.
// Forced colour (CLICOLOR_FORCE, for `| less -R`) keeps the aligned,
// coloured table in a pipe too.
//
// The aligned form is drawn by lipgloss/table with the widths fitTo
// chooses: it cuts cells to them with an ellipsis, pads and paints them
// with the scheme's styles.
type Table struct {
	aligned bool
	scheme  *Scheme
	width   int // columns to fit into; 0: no limit
	keys    int // leading columns that name the row: never cut to fit
	header  []string
	rows    [][]string
	styles  [][]Style // per row, per cell; nil: all Default
}

// OutTable returns a table for stdout: aligned on a terminal or with
// forced colour, fitted to the terminal's width; tab-separated otherwise.
func (s *IOStreams) OutTable(header ...string) *Table {
	color := s.ColorOut() // off a terminal, only when forced
	return &Table{aligned: s.OutTTY || color, scheme: s.OutScheme(), width: s.Width, keys: 1, header: header}
}

// ErrTable returns a table for stderr, a note next to the data on stdout:
// always aligned, as a note is read by people, and never cut.
func (s *IOStreams) ErrTable(header ...string) *Table {
	return &Table{aligned: true, scheme: s.ErrScheme(), keys: 1, header: header}
}

// KeyColumns says how many leading columns name a row (1 by default):
// they are never cut to fit, since a cut flag key can be neither read nor
// copied, while a cut value still says what it is.
func (t *Table) KeyColumns(n int) { t.keys = n }

// Aligned reports whether the table prints aligned columns rather than
// tab-separated values.
func (t *Table) Aligned() bool { return t.aligned }

// Colored reports whether the table is painted.
func (t *Table) Colored() bool { return t.scheme.Enabled() }

// AddRow adds a row of Default cells. Line ends and tabs in a cell become
// spaces: a row is one line in either form.
func (t *Table) AddRow(cells ...string) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = strings.Map(func(r rune) rune {
			if r == '\n' || r == '\t' || r == '\r' {
				return ' '
			}
			return r
		}, c)
	}
	t.rows = append(t.rows, row)
	t.styles = append(t.styles, nil)
}

// StyleRow paints every cell of the last row added in style.
func (t *Table) StyleRow(style Style) {
	last := len(t.rows) - 1
	t.styles[last] = make([]Style, len(t.rows[last]))
	for i := range t.styles[last] {
		t.styles[last][i] = style
	}
}

// StyleCell paints cell col of the last row added in style.
func (t *Table) StyleCell(col int, style Style) {
	last := len(t.rows) - 1
	if t.styles[last] == nil {
		t.styles[last] = make([]Style, len(t.rows[last]))
	}
	t.styles[last][col] = style
}

// Render writes the table to w.
func (t *Table) Render(w io.Writer) error {
	var b strings.Builder
	if !t.aligned {
		for _, r := range t.rows {
			b.WriteString(strings.Join(r, "\t"))
			b.WriteByte('\n')
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	for _, line := range strings.Split(t.draw(), "\n") {
		// Cells are padded to their column's width, the last one too: a
		// line ends at its last character instead, so that a copied line
		// carries no blanks and one as wide as the terminal does not wrap.
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// columnSeparator is what lies between two columns: two spaces, no line.
var columnSeparator = lipgloss.Border{Left: "  "}

// draw is the aligned table, its lines padded to the table's width.
func (t *Table) draw() string {
	widths := fitTo(t.contentWidths(), t.width, t.keys, len(columnSeparator.Left))
	plain := t.scheme.style(Default)
	return table.New().
		Border(columnSeparator).BorderStyle(plain).
		BorderTop(false).BorderBottom(false).BorderLeft(false).BorderRight(false).
		BorderHeader(false).BorderColumn(true).
		Wrap(false). // cut what is too wide, with an ellipsis
		Headers(t.header...).
		Rows(t.rows...).
		StyleFunc(func(row, col int) lipgloss.Style {
			style := Default
			switch {
			case row == table.HeaderRow:
				style = Strong
			case t.styles[row] != nil && t.rows[row][col] != "":
				style = t.styles[row][col]
			}
			// A fixed width per column: lipgloss/table keeps it as it is.
			return t.scheme.style(style).Width(widths[col])
		}).
		Render()
}

// contentWidths are the widths of the widest cell of each column, header
// included, in terminal cells: wide characters (CJK, most emoji) take two.
func (t *Table) contentWidths() []int {
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = lipgloss.Width(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], lipgloss.Width(c))
		}
	}
	return widths
}

// fitTo shrinks column widths until the table fits in limit columns (none
// when limit is 0), separators of sep columns included: the widest value
// column gives one cell at a time, first down to 8 cells, then down to 4.
// Key columns are never cut; a table whose keys alone are wider than the
// terminal wraps.
func fitTo(widths []int, limit, keys, sep int) []int {
	if limit <= 0 {
		return widths
	}
	total := sep * (len(widths) - 1)
	for _, w := range widths {
		total += w
	}
	for _, floor := range []int{8, 4} {
		for total > limit {
			shrink := -1
			for i := keys; i < len(widths); i++ {
				if widths[i] > floor && (shrink < 0 || widths[i] > widths[shrink]) {
					shrink = i
				}
			}
			if shrink < 0 {
				break
			}
			widths[shrink]--
			total--
		}
	}
	return widths
}
