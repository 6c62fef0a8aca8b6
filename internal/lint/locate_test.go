package lint

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

const locateDoc = `[
  {"key": "a",
   "segments": [
     {"variant": "on"},
     {"conditions": [[{"op": "is", "values": ["é", "x"]}]]}
   ]},
  {"key":"b","variants":{"on":{}}}
]`

func TestLocate(t *testing.T) {
	l := Locate([]byte(locateDoc))
	for path, want := range map[string][2]int{
		"flags[0]":                     {2, 3},
		"flags[0].segments[1]":         {5, 6},
		"flags[0].segments[0].variant": {4, 18},
		"flags[0].segments[1].conditions[0][0].values[1]": {5, 52},
		"flags[1].variants.on":                            {7, 31},
		"flags[1].variants.on.missing":                    {7, 31}, // nearest enclosing value
		"flags[0].segments[0].bucket.allocations[0]":      {4, 6},
	} {
		line, col, ok := l.Position(path)
		if !ok || line != want[0] || col != want[1] {
			t.Errorf("Position(%q) = %d:%d %v, want %d:%d", path, line, col, ok, want[0], want[1])
		}
	}
	if _, _, ok := l.Position("elsewhere"); ok {
		t.Error("found a path outside the document")
	}
}

func TestLocateMalformedKeepsWhatItSaw(t *testing.T) {
	l := Locate([]byte(`[{"key":"a"}, {"key": tru`))
	if line, col, ok := l.Position("flags[1]"); !ok || line != 1 || col != 15 {
		t.Errorf("Position(flags[1]) = %d:%d %v", line, col, ok)
	}
}

func FuzzLocate(f *testing.F) {
	f.Add([]byte(locateDoc))
	f.Add([]byte(`[{"a":[1,{"b":null}],"c":"\u00e9"}]`))
	f.Add([]byte(`{"not":"a list"}`))
	f.Add([]byte(`[[[`))
	f.Add([]byte("\xef\xbb\xbf[{\"key\":\"a\"}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := Locate(data)
		for path, off := range l.offsets {
			if off < 0 || off >= len(data) {
				t.Fatalf("%s at %d, outside %d bytes", path, off, len(data))
			}
			if c := data[off]; c == ' ' || c == ',' || c == ':' || c == '\n' {
				t.Fatalf("%s starts at separator %q", path, c)
			}
		}
		// in a valid document every top-level element is found where it starts
		var elems []json.RawMessage
		if json.Unmarshal(data, &elems) == nil {
			for i, e := range elems {
				path := "flags[" + strconv.Itoa(i) + "]"
				off, ok := l.offsets[path]
				if !ok || !bytes.HasPrefix(data[off:], bytes.TrimSpace(e)[:1]) {
					t.Fatalf("%s not found at its start", path)
				}
			}
		}
	})
}

// A file saved with a UTF-8 byte-order mark decodes (the engine skips the
// mark), so its findings have lines and columns too; the mark is not a
// column.
func TestLocateAfterByteOrderMark(t *testing.T) {
	l := Locate([]byte("\xef\xbb\xbf" + locateDoc))
	for path, want := range map[string][2]int{
		"flags":                        {1, 1},
		"flags[0].segments[0].variant": {4, 18},
	} {
		line, col, ok := l.Position(path)
		if !ok || line != want[0] || col != want[1] {
			t.Errorf("Position(%q) = %d:%d %v, want %d:%d", path, line, col, ok, want[0], want[1])
		}
	}
}
