//go:build race

package experiment

// raceEnabled: the race detector is on; memory tests measure less, or skip.
const raceEnabled = true
