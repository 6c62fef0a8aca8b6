package cli

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestJSONList(t *testing.T) {
	for _, c := range []struct {
		name   string
		array  bool
		writes []string
		want   string
	}{
		{"lines", false, []string{"{\"a\":1}\n", "{\"b\":2}\n{\"c\":3}\n"}, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"},
		{"no lines", false, nil, ""},
		{"array", true, []string{"{\"a\":1}\n", "{\"b\":2}\n{\"c\":3}\n"}, "[\n{\"a\":1},\n{\"b\":2},\n{\"c\":3}\n]\n"},
		{"one", true, []string{"1\n"}, "[\n1\n]\n"},
		{"empty array", true, nil, "[]\n"},
		{"no newline at the end", true, []string{"1"}, "[\n1\n]\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := NewJSONList(&buf, c.array)
			for _, w := range c.writes {
				if err := l.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != c.want {
				t.Errorf("got %q, want %q", buf.String(), c.want)
			}
			if c.array && !json.Valid(buf.Bytes()) {
				t.Errorf("%q is not JSON", buf.String())
			}
		})
	}
}
