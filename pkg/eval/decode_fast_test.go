package eval

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jsonDecode is what encoding/json makes of a flag document, the meaning
// the fast decoder must reproduce.
func jsonDecode(data []byte) ([]*Flag, error) {
	var flags []*Flag
	if err := json.Unmarshal(data, &flags); err != nil {
		return nil, err
	}
	if flags == nil {
		return nil, errors.New("not an array")
	}
	for _, f := range flags {
		if f == nil {
			return nil, errNullFlag
		}
	}
	return flags, nil
}

// fastDecodeSeeds are documents at the edges of what the fast decoder
// takes on: escapes, Unicode, case-folded and repeated keys, numbers,
// nulls and empty containers everywhere.
var fastDecodeSeeds = []string{
	`[]`, ` [ ] `, `[{}]`, `[null]`, `null`, `{}`, `[{}] x`, `[{},]`, `[{} {}]`, "\ufeff[]",
	`[{"key":"a","KEY":"b"}]`, `[{"Key":"a"}]`, `[{"k\u0065y":"a"}]`, `[{"key":"a","key":"b"}]`, `[{"\u212aey":"a"}]`,
	`[{"key":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800x"}]`, "[{\"key\":\"\xff\xfe\"}]", "[{\"key\":\"a\x01\"}]",
	`[{"key":"a","metadata":{"n":-0,"m":1E+2,"o":0.5e-3,"p":1e400,"q":[],"r":{},"s":null,"t":true,"u":false,"n":2}}]`,
	`[{"key":"a","metadata":{"x":01}}]`, `[{"key":"a","metadata":{"x":-}}]`, `[{"key":"a","metadata":{"x":1.}}]`,
	`[{"key":"a","variants":{"on":null,"off":{},"x":{"value":{"a":[1,"b",null]},"payload":[],"metadata":{}}},"dependencies":[]}]`,
	`[{"key":"a","variants":{"on":{"key":"on"},"on":{"value":1}}}]`, `[{"key":"a","variants":{}}]`, `[{"key":"a","variants":null}]`,
	`[{"key":"a","segments":[null,{},{"conditions":null},{"conditions":[]},{"conditions":[[]]},{"conditions":[null,[null]]}]}]`,
	`[{"key":"a","segments":[{"conditions":[[{"selector":null,"op":null,"values":null}],[{"selector":[],"values":[null,"x"]}]]}]}]`,
	`[{"key":"a","segments":[{"bucket":{"selector":["context","user","id"],"salt":"s","allocations":[{"range":[0,100],` +
		`"distributions":[{"variant":"on","range":[0,4294967296]},null]},null]}}]}]`,
	`[{"key":"a","segments":[{"bucket":{"allocations":[{"range":[0,-1]}]}}]}]`, `[{"key":"a","segments":[{"bucket":{"allocations":[{"range":[0,1.0]}]}}]}]`,
	`[{"key":"a","segments":[{"bucket":{"allocations":[{"range":[null,18446744073709551616]}]}}]}]`,
	`[{"key":"a","segments":[{"bucket":null,"variant":null,"metadata":null}]}]`,
	`[{"key":"a","unknown":{"deep":[1,{"x":"\u0041"},true,false,null,"\\"]},"other":-1.5e-7}]`,
	`[{"key":"a","unknown":tru}]`, `[{"key":"a","unknown":"\x"}]`, `[{"key":"a","unknown":"\u12"}]`,
	`[{"key":1}]`, `[{"key":"a","segments":{}}]`, `[{"key":"a","dependencies":"b"}]`, `[{"key":"a","variants":{"on":5}}]`,
	`[[]]`, `[1]`, `["a"]`, `[{"key":"a"`, `[{"key":"a"}`, `[`, ``, `   `,
	`[{"key":"a","metadata":` + strings.Repeat(`[`, 600) + strings.Repeat(`]`, 600) + `}]`,
}

// FuzzFastDecode holds the fast decoder to encoding/json: whatever it
// accepts, encoding/json accepts with the same flags.
func FuzzFastDecode(f *testing.F) {
	for _, doc := range conformanceFlagDocs(f) {
		f.Add(doc)
	}
	for _, s := range fastDecodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeFlagsFast(data, nil)
		if !ok {
			return
		}
		want, err := jsonDecode(data)
		if err != nil {
			t.Fatalf("fast decoder accepts what encoding/json rejects (%v): %q", err, data)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("fast decoder differs from encoding/json on %q:\nfast %s\njson %s", data, dump(fast), dump(want))
		}
	})
}

func dump(flags []*Flag) string {
	b, _ := json.Marshal(flags)
	return string(b)
}

// TestFastDecodeSeeds runs the seeds both ways and also checks that the
// fast decoder takes on the documents it is there for.
func TestFastDecodeSeeds(t *testing.T) {
	for _, s := range fastDecodeSeeds {
		fast, ok := decodeFlagsFast([]byte(s), nil)
		want, err := jsonDecode([]byte(s))
		if ok {
			require.NoError(t, err, "%s", s)
			require.True(t, reflect.DeepEqual(fast, want), "%s:\nfast %s\njson %s", s, dump(fast), dump(want))
		}
	}
	docs := conformanceFlagDocs(t)
	for _, n := range []string{"1", "10", "100", "1000"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bench", "flags-"+n+".json"))
		require.NoError(t, err)
		docs = append(docs, data)
	}
	for _, doc := range docs {
		fast, ok := decodeFlagsFast(doc, nil)
		require.True(t, ok, "the fast decoder gives up on a real document")
		want, err := jsonDecode(doc)
		require.NoError(t, err)
		assert.True(t, reflect.DeepEqual(fast, want))
	}
	for _, s := range []string{`[{"key":"a\u00e9"}]`, `[{"key":"a","unknown":{"x":[1,"\n"]}}]`, `[{"variants":{"on":null}}]`} {
		_, ok := decodeFlagsFast([]byte(s), nil)
		assert.True(t, ok, "gives up on %s", s)
	}
}
