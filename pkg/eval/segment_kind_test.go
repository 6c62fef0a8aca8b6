package eval

import "testing"

func TestSegmentKind(t *testing.T) {
	doc := []byte(`[{"key":"f","variants":{"on":{"key":"on"},"off":{"key":"off"}},"segments":[
		{"conditions":[[{"selector":["context","user","user_id"],"op":"is","values":["u1"]}]],"variant":"on"},
		{"conditions":[[{"selector":["context","user","user_id"],"op":"is","values":["u2"]}]],
		 "bucket":{"selector":["context","user","device_id"],"salt":"s","allocations":[{"range":[0,100],"distributions":[{"variant":"on","range":[0,42949673]}]}]}},
		{"conditions":[[]],"variant":"off"},
		{"variant":"off"}]}]`)
	s, err := Load(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []SegmentKind{SegmentTargeted, SegmentSplit, SegmentStatic, SegmentStatic}
	for i, w := range want {
		if got := s.SegmentKind("f", i); got != w {
			t.Errorf("segment %d: %v, want %v", i, got, w)
		}
	}
	for _, c := range []struct {
		key string
		seg int
	}{{"f", -1}, {"f", 4}, {"g", 0}} {
		if got := s.SegmentKind(c.key, c.seg); got != SegmentUnknown {
			t.Errorf("%s segment %d: %v, want unknown", c.key, c.seg, got)
		}
	}
	if !s.Has("f") || s.Has("g") {
		t.Errorf("Has: f %v, g %v", s.Has("f"), s.Has("g"))
	}
	if s.sources[0].Load() != nil {
		t.Error("the flag was decoded to answer")
	}
}
