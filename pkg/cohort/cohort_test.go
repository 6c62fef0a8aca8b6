package cohort_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flagkit/experiment/pkg/cohort"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wire is the download API body as encoding/json reads it: the reference
// the fast decoder must agree with.
type wire struct {
	CohortID     string   `json:"cohortId"`
	GroupType    string   `json:"groupType"`
	GroupTypeID  int64    `json:"groupTypeId"`
	LastModified int64    `json:"lastModified"`
	Size         int      `json:"size"`
	MemberIDs    []string `json:"memberIds"`
}

func referenceDecode(data []byte) (*wire, error) {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	if w.CohortID == "" {
		return nil, errors.New("missing cohortId")
	}
	if w.GroupType == "" {
		w.GroupType = cohort.UserGroupType
	}
	return &w, nil
}

// checkAgrees asserts that Decode and encoding/json agree on data: both
// fail, or both give the same cohort.
func checkAgrees(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := referenceDecode(data)
	got, err := cohort.Decode(data)
	if wantErr != nil {
		require.Error(t, err, "encoding/json rejects %q (%v)", data, wantErr)
		require.ErrorIs(t, err, cohort.ErrMalformed)
		return
	}
	require.NoError(t, err, "encoding/json accepts %q", data)
	assert.Equal(t, want.CohortID, got.ID)
	assert.Equal(t, want.GroupType, got.GroupType)
	assert.Equal(t, want.GroupTypeID, got.GroupTypeID)
	assert.Equal(t, want.LastModified, got.LastModified)
	assert.Equal(t, want.Size, got.Size)
	members := slices.Collect(got.Members())
	if len(want.MemberIDs) == 0 {
		assert.Empty(t, members)
	} else {
		assert.Equal(t, want.MemberIDs, members)
	}
	distinct := map[string]bool{}
	for _, m := range want.MemberIDs {
		distinct[m] = true
		assert.True(t, got.Has(m), "member %q", m)
	}
	assert.Equal(t, len(distinct), got.Len())
}

func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	docs := []string{
		`{"cohortId":"6f3ljx","groupType":"User","groupTypeId":0,"lastModified":1700000533801,"size":3,"memberIds":["user-7","user-8","user-9"]}`,
		`{"cohortId":"a","memberIds":[]}`,
		`{"cohortId":"a"}`,
		`{"cohortId":"a","memberIds":null}`,
		` { "cohortId" : "a" , "memberIds" : [ "x" , "y" ] , "size" : 2 } ` + "\n",
		`{"cohortId":"a","groupType":"org id","memberIds":["1001","","3","42","org-7"]}`,
		`{"cohortId":"a","memberIds":["José.García","ユーザー7","🙂-user","ÄÖÜ GmbH"]}`,
		`{"cohortId":"a","memberIds":["q\"uote","back\\slash","\u00e9\ud83d\ude42","tab\there","\/slash","nul\u0000"]}`,
		`{"cohortId":"a","memberIds":["a\ud800b"]}`,                   // lone surrogate
		"{\"cohortId\":\"a\",\"memberIds\":[\"bad\xffutf8\",\"ok\"]}", // invalid UTF-8
		`{"cohortId":"a","memberIds":["x",null,"y"]}`,
		`{"cohortId":"a","memberIds":["dup","dup","other","dup"]}`,
		`{"cohortId":"a","memberIds":["first"],"memberIds":["second"]}`,
		`{"cohortId":"a","cohortId":"b"}`,
		`{"COHORTID":"a","MemberIds":["m"],"GROUPTYPE":"company"}`,
		`{"c\u006fhortId":"esc","memberIds":["m"]}`,
		`{"cohortId":"a","extra":{"nested":[1,2,{"x":null}]},"other":"s","n":1.5e3,"t":true,"memberIds":["m"]}`,
		`{"memberIds":["m"],"cohortId":"late","lastModified":5}`,
		`{"cohortId":"a","groupType":null,"lastModified":null,"memberIds":["m"]}`,
		`{"cohortId":"a","size":-4,"memberIds":["m"]}`,
		`{"cohortId":"a","size":99999999999,"memberIds":["m"]}`,
		// rejected by both
		``,
		`null`,
		`[]`,
		`{}`,
		`{"cohortId":""}`,
		`{"cohortId":"a","memberIds":[1]}`,
		`{"cohortId":"a","memberIds":["a",]}`,
		`{"cohortId":"a","memberIds":["a"`,
		`{"cohortId":"a","memberIds":["a]}`,
		`{"cohortId":"a","memberIds":["bad\escape"]}`,
		"{\"cohortId\":\"a\",\"memberIds\":[\"ctl\x01\"]}",
		`{"cohortId":"a","memberIds":"x"}`,
		`{"cohortId":"a","memberIds":{}}`,
		`{"cohortId":"a","size":"3"}`,
		`{"cohortId":"a","lastModified":1.5}`,
		`{"cohortId":"a","lastModified":1e3}`,
		`{"cohortId":"a"} x`,
		`{"cohortId":"a"}{}`,
		`{"cohortId":"a",}`,
		`{"cohortId" "a"}`,
		`{"cohortId":"a","memberIds":[nul]}`,
		`{"cohortId":"a","memberIds":[true]}`,
		`{"cohortId":"a","x":[1,2}`,
		`{"cohortId":1}`,
	}
	for i, doc := range docs {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkAgrees(t, []byte(doc)) })
	}
}

