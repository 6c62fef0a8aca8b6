package eval

import (
	"strings"
	"testing"
)

func TestIsNumberAsCompiled(t *testing.T) {
	for _, c := range []struct {
		v    string
		want bool
	}{{"1", true}, {"-2.5", true}, {"1e3", true}, {"abc", false}, {"1,000", false}, {"", false}, {"4.2.0", false}} {
		if got := IsNumber(c.v); got != c.want {
			t.Errorf("IsNumber(%q) = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestIsVersionAsCompiled(t *testing.T) {
	for _, c := range []struct {
		v    string
		want bool
	}{{"4.2", true}, {"4.2.1", true}, {"1.0.0-beta.1", true}, {"4", false}, {"v4.2", false}, {"4.2.x", false}, {"", false}} {
		if got := IsVersion(c.v); got != c.want {
			t.Errorf("IsVersion(%q) = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestDistributionEndCoversEveryHash(t *testing.T) {
	// the largest hash gives the largest distribution value, just below the end
	if got := uint64(^uint32(0) / 100); got != DistributionEnd-1 {
		t.Fatalf("max distribution %d, DistributionEnd %d", got, DistributionEnd)
	}
}

func TestOperatorFamilies(t *testing.T) {
	var numbers, versions []string
	for _, op := range OperatorNames() {
		if ComparesNumbers(op) {
			numbers = append(numbers, op)
		}
		if ComparesVersions(op) {
			versions = append(versions, op)
		}
	}
	if got := strings.Join(numbers, ","); got != "greater,greater or equal,less,less or equal" {
		t.Errorf("number operators %s", got)
	}
	if got := strings.Join(versions, ","); got != "version greater,version greater or equal,version less,version less or equal" {
		t.Errorf("version operators %s", got)
	}
	if ComparesNumbers("LESS") || ComparesVersions("version  less") {
		t.Error("an operator the engine does not know is in a family")
	}
}
