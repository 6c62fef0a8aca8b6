package cli

import (
	"bytes"
	"strings"
	"testing"
)

func render(t *testing.T, tb *Table) string {
	t.Helper()
	var buf bytes.Buffer
	if err := tb.Render(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func plainTable(width int, header ...string) *Table {
	ios := &IOStreams{OutTTY: true, Width: width, Getenv: envOf(map[string]string{"NO_COLOR": "1"})}
	return ios.OutTable(header...)
}

// TestTableWideCharacters: columns line up on a terminal with characters
// two cells wide (CJK, emoji): widths are counted in cells, not runes or
// bytes. Lines end at their last character.
func TestTableWideCharacters(t *testing.T) {
	tb := plainTable(0, "FLAG", "VARIANT", "VALUE")
	tb.AddRow("日本語", "控制", "x")
	tb.AddRow("emoji-😀", "🚀", "yes")
	tb.AddRow("a", "b", "")
	want := "FLAG      VARIANT  VALUE\n" +
		"日本語    控制     x\n" +
		"emoji-😀  🚀       yes\n" +
		"a         b\n"
	if got := render(t, tb); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestTableFits: the widest value column gives way, down to 8 cells, then
// down to 4, cut with an ellipsis; key columns are never cut, even when
// the table stays too wide.
func TestTableFits(t *testing.T) {
	tb := plainTable(30, "KEY", "VALUE")
	tb.AddRow("a-very-long-flag-key", "some value that is long")
	want := "KEY                   VALUE\n" +
		"a-very-long-flag-key  some va…\n"
	if got := render(t, tb); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	// Down to 4 when 8 is not enough; a wide character is not split.
	tb = plainTable(10, "K", "V")
	tb.AddRow("k", "日本語日本語日本語")
	if got, want := render(t, tb), "K  V\nk  日本語…\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	// Two key columns: neither is cut, the table is wider than asked.
	tb = plainTable(20, "FLAG", "VARIANT", "VALUE")
	tb.KeyColumns(2)
	tb.AddRow("attachment-size-limit-mb", "treatment-long", "250 megabytes")
	got := render(t, tb)
	if !strings.Contains(got, "attachment-size-limit-mb  treatment-long  250…\n") {
		t.Errorf("keys cut or value not cut to 4:\n%s", got)
	}
}

// TestTablePipe: in a pipe, tab-separated values without header; tabs and
// line ends inside cells become spaces in both forms.
func TestTablePipe(t *testing.T) {
	ios := &IOStreams{Getenv: envOf(nil)}
	tb := ios.OutTable("A", "B")
	tb.AddRow("x\ty", "line\nbreak")
	tb.AddRow("日本語", "")
	if tb.Aligned() || tb.Colored() {
		t.Errorf("aligned %v, coloured %v in a pipe", tb.Aligned(), tb.Colored())
	}
	if got, want := render(t, tb), "x y\tline break\n日本語\t\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	// Forced colour keeps the aligned, coloured table in a pipe.
	ios.Getenv = envOf(map[string]string{"CLICOLOR_FORCE": "1"})
	tb = ios.OutTable("A", "B")
	tb.AddRow("x\ty", "v")
	if got, want := render(t, tb), "\x1b[1mA\x1b[0m    \x1b[1mB\x1b[0m\nx y  v\n"; got != want {
		t.Errorf("forced colour: got %q, want %q", got, want)
	}
}

// TestTableStyles: a bold header, a dimmed row, one painted cell; empty
// cells and padding carry no escape codes.
func TestTableStyles(t *testing.T) {
	ios := &IOStreams{OutTTY: true, Getenv: envOf(nil)}
	tb := ios.OutTable("FLAG", "VARIANT", "SEGMENT")
	tb.AddRow("new-editor", "on", "staff")
	tb.StyleCell(1, Matched)
	tb.AddRow("offline-mode", "off", "")
	tb.StyleRow(Dimmed)
	tb.AddRow("plain", "x", "y")
	want := "\x1b[1mFLAG\x1b[0m          \x1b[1mVARIANT\x1b[0m  \x1b[1mSEGMENT\x1b[0m\n" +
		"new-editor    \x1b[32mon\x1b[0m       staff\n" +
		"\x1b[2moffline-mode\x1b[0m  \x1b[2moff\x1b[0m\n" +
		"plain         x        y\n"
	if got := render(t, tb); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if !tb.Aligned() || !tb.Colored() {
		t.Error("a terminal table is aligned and coloured")
	}
}

// TestErrTable: stderr's table is aligned whatever stderr is, never cut,
// coloured as stderr is.
func TestErrTable(t *testing.T) {
	ios := &IOStreams{OutTTY: true, Width: 5, Getenv: envOf(nil)}
	tb := ios.ErrTable("FLAG", "USERS")
	tb.AddRow("a-long-flag-key", "12345678901")
	if got, want := render(t, tb), "FLAG             USERS\na-long-flag-key  12345678901\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// An empty table is its header on a terminal, nothing in a pipe.
func TestTableEmpty(t *testing.T) {
	if got := render(t, plainTable(0, "ID", "SIZE")); got != "ID  SIZE\n" {
		t.Errorf("terminal: %q", got)
	}
	if got := render(t, (&IOStreams{Getenv: envOf(nil)}).OutTable("ID")); got != "" {
		t.Errorf("pipe: %q", got)
	}
}
