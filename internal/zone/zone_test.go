package zone

import "testing"

func TestCheck(t *testing.T) {
	for _, ok := range []string{"", "us", "US", " eu ", "Eu"} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"usa", "e u", "ap", "\teu-west"} {
		if err := Check(bad); err == nil {
			t.Errorf("Check(%q) accepted", bad)
		}
	}
	if got := Canonical(" eu\n"); got != EU {
		t.Errorf("Canonical = %q", got)
	}
}