func TestDecodeDoesNotModifyInput(t *testing.T) {
	data := []byte(`{"cohortId":"a","memberIds":["x\"y","plain","\u00e9"]}`)
	orig := slices.Clone(data)
	_, err := cohort.Decode(data)
	require.NoError(t, err)
	require.Equal(t, orig, data)
}

func TestDecodeErrorSaysWhere(t *testing.T) {
	_, err := cohort.Decode([]byte(`{"cohortId":"a","memberIds":["x",7]}`))
	require.ErrorIs(t, err, cohort.ErrMalformed)
	assert.Equal(t, "malformed cohort: offset 33: memberIds[1]: want a string", err.Error())
}

func FuzzDecode(f *testing.F) {
	for _, file := range conformanceFiles(f) {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(`{"cohortId":"a","memberIds":["q\"uote","\u00e9",null,"dup","dup"],"x":{"y":[1]}}`))
	f.Add([]byte("{\"cohortId\":\"a\",\"memberIds\":[\"\xff\"]}"))
	f.Fuzz(func(t *testing.T, data []byte) { checkAgrees(t, data) })
}

// TestMembershipAgreesWithMap checks the open-addressing member set
// against a Go map on random ids, duplicates, empty strings and misses.
func TestMembershipAgreesWithMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 7, 100, 1000, 50000} {
		members := make([]string, n)
		want := map[string]bool{}
		for i := range members {
			switch r.IntN(10) {
			case 0:
				members[i] = ""
			case 1:
				if i > 0 {
					members[i] = members[r.IntN(i)] // duplicate
					break
				}
				fallthrough
			default:
				members[i] = fmt.Sprintf("user-%d-%x", r.IntN(n*4+1), r.Uint32()&0xff)
			}
			want[members[i]] = true
		}
		c, err := cohort.New("c", "", 1, members)
		require.NoError(t, err)
		require.Equal(t, len(want), c.Len(), "n=%d", n)
		require.Equal(t, members, append([]string{}, slices.Collect(c.Members())...)[:n:n], "n=%d", n)
		for m := range want {
			require.True(t, c.Has(m), "n=%d member %q", n, m)
		}
		for range 2000 {
			probe := fmt.Sprintf("user-%d-%x", r.IntN(n*4+1), r.Uint32()&0xff)
			require.Equal(t, want[probe], c.Has(probe), "n=%d probe %q", n, probe)
		}
		require.False(t, c.Has("not-a-member"))
	}
}

