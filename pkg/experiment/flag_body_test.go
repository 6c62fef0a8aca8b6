package experiment

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readFlagBody reads the whole body, whatever its announced size says,
// into a slice of its exact length, and passes read errors on.
func TestReadFlagBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 10000) // beyond a spool block
	for _, tc := range []struct {
		name string
		size int64
	}{{"announced", int64(len(body))}, {"unknown", -1}, {"more than announced", 10}, {"empty", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			want := body
			if tc.size == 0 {
				want = []byte{}
			}
			// One byte at a time: every read of readFlagBody is a short one.
			got, err := readFlagBody(iotest.OneByteReader(bytes.NewReader(want)), tc.size)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, len(got), cap(got), "no spare room")
		})
	}
	t.Run("short", func(t *testing.T) {
		_, err := readFlagBody(bytes.NewReader(body[:10]), int64(len(body)))
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})
	t.Run("too large", func(t *testing.T) {
		_, err := readFlagBody(&capReader{r: bytes.NewReader(body), left: 100}, -1)
		assert.ErrorIs(t, err, errTooLarge)
		_, err = readFlagBody(&capReader{r: bytes.NewReader(body), left: 100}, 50)
		assert.ErrorIs(t, err, errTooLarge)
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		for _, size := range []int64{-1, int64(len(body))} {
			_, err := readFlagBody(io.MultiReader(bytes.NewReader(body[:100]), iotest.ErrReader(boom)), size)
			assert.ErrorIs(t, err, boom)
		}
	})
}

// Bytes joins the blocks and the spool still writes the same bytes after,
// as FetchFlagConfigs returns the body and then writes the cache from it.
func TestSpoolBytesThenWriteTo(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 10000) // several blocks
	s := newSpool(-1)
	_, err := io.Copy(s, iotest.OneByteReader(bytes.NewReader(body)))
	require.NoError(t, err)
	require.Greater(t, len(s.blocks), 1)
	assert.Equal(t, body, s.Bytes())
	var out bytes.Buffer
	_, err = s.WriteTo(&out)
	require.NoError(t, err)
	assert.Equal(t, body, out.Bytes())
}
