package eval

import "testing"

func TestByteOrderMarkIgnored(t *testing.T) {
	doc := `[{"key":"f","variants":{"on":{"key":"on"}},"segments":[{"variant":"on"}]}]`
	withBOM := []byte("\xef\xbb\xbf" + doc)
	s, err := Load(withBOM)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if f := s.Flag("f"); f == nil || f.Key != "f" {
		t.Fatalf("Load: flag f decoded as %+v", f)
	}
	flags, err := DecodeFlags(withBOM)
	if err != nil || len(flags) != 1 || flags[0].Key != "f" {
		t.Fatalf("DecodeFlags: %v, %d flags", err, len(flags))
	}
	// Only at the start: a mark anywhere else is still an error.
	if _, err := Load([]byte(doc[:1] + "\xef\xbb\xbf" + doc[1:])); err == nil {
		t.Error("a byte-order mark inside the document was accepted")
	}
}