func TestNilAndEmpty(t *testing.T) {
	var c *cohort.Cohort
	assert.False(t, c.Has("x"))
	assert.Zero(t, c.Len())
	assert.Empty(t, slices.Collect(c.Members()))
	var s *cohort.Store
	assert.Nil(t, s.Get("x"))
	assert.Zero(t, s.Len())
	assert.Empty(t, s.Memberships(cohort.UserGroupType, "u", []string{"x"}))
	_, err := cohort.New("", "User", 0, nil)
	assert.Error(t, err)
}

func TestMarshalRoundTrip(t *testing.T) {
	members := []string{"plain", "q\"uote", "back\\slash", "new\nline", "ctl\x01", "é🙂", "<html>&", "bad\xffutf8", ""}
	c, err := cohort.New("id-1", "org id", 1700000000123, members)
	require.NoError(t, err)
	c.GroupTypeID = 7
	data, err := json.Marshal(c) // through MarshalJSON, validated by encoding/json
	require.NoError(t, err)
	var w wire
	require.NoError(t, json.Unmarshal(data, &w))
	want := slices.Clone(members)
	want[7] = "bad\uFFFDutf8"
	assert.Equal(t, wire{CohortID: "id-1", GroupType: "org id", GroupTypeID: 7, LastModified: 1700000000123,
		Size: len(members), MemberIDs: want}, w)
	back, err := cohort.Decode(c.AppendJSON(nil))
	require.NoError(t, err)
	assert.Equal(t, want, slices.Collect(back.Members()))
	assert.Equal(t, c.Len(), back.Len())
	assert.JSONEq(t, `{"cohortId":"e","groupType":"User","groupTypeId":0,"lastModified":0,"size":0,"memberIds":[]}`,
		string(mustNew(t, "e", "", 0, nil).AppendJSON(nil)))
}

func TestStoreCopyOnWrite(t *testing.T) {
	a := mustNew(t, "a", "", 1, []string{"u1"})
	b := mustNew(t, "b", "company", 1, []string{"acme"})
	a2 := mustNew(t, "a", "", 2, []string{"u2"})
	s1 := cohort.NewStore(a)
	s2 := s1.With(b)
	s3 := s2.With(a2, nil)
	s4 := s3.Without("a", "missing")

	assert.Equal(t, []string{"a"}, s1.IDs())
	assert.Equal(t, []string{"a", "b"}, s2.IDs())
	assert.Same(t, a, s2.Get("a"))
	assert.Same(t, a2, s3.Get("a"))
	assert.Equal(t, []string{"b"}, s4.IDs())
	assert.Same(t, a, s1.Get("a"), "With must not modify the receiver")
	assert.Equal(t, 2, s3.Len())
	assert.Equal(t, []*cohort.Cohort{a2, b}, s3.Cohorts())
	assert.Equal(t, []string{"a"}, s3.Memberships(cohort.UserGroupType, "u2", []string{"a", "b", "zz"}))
	assert.Empty(t, s3.Memberships("company", "u2", []string{"a", "b"}))
	assert.Equal(t, []string{"b"}, s3.Memberships("company", "acme", []string{"a", "b"}))
	var nilStore *cohort.Store
	assert.Equal(t, []string{"a"}, nilStore.With(a).IDs())
	assert.Zero(t, nilStore.Without("a").Len())
}

func mustNew(t testing.TB, id, groupType string, lastModified int64, members []string) *cohort.Cohort {
	t.Helper()
	c, err := cohort.New(id, groupType, lastModified, members)
	require.NoError(t, err)
	return c
}

// conformanceFiles are the cohort documents of the conformance cases.
func conformanceFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "conformance", "cases", "*", "cohorts", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no conformance cohorts under testdata/")
	return files
}
