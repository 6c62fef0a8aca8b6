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
			for _, list := range groups {
				want, err := json.Marshal(list)
				require.NoError(t, err)
				require.Equal(t, string(want), e.listJSON(list))
				anys := []any{nil}
				for _, x := range list {
					anys = append(anys, x)
				}
				want, err = json.Marshal(anys)
				require.NoError(t, err)
				require.Equal(t, string(want), e.scalarString(anys))
			}
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

// FuzzBucketing holds bucketing (constant buckets are not hashed) to the
// reference's arithmetic on the hash.
func FuzzBucketing(f *testing.F) {
	f.Add(uint64(0), uint64(100), uint64(0), uint64(42949673), "user-1")
	f.Add(uint64(0), uint64(1000), uint64(0), uint64(4294967296), "device")
	f.Add(uint64(0), uint64(100), uint64(1), uint64(42949673), "x")
	f.Add(uint64(0), uint64(99), uint64(0), uint64(42949673), "y")
	f.Add(uint64(0), uint64(100), uint64(0), uint64(42949672), "z")
	f.Fuzz(func(t *testing.T, as, ae, ds, de uint64, value string) {
		allocs := []*Allocation{
			{Range: []uint64{as, ae}, Distributions: []*Distribution{{Variant: "a", Range: []uint64{ds, de}}, {Variant: "b", Range: []uint64{0, 20000000}}}},
			{Range: []uint64{0, 100}, Distributions: []*Distribution{{Variant: "c", Range: []uint64{0, 42949673}}}},
		}
		flag := &Flag{Key: "f", Variants: map[string]*Variant{"a": {Key: "a"}, "b": {Key: "b"}, "c": {Key: "c"}, "off": {Key: "off"}},
			Segments: []*Segment{{Bucket: &Bucket{Selector: []string{"context", "user", "device_id"}, Salt: "s", Allocations: allocs}, Variant: "off"}}}
		snap, err := Compile([]*Flag{flag})
		require.NoError(t, err)
		res, err := snap.Evaluate(&Context{DeviceID: value}, nil, nil)
		require.NoError(t, err)
		want := "off"
		if value != "" {
			_, a, d := HashBucket("s", value)
		search:
			for _, al := range allocs {
				if a < al.Range[0] || a >= al.Range[1] {
					continue
				}
				for _, di := range al.Distributions {
					if d >= di.Range[0] && d < di.Range[1] {
						want = di.Variant
						break search
					}
				}
			}
		}
		require.Len(t, res, 1)
		require.Equal(t, want, res[0].Key, "%v", allocs)
	})
}
