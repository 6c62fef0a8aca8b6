package eval

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/murmur3"
)

// The groups as JSON text, written without encoding/json when every string
// is plain, read exactly as encoding/json writes them.
func FuzzGroupsJSON(f *testing.F) {
	f.Add("org id", "42", "team", "")
	f.Add("a<b", "x&y", "é", "\x00")
	f.Add("", "", "k", "\"\\")
	f.Fuzz(func(t *testing.T, k1, n1, k2, n2 string) {
		for _, groups := range []map[string][]string{
			{k1: {n1, n2}, k2: nil},
			{k1: {}, k2: {n2, n1}},
			{k2: {n1}},
		} {
			want, err := json.Marshal(groups)
			require.NoError(t, err)
			e := &evaluator{gen: 1}
			got := e.groupsJSON(groups)
			require.Equal(t, string(want), got)
			require.Equal(t, got, e.groupsJSON(groups), "cached")
		}
	})
}

// FuzzNumberCandidate: the check before ParseFloat never turns away a
// string ParseFloat accepts.
func FuzzNumberCandidate(f *testing.F) {
	for _, s := range []string{"1", "-1.5e10", ".5", "5.", "1_000", "0x1p-2", "Inf", "+infinity", "NaN", "1e", "e1", "1.2.3", "iOS 17.1", "0f8f", "", "-", "1e+", "0X_1P0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := strconv.ParseFloat(s, 64); err == nil && !numberCandidate(s) {
			t.Fatalf("ParseFloat accepts %q, numberCandidate turns it away", s)
		}
	})
}

// FuzzHashBucket holds the bucketing hash, salt hashed ahead, to murmur3 of
// the whole concatenation.
func FuzzHashBucket(f *testing.F) {
	for _, s := range []struct{ salt, value string }{
		{"", ""}, {"a", ""}, {"ab", "c"}, {"abc", "d"}, {"vqq6etmb", "user-12"}, {"x1y2z3w4", "0f8fad5b-d9cb-469f-a165-70867728950e"},
		{"salt", "é🙂"}, {"s", "0123456789abcdef"},
	} {
		f.Add(s.salt, s.value)
	}
	f.Fuzz(func(t *testing.T, salt, value string) {
		want := murmur3.Sum32([]byte(salt + "/" + value))
		if got := hashBucket(salt, value); got != want {
			t.Fatalf("hash of %q/%q: %d, murmur3 says %d", salt, value, got, want)
		}
	})
}
