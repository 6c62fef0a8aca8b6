package cohort

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// TestEmitInPlace: members are compacted in place behind the input, and
// the arena moves out only when a length prefix would overtake the input.
func TestEmitInPlace(t *testing.T) {
	body := []byte(`{"memberIds":["ab","` + strings.Repeat("x", 200) + `",null,"c\"d"],"cohortId":"i"}`)
	p := parser{data: slices.Clone(body)}
	var h wireHeader
	if err := p.document(&h); err != nil {
		t.Fatal(err)
	}
	if p.sep != nil {
		t.Fatal("the arena left the body for short members")
	}
	want := appendMember(appendMember(appendMember(appendMember(nil, []byte("ab")), bytes.Repeat([]byte("x"), 200)), nil), []byte(`c"d`))
	if !bytes.Equal(p.data[:p.w], want) || p.n != 4 {
		t.Fatalf("arena %q (%d members), want %q", p.data[:p.w], p.n, want)
	}

	// A 2 MiB member takes a 4-byte prefix; with 2 bytes of room left it
	// moves the arena out.
	big := bytes.Repeat([]byte("y"), 1<<21)
	data := make([]byte, 8+len(big))
	copy(data, "AB")
	p = parser{data: data, w: 5, n: 1}
	p.emit(big, 6)
	if p.sep == nil {
		t.Fatal("the prefix would have overtaken the input")
	}
	if !bytes.Equal(p.sep[:5], data[:5]) || !bytes.Equal(p.sep[5:], appendMember(nil, big)) {
		t.Fatal("arena not carried over")
	}
	p.emit([]byte("z"), 100)
	if got := p.sep[len(p.sep)-2:]; string(got) != "\x01z" {
		t.Fatalf("after the move: %q", got)
	}
}

func TestDecodeLongMembers(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"cohortId":"long","memberIds":[`)
	var want []string
	for i, n := range []int{127, 128, 16383, 16384, 70000, 1 << 21, 1<<21 + 5, 1, 0} {
		if i > 0 {
			b.WriteByte(',')
		}
		m := strings.Repeat(string(rune('a'+i)), n)
		want = append(want, m)
		b.WriteString(`"` + m + `"`)
	}
	b.WriteString(`]}`)
	c, err := Decode([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Collect(c.Members()); !slices.Equal(got, want) {
		t.Fatal("members differ")
	}
	for _, m := range want {
		if !c.Has(m) {
			t.Fatalf("missing member of %d bytes", len(m))
		}
	}
	if c.Has(strings.Repeat("a", 126)) || c.Len() != len(want) {
		t.Fatal("wrong set")
	}
}
