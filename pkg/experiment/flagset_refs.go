package experiment

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/flagkit/experiment/pkg/cohort"
	"github.com/flagkit/experiment/pkg/eval"
)

// documentReferences lists the cohorts a flag document targets without
// keeping its decoded flags. Most documents target none, which shows in
// their text; the others are decoded once more, a flag at a time, keeping
// only the flags that target cohorts.
func documentReferences(data []byte) (cohort.References, error) {
	if !mayTargetCohorts(data) {
		return cohort.References{}, nil
	}
	var targeting []*eval.Flag
	_, err := eval.DecodeFlagsStream(bytes.NewReader(data), func(f *eval.Flag) error {
		if len(cohort.Referenced([]*eval.Flag{f})) > 0 {
			targeting = append(targeting, f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cohort.Referenced(targeting), nil
}

// mayTargetCohorts is false only when no condition can select cohort_ids:
// the name is not in the text, nor can it be spelled with \u escapes of
// its letters.
func mayTargetCohorts(data []byte) bool {
	if bytes.Contains(data, []byte("cohort_ids")) {
		return true
	}
	for rest := data; ; {
		i := bytes.Index(rest, []byte(`\u`))
		if i < 0 {
			return false
		}
		rest = rest[i+2:]
		if len(rest) < 4 {
			return true
		}
		r, err := strconv.ParseUint(string(rest[:4]), 16, 16)
		if err != nil || strings.ContainsRune("cohrt_ids", rune(r)) {
			return true
		}
	}
}
