// Package official measures this project's engine beside Amplitude's
// official Go server SDK (experiment-go-server v1.12.0) in one run: the
// same flag files, the same user, the same Go. It is a module of its own so
// that the product never imports the official SDK; see README.md for how to
// run it.
package official
