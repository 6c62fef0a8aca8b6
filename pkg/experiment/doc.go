// Package experiment is the Go SDK for Amplitude Experiment: the user and
// variant types, and local evaluation of a compiled flag set with cohort
// targeting. Its public surface mirrors Amplitude's Python server SDK in Go
// idiom: constructors return errors, nothing is global, and evaluation never
// modifies the caller's user.
package experiment
