//go:build race

package cohort_test

func init() { raceEnabled = true }
