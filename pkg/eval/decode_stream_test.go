package eval

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func decodeStream(data []byte) ([]*Flag, error) {
	var flags []*Flag
	n, err := DecodeFlagsStream(bytes.NewReader(data), func(f *Flag) error {
		flags = append(flags, f)
		return nil
	})
	if err == nil && n != len(flags) {
		return nil, errors.New("count differs from the flags passed on")
	}
	return flags, err
}

// The stream decoder accepts exactly what DecodeFlags accepts, with the
// same flags, and places problems at the same JSON path.
func TestDecodeFlagsStreamAgrees(t *testing.T) {
	bench, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bench", "flags-1000.json"))
	require.NoError(t, err)
	docs := []string{
		string(bench), `[]`, ` [ ] `, `[{}]`, `[{"key":"a","segments":[{"conditions":[]}]}]`,
		``, ` `, `{}`, `null`, `[1]`, `[{"key":"a"},"b"]`, `[{"key":"a"},null]`, `[] x`, `[][]`, "[]\n{}",
		`[{"key":"a"}`, `[{"key":"a"`, `[{"key":"a"},`, `[`, `[{"key":"a",}]`, `[{"key":"a"},]`,
		`[{"key":"a"} {"key":"b"}]`, `[{"key":tru}]`, `[{"key":1}]`,
		`[{"key":"a","segments":[{"conditions":[[{"selector":["x"],"op":"is","values":[1]}]]}]}]`,
		`[{"key":"a","segments":[{"bucket":{"allocations":[{"range":[1]}]}}]}]`,
		`[{"key":"a","segments":[null]}]`, `[{"key":"a","segments":[{"conditions":[[null]]}]}]`,
	}
	for _, doc := range docs {
		name := doc
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			want, werr := DecodeFlags([]byte(doc))
			got, gerr := decodeStream([]byte(doc))
			if werr != nil {
				require.Error(t, gerr, "DecodeFlags rejects it: %v", werr)
				var wp, gp *ParseError
				require.ErrorAs(t, werr, &wp)
				require.ErrorAs(t, gerr, &gp, "%v", gerr)
				assert.Equal(t, wp.Path, gp.Path)
				assert.NotContains(t, gp.Error(), "\n")
				return
			}
			require.NoError(t, gerr)
			if len(want) == 0 {
				assert.Empty(t, got)
				return
			}
			assert.Equal(t, want, got)
		})
	}
}

// Errors of the reader and of the callback come back as they are: a
// timeout reading a response is not a malformed document.
func TestDecodeFlagsStreamPassesErrorsOn(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := DecodeFlagsStream(io.MultiReader(strings.NewReader(`[{"key":"a"},`), iotest.ErrReader(boom)), func(*Flag) error { return nil })
	require.ErrorIs(t, err, boom)
	var pe *ParseError
	require.False(t, errors.As(err, &pe), "a reader error reported as a document problem: %v", err)

	stop := errors.New("enough")
	n, err := DecodeFlagsStream(strings.NewReader(`[{"key":"a"},{"key":"b"}]`), func(f *Flag) error {
		if f.Key == "b" {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 1, n)
}

// It reads the document to its end, past the array, so that a caller
// teeing the reader (to hash or copy it) sees every byte.
func TestDecodeFlagsStreamReadsToTheEnd(t *testing.T) {
	doc := "[{\"key\":\"a\"}]  \n"
	var seen bytes.Buffer
	_, err := DecodeFlagsStream(io.TeeReader(strings.NewReader(doc), &seen), func(*Flag) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, doc, seen.String())
}

func FuzzDecodeFlagsStream(f *testing.F) {
	for _, doc := range conformanceFlagDocs(f) {
		f.Add(doc)
	}
	for _, s := range []string{``, `[]`, `[{}]`, `[null]`, `[1]`, `[] x`, `[{"key":"a"`, `[{"key":"a","segments":[{"bucket":{"allocations":[{"range":[1]}]}}]}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := DecodeFlags(data)
		got, gerr := decodeStream(data)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("DecodeFlags: %v; DecodeFlagsStream: %v", werr, gerr)
		}
		if gerr != nil {
			var pe *ParseError
			if !errors.As(gerr, &pe) || strings.Contains(gerr.Error(), "\n") {
				t.Fatalf("stream error is not one ParseError line: %T %q", gerr, gerr)
			}
			return
		}
		if len(want) != len(got) {
			t.Fatalf("%d flags, DecodeFlags has %d", len(got), len(want))
		}
	})
}
