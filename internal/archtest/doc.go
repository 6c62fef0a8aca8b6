// Package archtest holds the tests that keep the SDK's packages (pkg/...)
// what importers expect of a library: no terminal or command-line
// packages among their dependencies, no init functions, and no
// package-level state that a call could change under another caller.
// It has no code of its own; `go test ./internal/archtest` runs the checks.
package archtest
